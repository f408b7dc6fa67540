"""Whole calls that do not end as a plain conversation: an answering machine (the template's
voicemail policy, driven by Twilio's `AnsweredBy`) and a transfer to a person (`<Dial>`)."""

from __future__ import annotations

from typing import Any

import httpx

from media_worker.session import SessionEventKind
from shared.enums import Outcome
from shared.settings import Settings
from simulator.personas import Act, Persona, Pickup, Step
from tests.integration.fleet import template_document
from tests.media_worker.call_harness import call_rig, event_kinds, summary_of

# Machine detection asked of the carrier by the dispatcher, and acted on by the media worker.
AMD_ADMISSION = {"machine_detection": True}
AMD_DEPS = {"machine_detection": True}
SUPPORT_NUMBER = "+918047181234"  # the COD template's `talk_to_support` transfer target
WANTS_SUPPORT = Persona(
    "wants_support",
    Pickup.HUMAN,
    0.1,
    (Step(Act.WAIT_BOT), Step(Act.SAY, text="Can I talk to someone from customer support?")),
)


def _bot_audio_ms(report: dict[str, Any]) -> int:
    return sum(int(stream["bot_audio_ms"]) for stream in report["streams"])


async def test_an_answering_machine_is_hung_up_at_once_under_the_hang_up_policy(
    settings: Settings, fleet: Any
) -> None:
    async with call_rig(settings, fleet, admission=AMD_ADMISSION, deps=AMD_DEPS) as rig:
        verdict = await rig.dial("voicemail")
        attempt_id, outcome, source, record = await rig.worker_finalized()
        attempt = await rig.attempt_finalized(verdict)
        report = await rig.sim_call_final(verdict.call_sid or "")

    assert (outcome, source) == (Outcome.VOICEMAIL.value, "conversation")
    assert attempt.outcome == Outcome.VOICEMAIL
    assert report["call"]["answered_by"] == "machine_start"
    assert report["call"]["status"] == "completed"
    # Nothing was said to the machine: no pipeline ran.
    assert record["transcript"] == attempt.transcript == []
    assert _bot_audio_ms(report) == 0
    assert SessionEventKind.ANSWERED_BY_MACHINE in event_kinds(attempt.events)
    assert summary_of(attempt.events)["ended_by"] == "conversation"
    assert rig.held_released(attempt)


async def test_an_answering_machine_gets_the_rendered_message_under_leave_message(
    settings: Settings, fleet: Any
) -> None:
    message = "Hello {{customer_name}}, this is {{store_name}} about order {{order_id}}."
    document = template_document(voicemail={"action": "leave_message", "message": message})
    async with call_rig(
        settings, fleet, document=document, admission=AMD_ADMISSION, deps=AMD_DEPS
    ) as rig:
        verdict = await rig.dial("voicemail")
        _, outcome, source, record = await rig.worker_finalized()
        attempt = await rig.attempt_finalized(verdict)
        report = await rig.sim_call_final(verdict.call_sid or "")

    assert (outcome, source) == (Outcome.VOICEMAIL.value, "conversation")
    assert attempt.outcome == Outcome.VOICEMAIL
    agent = [turn["text"] for turn in attempt.transcript if turn["speaker"] == "agent"]
    assert agent == ["Hello Asha, this is Kurta Corner about order KC-1."]
    assert record["transcript"] == attempt.transcript
    assert _bot_audio_ms(report) > 0  # the machine heard it
    assert report["call"]["status"] == "completed"  # and we hung up after it
    assert summary_of(attempt.events)["ended_by"] == "conversation"
    assert rig.held_released(attempt)


async def test_a_transfer_hands_the_live_call_to_the_number_after_the_announcement(
    settings: Settings, fleet: Any
) -> None:
    # The callee stays on the line well past the announcement.
    sim = {"personas": {WANTS_SUPPORT.name: WANTS_SUPPORT}, "linger_s": 60.0}
    async with call_rig(settings, fleet, sim=sim) as rig:
        verdict = await rig.dial(WANTS_SUPPORT.name)
        _, outcome, source, record = await rig.worker_finalized()
        attempt = await rig.attempt_finalized(verdict)
        report = await rig.sim_call_final(verdict.call_sid or "")

    assert (outcome, source) == (Outcome.TRANSFERRED.value, "conversation")
    assert attempt.outcome == Outcome.TRANSFERRED
    assert report["dialed"] == [SUPPORT_NUMBER]
    [stream] = report["streams"]
    assert stream["end_reason"] == "redirected"  # not hung up: the carrier moved on to <Dial>
    kinds = event_kinds(attempt.events)
    assert "transfer_requested" in kinds
    assert SessionEventKind.TRANSFER_COMPLETED in kinds
    # The number is kept masked on the record.
    [requested] = [e for e in attempt.events if e.get("kind") == "transfer_requested"]
    assert requested["details"]["to"] != SUPPORT_NUMBER
    agent = [turn["text"] for turn in record["transcript"] if turn["speaker"] == "agent"]
    assert agent[-1] == "Let me connect you to our support team. Please stay on the line."
    assert rig.held_released(attempt)


async def test_a_transfer_the_carrier_refuses_hangs_up_and_is_recorded_as_failed(
    settings: Settings, fleet: Any
) -> None:
    # The callee stays on the line well past the announcement.
    sim = {"personas": {WANTS_SUPPORT.name: WANTS_SUPPORT}, "linger_s": 60.0}
    async with call_rig(settings, fleet, sim=sim) as rig:
        async with httpx.AsyncClient(base_url=rig.simulator.base_url) as client:
            faults = {"fail_next_updates": [500]}  # the transfer; the hang-up then goes through
            (await client.post("/_sim/faults", json=faults)).raise_for_status()
        verdict = await rig.dial(WANTS_SUPPORT.name)
        await rig.worker_finalized()
        attempt = await rig.attempt_finalized(verdict)
        report = await rig.sim_call_final(verdict.call_sid or "")

    assert report["dialed"] == []
    [stream] = report["streams"]
    assert stream["end_reason"] == "api_hangup"  # the caller was not left on a silent line
    [failed] = [e for e in attempt.events if e.get("kind") == SessionEventKind.TRANSFER_FAILED]
    assert failed["details"] == {"attempted": True}
    assert SessionEventKind.TRANSFER_COMPLETED not in event_kinds(attempt.events)
    assert rig.held_released(attempt)
