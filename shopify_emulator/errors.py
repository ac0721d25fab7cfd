"""Errors raised by the emulator's Python API (tests and the demo call it directly).

GraphQL clients never see these: the server turns them into Shopify-shaped responses.
"""

from __future__ import annotations


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
