"""`callfleet.ingest_leads` through a real Celery worker on the Redis broker."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from dispatcher.celery_factory import create_celery
from shared.db.models import Lead
from shared.settings import Settings
from tests.integration.celery_worker import running_worker
from tests.integration.conftest import MerchantFixture


@pytest.fixture
def celery_worker_app(settings: Settings, redis_client: Any) -> Iterator[Celery]:
    app = create_celery(settings)
    # Only the ingest queue: announced dispatches must not run against later tests.
    with running_worker(app, ["ingest"]):
        yield app


def test_task_ingests_with_the_same_rules_and_idempotency(
    celery_worker_app: Celery, merchant: MerchantFixture, sessions: sessionmaker[Session]
) -> None:
    leads = [merchant.lead(f"+1415555{8000 + i:04d}", idempotency_key=f"k{i}") for i in range(3)]
    result = celery_worker_app.send_task(
        "callfleet.ingest_leads", args=[str(merchant.id), leads]
    ).get(timeout=30)
    assert result["created"] == 3

    replay = celery_worker_app.send_task(
        "callfleet.ingest_leads", args=[str(merchant.id), leads]
    ).get(timeout=30)
    assert replay["created"] == 0 and replay["existing"] == 3
    assert {row["id"] for row in replay["leads"]} == {row["id"] for row in result["leads"]}


def test_task_rejects_invalid_rows_and_writes_nothing(
    celery_worker_app: Celery, merchant: MerchantFixture, sessions: sessionmaker[Session]
) -> None:
    leads = [merchant.lead("+14155558100"), merchant.lead("bogus"), {"phone": "+14155558101"}]
    result = celery_worker_app.send_task(
        "callfleet.ingest_leads", args=[str(merchant.id), leads]
    ).get(timeout=30)
    assert result["error"]["code"] == "validation_failed"
    assert {p["row"] for p in result["error"]["problems"]} == {1, 2}
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Lead)) == 0
