"""`/metrics`: the fleet in Prometheus text format, read at scrape time from PostgreSQL (leads
by status, live calls) and Redis (media capacity, the fleet's dispatch and webhook counters).
Aggregates only: no merchant, lead or phone number appears in a label."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import redis
from fastapi import APIRouter, Depends
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from dispatcher.api.auth import get_deps
from dispatcher.api.deps import ApiDeps
from shared.coordination import MediaSlots
from shared.db.models import CallAttempt, Lead
from shared.enums import AttemptState, LeadStatus
from shared.fleet_metrics import read_fleet_metrics

router = APIRouter(tags=["monitoring"])


class FleetCollector(Collector):
    def __init__(self, sessions: sessionmaker[Session], client: redis.Redis) -> None:
        self._sessions = sessions
        self._redis = client

    def collect(self) -> Iterator[Metric]:
        with self._sessions() as session:
            rows = session.execute(select(Lead.status, func.count()).group_by(Lead.status))
            by_status = {status: count for status, count in rows}
            live_calls = session.scalar(
                select(func.count())
                .select_from(CallAttempt)
                .where(CallAttempt.state != AttemptState.ENDED)
            )
        leads = GaugeMetricFamily(
            "callfleet_leads", "Leads by status, fleet-wide.", labels=["status"]
        )
        for status in LeadStatus:
            leads.add_metric([status.value], by_status.get(status, 0))
        yield leads
        yield GaugeMetricFamily(
            "callfleet_calls_active",
            "Attempts not yet ended (dialing to in progress).",
            value=live_calls or 0,
        )
        yield GaugeMetricFamily(
            "callfleet_media_free_slots",
            "Free call slots on live, non-draining media workers.",
            value=MediaSlots(self._redis).free_slots(),
        )
        yield from read_fleet_metrics(self._redis)


@router.get("/metrics", include_in_schema=False)
def metrics(deps: Annotated[ApiDeps, Depends(get_deps)]) -> Response:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(deps.sessions, deps.redis))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
