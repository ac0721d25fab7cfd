"""The emulator's errors.

`RequestErrors` (and `Unsupported`) are what a GraphQL client sees: the server answers them as
`errors` with no `data`. The others are raised to Python callers (tests, the demo).
"""

from __future__ import annotations

from typing import Any


def graphql_error(message: str, locations: Any = None, path: list[Any] | None = None,
                  **extensions: Any) -> dict[str, Any]:
    """One Shopify-shaped GraphQL error object."""
    out: dict[str, Any] = {"message": message}
    if locations:
        out["locations"] = [{"line": loc.line, "column": loc.column} for loc in locations]
    if path:
        out["path"] = path
    if extensions:
        out["extensions"] = extensions
    return out


class EmulatorError(Exception):
    """Base class. `retryable`: whether the same call can succeed later; `fix`: what to do."""

    retryable = False
    fix = "check the arguments against the emulator's documentation (shopify_emulator/__init__.py)"


class UnknownShop(EmulatorError, KeyError):
    """No shop with that myshopify domain was added to the emulator."""

    fix = "call Emulator.add_shop(domain, ...) first"

    def __str__(self) -> str:
        return f"unknown shop {self.args[0]!r}"


class NotFound(EmulatorError, KeyError):
    """No product/variant with that id exists (never generated, deleted, or malformed id)."""

    fix = "use an id taken from the store (shop.products(), shop.variant_ids()) or the bulk output"

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "not found"


class InvalidInput(EmulatorError, ValueError):
    """A mutation argument is malformed (bad money string, unknown status, empty title...)."""

    fix = "pass the value in the format Shopify accepts (see the method's docstring)"


class NotStarted(EmulatorError, RuntimeError):
    """An operation that needs the HTTP server was called before `await emu.start()`."""

    fix = "await emu.start() (or use `async with Emulator(...)`) first"


class RequestErrors(EmulatorError):
    """The GraphQL request is answered with these `errors` and no `data` (HTTP 200, as Shopify)."""

    fix = "correct the document or variables as the error messages say"

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors[0]["message"] if errors else "request error")
        self.errors = errors


class Unsupported(RequestErrors):
    """Valid for Shopify, not implemented by the emulator: answered as an error, never guessed."""

    fix = "use a field/argument the emulator implements (shopify_emulator/resolvers.py) or implement it there"

    def __init__(self, what: str, node: Any = None) -> None:
        locations = [node.loc.source.get_location(node.loc.start)] if node is not None and node.loc else None
        super().__init__([graphql_error(f"shopify_emulator does not support {what}", locations,
                                        code="EMULATOR_UNSUPPORTED")])


class ExportCanceled(EmulatorError):
    """A bulk operation was canceled (or the emulator closed) while its file was being written."""
