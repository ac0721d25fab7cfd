"""Settings.from_env: defaults, every variable, and a clear message for each mistake."""

from __future__ import annotations

import pytest

from gateway.errors import SettingsError
from gateway.settings import DEFAULT_ADMIN_API_URL, Settings, SmtpSettings
from tests.keys import OTHER_SECRET_KEY, TEST_SECRET_KEY

ADMIN = "admin-token-0123456789"
READ = "read-token-0123456789ab"


def problems(env: dict[str, str]) -> list[str]:
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env)
    return info.value.problems


def test_defaults_from_an_empty_environment() -> None:
    s = Settings.from_env({})
    assert s.mongodb_uri is None
    assert s.mongodb_database == "catalog_gateway"
    assert (s.host, s.port) == ("127.0.0.1", 8000)
    assert s.admin_token is None and s.read_token is None
    assert s.effective_public_url == "http://127.0.0.1:8000"
    assert s.shopify_api_version == "2026-01"
    assert s.shopify_api_secrets == ()
    assert s.shopify_admin_api_url == DEFAULT_ADMIN_API_URL
    assert s.catalog_storage_limit_bytes == 104857600
    assert s.smtp is None
    assert s.allowed_origins is None
    assert s.lease_ttl_seconds == 60
    assert s.ingest_batch_size == 1000


def test_every_variable_is_read() -> None:
    s = Settings.from_env({
        "MONGODB_URI": "mongodb://db.internal:27017/?replicaSet=rs0",
        "MONGODB_DATABASE": "catalogs",
        "GATEWAY_HOST": "0.0.0.0",
        "GATEWAY_PORT": "9000",
        "GATEWAY_ADMIN_TOKEN": ADMIN,
        "GATEWAY_READ_TOKEN": READ,
        "GATEWAY_PUBLIC_URL": "https://gw.example.com/",
        "SHOPIFY_API_VERSION": "2025-10",
        "SHOPIFY_API_SECRET": "new-secret, old-secret",
        "SHOPIFY_ADMIN_API_URL": "http://127.0.0.1:5000/shops/{shop}/admin/api/{version}/graphql.json",
        "CATALOG_STORAGE_LIMIT_BYTES": "5000000",
        "SMTP_HOST": "smtp.example.com",
        "SMTP_PORT": "587",
        "SMTP_FROM": "catalog@example.com",
        "NOTIFY_EMAILS": "ops@example.com, owner@example.com",
        "GATEWAY_ALLOWED_ORIGINS": "https://admin.example.com, http://localhost:3000",
        "SHOPIFY_ACCESS_TOKEN": "shpat_abc",
        "GATEWAY_LEASE_TTL_SECONDS": "15",
        "GATEWAY_INGEST_BATCH_SIZE": "250",
        "GATEWAY_SECRET_KEY": f"{TEST_SECRET_KEY}, {OTHER_SECRET_KEY}",
    })
    assert s.mongodb_uri == "mongodb://db.internal:27017/?replicaSet=rs0"
    assert s.mongodb_database == "catalogs"
    assert (s.host, s.port) == ("0.0.0.0", 9000)
    assert (s.admin_token, s.read_token) == (ADMIN, READ)
    assert s.effective_public_url == "https://gw.example.com"
    assert s.shopify_api_version == "2025-10"
    assert s.shopify_api_secrets == ("new-secret", "old-secret")
    assert s.shopify_admin_api_url.startswith("http://127.0.0.1:5000/shops/{shop}")
    assert s.catalog_storage_limit_bytes == 5_000_000
    assert s.smtp == SmtpSettings("smtp.example.com", 587, "catalog@example.com",
                                  ("ops@example.com", "owner@example.com"))
    assert s.allowed_origins == ("http://localhost:3000", "https://admin.example.com")
    assert s.shopify_access_token == "shpat_abc"
    assert s.lease_ttl_seconds == 15
    assert s.ingest_batch_size == 250
    assert s.secret_keys == (TEST_SECRET_KEY, OTHER_SECRET_KEY)


