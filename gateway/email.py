"""SMTP email for notifications: implements `bulk.notifications.EmailSender` with aiosmtplib."""

from __future__ import annotations

import logging
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib

from bulk.notifications import EmailSender, NoEmail
from catalog_store.models import EmailStatus
from gateway.settings import SmtpSettings

log = logging.getLogger(__name__)

IMPLICIT_TLS_PORT = 465


class SmtpEmailSender:
    """Sends each notification email to every recipient in one SMTP transaction.

    Port 465 uses implicit TLS; otherwise STARTTLS is used when the server offers it. Failures are
    returned (FAILED with the reason), never raised: the notification records them.
    """

    def __init__(self, settings: SmtpSettings, *, timeout: float = 15.0) -> None:
        self.settings = settings
        self.timeout = timeout

    def build_message(self, subject: str, body: str) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.settings.sender
        message["To"] = ", ".join(self.settings.recipients)
        message["Subject"] = " ".join(subject.split())  # no header injection through newlines
        message["Date"] = formatdate(localtime=False, usegmt=True)
        message["Message-ID"] = make_msgid(domain=self.settings.sender.rpartition("@")[2] or None)
        message.set_content(body)
        return message

    async def send(self, subject: str, body: str) -> tuple[EmailStatus, str | None]:
        message = self.build_message(subject, body)
        implicit_tls = self.settings.port == IMPLICIT_TLS_PORT
        try:
            refused, _ = await aiosmtplib.send(
                message,
                hostname=self.settings.host,
                port=self.settings.port,
                use_tls=implicit_tls,
                start_tls=False if implicit_tls else None,
                timeout=self.timeout,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            error = f"SMTP {self.settings.host}:{self.settings.port}: {type(exc).__name__}: {exc}"
            log.warning("email %r not sent: %s", message["Subject"], error)
            return EmailStatus.FAILED, error
        if refused:
            error = "recipients refused: " + ", ".join(f"{addr} ({resp.code} {resp.message})"
                                                       for addr, resp in refused.items())
            log.warning("email %r partly refused: %s", message["Subject"], error)
            return EmailStatus.FAILED, error
        return EmailStatus.SENT, None


def email_sender(smtp: SmtpSettings | None) -> EmailSender:
    """SMTP when configured, else `NoEmail` (each email recorded as NOT_SENT, said once here)."""
    if smtp is None:
        log.info("email not configured: notifications stay on the dashboard (set SMTP_HOST, SMTP_FROM and "
                 "NOTIFY_EMAILS to send them)")
        return NoEmail()
    return SmtpEmailSender(smtp)
