"""Chaos: kill -9 a dispatcher worker while its dials are in flight at the carrier."""

from __future__ import annotations

import pytest

from tests.chaos.fleet import ChaosFleet
from tests.chaos.observe import Recorder
from tests.chaos.services import wait_until

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(360)]

PERSONAS = ["confirm", "busy", "no_answer", "confirm"] * 5
# Each create waits this long at the carrier, so dials are caught between the attempt row
# and the call SID; below CALLFLEET_DIAL_UNCONFIRMED_GRACE_S, so the reconciler only asks
# the carrier about a dial that has had time to land.
CREATE_LATENCY_MS = 1500
# A kill during a periodic job leaves its Redis lock to expire (sweep 30 s, reconcile 120 s),
# so the deadline covers the worst case; the usual recovery takes seconds.
SETTLE_TIMEOUT_S = 200


def test_kill_9_mid_dispatch_loses_no_lead_and_dials_nothing_twice(
    chaos: ChaosFleet, record_counts: Recorder
) -> None:
    chaos.start_core(instant=True)
    # Worker A alone takes dispatches, so the dials in flight are A's; B serves the rest.
    victim = chaos.worker("worker-a", "dispatch")
    chaos.worker("worker-b", "ingest,call_events,webhooks")
    chaos.beat()
    chaos.faults(create_latency_ms=CREATE_LATENCY_MS)
    chaos.submit(PERSONAS)

    wait_until(lambda: chaos.in_flight_dials() >= 2, 90, "two dials in flight on worker A")
    in_flight = chaos.in_flight_dials()
    victim.kill9()
    # A supervisor restarts the dead worker; the carrier answers quickly again.
    chaos.faults(create_latency_ms=200)
    chaos.worker("worker-a2", "dispatch")

    snap, took = chaos.wait_settled(SETTLE_TIMEOUT_S)
    record_counts(f"kill -9 dispatcher with {in_flight} dials in flight", snap, took)
    assert not snap.violations(), snap.violations()
    assert snap.attempt_outcomes.get("BUSY") == PERSONAS.count("busy"), snap.attempt_outcomes
