"""One whole call per simulator persona: dialed by the dispatcher, answered (or not) by the
simulator, talked through by the media worker, and finalized with the right outcome and a
complete record, with the channel lease and media reservation given back."""

from __future__ import annotations

from typing import Any

import pytest

from shared.enums import LeadStatus, Outcome
from shared.settings import Settings
from tests.media_worker.call_harness import call_rig, summary_of

# persona -> (outcome, how the call ended, the lead afterwards)
ANSWERED = {
    "confirm": (Outcome.CONFIRMED, "conversation", LeadStatus.FINISHED),
    "decline": (Outcome.CANCELLED_BY_CUSTOMER, "conversation", LeadStatus.FINISHED),
    "barge_in": (Outcome.CONFIRMED, "conversation", LeadStatus.FINISHED),
    "wrong_person": (Outcome.WRONG_PERSON, "conversation", LeadStatus.FINISHED),
    "reschedule": (Outcome.CALLBACK_REQUESTED, "conversation", LeadStatus.FINISHED),
    "hangup_mid": (Outcome.NO_RESPONSE, "customer_hung_up", LeadStatus.FINISHED),
    "silent": (Outcome.NO_RESPONSE, "customer_hung_up", LeadStatus.FINISHED),
}


# The scripted LLM answers the barge-in persona's words ("Wait, wait. Which order is this
# about?", then "Oh, okay. Yes, please confirm it.") with its reprompt in verify_identity, so
# the callee hangs up unconfirmed; strict, so that fixing the intent table makes this fail.
KNOWN_GAPS = {
    "barge_in": pytest.mark.xfail(
        strict=True, reason="scripted LLM matches no function for the barge-in persona's words"
    )
}


@pytest.mark.parametrize(
    "persona", [pytest.param(p, marks=KNOWN_GAPS.get(p, ())) for p in sorted(ANSWERED)]
)
async def test_an_answered_persona_ends_with_its_outcome_and_a_complete_record(
    settings: Settings, fleet: Any, persona: str
) -> None:
    outcome, ended_by, lead_status = ANSWERED[persona]
    async with call_rig(settings, fleet, api=True) as rig:
        verdict = await rig.dial(persona)
        attempt_id, sent_outcome, source, record = await rig.worker_finalized()
        attempt = await rig.attempt_finalized(verdict)
        report = await rig.sim_call_final(verdict.call_sid or "")

        assert attempt_id == str(verdict.attempt_id)
        assert (sent_outcome, attempt.outcome) == (outcome.value, outcome)
        assert source == attempt.outcome_source == ended_by
        assert rig.fleet.lead(attempt.lead_id).status == lead_status
        assert rig.held_released(attempt)
        # The transcript holds both sides as both heard them; the agent greeted first.
        assert attempt.transcript == record["transcript"]
        assert attempt.transcript[0]["speaker"] == "agent"
        customer_said = [u["spoken"] for s in report["streams"] for u in s["customer"]]
        heard = [t["text"] for t in attempt.transcript if t["speaker"] == "customer"]
        assert bool(heard) == any(said.strip() for said in customer_said), (heard, report)
        summary = summary_of(attempt.events)
        assert summary["outcome"] == outcome.value
        assert summary["ended_by"] == ended_by
        # No carrier finalize raced the conversation's own report.
        assert rig.carrier_tasks.finalizes == []


@pytest.mark.parametrize(
    ("persona", "outcome"), [("busy", Outcome.BUSY), ("no_answer", Outcome.NO_ANSWER)]
)
async def test_an_unanswered_persona_is_finalized_by_the_carrier_status_alone(
    settings: Settings, fleet: Any, persona: str, outcome: Outcome
) -> None:
    async with call_rig(settings, fleet, api=True, admission={"ring_timeout_s": 5}) as rig:
        verdict = await rig.dial(persona)
        attempt = await rig.attempt_finalized(verdict)

        assert attempt.outcome == outcome
        assert attempt.outcome_source == "carrier"
        assert rig.fleet.lead(attempt.lead_id).status == LeadStatus.SCHEDULED  # retried later
        assert rig.held_released(attempt)
        # The media worker never saw the call.
        assert rig.worker_tasks.sent == []
        assert attempt.transcript in (None, [])
