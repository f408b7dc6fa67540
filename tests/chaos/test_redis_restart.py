"""Chaos: Redis dies mid-run and comes back empty (broker queues, leases, windows all gone);
the suite's Redis keeps nothing on disk, as the embedded dev server does."""

from __future__ import annotations

import pytest

from shared.enums import AttemptState
from tests.chaos.fleet import ChaosFleet
from tests.chaos.observe import Recorder
from tests.chaos.services import wait_until

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(360)]

REDIS_DOWN_S = 3
SETTLE_TIMEOUT_S = 120
# Fair for the expected recovery (reconcile every 2 s, finalize grace 1 s), short for a
# known failure that would otherwise wait out the full deadline.
KNOWN_BUG_TIMEOUT_S = 45


def test_redis_restart_during_live_calls_loses_no_lead(
    chaos: ChaosFleet, record_counts: Recorder
) -> None:
    chaos.start_core(instant=False, media_workers=("mw-a",))
    chaos.worker("worker-a")
    chaos.beat()
    personas = ["confirm"] * 4
    chaos.submit(personas)

    # Every call is past its stream's admission and a few seconds into a conversation that
    # lasts far longer than the outage, so no call ends while Redis is away (one that did
    # would meet the known bug below).
    wait_until(lambda: chaos.talking_calls() == len(personas), 90, "every call talking")
    live = chaos.attempts_in(AttemptState.IN_PROGRESS)
    chaos.redis_server.restart(REDIS_DOWN_S)

    snap, took = chaos.wait_settled(SETTLE_TIMEOUT_S)
    record_counts(f"Redis restarted empty during {live} live calls", snap, took)
    assert not snap.violations(), snap.violations()
    assert snap.attempts >= len(personas)


def test_redis_restart_as_final_callbacks_arrive_loses_no_lead(
    chaos: ChaosFleet, record_counts: Recorder
) -> None:
    chaos.start_core(instant=True)
    chaos.worker("worker-a")
    chaos.beat()
    # Dials in flight when Redis dies complete at the carrier during the outage, so their
    # final status callbacks reach the API while it cannot reach the broker.
    chaos.faults(create_latency_ms=1000)
    chaos.submit(["busy", "no_answer"] * 4)

    wait_until(lambda: chaos.in_flight_dials() >= 2, 90, "two dials in flight")
    chaos.redis_server.restart(REDIS_DOWN_S)

    snap, took = chaos.wait_settled(KNOWN_BUG_TIMEOUT_S)
    record_counts("Redis restarted empty as final callbacks arrive", snap, took)
    assert not snap.violations(), snap.violations()