def test_secrets_are_not_in_repr() -> None:
    s = Settings.from_env({"GATEWAY_ADMIN_TOKEN": ADMIN, "SHOPIFY_ACCESS_TOKEN": "shpat_secret_x",
                           "SHOPIFY_API_SECRET": "whsec_x", "MONGODB_URI": "mongodb://u:pw@h",
                           "GATEWAY_SECRET_KEY": TEST_SECRET_KEY})
    text = repr(s)
    for secret in (ADMIN, "shpat_secret_x", "whsec_x", "pw@h", TEST_SECRET_KEY):
        assert secret not in text


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"GATEWAY_PORT": "80a"}, "GATEWAY_PORT='80a' is not a whole number"),
        ({"GATEWAY_PORT": "70000"}, "GATEWAY_PORT=70000 is out of range"),
        ({"GATEWAY_PORT": "0"}, "GATEWAY_PORT=0 is out of range"),
        ({"SMTP_HOST": "h", "SMTP_FROM": "a@b.co", "NOTIFY_EMAILS": "c@d.co", "SMTP_PORT": "-1"},
         "SMTP_PORT=-1 is out of range"),
        ({"SHOPIFY_ADMIN_API_URL": "https://example.com/admin/api/{version}/graphql.json"}, "lacks {shop}"),
        ({"SHOPIFY_ADMIN_API_URL": "https://{shop}/admin/graphql.json"}, "lacks {version}"),
        ({"SHOPIFY_ADMIN_API_URL": "https://{shop}/{version}/{other}"}, "placeholders other than"),
        ({"SHOPIFY_ADMIN_API_URL": "ftp://{shop}/{version}"}, "is not an http(s) URL"),
        ({"CATALOG_STORAGE_LIMIT_BYTES": "0"}, "CATALOG_STORAGE_LIMIT_BYTES=0 is out of range"),
        ({"CATALOG_STORAGE_LIMIT_BYTES": "100MB"}, "is not a whole number"),
        ({"MONGODB_URI": "localhost:27017"}, "MONGODB_URI must start with mongodb://"),
        ({"MONGODB_DATABASE": "my.db"}, "is not a valid MongoDB database name"),
        ({"GATEWAY_ADMIN_TOKEN": "short"}, "GATEWAY_ADMIN_TOKEN is too short (5 characters)"),
        ({"GATEWAY_ADMIN_TOKEN": "has space in the token value"}, "GATEWAY_ADMIN_TOKEN contains whitespace"),
        ({"GATEWAY_ADMIN_TOKEN": ADMIN, "GATEWAY_READ_TOKEN": ADMIN}, "must differ"),
        ({"GATEWAY_PUBLIC_URL": "gw.example.com"}, "GATEWAY_PUBLIC_URL='gw.example.com' is not a base URL"),
        ({"SHOPIFY_API_VERSION": "2026-02"}, "is not a Shopify API version"),
        ({"SHOPIFY_API_SECRET": "a,b,c"}, "more than two secrets"),
        ({"SMTP_HOST": "smtp.example.com"}, "set SMTP_FROM, NOTIFY_EMAILS too"),
        ({"SMTP_HOST": "h", "SMTP_FROM": "nobody", "NOTIFY_EMAILS": "x@y.co"}, "SMTP_FROM='nobody' is not an email"),
        ({"SMTP_HOST": "h", "SMTP_FROM": "a@b.co", "NOTIFY_EMAILS": "x@y.co,oops"}, "NOTIFY_EMAILS has invalid"),
        ({"GATEWAY_ALLOWED_ORIGINS": "https://ok.example.com/path"}, "GATEWAY_ALLOWED_ORIGINS: Invalid origin"),
        ({"GATEWAY_LEASE_TTL_SECONDS": "0"}, "GATEWAY_LEASE_TTL_SECONDS=0 is out of range"),
        ({"GATEWAY_LEASE_TTL_SECONDS": "1.5"}, "GATEWAY_LEASE_TTL_SECONDS='1.5' is not a whole number"),
        ({"GATEWAY_INGEST_BATCH_SIZE": "20000"}, "GATEWAY_INGEST_BATCH_SIZE=20000 is out of range"),
        ({"MONGODB_URI": "mongodb://db:27017"}, "GATEWAY_SECRET_KEY is not set"),
        ({"GATEWAY_SECRET_KEY": "not-a-fernet-key"}, "GATEWAY_SECRET_KEY's key #1 is not a Fernet key"),
        ({"GATEWAY_SECRET_KEY": f"{TEST_SECRET_KEY},oops"}, "GATEWAY_SECRET_KEY's key #2 is not a Fernet key"),
        ({"GATEWAY_SECRET_KEY": ",".join([TEST_SECRET_KEY] * 3)}, "GATEWAY_SECRET_KEY holds 3 keys"),
    ],
)
def test_each_mistake_has_a_clear_message(env: dict[str, str], expected: str) -> None:
    found = problems(env)
    assert len(found) == 1, found
    assert expected in found[0]


