"""Chaos: beat stops mid-run, then two beats start at once (the mistake README warns about)."""

from __future__ import annotations

import time

import pytest

from tests.chaos.fleet import ChaosFleet
from tests.chaos.observe import Recorder
from tests.chaos.services import wait_until

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(360)]

PERSONAS = ["confirm", "busy", "no_answer"] * 6
CHANNELS = 2  # scarce: most leads defer CHANNELS_BUSY and come back only through the sweep
BEATLESS_S = 5
SETTLE_TIMEOUT_S = 120


def test_beat_stopped_then_two_beats_dial_each_lead_once(
    chaos: ChaosFleet, record_counts: Recorder
) -> None:
    chaos.set_channels(CHANNELS)
    chaos.start_core(instant=True)
    chaos.worker("worker-a")
    first = chaos.beat("beat-1")
    chaos.submit(PERSONAS)

    wait_until(lambda: chaos.dialed_count() >= 3, 90, "a few dials placed")
    first.stop()
    # Without a beat nothing sweeps: deferred leads wait, however long they are due.
    time.sleep(BEATLESS_S)
    waiting = chaos.snapshot().scheduled_due_soon
    beats = [chaos.beat("beat-2"), chaos.beat("beat-3")]

    snap, took = chaos.wait_settled(SETTLE_TIMEOUT_S)
    record_counts(f"beat stopped ({waiting} leads waiting), then two beats", snap, took)
    assert not snap.violations(), snap.violations()
    # Every persona here ends its first attempt for good (or retries in an hour), so a
    # second attempt on any lead would be a double dispatch.
    assert chaos.attempts_per_lead() == 1
    assert snap.attempts == len(PERSONAS)
    # Both beats were alive and sending the periodic jobs throughout.
    assert all(b.running and "Sending due task" in b.log_path.read_text() for b in beats)
