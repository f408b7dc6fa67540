"""A built flow driven by pipecat's real FlowManager, LLM function calling and pipeline."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
from pipecat.flows import FlowManager
from pipecat.frames.frames import (
    EndFrame,
    Frame,
    FunctionCallFromLLM,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMRunFrame,
    LLMUpdateSettingsFrame,
    StartFrame,
    TTSSpeakFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.llm_service import LLMService
from pipecat.tests.utils import run_test

from media_worker.flows import ConversationEnd, FlowPlan, build_flow
from media_worker.record import CallRecord
from shared.enums import Outcome
from shared.templates import load_example, parse_template
from tests.media_worker.payloads import APPOINTMENT_PAYLOAD
from tests.media_worker.payloads import COD_PAYLOAD as SHARED_COD

# Placeholder-shaped values must reach the caller and the LLM as sent: unescaped, pipecat
# would expand the first from its state and fail the node on the second.
COD_PAYLOAD: dict[str, object] = {**SHARED_COD, "customer_name": "Asha {{ order_id }} {{ nope }}"}
CALL_TIMEOUT_S = 10


class ScriptedFunctionLLM(LLMService):
    """Answers each inference with the next scripted function call, if the node offers it.

    It keeps what each inference saw (offered tools, messages) and every system instruction it
    was given, so that the test checks what pipecat actually gave the LLM.
    """

    def __init__(self, script: Sequence[tuple[str, dict[str, Any]]]) -> None:
        super().__init__()
        self._script = list(script)
        self.offered: list[list[str]] = []
        self.messages: list[list[Any]] = []
        self.system_instructions: list[Any] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, LLMUpdateSettingsFrame) and frame.delta is not None:
            self.system_instructions.append(frame.delta.system_instruction)
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMContextFrame):
            await self._infer(frame.context)
        else:
            await self.push_frame(frame, direction)

    async def _infer(self, context: LLMContext) -> None:
        tools = context.tools
        names = [t.name for t in tools.standard_tools] if isinstance(tools, ToolsSchema) else []
        self.offered.append(names)
        self.messages.append(list(context.get_messages()))
        await self.push_frame(LLMFullResponseStartFrame())
        if self._script and self._script[0][0] in names:
            name, arguments = self._script.pop(0)
            call_id = f"call_{len(self.offered)}"
            await self.run_function_calls([FunctionCallFromLLM(name, call_id, arguments, context)])
        await self.push_frame(LLMFullResponseEndFrame())


class FlowStarter(FrameProcessor):
    """Starts the flow once the pipeline runs: the FlowManager needs the worker that
    `run_test` creates, and must not be awaited inside frame processing (its greeting action
    waits for frames to flow)."""

    def __init__(self, start: Callable[[PipelineWorker], Coroutine[Any, Any, None]]) -> None:
        super().__init__()
        self._start = start

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)
        if isinstance(frame, StartFrame):
            self.create_task(self._start(self.pipeline_worker), "start_flow")


async def run_call(
    plan: FlowPlan, llm: ScriptedFunctionLLM
) -> tuple[Sequence[Frame], FlowManager | None]:
    """Run the call until the flow itself ends the pipeline (no EndFrame from the test)."""
    pair = LLMContextAggregatorPair(LLMContext())
    managers: list[FlowManager] = []

    failures: list[Exception] = []

    async def start(worker: PipelineWorker) -> None:
        try:
            manager = FlowManager(worker=worker, llm=llm, context_aggregator=pair)
            managers.append(manager)
            await manager.initialize(plan.initial_node())
            await worker.queue_frame(LLMRunFrame())  # the customer answered the greeting
        except Exception as exc:  # end the test pipeline now rather than at the timeout
            failures.append(exc)
            await worker.queue_frame(EndFrame())

    pipeline = Pipeline([FlowStarter(start), pair.user(), llm, pair.assistant()])
    down, _ = await asyncio.wait_for(
        run_test(pipeline, frames_to_send=[], send_end_frame=False), CALL_TIMEOUT_S
    )
    assert failures == []
    return down, managers[0] if managers else None


def spoken(frames: Sequence[Frame]) -> list[str]:
    return [frame.text for frame in frames if isinstance(frame, TTSSpeakFrame)]


def message_texts(messages: list[Any]) -> list[str]:
    return [str(message.get("content")) for message in messages if isinstance(message, dict)]


async def test_a_transition_and_an_end_call_run_through_pipecats_flow_manager() -> None:
    definition = parse_template(load_example("cod_confirmation"))
    record = CallRecord(definition.name)
    ends: list[ConversationEnd] = []

    async def on_end(end: ConversationEnd) -> None:
        ends.append(end)

    plan = build_flow(definition, COD_PAYLOAD, record=record, on_end=on_end)
    llm = ScriptedFunctionLLM(
        [("identity_confirmed", {}), ("cancel_order", {"reason": "changed_mind"})]
    )

    down, manager = await run_call(plan, llm)

    assert manager is not None and manager.current_node == "cancel_order:end"
    assert [(t.from_node, t.to_node, t.function, t.arguments) for t in record.traversals] == [
        ("verify_identity", "confirm_order", "identity_confirmed", {}),
        ("confirm_order", None, "cancel_order", {"reason": "changed_mind"}),
    ]
    assert llm.offered == [
        ["request_callback", "talk_to_support", "identity_confirmed", "wrong_person"],
        [
            "request_callback",
            "talk_to_support",
            "confirm_order",
            "cancel_order",
            "reschedule_delivery",
        ],
    ]
    # The greeting first, the goodbye last, placeholders in the payload left as sent.
    assert spoken(down) == [
        "Hello, this is Riya calling from Kurta Co. "
        "Am I speaking with Asha {{ order_id }} {{ nope }}?",
        "Okay, I have cancelled order A-1001. Thank you for letting us know.",
    ]
    assert isinstance(down[-1], EndFrame)
    first_inference = message_texts(llm.messages[0])
    assert any("speaking with Asha {{ order_id }} {{ nope }}. If" in m for m in first_inference)
    assert any("order A-1001 for 2 cotton kurtas" in m for m in message_texts(llm.messages[1]))
    # Only the first node has a role message; pipecat keeps it as the system instruction.
    [instruction] = llm.system_instructions
    assert str(instruction).startswith("You are Riya, a polite and brief voice assistant for Kurta")
    assert record.outcome is Outcome.CANCELLED_BY_CUSTOMER
    assert ends == [ConversationEnd(Outcome.CANCELLED_BY_CUSTOMER)]


async def test_a_template_end_conversation_action_records_its_outcome_in_the_pipeline() -> None:
    definition = parse_template(load_example("appointment_reminder"))
    record = CallRecord(definition.name)
    ends: list[ConversationEnd] = []

    async def on_end(end: ConversationEnd) -> None:
        ends.append(end)

    plan = build_flow(definition, APPOINTMENT_PAYLOAD, record=record, on_end=on_end)
    llm = ScriptedFunctionLLM(
        [
            ("reschedule_appointment", {}),
            ("record_preferred_slot", {"preferred_date": "2026-03-10", "part_of_day": "morning"}),
        ]
    )

    down, manager = await run_call(plan, llm)

    assert manager is not None and manager.current_node == "goodbye_rescheduled"
    assert [t.to_node for t in record.traversals] == ["collect_new_slot", "goodbye_rescheduled"]
    assert record.outcome is Outcome.RESCHEDULED
    assert ends == [ConversationEnd(Outcome.RESCHEDULED)]
    assert len(llm.offered) == 3  # the goodbye node ran the LLM before its post-actions ended it
    assert isinstance(down[-1], EndFrame)
