"""Switchable fault injection: `emu.faults`.

Every switch takes `shop=` (a myshopify domain; None = every shop) and most take `times=`
(how many times it fires before switching itself off; None = until `clear()`). Each returns its
`FaultRule`, whose `fired` counter tells a test the fault really happened.

HTTP (GraphQL endpoint and result downloads)
- `http_error(status=503, times=1, target="graphql"|"download")`: answer 500/502/503 (an HTML
  body, as Shopify's edge does) instead of handling the request.
- `throttle(times=1)`: answer `THROTTLED` (HTTP 200, the bucket drained to 0).
- `small_bucket(maximum, restore_rate)`: a smaller leaky bucket (real throttling with few calls).
- `revoke_token(shop)` / `restore_token(shop)`: every GraphQL call of that shop answers 401.

Bulk operations (decided when an operation starts running)
- `fail_bulk(error_code="INTERNAL_SERVER_ERROR"|"TIMEOUT"|"ACCESS_DENIED", times=None,
  partial_fraction=0.5)`: the operation ends FAILED with that errorCode, `url` null and
  `partialDataUrl` serving the first `partial_fraction` of the lines; `times=K` fails the next K
  operations only, so a retry succeeds.
- `expire_bulk(times=None)`: the operation ends EXPIRED (no url).
- `slow_bulk(seconds, times=None)`: the operation stays RUNNING that long (objectCount grows).
- `corrupt_jsonl(positions, kind="truncate"|"garbage", times=None)`: the result file has the line
  at each 0-based position cut in half (invalid JSON, object lost), or a non-JSON line inserted
  before it; `objectCount` still counts the real objects.
- `cut_download(after_bytes, times=1)`: a download of a result file sends `after_bytes` bytes of
  the body, then closes the connection (Content-Length announced in full).
- `slow_download(bytes_per_second, times=1)`: a download of a result file is sent at that rate (a
  slow link: keeps an ingest running long enough to stop a gateway in the middle of it).
- `emu.expire_results(shop)` (on the Emulator, not here) expires completed results now.

Webhooks (decided per delivery)
- `duplicate_webhooks(times=None)`: each delivery is sent twice (same X-Shopify-Webhook-Id).
- `drop_webhooks(times=None)`: deliveries are recorded as "dropped" and never sent.
- `delay_webhooks(seconds, times=None)`: deliveries wait before their first attempt (reordering).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

BULK_ERROR_CODES = ("INTERNAL_SERVER_ERROR", "TIMEOUT", "ACCESS_DENIED")


@dataclass
class FaultRule:
    kind: str
    shop: str | None
    remaining: int | None
    params: dict[str, Any] = field(default_factory=dict)
    fired: int = 0


class Faults:
    """The fault switches of one Emulator (see the module docstring)."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._revoked: set[str] = set()
        self._buckets: dict[str | None, tuple[float, float]] = {}

    # -- switches ----------------------------------------------------------------------------------

    def http_error(self, status: int = 503, *, times: int | None = 1, shop: str | None = None,
                   target: str = "graphql") -> FaultRule:
        if status not in (500, 502, 503, 504):
            raise ValueError(f"status must be 500, 502, 503 or 504, got {status}")
        if target not in ("graphql", "download"):
            raise ValueError("target must be 'graphql' or 'download'")
        return self._add(f"http_error:{target}", shop, times, status=status)

    def throttle(self, *, times: int | None = 1, shop: str | None = None) -> FaultRule:
        return self._add("throttle", shop, times)

    def small_bucket(self, maximum: float = 50.0, restore_rate: float = 10.0, *, shop: str | None = None) -> None:
        if maximum <= 0 or restore_rate <= 0:
            raise ValueError("maximum and restore_rate must be positive")
        self._buckets[shop] = (float(maximum), float(restore_rate))

    def revoke_token(self, shop: str) -> None:
        self._revoked.add(shop)

    def restore_token(self, shop: str) -> None:
        self._revoked.discard(shop)

    def fail_bulk(self, error_code: str = "INTERNAL_SERVER_ERROR", *, times: int | None = None,
                  shop: str | None = None, partial_fraction: float = 0.5) -> FaultRule:
        if error_code not in BULK_ERROR_CODES:
            raise ValueError(f"error_code must be one of {BULK_ERROR_CODES}, got {error_code!r}")
        if not 0 <= partial_fraction <= 1:
            raise ValueError("partial_fraction must be between 0 and 1")
        return self._add("bulk_end", shop, times, status="FAILED", error_code=error_code,
                         partial_fraction=partial_fraction)

    def expire_bulk(self, *, times: int | None = None, shop: str | None = None) -> FaultRule:
        return self._add("bulk_end", shop, times, status="EXPIRED", error_code=None)

    def slow_bulk(self, seconds: float, *, times: int | None = None, shop: str | None = None) -> FaultRule:
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        return self._add("slow_bulk", shop, times, seconds=float(seconds))

    def corrupt_jsonl(self, positions: list[int] | tuple[int, ...], *, kind: str = "truncate",
                      times: int | None = None, shop: str | None = None) -> FaultRule:
        if kind not in ("truncate", "garbage"):
            raise ValueError("kind must be 'truncate' or 'garbage'")
        if not positions or any(not isinstance(p, int) or p < 0 for p in positions):
            raise ValueError("positions must be 0-based line numbers")
        return self._add("corrupt_jsonl", shop, times, positions=tuple(positions), kind=kind)

    def cut_download(self, after_bytes: int, *, times: int | None = 1, shop: str | None = None) -> FaultRule:
        if after_bytes < 0:
            raise ValueError("after_bytes must be >= 0")
        return self._add("cut_download", shop, times, after_bytes=int(after_bytes))

    def slow_download(self, bytes_per_second: int, *, times: int | None = 1, shop: str | None = None) -> FaultRule:
        if bytes_per_second < 1:
            raise ValueError("bytes_per_second must be >= 1")
        return self._add("slow_download", shop, times, bytes_per_second=int(bytes_per_second))

    def duplicate_webhooks(self, *, times: int | None = None, shop: str | None = None) -> FaultRule:
        return self._add("webhook_duplicate", shop, times)

    def drop_webhooks(self, *, times: int | None = None, shop: str | None = None) -> FaultRule:
        return self._add("webhook_drop", shop, times)

    def delay_webhooks(self, seconds: float, *, times: int | None = None, shop: str | None = None) -> FaultRule:
        return self._add("webhook_delay", shop, times, seconds=float(seconds))

    def clear(self) -> None:
        """Switch every fault off (tokens restored, default buckets)."""
        self._rules.clear()
        self._revoked.clear()
        self._buckets.clear()

    # -- queries used by the emulator --------------------------------------------------------------

    def take(self, kind: str, shop: str) -> FaultRule | None:
        """The first active rule of `kind` for `shop`, consuming one of its `times`."""
        for rule in self._rules:
            if rule.kind == kind and rule.shop in (None, shop):
                rule.fired += 1
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        self._rules.remove(rule)
                return rule
        return None

    def token_revoked(self, shop: str) -> bool:
        return shop in self._revoked

    def bucket_limits(self, shop: str) -> tuple[float, float] | None:
        return self._buckets.get(shop) or self._buckets.get(None)

    def _add(self, fault: str, shop: str | None, times: int | None, **params: Any) -> FaultRule:
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 (or None: until cleared)")
        rule = FaultRule(fault, shop, times, params)
        self._rules.append(rule)
        return rule
