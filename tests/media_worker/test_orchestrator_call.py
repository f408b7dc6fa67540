"""Whole orchestrator calls through our media server: the front desk answers, routes the call
to the order agent, and the agent ends it; one transcript, the switch on the record, and the
agent's own voice (or its fallback, when its primary is degraded fleet-wide) after the switch.
Inbound calls to a number with an orchestrator start in it.

Each template speaks with its own offline voice (no `tts` override), so the TTS provider and
voice id recorded on each utterance say who spoke with which voice.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import redis.asyncio as aioredis
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from dispatcher.templates_store import save_template
from media_worker.pipeline import ProviderOverrides
from media_worker.record import CallEventKind
from media_worker.tts_health_call import TTSEvent
from shared.coordination.tts_health import AsyncTtsHealth
from shared.db.models import CallAttempt, Lead, PhoneNumber
from shared.db.session import transaction
from shared.enums import Direction, LeadStatus, Outcome
from shared.settings import Settings
from shared.templates import load_example
from simulator.audio import SpeechSynth
from simulator.conversation import run_script
from simulator.media_client import MediaStreamClient
from simulator.personas import Act, Persona, Pickup, Step
from simulator.settings import DEV_ACCOUNT_SID as ACCOUNT_SID
from simulator.sidechannel import RedisPublisher
from simulator.twiml import Stream
from tests.integration.fleet import Fleet, payload, template_document
from tests.media_worker.call_harness import CallRig, call_rig, event_kinds, summary_of

DESK = "Front desk"
ORDERS = "COD order confirmation"
CLINIC = "Clinic appointment reminder"
DESK_VOICE = {
    "provider": "tone",
    "voice_id": "maya",
    "fallback": {"provider": "flaky", "voice_id": "maya-backup"},
}
ORDER_VOICE = {
    "provider": "flaky",
    "voice_id": "riya",
    "fallback": {"provider": "tone", "voice_id": "riya-backup"},
}
CLINIC_VOICE = {"provider": "tone", "voice_id": "neha"}
# The template's providers for voices; only the STT and the LLM are offline stand-ins.
OFFLINE_EARS = {"overrides": ProviderOverrides(stt="sim", llm="scripted")}

ASKS_FOR_ORDER = "It's about my order."
ROUTED_TO_ORDERS = Persona(
    "front_desk_order",
    Pickup.HUMAN,
    0.05,
    (
        Step(Act.WAIT_BOT),
        Step(Act.SAY, text=ASKS_FOR_ORDER),
        Step(Act.WAIT_BOT),
        Step(Act.SAY, text="Yes, this is me. I can confirm the order."),
        Step(Act.WAIT_BOT),
        Step(Act.SAY, text="Yes, that is correct. Please go ahead."),
        Step(Act.WAIT_BOT),
        Step(Act.SAY, text="Thank you. Bye."),
    ),
)
SIM = {"personas": {ROUTED_TO_ORDERS.name: ROUTED_TO_ORDERS}}


def with_voice(document: dict[str, Any], voice: dict[str, Any]) -> dict[str, Any]:
    document = copy.deepcopy(document)
    document["voice"] = voice
    document["calling_window"] = None
    return document


def front_desk(**orchestrator: Any) -> dict[str, Any]:
    document = with_voice(load_example("front_desk"), DESK_VOICE)
    document["orchestrator"].update(orchestrator)
    return document


def desk_fleet(
    fleet: Callable[..., Fleet],
    *,
    desk: dict[str, Any] | None = None,
    orders: dict[str, Any] | None = None,
    clinic: dict[str, Any] | None = None,
) -> Callable[..., Fleet]:
    """A fleet factory whose merchant has the two agents and the front desk, and whose leads
    are for the front desk."""

    def make(**setup: Any) -> Fleet:
        order_agent = orders or with_voice(template_document(), ORDER_VOICE)
        f = fleet(document=order_agent)
        with transaction(f.sessions) as session:
            clinic_agent = clinic or with_voice(load_example("appointment_reminder"), CLINIC_VOICE)
            save_template(session, f.merchant_id, clinic_agent)
            f.template = save_template(session, f.merchant_id, desk or front_desk()).name
        return f

    return make


def spoken(attempt: CallAttempt) -> list[tuple[str, str | None, str, str | None, str | None]]:
    """(speaker, agent, text, tts provider, voice) per turn, in speaking order."""
    timings = summary_of(attempt.events)["utterances"]
    transcript = attempt.transcript or []
    assert len(timings) == len(transcript)
    return [
        (turn["speaker"], turn["agent"], turn["text"], t["tts_provider"], t["tts_voice"])
        for turn, t in zip(transcript, timings, strict=True)
    ]


def agent_voices(attempt: CallAttempt) -> list[tuple[str | None, str | None, str | None]]:
    return [(agent, p, v) for who, agent, _, p, v in spoken(attempt) if who == "agent"]


def events_of(attempt: CallAttempt, kind: str) -> list[dict[str, Any]]:
    return [e["details"] for e in attempt.events if e.get("kind") == kind]


async def routed_call(rig: CallRig) -> CallAttempt:
    verdict = await rig.dial(ROUTED_TO_ORDERS.name)
    _, outcome, source, _ = await rig.worker_finalized()
    attempt = await rig.attempt_finalized(verdict)
    assert (outcome, source) == (Outcome.CONFIRMED.value, "conversation")
    assert rig.held_released(attempt)
    return attempt


async def test_an_orchestrator_call_is_routed_to_the_agent_who_ends_it_in_its_own_voice(
    settings: Settings, fleet: Any
) -> None:
    async with call_rig(settings, desk_fleet(fleet), sim=SIM, deps=OFFLINE_EARS) as rig:
        attempt = await routed_call(rig)

    assert attempt.outcome is Outcome.CONFIRMED
    assert rig.fleet.lead(attempt.lead_id).status is LeadStatus.FINISHED
    # One transcript: the desk's greeting, the customer's ask, then the agent to the end.
    turns = spoken(attempt)
    assert turns[0][:2] == ("agent", DESK)
    assert turns[0][2].startswith("Hello Asha, this is Maya from Kurta Corner.")
    assert turns[1][:3] == ("customer", None, ASKS_FOR_ORDER)
    agents = [agent for who, agent, *_ in turns if who == "agent"]
    switch_at = agents.index(ORDERS)
    assert set(agents[:switch_at]) == {DESK} and set(agents[switch_at:]) == {ORDERS}
    assert "Am I speaking with Asha?" in turns[2][2], turns
    assert turns[-1][0] == "customer" or turns[-1][1] == ORDERS
    # Each speaker in its own voice: the desk's primary, then the agent's primary.
    voices = agent_voices(attempt)
    assert set(voices[:switch_at]) == {(DESK, "tone", "maya")}
    assert set(voices[switch_at:]) == {(ORDERS, "flaky", "riya")}
    # The switch is on the record, with the reason the model gave.
    [switched] = events_of(attempt, CallEventKind.AGENT_SWITCHED)
    assert switched["from"] == DESK and switched["to"] == ORDERS
    assert "order" in switched["reason"]
    routes = [
        e["details"]
        for e in attempt.events
        if e["kind"] == CallEventKind.NODE_TRAVERSAL
        and e["details"]["function"] == "route_to_agent"
    ]
    assert [(r["from_node"], r["to_node"]) for r in routes] == [
        ("triage", "order_confirmation.verify_identity")
    ]
    assert TTSEvent.STARTED_ON_FALLBACK not in event_kinds(attempt.events)


async def test_an_agent_whose_primary_is_degraded_fleet_wide_starts_on_its_fallback(
    settings: Settings, fleet: Any
) -> None:
    health = aioredis.Redis.from_url(settings.redis_url)
    try:
        # Another worker found the agent's primary provider failing a moment ago.
        await AsyncTtsHealth(health).mark_degraded(
            "flaky", cooldown_s=600, record_ttl_s=900, reason="error", reporter="mw-elsewhere"
        )
        async with call_rig(settings, desk_fleet(fleet), sim=SIM, deps=OFFLINE_EARS) as rig:
            attempt = await routed_call(rig)
        record = await AsyncTtsHealth(health).read("flaky")
    finally:
        await health.aclose()

    voices = agent_voices(attempt)
    switch_at = [agent for agent, _, _ in voices].index(ORDERS)
    # The desk's own primary is healthy; the agent speaks with its fallback from its first word.
    assert set(voices[:switch_at]) == {(DESK, "tone", "maya")}
    assert set(voices[switch_at:]) == {(ORDERS, "tone", "riya-backup")}
    assert events_of(attempt, TTSEvent.STARTED_ON_FALLBACK) == [
        {"provider": "flaky", "fallback": "tone", "agent": "order_confirmation"}
    ]
    # It was steered by the record, not by failing: the record is unchanged.
    assert record is not None and record.state == "degraded" and record.flips == 1
    assert CallEventKind.TTS_FAILOVER not in event_kinds(attempt.events)


# --- inbound -----------------------------------------------------------------------------------


def inbound_ready(document: dict[str, Any]) -> dict[str, Any]:
    """`document` with a default for every variable: an inbound call carries no payload."""
    document = copy.deepcopy(document)
    defaults = {**payload(), "customer_name": "there"}
    by_type = {"datetime": "2026-12-01T10:30:00+05:30", "date": "2026-12-01", "boolean": False}
    for name, spec in document["variables"].items():
        spec["required"] = False
        spec.setdefault("default", defaults.get(name, by_type.get(spec["type"], "")))
    return document


@asynccontextmanager
async def inbound_stream(
    rig: CallRig, settings: Settings, number: str, persona: Persona
) -> AsyncIterator[tuple[str, MediaStreamClient]]:
    """Be the carrier for an inbound call to `number`: ask our API how to answer it, then open
    the media stream it names and play `persona` on it."""
    carrier = rig.fleet.settings
    call_sid = "CA" + uuid.uuid4().hex
    path = "/telephony/twilio/inbound"
    params = {
        "CallSid": call_sid, "From": "+919812345678", "To": number, "CallStatus": "ringing",
        "Direction": "inbound", "AccountSid": ACCOUNT_SID,
    }  # fmt: skip
    token = carrier.twilio_auth_token.get_secret_value()
    signature = RequestValidator(token).compute_signature(carrier.public_base_url + path, params)
    async with httpx.AsyncClient(base_url=carrier.public_base_url) as client:
        answer = await client.post(path, data=params, headers={"X-Twilio-Signature": signature})
    answer.raise_for_status()
    element = ET.fromstring(answer.text).find("./Connect/Stream")
    assert element is not None, answer.text
    parameters = {p.get("name", ""): p.get("value", "") for p in element.findall("./Parameter")}
    stream = Stream(url=element.get("url", ""), parameters=parameters)
    publisher = RedisPublisher(settings.redis_url)
    media = MediaStreamClient(
        stream=stream,
        call_sid=call_sid,
        account_sid=ACCOUNT_SID,
        persona=persona.name,
        synth=SpeechSynth(None, ms_per_char=40),
        publisher=publisher,
        turn_gap_ms=600,
        open_timeout_s=10,
    )
    try:
        async with media:
            yield call_sid, media
    finally:
        await publisher.close()


async def converse(media: MediaStreamClient, persona: Persona) -> None:
    """Play `persona` until its script ends or the media worker closes the stream (as the
    simulator's own calls do)."""
    script = asyncio.create_task(run_script(persona, media, bot_wait_s=30, linger_s=30))
    closed = asyncio.create_task(media.closed.wait())
    try:
        await asyncio.wait((script, closed), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (script, closed):
            task.cancel()
        await asyncio.gather(script, closed, return_exceptions=True)
    assert closed.done() and not closed.cancelled(), "the caller hung up first"


async def test_an_inbound_call_to_an_orchestrators_number_starts_in_it_and_routes(
    settings: Settings, fleet: Any
) -> None:
    orders = inbound_ready(with_voice(template_document(), ORDER_VOICE))
    clinic = inbound_ready(with_voice(load_example("appointment_reminder"), CLINIC_VOICE))
    desk = inbound_ready(front_desk())
    make = desk_fleet(fleet, orders=orders, desk=desk, clinic=clinic)

    def with_inbound_number(**setup: Any) -> Fleet:
        f = make(**setup)
        with transaction(f.sessions) as session:
            save_template(session, f.merchant_id, {**desk, "orchestrator": {
                **desk["orchestrator"], "inbound_number": f.number_e164}})  # fmt: skip
        return f

    async with call_rig(settings, with_inbound_number, api=True, sim=SIM, deps=OFFLINE_EARS) as rig:
        number = rig.fleet.number_e164
        async with inbound_stream(rig, settings, number, ROUTED_TO_ORDERS) as (call_sid, media):
            await converse(media, ROUTED_TO_ORDERS)
        _, outcome, source, _ = await rig.worker_finalized()
        with rig.fleet.sessions() as session:
            attempt = session.scalar(
                select(CallAttempt).where(CallAttempt.provider_call_sid == call_sid)
            )
            assert attempt is not None
            lead = session.get(Lead, attempt.lead_id)
            assert lead is not None
            number_row = session.scalar(select(PhoneNumber).where(PhoneNumber.e164 == number))
            assert number_row is not None and number_row.inbound_template is None

    assert (outcome, source) == (Outcome.CONFIRMED.value, "conversation")
    assert (lead.direction, lead.payload) == (Direction.INBOUND, {})
    assert (attempt.outcome, lead.outcome) == (Outcome.CONFIRMED, Outcome.CONFIRMED)
    turns = spoken(attempt)
    assert turns[0][:2] == ("agent", DESK)
    assert turns[0][2].startswith("Hello there, this is Maya from Kurta Corner.")
    assert turns[0][3:] == ("tone", "maya")
    assert any(agent == ORDERS for _, agent, *_ in turns)
    [switched] = events_of(attempt, CallEventKind.AGENT_SWITCHED)
    assert (switched["from"], switched["to"]) == (DESK, ORDERS)
    assert rig.held_released(attempt)
