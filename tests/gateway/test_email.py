"""SMTP email sender against a real aiosmtpd server on 127.0.0.1."""

from __future__ import annotations

import socket

from bulk.notifications import NoEmail
from catalog_store.models import EmailStatus
from gateway.email import SmtpEmailSender, email_sender
from gateway.settings import SmtpSettings
from tests.gateway.smtp import smtp_server


def settings(port: int, recipients: tuple[str, ...] = ("ops@example.com", "owner@example.com")) -> SmtpSettings:
    return SmtpSettings(host="127.0.0.1", port=port, sender="catalog@example.com", recipients=recipients)


async def test_sends_to_every_recipient() -> None:
    async with smtp_server() as inbox:
        sender = SmtpEmailSender(settings(inbox.port))
        status, error = await sender.send("[catalog-gateway] Sync complete\n(demo)", "1000 items synced.")
    assert (status, error) == (EmailStatus.SENT, None)
    assert len(inbox.received) == 1
    got = inbox.received[0]
    assert got.mail_from == "catalog@example.com"
    assert sorted(got.rcpt_tos) == ["ops@example.com", "owner@example.com"]
    assert got.message["Subject"] == "[catalog-gateway] Sync complete (demo)"  # no header injection
    assert got.message["From"] == "catalog@example.com"
    assert got.message.get_payload(decode=True).decode().strip() == "1000 items synced."


async def test_refused_recipient_is_a_failure_with_the_reason() -> None:
    async with smtp_server() as inbox:
        inbox.refuse.add("owner@example.com")
        status, error = await SmtpEmailSender(settings(inbox.port)).send("s", "b")
    assert status is EmailStatus.FAILED
    assert error is not None and "owner@example.com" in error and "550" in error
    assert [r.rcpt_tos for r in inbox.received] == [["ops@example.com"]]


async def test_all_recipients_refused() -> None:
    async with smtp_server() as inbox:
        inbox.refuse.add("ops@example.com")
        status, error = await SmtpEmailSender(settings(inbox.port, ("ops@example.com",))).send("s", "b")
    assert status is EmailStatus.FAILED
    assert error is not None and "ops@example.com" in error
    assert inbox.received == []


async def test_unreachable_server_is_a_failure_not_an_exception() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    status, error = await SmtpEmailSender(settings(port), timeout=5).send("s", "b")
    assert status is EmailStatus.FAILED
    assert error is not None and f"127.0.0.1:{port}" in error


async def test_without_smtp_emails_are_recorded_as_not_sent() -> None:
    sender = email_sender(None)
    assert isinstance(sender, NoEmail)
    status, error = await sender.send("s", "b")
    assert status is EmailStatus.NOT_SENT and error and "SMTP" in error
    assert isinstance(email_sender(settings(25)), SmtpEmailSender)
