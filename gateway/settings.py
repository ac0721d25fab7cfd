"""Environment → typed settings (variable names are a fixed interface: operators set them). Every
mistake is reported at once, each with its fix, so a deployment is corrected in one pass."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from strawberry.http.websocket_origin import normalize_allowed_origins

from catalog_store.token_cipher import KEY_HINT, parse_keys
from gateway.errors import SettingsError

DEFAULT_DATABASE = "catalog_gateway"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_API_VERSION = "2026-01"
DEFAULT_ADMIN_API_URL = "https://{shop}/admin/api/{version}/graphql.json"
DEFAULT_STORAGE_LIMIT = 104_857_600
DEFAULT_SMTP_PORT = 25
DEFAULT_MAX_BODY_BYTES = 1_048_576
DEFAULT_MAX_SUBSCRIPTIONS = 500
DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_BODY_TIMEOUT = 30.0
DEFAULT_LEASE_TTL = 60
MAX_LEASE_TTL = 3600
DEFAULT_INGEST_BATCH_SIZE = 1000
MAX_INGEST_BATCH_SIZE = 10_000
DEFAULT_REALTIME_LAG_ALERT = 60.0
DEFAULT_WEBHOOK_WORKERS = 4
MAX_WEBHOOK_WORKERS = 64
DEFAULT_WEBHOOK_CLAIM_TTL = 60.0
MIN_TOKEN_LENGTH = 16
LOG_FORMATS = ("text", "json")
# Cross-origin WebSocket handshakes accepted when GATEWAY_ALLOWED_ORIGINS is unset (any port).
LOCAL_HOSTNAMES = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})

_API_VERSION = re.compile(r"\d{4}-(01|04|07|10)|unstable")
_EMAIL = re.compile(r"[^@\s,<>]+@[^@\s,<>]+\.[^@\s,<>]+")
_DATABASE_FORBIDDEN = set('/\\. "$\0')
_TOKEN_HINT = "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the gateway reads from its environment. Secrets are kept out of `repr`."""

    mongodb_uri: str | None = field(default=None, repr=False)
    mongodb_database: str = DEFAULT_DATABASE
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    admin_token: str | None = field(default=None, repr=False)
    read_token: str | None = field(default=None, repr=False)
    public_url: str | None = None  # None: http://{host}:{port}
    shopify_api_version: str = DEFAULT_API_VERSION
    shopify_api_secrets: tuple[str, ...] = field(default=(), repr=False)
    shopify_admin_api_url: str = DEFAULT_ADMIN_API_URL
    catalog_storage_limit_bytes: int = DEFAULT_STORAGE_LIMIT
    smtp: SmtpSettings | None = None
    allowed_origins: tuple[str, ...] | None = None  # None: same origin and localhost (any port)
    shopify_access_token: str | None = field(default=None, repr=False)  # for `catalog-gateway sync`
    # Edges: what one client may make this process read, hold and wait for.
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES  # /graphql bodies and WebSocket messages
    max_subscriptions: int = DEFAULT_MAX_SUBSCRIPTIONS  # WebSocket operations in flight, whole process
    header_timeout: float = DEFAULT_HEADER_TIMEOUT  # seconds to send a request's line and headers
    body_timeout: float = DEFAULT_BODY_TIMEOUT  # seconds to send a request's body
    # A shop's sync lease: renewed every third of it; a stopped process's run is taken over once it expires.
    lease_ttl_seconds: int = DEFAULT_LEASE_TTL
    # Items per write of a full sync (a few batches are held in memory, see bulk.mapping.assemble).
    ingest_batch_size: int = DEFAULT_INGEST_BATCH_SIZE
    # Log lines: "text" (readable) or "json" (one object per line, with shop and run ids as fields).
    log_format: str = "text"
    # Webhooks: lag beyond which a shop is unhealthy (and notified); workers per inbox lane in this
    # process (0: it only takes deliveries in, others apply them); how long a worker's claim lasts
    # unrenewed (a killed process's deliveries are applied by another one after it).
    realtime_lag_alert_seconds: float = DEFAULT_REALTIME_LAG_ALERT
    webhook_workers: int = DEFAULT_WEBHOOK_WORKERS
    webhook_claim_ttl_seconds: float = DEFAULT_WEBHOOK_CLAIM_TTL
    # -- access tokens at rest: GATEWAY_SECRET_KEY (the first key writes, a second one only reads) --
    secret_keys: tuple[str, ...] = field(default=(), repr=False)

    @property
    def effective_public_url(self) -> str:
        """Base URL Shopify calls for webhooks."""
        if self.public_url:
            return self.public_url
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read and validate the environment. Raises SettingsError listing every problem."""
        return _Reader(os.environ if env is None else env).read()


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def get(self, name: str) -> str | None:
        value = self.env.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def integer(self, name: str, default: int, low: int, high: int | None, meaning: str) -> int:
        raw = self.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            self.problems.append(f"{name}={raw!r} is not a whole number: set it to {meaning}.")
            return default
        if value < low or (high is not None and value > high):
            self.problems.append(f"{name}={value} is out of range: set it to {meaning}.")
            return default
        return value

    def seconds(self, name: str, default: float, low: float, high: float, meaning: str) -> float:
        raw = self.get(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            self.problems.append(f"{name}={raw!r} is not a number: set it to {meaning}.")
            return default
        if not low <= value <= high:  # also refuses nan
            self.problems.append(f"{name}={raw} is out of range: set it to {meaning}.")
            return default
        return value

    def token(self, name: str) -> str | None:
        value = self.get(name)
        if value is None:
            return None
        if any(ch.isspace() for ch in value):
            self.problems.append(f"{name} contains whitespace: use a single random string ({_TOKEN_HINT}).")
            return None
        if len(value) < MIN_TOKEN_LENGTH:
            self.problems.append(
                f"{name} is too short ({len(value)} characters): use at least {MIN_TOKEN_LENGTH} "
                f"random characters ({_TOKEN_HINT})."
            )
            return None
        return value

    def read(self) -> Settings:
        mongodb_uri = self.get("MONGODB_URI")
        if mongodb_uri is not None and not mongodb_uri.startswith(("mongodb://", "mongodb+srv://")):
            self.problems.append(
                "MONGODB_URI must start with mongodb:// or mongodb+srv:// "
                "(e.g. mongodb://localhost:27017), or be unset for the in-memory store."
            )
        database = self.get("MONGODB_DATABASE") or DEFAULT_DATABASE
        if len(database) > 63 or _DATABASE_FORBIDDEN & set(database):
            self.problems.append(
                f"MONGODB_DATABASE={database!r} is not a valid MongoDB database name: use at most 63 "
                "characters without / \\ . space \" or $."
            )
        host = self.get("GATEWAY_HOST") or DEFAULT_HOST
        if any(ch.isspace() for ch in host) or "/" in host:
            self.problems.append(f"GATEWAY_HOST={host!r} is not a host name or IP address (e.g. 127.0.0.1 or 0.0.0.0).")
        port = self.integer("GATEWAY_PORT", DEFAULT_PORT, 1, 65535, "a TCP port between 1 and 65535")
        admin_token = self.token("GATEWAY_ADMIN_TOKEN")
        read_token = self.token("GATEWAY_READ_TOKEN")
        if admin_token is not None and admin_token == read_token:
            self.problems.append("GATEWAY_READ_TOKEN must differ from GATEWAY_ADMIN_TOKEN.")
        public_url = self.public_url()
        api_version = self.get("SHOPIFY_API_VERSION") or DEFAULT_API_VERSION
        if _API_VERSION.fullmatch(api_version) is None:
            self.problems.append(
                f"SHOPIFY_API_VERSION={api_version!r} is not a Shopify API version: use YYYY-MM with a "
                f"quarter month (01, 04, 07, 10), e.g. {DEFAULT_API_VERSION}."
            )
        secrets = tuple(s.strip() for s in (self.get("SHOPIFY_API_SECRET") or "").split(",") if s.strip())
        if len(secrets) > 2:
            self.problems.append(
                "SHOPIFY_API_SECRET holds more than two secrets: give the current one, and the previous one "
                "only during a rotation (comma-separated)."
            )
        admin_api_url = self.admin_api_url()
        limit = self.integer(
            "CATALOG_STORAGE_LIMIT_BYTES", DEFAULT_STORAGE_LIMIT, 1, None, "a positive number of bytes (e.g. 104857600)"
        )
        smtp = self.smtp()
        origins = self.allowed_origins()
        access_token = self.get("SHOPIFY_ACCESS_TOKEN")
        max_body = self.integer("GATEWAY_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, 4096, 1 << 30,
                                "a number of bytes between 4096 and 1073741824 (default 1048576)")
        max_subscriptions = self.integer("GATEWAY_MAX_SUBSCRIPTIONS", DEFAULT_MAX_SUBSCRIPTIONS, 1, 1_000_000,
                                         "a positive number of WebSocket operations (default 500)")
        header_timeout = self.seconds("GATEWAY_HEADER_TIMEOUT_SECONDS", DEFAULT_HEADER_TIMEOUT, 0.1, 3600,
                                      "seconds between 0.1 and 3600 (default 10)")
        body_timeout = self.seconds("GATEWAY_BODY_TIMEOUT_SECONDS", DEFAULT_BODY_TIMEOUT, 0.1, 3600,
                                    "seconds between 0.1 and 3600 (default 30)")
        lease_ttl = self.integer(
            "GATEWAY_LEASE_TTL_SECONDS", DEFAULT_LEASE_TTL, 1, MAX_LEASE_TTL,
            f"a number of seconds between 1 and {MAX_LEASE_TTL} (e.g. {DEFAULT_LEASE_TTL})",
        )
        batch_size = self.integer(
            "GATEWAY_INGEST_BATCH_SIZE", DEFAULT_INGEST_BATCH_SIZE, 1, MAX_INGEST_BATCH_SIZE,
            f"a number of items between 1 and {MAX_INGEST_BATCH_SIZE} (e.g. {DEFAULT_INGEST_BATCH_SIZE})",
        )
        log_format = (self.get("LOG_FORMAT") or "text").lower()
        if log_format not in LOG_FORMATS:
            self.problems.append(f"LOG_FORMAT={log_format!r} is not a log format: set it to text or json.")
        lag_alert = self.seconds("REALTIME_LAG_ALERT_SECONDS", DEFAULT_REALTIME_LAG_ALERT, 0.1, 86_400,
                                 "seconds between 0.1 and 86400 (default 60)")
        webhook_workers = self.integer(
            "GATEWAY_WEBHOOK_WORKERS", DEFAULT_WEBHOOK_WORKERS, 0, MAX_WEBHOOK_WORKERS,
            f"a number of workers per webhook lane between 0 and {MAX_WEBHOOK_WORKERS} (default "
            f"{DEFAULT_WEBHOOK_WORKERS}; 0: this process only stores deliveries, others apply them)",
        )
        claim_ttl = self.seconds("GATEWAY_WEBHOOK_CLAIM_TTL_SECONDS", DEFAULT_WEBHOOK_CLAIM_TTL, 1, 3600,
                                 "seconds between 1 and 3600 (default 60)")
        secret_keys = self.secret_keys(required=mongodb_uri is not None and not self.problems_about("MONGODB_URI"))
        if self.problems:
            raise SettingsError(self.problems)
        return Settings(
            mongodb_uri=mongodb_uri,
            mongodb_database=database,
            host=host,
            port=port,
            admin_token=admin_token,
            read_token=read_token,
            public_url=public_url,
            shopify_api_version=api_version,
            shopify_api_secrets=secrets,
            shopify_admin_api_url=admin_api_url,
            catalog_storage_limit_bytes=limit,
            smtp=smtp,
            allowed_origins=origins,
            shopify_access_token=access_token,
            max_body_bytes=max_body,
            max_subscriptions=max_subscriptions,
            header_timeout=header_timeout,
            body_timeout=body_timeout,
            lease_ttl_seconds=lease_ttl,
            ingest_batch_size=batch_size,
            log_format=log_format,
            realtime_lag_alert_seconds=lag_alert,
            webhook_workers=webhook_workers,
            webhook_claim_ttl_seconds=claim_ttl,
            secret_keys=secret_keys,
        )

    def problems_about(self, name: str) -> bool:
        return any(problem.startswith(name) for problem in self.problems)

    def secret_keys(self, *, required: bool) -> tuple[str, ...]:
        """GATEWAY_SECRET_KEY: required with MongoDB, where it seals the Shopify access tokens."""
        raw = self.get("GATEWAY_SECRET_KEY")
        if raw is None:
            if required:
                self.problems.append("GATEWAY_SECRET_KEY is not set: with MONGODB_URI it is required (it encrypts "
                                     f"the Shopify access tokens stored in MongoDB); {KEY_HINT}.")
            return ()
        try:
            return parse_keys(raw)
        except ValueError as exc:
            self.problems.append(str(exc))
            return ()

    def public_url(self) -> str | None:
        raw = self.get("GATEWAY_PUBLIC_URL")
        if raw is None:
            return None
        parts = urlsplit(raw)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            self.problems.append(
                f"GATEWAY_PUBLIC_URL={raw!r} is not a base URL: use http(s)://host[:port][/path], "
                "e.g. https://gateway.example.com."
            )
            return None
        return raw.rstrip("/")

    def admin_api_url(self) -> str:
        raw = self.get("SHOPIFY_ADMIN_API_URL")
        if raw is None:
            return DEFAULT_ADMIN_API_URL
        fix = f"use a URL template with {{shop}} and {{version}}, e.g. {DEFAULT_ADMIN_API_URL}"
        missing = [p for p in ("{shop}", "{version}") if p not in raw]
        if missing:
            self.problems.append(f"SHOPIFY_ADMIN_API_URL={raw!r} lacks {' and '.join(missing)}: {fix}.")
            return DEFAULT_ADMIN_API_URL
        try:
            example = raw.format(shop="example.myshopify.com", version=DEFAULT_API_VERSION)
        except (KeyError, IndexError, ValueError):
            self.problems.append(
                f"SHOPIFY_ADMIN_API_URL={raw!r} has placeholders other than {{shop}} and {{version}}: {fix}."
            )
            return DEFAULT_ADMIN_API_URL
        parts = urlsplit(example)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            self.problems.append(f"SHOPIFY_ADMIN_API_URL={raw!r} is not an http(s) URL: {fix}.")
            return DEFAULT_ADMIN_API_URL
        return raw

    def smtp(self) -> SmtpSettings | None:
        host = self.get("SMTP_HOST")
        sender = self.get("SMTP_FROM")
        recipients_raw = self.get("NOTIFY_EMAILS")
        port = self.integer("SMTP_PORT", DEFAULT_SMTP_PORT, 1, 65535, "the SMTP server's port (e.g. 25 or 587)")
        if host is None and sender is None and recipients_raw is None:
            return None
        missing = [name for name, value in (("SMTP_HOST", host), ("SMTP_FROM", sender),
                                            ("NOTIFY_EMAILS", recipients_raw)) if value is None]
        if missing:
            self.problems.append(
                f"email is half configured: set {', '.join(missing)} too (SMTP_HOST, SMTP_FROM and NOTIFY_EMAILS "
                "go together), or unset all of them to record emails as not sent."
            )
            return None
        assert host is not None and sender is not None and recipients_raw is not None
        if _EMAIL.fullmatch(sender) is None:
            self.problems.append(f"SMTP_FROM={sender!r} is not an email address (e.g. catalog@example.com).")
        recipients = tuple(r.strip() for r in recipients_raw.split(",") if r.strip())
        bad = [r for r in recipients if _EMAIL.fullmatch(r) is None]
        if bad or not recipients:
            self.problems.append(
                f"NOTIFY_EMAILS has invalid addresses {bad!r}: give comma-separated email addresses "
                "(e.g. ops@example.com,owner@example.com)."
            )
        return SmtpSettings(host=host, port=port, sender=sender, recipients=recipients)

    def allowed_origins(self) -> tuple[str, ...] | None:
        raw = self.get("GATEWAY_ALLOWED_ORIGINS")
        if raw is None:
            return None
        origins = [o.strip() for o in raw.split(",") if o.strip()]
        try:
            return tuple(sorted(normalize_allowed_origins(origins)))
        except ValueError as exc:
            self.problems.append(
                f"GATEWAY_ALLOWED_ORIGINS: {exc} Separate several origins with commas."
            )
            return None
