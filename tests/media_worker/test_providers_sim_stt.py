"""The `sim` STT: a Redis publish becomes a transcript, and the user turn closes without VAD."""

from __future__ import annotations

import asyncio
import json

import redis
import redis.asyncio as aioredis
from pipecat.frames.frames import (
    EndFrame,
    ErrorFrame,
    Frame,
    InterimTranscriptionFrame,
    LLMContextFrame,
    ProposedUserStartedSpeakingFrame,
    ProposedUserStoppedSpeakingFrame,
    STTMetadataFrame,
    TranscriptionFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.tests.utils import SleepFrame, run_test
from pipecat.turns.user_turn_strategies import ExternalUserTurnStrategies
from pipecat.workers.runner import WorkerRunner

from media_worker.providers.sim_stt import SimSTTService
from media_worker.providers.sim_subscription import SimTranscript
from shared.redis_keys import sim_stt_channel

CALL_SID = "CA" + "1" * 32
WAIT_S = 10.0


async def publish_when_subscribed(client: redis.Redis, *messages: str) -> None:
    """Publish (through the sync `redis_client` fixture, off the loop) once the STT listens."""
    channel = sim_stt_channel(CALL_SID)
    for _ in range(int(WAIT_S / 0.01)):
        if (await asyncio.to_thread(client.pubsub_numsub, channel))[0][1]:
            break
        await asyncio.sleep(0.01)
    else:
        raise TimeoutError(f"nobody subscribed to {channel}")
    for message in messages:
        await asyncio.to_thread(client.publish, channel, message)


def utterance(text: str, *, final: bool = True, t_ms: int = 1234) -> str:
    return json.dumps({"text": text, "final": final, "t_ms": t_ms})


async def test_publish_becomes_transcription_between_turn_proposals(
    aredis: aioredis.Redis, redis_client: redis.Redis
) -> None:
    stt = SimSTTService(call_sid=CALL_SID, redis=aredis, user_id="customer")
    publisher = publish_when_subscribed(redis_client, utterance("Yes, this is me."))

    (down, up), _ = await asyncio.gather(
        run_test(stt, frames_to_send=[SleepFrame(sleep=1.5)]), publisher
    )

    turn = [
        f
        for f in down
        if isinstance(
            f,
            (
                ProposedUserStartedSpeakingFrame,
                TranscriptionFrame,
                ProposedUserStoppedSpeakingFrame,
            ),
        )
    ]
    assert [type(f) for f in turn] == [
        ProposedUserStartedSpeakingFrame,
        TranscriptionFrame,
        ProposedUserStoppedSpeakingFrame,
    ]
    transcript = turn[1]
    assert isinstance(transcript, TranscriptionFrame)
    assert transcript.text == "Yes, this is me."
    assert transcript.user_id == "customer"
    assert transcript.timestamp
    assert transcript.finalized
    assert transcript.result == {"text": "Yes, this is me.", "final": True, "t_ms": 1234}
    metadata = [f for f in down if isinstance(f, STTMetadataFrame)]
    assert len(metadata) == 1
    assert isinstance(metadata[0].user_turn_strategies, ExternalUserTurnStrategies)
    assert any(isinstance(f, ProposedUserStartedSpeakingFrame) for f in up)
    # The subscription is gone with the pipeline.
    assert (await aredis.pubsub_numsub(stt.channel))[0][1] == 0


async def test_malformed_and_interim_messages(
    aredis: aioredis.Redis, redis_client: redis.Redis
) -> None:
    stt = SimSTTService(call_sid=CALL_SID, redis=aredis)
    publisher = publish_when_subscribed(
        redis_client,
        "not json",
        json.dumps({"words": "no text key"}),
        utterance("   "),
        utterance("hello th", final=False),
        utterance("hello there"),
    )

    (down, _), _ = await asyncio.gather(
        run_test(stt, frames_to_send=[SleepFrame(sleep=1.5)]), publisher
    )

    texts = [
        (type(f).__name__, f.text)
        for f in down
        if isinstance(f, (TranscriptionFrame, InterimTranscriptionFrame))
    ]
    assert texts == [
        ("InterimTranscriptionFrame", "hello th"),
        ("TranscriptionFrame", "hello there"),
    ]
    assert all(f.user_id == CALL_SID for f in down if isinstance(f, TranscriptionFrame))


def test_message_parsing() -> None:
    parsed = SimTranscript.parse(b'{"text": " Haan ", "final": true, "t_ms": 20}')
    assert parsed is not None
    assert (parsed.text, parsed.final, parsed.t_ms) == ("Haan", True, 20)
    assert SimTranscript.parse(b'{"text": 3, "final": true}') is None
    assert SimTranscript.parse(b'{"text": "x", "final": "yes"}') is None
    assert SimTranscript.parse(b"[1, 2]") is None


class _ContextCatcher(FrameProcessor):
    """Sets `ran` when the user aggregator asks the LLM to run, keeping the context it sent."""

    def __init__(self) -> None:
        super().__init__()
        self.ran = asyncio.Event()
        self.contexts: list[LLMContext] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMContextFrame):
            self.contexts.append(frame.context)
            self.ran.set()
        await self.push_frame(frame, direction)


async def test_user_turn_closes_and_llm_runs_without_vad(
    aredis: aioredis.Redis, redis_client: redis.Redis
) -> None:
    """With pipecat's default user aggregator (no VAD, default strategies replaced by the STT's
    recommendation), the transcript closes the turn and the context reaches the LLM. The stop
    watchdog is pushed far away, so only the STT's turn proposals can end the turn."""
    stt = SimSTTService(call_sid=CALL_SID, redis=aredis)
    context = LLMContext(messages=[{"role": "system", "content": "Be brief."}])
    pair = LLMContextAggregatorPair(
        context, user_params=LLMUserAggregatorParams(user_turn_stop_timeout=60.0)
    )
    catcher = _ContextCatcher()
    worker = PipelineWorker(
        Pipeline([stt, pair.user(), catcher, pair.assistant()]), cancel_on_idle_timeout=False
    )
    runner = WorkerRunner()
    await runner.add_workers(worker)

    async def drive() -> None:
        await publish_when_subscribed(redis_client, utterance("Yes, please confirm it."))
        async with asyncio.timeout(WAIT_S):
            await catcher.ran.wait()
        await worker.queue_frame(EndFrame())

    await asyncio.gather(runner.run(), drive())

    messages = catcher.contexts[0].get_messages()
    assert messages[-1] == {"role": "user", "content": "Yes, please confirm it."}


async def test_unreachable_redis_is_reported_not_raised() -> None:
    client = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    try:
        stt = SimSTTService(call_sid=CALL_SID, redis=client, subscribe_timeout_s=1.0)
        _, up = await run_test(stt, frames_to_send=[], start_timeout=5.0)
    finally:
        await client.aclose()
    errors = [f for f in up if isinstance(f, ErrorFrame)]
    assert errors and "could not subscribe" in errors[0].error
