"""Racing requests on one idempotency key create exactly one lead."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from dispatcher.intake.errors import IdempotencyConflict
from dispatcher.intake.schemas import LeadRequest
from dispatcher.intake.store import IngestedRow, ingest
from dispatcher.intake.validate import IntakeLimits
from shared.db.models import Lead
from shared.db.session import transaction
from shared.settings import Settings
from tests.integration.conftest import MerchantFixture

RACERS = 8


def test_eight_racers_on_one_key_create_one_lead(
    sessions: sessionmaker[Session], merchant: MerchantFixture, settings: Settings
) -> None:
    request = LeadRequest.model_validate(merchant.lead())
    limits = IntakeLimits.from_settings(settings)
    start = threading.Barrier(RACERS)

    def race(_: int) -> IngestedRow:
        start.wait()
        with transaction(sessions) as session:
            [row] = ingest(session, merchant.id, [request], limits, datetime.now(UTC), ["same"])
            return row

    with ThreadPoolExecutor(RACERS) as pool:
        rows = list(pool.map(race, range(RACERS)))

    assert len({row.id for row in rows}) == 1
    assert sum(row.created for row in rows) == 1
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Lead)) == 1


def test_racers_with_different_bodies_one_wins_the_rest_conflict(
    sessions: sessionmaker[Session], merchant: MerchantFixture, settings: Settings
) -> None:
    limits = IntakeLimits.from_settings(settings)
    start = threading.Barrier(RACERS)
    phones = [f"+1415555{3000 + i:04d}" for i in range(RACERS)]

    def race(i: int) -> str:
        request = LeadRequest.model_validate(merchant.lead(phones[i]))
        start.wait()
        try:
            with transaction(sessions) as session:
                ingest(session, merchant.id, [request], limits, datetime.now(UTC), ["shared"])
            return "ok"
        except IdempotencyConflict:
            return "conflict"

    with ThreadPoolExecutor(RACERS) as pool:
        results = list(pool.map(race, range(RACERS)))

    assert results.count("ok") == 1
    assert results.count("conflict") == RACERS - 1
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Lead)) == 1
