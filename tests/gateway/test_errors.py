"""Error policy: domain errors keep their code and fix, request errors get a code, the rest is masked."""

from __future__ import annotations

import logging

import pytest
from graphql import GraphQLError, GraphQLSyntaxError, Source

from bulk.errors import IdentifierChangeRequiresDisable, InvalidInput, NotFound, SyncAlreadyRunning
from catalog_store.errors import InvalidQuery, StoreUnavailable
from catalog_store.token_cipher import SecretKeyError
from gateway.errors import ApiError, BadUserInput, Forbidden, api_error_for
from gateway.graphql.schema import UNEXPECTED, build_schema, public_error, schema


def wrapped(exc: Exception) -> GraphQLError:
    return GraphQLError(str(exc), path=["field"], original_error=exc)


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (InvalidInput("bad domain"), "BAD_USER_INPUT"),
        (NotFound("no such shop"), "NOT_FOUND"),
        (IdentifierChangeRequiresDisable("identifier is SKU"), "IDENTIFIER_CHANGE_REQUIRES_DISABLE"),
        (SyncAlreadyRunning("running"), "SYNC_ALREADY_RUNNING"),
        (InvalidQuery("first must be >= 0"), "BAD_USER_INPUT"),
    ],
)
def test_domain_errors_keep_code_message_and_fix(exc: Exception, code: str) -> None:
    public = public_error(wrapped(exc))
    assert public.message == str(exc)
    assert public.extensions["code"] == code
    assert public.extensions["fix"] == exc.fix  # type: ignore[attr-defined]
    assert public.path == ["field"]


def test_retryable_errors_say_so() -> None:
    assert public_error(wrapped(SyncAlreadyRunning("running"))).extensions["retryable"] is True


def test_store_unavailable_does_not_leak_the_connection_string() -> None:
    public = public_error(wrapped(StoreUnavailable("cannot reach mongodb://admin:hunter2@db:27017")))
    assert public.extensions["code"] == "SERVICE_UNAVAILABLE"
    assert "hunter2" not in public.message


def test_unexpected_exceptions_are_masked() -> None:
    public = public_error(wrapped(KeyError("internal detail: shpat_secret")))
    assert public.message == UNEXPECTED
    assert public.extensions == {"code": "INTERNAL_SERVER_ERROR"}
    assert public.original_error is None


def test_api_errors_pass_through() -> None:
    error = GraphQLError("x", path=["f"], original_error=Forbidden("mutations need the admin token"),
                         extensions=Forbidden("m").extensions)
    assert public_error(error) is error
    assert api_error_for(BadUserInput("y")).code == "BAD_USER_INPUT"  # type: ignore[union-attr]
    assert api_error_for(RuntimeError("z")) is None


def test_request_errors_get_codes() -> None:
    syntax = GraphQLSyntaxError(Source("{"), 1, "Expected Name")
    assert public_error(syntax).extensions["code"] == "GRAPHQL_PARSE_FAILED"
    validation = GraphQLError("Cannot query field 'nope' on type 'Query'.")
    assert public_error(validation).extensions["code"] == "GRAPHQL_VALIDATION_FAILED"
    variables = GraphQLError("Variable '$first' got invalid value 'x'; Int cannot represent non-integer value")
    assert public_error(variables).extensions["code"] == "BAD_USER_INPUT"


def test_api_error_extensions() -> None:
    error = ApiError("m", "SOME_CODE", "do this", retryable=True)
    assert error.extensions == {"code": "SOME_CODE", "fix": "do this", "retryable": True}
    assert ApiError("m", "C").extensions == {"code": "C"}


async def test_schema_reports_request_errors_with_codes() -> None:
    result = await schema.execute("{ nope }")
    assert result.errors and result.errors[0].extensions["code"] == "GRAPHQL_VALIDATION_FAILED"
    result = await schema.execute("{")
    assert result.errors and result.errors[0].extensions["code"] == "GRAPHQL_PARSE_FAILED"


async def test_limits() -> None:
    deep = build_schema(max_depth=2)
    result = await deep.execute("{ shopifySyncs { catalog { items { totalCount } } } }")
    assert result.errors and "exceeds maximum operation depth of 2" in result.errors[0].message
    aliases = " ".join(f"a{i}: __typename" for i in range(21))
    result = await schema.execute("{ " + aliases + " }")
    assert result.errors and "21 aliases found. Allowed: 20" in result.errors[0].message
    many = " ".join("__typename" for _ in range(3100))
    result = await schema.execute("{ " + many + " }")
    assert result.errors and "tokens" in result.errors[0].message


async def test_limits_leave_introspection_alone() -> None:
    from graphql import get_introspection_query

    result = await schema.execute(get_introspection_query(descriptions=True))
    assert result.errors is None


def test_logs_carry_no_source_text(caplog: pytest.LogCaptureFixture) -> None:
    source = Source('mutation { enableShopifySync(input: {accessToken: "shpat_inline_secret"}) { status } }')
    error = GraphQLError("bad", source=source, positions=[11], path=["enableShopifySync"],
                         original_error=BadUserInput("bad shop"))
    with caplog.at_level(logging.DEBUG):
        schema.process_errors([error])
    assert caplog.records
    assert "shpat_inline_secret" not in caplog.text


def test_a_wrong_secret_key_reaches_a_client_as_a_clear_error_with_the_fix() -> None:
    public = public_error(wrapped(SecretKeyError("a stored Shopify access token cannot be decrypted")))
    assert "cannot be decrypted" in public.message
    assert public.extensions is not None and public.extensions["code"] == "SERVICE_UNAVAILABLE"
    assert "GATEWAY_SECRET_KEY" in str(public.extensions["fix"])
