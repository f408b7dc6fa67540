"""`callfleet.deliver_webhooks`: drains the webhook outbox. Each row is locked with SKIP
LOCKED while it is sent, so any number of workers can drain it together."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from celery import shared_task
from celery.app.task import Task
from sqlalchemy import func, select

from dispatcher.webhooks import DeliveryOutcome, deliver, retry_delay_s
from dispatcher.worker_context import WorkerContext
from shared.db.models import Merchant, WebhookDelivery
from shared.db.session import transaction
from shared.fleet_metrics import WEBHOOK_DELIVERIES

log = structlog.get_logger(__name__)
BATCH = 50
_rng = random.Random()


def _deliver_one(context: WorkerContext) -> bool:
    """Send the oldest due delivery; False when none is due."""
    with transaction(context.sessions) as session:
        row = session.execute(
            select(WebhookDelivery, Merchant.webhook_url, Merchant.webhook_secret)
            .join(Merchant, Merchant.id == WebhookDelivery.merchant_id)
            .where(
                WebhookDelivery.status == "PENDING", WebhookDelivery.next_attempt_at <= func.now()
            )
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(1)
            .with_for_update(of=WebhookDelivery, skip_locked=True)
        ).first()
        if row is None:
            return False
        delivery, url, secret = row
        if not url:
            delivery.status = "SKIPPED"
            delivery.last_error = "merchant has no webhook URL"
            return True
        result = deliver(
            url,
            secret,
            delivery.payload,
            client=context.http,
            timeout_s=context.settings.webhook_timeout_s,
            allow_insecure=context.settings.webhook_allow_insecure,
        )
        delivery.attempts += 1
        delivery.last_error = None if result.outcome == DeliveryOutcome.DELIVERED else result.detail
        if result.outcome == DeliveryOutcome.DELIVERED:
            delivery.status = "DELIVERED"
            delivery.delivered_at = datetime.now(UTC)
        elif (
            result.outcome == DeliveryOutcome.GIVE_UP
            or delivery.attempts >= context.settings.webhook_max_attempts
        ):
            delivery.status = "FAILED"
        else:
            wait_s = max(result.retry_after_s or 0, retry_delay_s(delivery.attempts, rng=_rng))
            delivery.next_attempt_at = datetime.now(UTC) + timedelta(seconds=wait_s)
        context.counters.inc(WEBHOOK_DELIVERIES, str(result.outcome))
        log.info(
            "webhook_delivery",
            delivery_id=str(delivery.id),
            lead_id=str(delivery.lead_id),
            outcome=str(result.outcome),
            status_code=result.status_code,
        )
    return True


@shared_task(bind=True, name="callfleet.deliver_webhooks", ignore_result=True)
def deliver_webhooks(self: Task[Any, Any]) -> int:
    context = WorkerContext.of(self.app)
    sent = 0
    while sent < BATCH and _deliver_one(context):
        sent += 1
    context.counters.maybe_flush()
    return sent
