"""The dispatcher through a real Celery worker on the Redis broker: a lead submitted to the
API is dialed at once, carrier events end the attempt, and the webhook outbox drains."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from celery import Celery
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from dispatcher.api import create_app
from dispatcher.celery_factory import QUEUES, create_celery
from dispatcher.providers import InstantProvider
from dispatcher.worker_context import WorkerContext
from shared.coordination import periodic_lock
from shared.db.models import WebhookDelivery
from shared.enums import LeadStatus, Outcome
from shared.fleet_metrics import read_fleet_metrics
from shared.settings import Settings
from tests.integration.celery_worker import running_worker
from tests.integration.fleet import Fleet


def wait_for(condition: Callable[[], bool], timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


@pytest.fixture
def carrier() -> InstantProvider:
    return InstantProvider()


@pytest.fixture
def worker_app(settings: Settings, redis_client: Any, carrier: InstantProvider) -> Iterator[Celery]:
    app = create_celery(settings, provider=carrier)
    with running_worker(app, QUEUES, pool="threads", concurrency=4):
        yield app


def test_submitted_lead_is_dialed_at_once_and_finalized_by_carrier_events(
    fleet: Any, worker_app: Celery, carrier: InstantProvider, settings: Settings,
    sessions: sessionmaker[Session],
) -> None:  # fmt: skip
    f: Fleet = fleet()
    from dispatcher.merchants import issue_api_key
    from shared.db.session import transaction

    with transaction(sessions) as session:
        api_key = issue_api_key(session, f.merchant_id)
    body = {
        "phone": "+919812345678",
        "template": f.template,
        "payload": {
            "customer_name": "Asha", "store_name": "KC", "order_id": "1", "amount": 1.0,
            "items": "kurta", "delivery_date": "2026-12-01",
        },
    }  # fmt: skip
    with TestClient(create_app(settings, tasks=worker_app)) as api:
        response = api.post("/v1/leads", json=body, headers={"Authorization": f"Bearer {api_key}"})
    assert response.status_code == 201
    lead_id = response.json()["id"]
    wait_for(lambda: len(carrier.placed_calls) == 1)  # no sweep ran: intake dispatched it
    [attempt] = f.attempts(f.lead(lead_id).id)
    sid = carrier.placed_calls[0].call_sid

    for status in ("initiated", "ringing", "busy"):
        worker_app.send_task(
            "callfleet.call_status", args=[str(attempt.id), {"call_sid": sid, "status": status}]
        )
    wait_for(lambda: f.lead(attempt.lead_id).status == LeadStatus.SCHEDULED)
    [ended] = f.attempts(attempt.lead_id)
    assert ended.outcome == Outcome.BUSY and ended.finalized_at is not None
    assert f.channels.in_use(f.number_id()) == 0

    def webhook_settled() -> bool:
        with sessions() as session:
            row = session.query(WebhookDelivery).one_or_none()
            return row is not None and row.status == "SKIPPED"  # merchant has no URL

    wait_for(webhook_settled)

    WorkerContext.of(worker_app).counters.flush()
    families = {family.name: family for family in read_fleet_metrics(f.redis)}
    dispatches = {
        tuple(s.labels.values()): s.value for s in families["callfleet_dispatches"].samples
    }
    assert dispatches == {("dialed", ""): 1}
    admission = {s.name: s.value for s in families["callfleet_admission_seconds"].samples}
    assert admission["callfleet_admission_seconds_count"] == 1
    deliveries = families["callfleet_webhook_deliveries"].samples
    assert [(s.labels["result"], s.value) for s in deliveries] == []  # skipped: no URL, no send


def test_a_second_beat_finds_the_sweep_locked(
    fleet: Any, worker_app: Celery, settings: Settings
) -> None:
    f: Fleet = fleet()
    f.add_lead("+919812345678")
    sweep = worker_app.tasks["callfleet.sweep_due"]
    context = WorkerContext.of(worker_app)
    with periodic_lock(context.redis, "sweep_due", ttl_s=30) as held:
        assert held
        assert sweep.apply().get() == 0  # the other beat's sweep holds the lock
        assert [lead.status for lead in _leads(f)] == [LeadStatus.SCHEDULED]
    assert sweep.apply().get() == 1


def _leads(f: Fleet) -> list[Any]:
    from sqlalchemy import select

    from shared.db.models import Lead

    with f.sessions() as session:
        return list(session.scalars(select(Lead)))
