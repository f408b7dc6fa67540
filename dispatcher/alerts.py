"""Operator alerts: always a structured warning in the logs, and at most one message per
(kind, subject) per period to a Slack-compatible incoming webhook."""

from __future__ import annotations

from typing import Any, Protocol

import httpx
import structlog

from shared.phones import mask_phones_in

log = structlog.get_logger(__name__)

DEFAULT_EVERY_S = 1800.0
MAX_TEXT_CHARS = 3000


class Throttle(Protocol):
    """Fleet-wide "first in this period?" (e.g. `shared.coordination.AlertThrottle`)."""

    def allow(self, kind: str, subject: str, *, every_s: float) -> bool: ...


class Alerter:
    """Never raises: an alert about a failure must not become a second failure."""

    def __init__(
        self,
        throttle: Throttle,
        *,
        slack_webhook_url: str | None,
        client: httpx.Client,
        post_timeout_s: float = 5.0,
    ) -> None:
        self._throttle = throttle
        self._url = slack_webhook_url
        self._client = client
        self._post_timeout_s = post_timeout_s

    def __repr__(self) -> str:
        # The webhook URL is a credential: whoever holds it can post to the channel.
        return f"Alerter(slack={'configured' if self._url else 'off'})"

    def raise_alert(
        self,
        kind: str,
        subject: str,
        message: str,
        *,
        every_s: float = DEFAULT_EVERY_S,
        **fields: Any,
    ) -> bool:
        """Log the alert; post it if it is the first of its period. Returns whether it was
        the first (posted, or would have been with a webhook configured)."""
        log.warning("alert", kind=kind, subject=subject, alert_message=message, **fields)
        try:
            first = self._throttle.allow(kind, subject, every_s=every_s)
        except Exception:  # the throttle is Redis: when it is down, log and stay quiet
            log.error("alert_throttle_failed", kind=kind, subject=subject, exc_info=True)
            return False
        if first and self._url:
            self._post(kind, slack_text(kind, subject, message, fields))
        return first

    def _post(self, kind: str, text: str) -> None:
        try:
            response = self._client.post(
                self._url or "",
                json={"text": text},
                timeout=self._post_timeout_s,
                follow_redirects=False,
            )
        except httpx.HTTPError as exc:
            log.error("alert_post_failed", kind=kind, error=type(exc).__name__)
            return
        if not response.is_success:
            log.error("alert_post_failed", kind=kind, status_code=response.status_code)


def slack_text(kind: str, subject: str, message: str, fields: dict[str, Any]) -> str:
    """One readable message; phone-like digits masked, since chat history is widely read."""
    lines = [f":rotating_light: *{kind}* `{subject}`", message]
    lines += [f"• {name}: {value}" for name, value in sorted(fields.items())]
    return mask_phones_in("\n".join(lines))[:MAX_TEXT_CHARS]
