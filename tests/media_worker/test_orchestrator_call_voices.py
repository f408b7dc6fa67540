"""An orchestrator call's voices in the real pipeline (`build_call_pipeline`, real Redis): every
agent's pair built at the start and held by the switcher, `speak_as` moving the call and its
TTS health to an agent's voice in order with the frames, and the transcript labels following."""

from __future__ import annotations

import asyncio
import copy
import uuid
from typing import Any

import redis.asyncio as aioredis
from pipecat.frames.frames import EndFrame, TTSSpeakFrame

from media_worker.pipeline import CallPipeline, ProviderOverrides
from media_worker.providers.flaky import FlakyKnobs
from media_worker.record import CallRecord
from media_worker.store import CallContext
from media_worker.tts_health_call import TTSEvent
from media_worker.voices import VoiceOverrides
from shared.templates import TemplateDefinition, load_example, parse_template
from tests.media_worker.payloads import APPOINTMENT_PAYLOAD, COD_PAYLOAD
from tests.media_worker.pipeline_harness import WAIT_S, start_call

EARS: dict[str, Any] = {"stt": "sim", "llm": "scripted"}


def template(name: str, voice: dict[str, Any]) -> TemplateDefinition:
    document = copy.deepcopy(load_example(name))
    document["voice"] = voice
    return parse_template(document)


DESK = template("front_desk", {"provider": "tone", "voice_id": "maya"})
ORDERS = template(
    "cod_confirmation",
    {"provider": "flaky", "voice_id": "riya", "fallback": {"provider": "tone", "voice_id": "b"}},
)
CLINIC = template("appointment_reminder", {"provider": "tone", "voice_id": "maya"})
AGENTS = {"order_confirmation": ORDERS, "appointment_reminder": CLINIC}


class Running:
    def __init__(self, call: CallPipeline, record: CallRecord, task: asyncio.Task[None]):
        self.call = call
        self.record = record
        self.task = task

    async def say(self, text: str) -> None:
        await self.call.worker.queue_frame(TTSSpeakFrame(text))
        async with asyncio.timeout(WAIT_S):
            while not any(u.text == text for u in self.record.utterances):  # noqa: ASYNC110
                await asyncio.sleep(0.01)

    async def end(self) -> None:
        await self.call.worker.queue_frame(EndFrame())
        async with asyncio.timeout(WAIT_S):
            await self.task

    def voices(self) -> list[tuple[str, str | None, str | None]]:
        return [(u.text, u.tts_provider, u.tts_voice) for u in self.record.utterances]


async def start(aredis: aioredis.Redis, overrides: ProviderOverrides) -> Running:
    payload = {**COD_PAYLOAD, **APPOINTMENT_PAYLOAD}
    context = CallContext(uuid.uuid4(), uuid.uuid4(), payload, DESK, AGENTS)
    running = await start_call(aredis, overrides, call_sid="CA" + uuid.uuid4().hex, context=context)
    return Running(running.call, running.record, running.task)


async def test_every_agents_voice_is_built_at_the_start_each_service_once(
    aredis: aioredis.Redis,
) -> None:
    running = await start(aredis, ProviderOverrides(**EARS))
    try:
        voices = running.call.call_voices
        assert voices is not None
        assert [(v.provider, v.voice_id) for v in voices.main] == [("tone", "maya")]
        assert [(v.provider, v.voice_id) for v in voices.agents["order_confirmation"]] == [
            ("flaky", "riya"),
            ("tone", "b"),
        ]
        # The clinic speaks with the desk's own voice: one service for both.
        assert voices.agents["appointment_reminder"][0].service is voices.main[0].service
        assert running.call.tts_switcher.services == voices.services
        assert len(voices.services) == 3
    finally:
        await running.end()


async def test_speak_as_moves_the_voice_the_health_and_the_labels(
    aredis: aioredis.Redis,
) -> None:
    running = await start(aredis, ProviderOverrides(**EARS))
    try:
        await running.say("Front desk here.")
        assert await running.call.speak_as("order_confirmation") is True
        await running.say("Orders here.")
        assert running.call.tts_health.active_provider == "flaky"
        assert [v.voice_id for v in running.call.tts_health.voices] == ["riya", "b"]
        # An agent without voices of its own keeps the voice in use.
        assert await running.call.speak_as("nobody") is False
        await running.say("Still orders.")
    finally:
        await running.end()
    assert running.voices() == [
        ("Front desk here.", "tone", "maya"),
        ("Orders here.", "flaky", "riya"),
        ("Still orders.", "flaky", "riya"),
    ]


async def test_an_agent_primary_failing_on_the_call_switches_within_its_own_pair(
    aredis: aioredis.Redis,
) -> None:
    overrides = ProviderOverrides(
        **EARS,
        agent_voices={
            "order_confirmation": VoiceOverrides(
                tts="flaky",
                tts_voice="riya",
                tts_flaky=FlakyKnobs(fail_first_n=2),
                tts_fallback="tone",
                tts_fallback_voice="b",
            )
        },
    )
    running = await start(aredis, overrides)
    try:
        await running.call.speak_as("order_confirmation")
        await running.say("Am I speaking with Asha?")
        # Back to the desk's pair and to the agent again: the primary that failed on this call
        # is not tried again (nor is the desk's voice affected).
        await running.call.speak_as("appointment_reminder")
        await running.say("Clinic here.")
        await running.call.speak_as("order_confirmation")
        await running.say("Orders again.")
    finally:
        await running.end()
    assert running.voices() == [
        ("Am I speaking with Asha?", "tone", "b"),
        ("Clinic here.", "tone", "maya"),
        ("Orders again.", "tone", "b"),
    ]
    started = [e.details for e in running.record.events if e.kind == TTSEvent.STARTED_ON_FALLBACK]
    assert started == [
        {
            "provider": "flaky",
            "fallback": "tone",
            "agent": "order_confirmation",
            "cause": "failed_in_call",
        }
    ]


async def test_an_agent_voice_that_cannot_be_built_leaves_the_call_in_the_voice_in_use(
    aredis: aioredis.Redis,
) -> None:
    # A real provider without its key, for the order agent only.
    overrides = ProviderOverrides(
        **EARS, agent_voices={"order_confirmation": VoiceOverrides(tts="elevenlabs")}
    )
    running = await start(aredis, overrides)
    try:
        voices = running.call.call_voices
        assert voices is not None and "order_confirmation" not in voices.agents
        assert await running.call.speak_as("order_confirmation") is False
        await running.say("Still the desk's voice.")
    finally:
        await running.end()
    assert running.voices() == [("Still the desk's voice.", "tone", "maya")]
