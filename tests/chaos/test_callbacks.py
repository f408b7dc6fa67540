"""Chaos: the carrier sends every status callback twice and swaps neighbours in its order."""

from __future__ import annotations

import pytest

from shared.enums import Outcome
from tests.chaos.fleet import ChaosFleet
from tests.chaos.observe import Recorder

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(300)]

PERSONAS = ["confirm", "busy", "no_answer"] * 4
SETTLE_TIMEOUT_S = 90


def test_duplicate_and_reordered_callbacks_settle_every_lead_once(
    chaos: ChaosFleet, record_counts: Recorder
) -> None:
    chaos.start_core(instant=True)
    chaos.worker("worker-a")
    chaos.beat()
    chaos.faults(duplicate_callbacks=True, reorder_callbacks=True)
    chaos.submit(PERSONAS)

    snap, took = chaos.wait_settled(SETTLE_TIMEOUT_S)
    record_counts("duplicate + reordered status callbacks", snap, took)
    assert not snap.violations(), snap.violations()
    assert snap.sim_calls >= len(PERSONAS)
    assert chaos.repeated_events() == 0  # every duplicate was recognised and dropped
    assert snap.attempt_outcomes.get("BUSY") == PERSONAS.count("busy"), snap.attempt_outcomes


def test_a_reordered_answered_call_keeps_its_answered_outcome(
    chaos: ChaosFleet, record_counts: Recorder
) -> None:
    chaos.start_core(instant=True)
    chaos.worker("worker-a")
    chaos.beat()
    chaos.faults(reorder_callbacks=True)
    chaos.submit(["confirm"] * 3)

    snap, took = chaos.wait_settled(SETTLE_TIMEOUT_S)
    record_counts("reordered callbacks, answered calls", snap, took)
    assert not snap.violations(), snap.violations()
    # Answered in instant mode (no conversation): the carrier's COMPLETED is the outcome.
    assert snap.attempt_outcomes == {Outcome.COMPLETED.value: 3}, snap.attempt_outcomes