def test_all_mistakes_are_reported_together() -> None:
    found = problems({"GATEWAY_PORT": "x", "SHOPIFY_API_VERSION": "v1", "CATALOG_STORAGE_LIMIT_BYTES": "-5"})
    assert len(found) == 3
    text = str(SettingsError(found))
    assert "GATEWAY_PORT" in text and "SHOPIFY_API_VERSION" in text and "CATALOG_STORAGE_LIMIT_BYTES" in text


def test_mongodb_needs_a_secret_key_and_says_how_to_make_one() -> None:
    [missing] = problems({"MONGODB_URI": "mongodb://db:27017"})
    assert 'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"' in missing
    [bad] = problems({"GATEWAY_SECRET_KEY": "x" * 44})
    assert "x" * 44 not in bad  # a key is never echoed
    assert Settings.from_env({}).secret_keys == ()  # the in-memory store needs none
    assert Settings.from_env({"MONGODB_URI": "mongodb://db", "GATEWAY_SECRET_KEY": TEST_SECRET_KEY}).secret_keys == (
        TEST_SECRET_KEY,)


def test_blank_values_count_as_unset() -> None:
    s = Settings.from_env({"GATEWAY_PORT": "  ", "MONGODB_URI": "", "SMTP_HOST": ""})
    assert s.port == 8000 and s.mongodb_uri is None and s.smtp is None


def test_public_url_defaults_to_host_and_port() -> None:
    assert Settings.from_env({"GATEWAY_HOST": "::1", "GATEWAY_PORT": "8123"}).effective_public_url == "http://[::1]:8123"


def test_edge_limits_have_defaults_and_are_read() -> None:
    s = Settings.from_env({})
    assert (s.max_body_bytes, s.max_subscriptions, s.header_timeout, s.body_timeout) == (1_048_576, 500, 10.0, 30.0)
    s = Settings.from_env({"GATEWAY_MAX_BODY_BYTES": "65536", "GATEWAY_MAX_SUBSCRIPTIONS": "20",
                           "GATEWAY_HEADER_TIMEOUT_SECONDS": "2.5", "GATEWAY_BODY_TIMEOUT_SECONDS": "60"})
    assert (s.max_body_bytes, s.max_subscriptions, s.header_timeout, s.body_timeout) == (65536, 20, 2.5, 60.0)


def test_edge_limit_mistakes_are_reported_with_the_expected_range() -> None:
    found = problems({"GATEWAY_MAX_BODY_BYTES": "10", "GATEWAY_MAX_SUBSCRIPTIONS": "many",
                      "GATEWAY_HEADER_TIMEOUT_SECONDS": "nan", "GATEWAY_BODY_TIMEOUT_SECONDS": "0"})
    assert len(found) == 4
    assert any(p.startswith("GATEWAY_MAX_BODY_BYTES=10 is out of range") and "4096" in p for p in found)
    assert any(p.startswith("GATEWAY_MAX_SUBSCRIPTIONS='many' is not a whole number") for p in found)
    assert any(p.startswith("GATEWAY_HEADER_TIMEOUT_SECONDS=nan is out of range") for p in found)
    assert any(p.startswith("GATEWAY_BODY_TIMEOUT_SECONDS=0 is out of range") for p in found)
