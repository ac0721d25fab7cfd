"""Dashboard notifications and their emails: stored, pushed to subscribers, emailed when asked.

The SMTP sender lives in `gateway/email.py` and is injected as an `EmailSender`.
"""

from __future__ import annotations

import logging
import uuid
from typing import Protocol

from bulk.progress import Broadcaster
from catalog_store.models import EmailStatus, Notification, NotificationLevel, utcnow
from catalog_store.store import CatalogStore

log = logging.getLogger(__name__)


class EmailSender(Protocol):
    async def send(self, subject: str, body: str) -> tuple[EmailStatus, str | None]:
        """Send one email to the configured recipients: (SENT|NOT_SENT|FAILED, error or None)."""


class NoEmail:
    """Used when SMTP is not configured: every email is recorded as not sent."""

    async def send(self, subject: str, body: str) -> tuple[EmailStatus, str | None]:
        return EmailStatus.NOT_SENT, "SMTP is not configured (set SMTP_HOST, SMTP_FROM and NOTIFY_EMAILS)"


class Notifier:
    """Creates dashboard notifications (stored, then broadcast) and sends their emails."""

    def __init__(self, store: CatalogStore, email: EmailSender, hub: Broadcaster[Notification]) -> None:
        self._store = store
        self._email = email
        self.hub = hub

    async def notify(
        self,
        shop_domain: str | None,
        level: NotificationLevel,
        title: str,
        message: str,
        *,
        email: bool = False,
    ) -> Notification:
        notification = Notification(
            id=uuid.uuid4().hex,
            shop_domain=shop_domain,
            level=level,
            title=title,
            message=message,
            created_at=utcnow(),
            email_status=EmailStatus.PENDING if email else EmailStatus.NONE,
        )
        await self._store.add_notification(notification)
        self.hub.publish(shop_domain, notification)
        if email:
            subject = f"[catalog-gateway] {title}" + (f" ({shop_domain})" if shop_domain else "")
            try:
                status, error = await self._email.send(subject, message)
            except Exception as exc:  # an email failure must not break the sync; it is recorded
                status, error = EmailStatus.FAILED, f"{type(exc).__name__}: {exc}"
            notification.email_status = status
            notification.email_error = error
            if status is EmailStatus.FAILED:  # NOT_SENT (no SMTP) is said once at start, not per email
                log.warning("email for notification %s not sent: %s", notification.id, error)
            await self._store.save_notification(notification)
        return notification
