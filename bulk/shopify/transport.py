"""gql's aiohttp transport as the Shopify client needs it: every HTTP error status reported, the
token sent per request (so a shared session never carries it), no response bodies in logs; and gql's
client validating each document once."""

from __future__ import annotations

from typing import Any

import aiohttp
from gql import Client, GraphQLRequest
from gql.transport.aiohttp import AIOHTTPTransport
from gql.transport.exceptions import TransportAlreadyConnected, TransportProtocolError, TransportServerError
from graphql import DocumentNode, ExecutionResult

__all__ = ["HTTPStatusError", "Secret", "ShopifyTransport", "ValidatingOnce", "retry_after_seconds"]


class Secret:
    """A value that shows as `<secret>` in every repr, message and log line."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<secret>"

    __str__ = __repr__


class HTTPStatusError(TransportServerError):
    """An HTTP status ≥ 400, with the start of its body and its Retry-After (seconds)."""

    def __init__(self, status: int, body: str, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status}", status)
        self.status = status
        self.body = body
        self.retry_after = retry_after


class ShopifyTransport(AIOHTTPTransport):
    """AIOHTTPTransport that reports every HTTP status ≥ 400 (Shopify sends JSON bodies with 4xx,
    which the stock transport would read as a GraphQL answer) and can run on a caller's session."""

    def __init__(self, url: str, token: Secret, session: aiohttp.ClientSession | None) -> None:
        super().__init__(url, ssl_close_timeout=1)
        self._token = token
        self._external_session = session

    async def connect(self) -> None:
        if self._external_session is None:
            await super().connect()
        elif self.session is not None:
            raise TransportAlreadyConnected("Transport is already connected")
        else:
            self.session = self._external_session

    async def close(self) -> None:
        if self._external_session is None:
            await super().close()
        self.session = None

    async def execute(self, request: GraphQLRequest, *, extra_args: dict[str, Any] | None = None,
                      upload_files: bool = False) -> ExecutionResult:
        # Per request, so a shared session never carries this shop's token.
        args = dict(extra_args or {})
        args["headers"] = {**(args.get("headers") or {}), "X-Shopify-Access-Token": self._token.reveal()}
        return await super().execute(request, extra_args=args, upload_files=upload_files)

    async def _get_json_result(self, response: aiohttp.ClientResponse) -> Any:
        # The stock method logs whole response bodies at DEBUG; they may echo secrets or shop data.
        self.response_headers = response.headers
        try:
            result = await response.json(loads=self.json_deserialize, content_type=None)
        except (aiohttp.ClientError, OSError):
            raise
        except Exception:
            result = None
        if result is None:
            raise TransportProtocolError("Server did not return a valid GraphQL result: Not a JSON answer")
        return result

    async def _prepare_result(self, response: aiohttp.ClientResponse) -> ExecutionResult:
        if response.status >= 400:
            raw = await response.read()
            raise HTTPStatusError(response.status, raw[:300].decode("utf-8", "replace"),
                                   retry_after_seconds(response.headers.get("Retry-After")))
        return await super()._prepare_result(response)


class ValidatingOnce(Client):
    """gql's client, validating each distinct document once: ours are fixed strings, parsed once (the
    same DocumentNode each time), and validating one against the Admin schema costs milliseconds of
    CPU that every webhook read would pay again."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._valid: dict[int, DocumentNode] = {}

    def validate(self, request: GraphQLRequest) -> None:
        document = request.document
        if self._valid.get(id(document)) is document:
            return
        super().validate(request)
        self._valid[id(document)] = document


def retry_after_seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
