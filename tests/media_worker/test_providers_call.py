"""The offline providers together: sim STT, scripted LLM and tone TTS run a flow end to end."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import redis.asyncio as aioredis
from pipecat.flows import FlowArgs, FlowManager, FlowsFunctionSchema, NodeConfig
from pipecat.frames.frames import EndFrame, Frame, TTSAudioRawFrame, TTSStoppedFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.workers.runner import WorkerRunner

from media_worker.providers.factory import (
    CallInfo,
    ProviderKeys,
    build_llm,
    build_stt,
    build_tts,
)
from shared.redis_keys import sim_stt_channel

CALL_SID = "CA" + "3" * 32
WAIT_S = 15.0


class _AudioCounter(FrameProcessor):
    """Counts the TTS audio bytes; `spoke` is set once an utterance has been spoken in full."""

    def __init__(self) -> None:
        super().__init__()
        self.audio_bytes = 0
        self.spoke = asyncio.Event()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TTSAudioRawFrame):
            self.audio_bytes += len(frame.audio)
        elif isinstance(frame, TTSStoppedFrame):
            self.spoke.set()
        await self.push_frame(frame, direction)


async def say(client: aioredis.Redis, text: str) -> None:
    """Publish like the simulator once the STT is subscribed."""
    channel = sim_stt_channel(CALL_SID)
    for _ in range(int(WAIT_S / 0.01)):
        if (await client.pubsub_numsub(channel))[0][1]:
            break
        await asyncio.sleep(0.01)
    await client.publish(channel, json.dumps({"text": text, "final": True, "t_ms": 0}))


async def test_a_call_runs_on_offline_providers(aredis: aioredis.Redis) -> None:
    handled: list[tuple[str, dict[str, Any]]] = []
    done = asyncio.Event()

    async def identity_confirmed(args: FlowArgs, manager: FlowManager) -> tuple[None, NodeConfig]:
        handled.append(("identity_confirmed", dict(args)))
        return None, confirm_node

    async def cancel_order(args: FlowArgs, manager: FlowManager) -> tuple[dict[str, str], None]:
        handled.append(("cancel_order", dict(args)))
        done.set()
        return {"status": "cancelled"}, None

    confirm_node: NodeConfig = {
        "name": "confirm_order",
        "task_messages": [{"role": "developer", "content": "Ask whether they want order A-1."}],
        "functions": [
            FlowsFunctionSchema(
                "cancel_order",
                "The customer does not want the order.",
                {"reason": {"type": "string", "enum": ["changed_mind", "too_late"]}},
                ["reason"],
                handler=cancel_order,
            )
        ],
    }
    verify_node: NodeConfig = {
        "name": "verify_identity",
        "task_messages": [{"role": "developer", "content": "You asked who is speaking."}],
        "functions": [
            FlowsFunctionSchema(
                "identity_confirmed", "The customer.", {}, [], handler=identity_confirmed
            )
        ],
        "respond_immediately": False,
    }
    call = CallInfo(call_sid=CALL_SID, redis=aredis, sample_rate_hz=8000)
    keys = ProviderKeys()
    llm = build_llm("scripted", keys, call)
    pair = LLMContextAggregatorPair(LLMContext())
    counter = _AudioCounter()
    pipeline = Pipeline(
        [
            build_stt("sim", keys, call),
            pair.user(),
            llm,
            build_tts("tone", "beep", keys, call),
            counter,
            pair.assistant(),
        ]
    )
    worker = PipelineWorker(
        pipeline,
        params=PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000),
        cancel_on_idle_timeout=False,
    )
    started = asyncio.Event()
    failures: list[Exception] = []

    @worker.event_handler("on_pipeline_started")  # type: ignore[untyped-decorator]
    async def _on_started(worker: PipelineWorker, frame: Frame) -> None:
        started.set()

    async def drive() -> None:
        try:
            async with asyncio.timeout(WAIT_S):
                await started.wait()
                manager = FlowManager(worker=worker, llm=llm, context_aggregator=pair)
                await manager.initialize(verify_node)
                await say(aredis, "Yes, speaking.")
                # The LLM opens confirm_order and the tone speaks it; answering earlier would
                # barge in (the STT's turn start interrupts the bot).
                await counter.spoke.wait()
                await say(aredis, "No, I do not want it, it is too late.")
                await done.wait()
        except Exception as exc:  # reported after the pipeline has ended
            failures.append(exc)
        finally:
            await worker.queue_frame(EndFrame())

    runner = WorkerRunner()
    await runner.add_workers(worker)
    await asyncio.gather(runner.run(), drive())

    assert failures == []
    assert handled == [("identity_confirmed", {}), ("cancel_order", {"reason": "too_late"})]
    opening = "Could you tell me whether you want order A-1?"
    assert counter.audio_bytes == round(len(opening) * 0.06 * 8000) * 2
    said = [m for m in pair.assistant().context.get_messages() if m.get("role") == "assistant"]
    assert any(m.get("content") == opening for m in said)
