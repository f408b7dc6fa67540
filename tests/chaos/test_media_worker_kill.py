"""Chaos: kill -9 a media worker in the middle of its calls; another worker keeps serving."""

from __future__ import annotations

import pytest

from shared.enums import AttemptState
from tests.chaos.fleet import ChaosFleet
from tests.chaos.observe import Recorder
from tests.chaos.services import wait_until

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(360)]

SETTLE_TIMEOUT_S = 120


def test_kill_9_media_worker_mid_call_leaks_nothing(
    chaos: ChaosFleet, record_counts: Recorder
) -> None:
    chaos.start_core(instant=False, media_workers=("mw-a", "mw-b"))
    chaos.worker("worker-a")
    chaos.beat()
    personas = ["confirm"] * 6
    chaos.submit(personas)

    wait_until(
        lambda: chaos.attempts_in(AttemptState.IN_PROGRESS, media_worker="mw-a") >= 1,
        90,
        "a call in progress on mw-a",
    )
    cut = chaos.attempts_in(AttemptState.IN_PROGRESS, media_worker="mw-a")
    victim = next(p for p in chaos.launcher.started if p.name == "mw-a")
    victim.kill9()

    snap, took = chaos.wait_settled(SETTLE_TIMEOUT_S)
    record_counts(f"kill -9 media worker with {cut} calls on it", snap, took)
    assert not snap.violations(), snap.violations()
    assert not chaos.media_worker_live("mw-a")  # its heartbeat lapsed and it was dropped
    assert snap.lead_outcomes.get("CONFIRMED", 0) >= 1, snap.lead_outcomes  # mw-b's calls
