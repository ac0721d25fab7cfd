"""The shop and run a piece of work is about, for log lines: set once where a run's task starts,
read by the log formatter (gateway.logs), so no log call has to repeat them."""

from __future__ import annotations

from contextvars import ContextVar

SHOP: ContextVar[str | None] = ContextVar("log_shop", default=None)
RUN: ContextVar[str | None] = ContextVar("log_run", default=None)


def bind(shop: str | None, run: str | None = None) -> None:
    """For the current task (and the tasks it starts from now on)."""
    SHOP.set(shop)
    RUN.set(run)


def current() -> dict[str, str]:
    """The known ids: {"shop": …, "run": …}, each only when set."""
    fields = {"shop": SHOP.get(), "run": RUN.get()}
    return {key: value for key, value in fields.items() if value is not None}
