"""Per-turn latency into the call record: `TurnLatencyObserver` on an injected clock (with and
without a VAD), and a real sim-STT turn through `build_call_pipeline` recording one latency."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    Frame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.observers.base_observer import FramePushed
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from redis.asyncio import Redis

from media_worker.observers import TurnLatencyObserver
from media_worker.record import CallRecord
from shared.redis_keys import sim_stt_channel
from tests.media_worker.pipeline_harness import (
    flaky_overrides,
    start_call,
)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def push(observer: TurnLatencyObserver, frame: Frame) -> None:
    source, destination = FrameProcessor(), FrameProcessor()
    await observer.on_push_frame(
        FramePushed(source, destination, frame, FrameDirection.DOWNSTREAM, 0)
    )


async def test_without_a_vad_a_turn_is_timed_from_its_end_to_the_bot_speaking() -> None:
    record, clock = CallRecord("t"), Clock(100.0)
    observer = TurnLatencyObserver(record, time_source=clock)
    await push(observer, BotStartedSpeakingFrame())  # the greeting: no turn before it
    await push(observer, UserStartedSpeakingFrame())
    await push(observer, UserStoppedSpeakingFrame())
    clock.now = 100.35
    await push(observer, BotStartedSpeakingFrame())
    await push(observer, UserStartedSpeakingFrame())
    clock.now = 200.0
    await push(observer, UserStoppedSpeakingFrame())
    clock.now = 201.2
    await push(observer, BotStartedSpeakingFrame())
    assert record.turn_latencies_ms == (350, 1200)
    summary = record.latency_summary()
    assert summary is not None and (summary.p50_ms, summary.p95_ms) == (350, 1200)


async def test_with_a_vad_pipecats_measurement_from_the_speech_end_is_recorded() -> None:
    record, clock = CallRecord("t"), Clock(50.0)
    observer = TurnLatencyObserver(record, time_source=clock)
    await push(observer, VADUserStartedSpeakingFrame())
    await push(observer, VADUserStoppedSpeakingFrame(stop_secs=0.2, timestamp=50.0))
    await push(observer, UserStoppedSpeakingFrame())
    clock.now = 50.5
    await push(observer, BotStartedSpeakingFrame())
    for _ in range(100):  # pipecat runs its latency event handler as a task: let it run
        if record.turn_latencies_ms:
            break
        await asyncio.sleep(0)
    # Speech ended at 49.8 (the VAD waited out stop_secs); once, not twice.
    assert record.turn_latencies_ms == (700,)


async def test_a_sim_stt_turn_through_the_pipeline_records_its_latency(aredis: Redis) -> None:
    call_sid = "CA" + "5" * 32
    running = await start_call(aredis, flaky_overrides(), call_sid=call_sid)
    try:
        channel = sim_stt_channel(call_sid)
        # The sim STT subscribed before the pipeline counted as started.
        assert (await aredis.pubsub_numsub(channel))[0][1] == 1
        message: dict[str, Any] = {"text": "Yes, speaking.", "final": True, "t_ms": 0}
        await aredis.publish(channel, json.dumps(message))
        await running.until(lambda: running.record.latency_summary() is not None)
    finally:
        await running.end()
    [latency_ms] = running.record.turn_latencies_ms
    assert latency_ms >= 0
    assert [u.speaker for u in running.record.utterances] == ["customer", "agent"]
