"""The scripted LLM: keyword choice among offered functions, real function calls, text replies."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import date
from typing import Any

import pytest
from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
from pipecat.flows import FlowArgs, FlowManager, FlowsFunctionSchema, NodeConfig
from pipecat.frames.frames import (
    EndFrame,
    Frame,
    FunctionCallInProgressFrame,
    FunctionCallResultFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMServiceMetadataFrame,
    LLMTextFrame,
    TranscriptionFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.llm_service import FunctionCallParams
from pipecat.tests.utils import run_test
from pipecat.utils.types import NOT_GIVEN
from pipecat.workers.runner import WorkerRunner

from media_worker.providers.scripted_args import spoken_date
from media_worker.providers.scripted_context import GENERIC_OPENING, REPROMPT, opening_line
from media_worker.providers.scripted_intents import (
    DEFAULT_INTENTS,
    Intent,
    ToolSpec,
    choose_tool,
)
from media_worker.providers.scripted_llm import Call, Say, ScriptedLLMService, ScriptPolicy
from shared.templates import FunctionSpec, load_example, parse_template
from simulator.personas import PERSONAS, Act

TODAY = date(2026, 3, 12)  # a Thursday
WAIT_S = 10.0
TASK = "Ask whether it is ok."
POLICY = ScriptPolicy(today=lambda: TODAY)
COD = parse_template(load_example("cod_confirmation"))
CLINIC = parse_template(load_example("appointment_reminder"))


def offered(template: Any, node: str) -> list[ToolSpec]:
    """The tools FlowManager offers at `node`: the global functions first, then the node's."""
    specs: list[FunctionSpec] = [*template.global_functions, *template.nodes[node].functions]
    return [
        ToolSpec(
            name=spec.name,
            description=spec.description,
            properties={k: v.model_dump(exclude_none=True) for k, v in spec.properties.items()},
            required=tuple(spec.required),
        )
        for spec in specs
    ]


def context(words: str | None, tools: list[ToolSpec], task: str = TASK) -> LLMContext:
    messages: list[Any] = [{"role": "developer", "content": task}]
    if words is not None:
        messages.append({"role": "user", "content": words})
    schemas = [
        FunctionSchema(t.name, t.description, dict(t.properties), list(t.required)) for t in tools
    ]
    tools_schema = ToolsSchema(standard_tools=schemas) if schemas else NOT_GIVEN
    return LLMContext(messages=messages, tools=tools_schema)


def decide(words: str | None, tools: list[ToolSpec], task: str = TASK) -> Say | Call:
    return ScriptedLLMService(policy=POLICY).decide(context(words, tools, task))


def persona_lines(name: str) -> list[str]:
    return [step.text for step in PERSONAS[name].steps if step.act is Act.SAY]


@pytest.mark.parametrize(
    ("node", "words", "function", "arguments"),
    [
        ("verify_identity", "Yes, this is me. I can confirm the order.", "identity_confirmed", {}),
        ("verify_identity", "haan ji", "identity_confirmed", {}),
        (
            "verify_identity",
            "No, I do not want this order anymore. Please cancel it.",
            "identity_confirmed",
            {},
        ),
        ("verify_identity", "No.", "wrong_person", {}),
        (
            "verify_identity",
            "Sorry, you have the wrong number. There is nobody by that name here.",
            "wrong_person",
            {},
        ),
        ("verify_identity", "It's not me", "wrong_person", {}),
        (
            "verify_identity",
            "I am busy right now. Can you call me back tomorrow evening?",
            "request_callback",
            {"preferred_time": "I am busy right now. Can you call me back tomorrow evening?"},
        ),
        ("verify_identity", "Can I talk to customer care?", "talk_to_support", {}),
        ("confirm_order", "Yes, that is correct. Please go ahead.", "confirm_order", {}),
        ("confirm_order", "Yes, cancel it please.", "cancel_order", {"reason": "changed_mind"}),
        (
            "confirm_order",
            "Cancel it, I ordered by mistake",
            "cancel_order",
            {"reason": "ordered_by_mistake"},
        ),
        ("confirm_order", "nahi", "cancel_order", {"reason": "changed_mind"}),
        ("confirm_order", "Can you bring it another day?", "reschedule_delivery", {}),
        (
            "reschedule",
            "Yes, tomorrow at six in the evening works.",
            "set_delivery_date",
            {"new_date": "2026-03-13", "time_of_day": "evening"},
        ),
        ("reschedule", "Monday please", "set_delivery_date", {"new_date": "2026-03-16"}),
    ],
)
def test_cod_template_choices(
    node: str, words: str, function: str, arguments: dict[str, Any]
) -> None:
    assert decide(words, offered(COD, node)) == Call(function, arguments)


def test_clinic_template_choices() -> None:
    remind = offered(CLINIC, "remind")
    assert decide("Yes, I will be there", remind) == Call("confirm_appointment", {})
    assert decide("I need another day", remind) == Call("reschedule_appointment", {})
    assert decide("Please cancel, I'm travelling", remind) == Call(
        "cancel_appointment", {"reason": "Please cancel, I'm travelling"}
    )
    assert decide("Is fasting needed? Let me talk to someone", remind) == Call(
        "connect_front_desk", {}
    )
    slot = offered(CLINIC, "collect_new_slot")
    assert decide("Friday afternoon", slot) == Call(
        "record_preferred_slot", {"preferred_date": "2026-03-13", "part_of_day": "afternoon"}
    )


def test_personas_lead_the_cod_flow_to_their_outcome() -> None:
    """The simulator's scripted customers, answered by the scripted LLM, node by node."""
    walk = {
        "confirm": [("verify_identity", "identity_confirmed"), ("confirm_order", "confirm_order")],
        "decline": [("verify_identity", "identity_confirmed"), ("confirm_order", "cancel_order")],
        "wrong_person": [("verify_identity", "wrong_person")],
        "reschedule": [("verify_identity", "request_callback")],
    }
    for persona, steps in walk.items():
        lines = persona_lines(persona)
        for (node, expected), line in zip(steps, lines, strict=False):
            reply = decide(line, offered(COD, node))
            assert isinstance(reply, Call) and reply.function_name == expected, (persona, line)


def test_nothing_matching_asks_again() -> None:
    assert decide("Which order is this about?", offered(COD, "verify_identity")) == Say(REPROMPT)
    assert decide("yes", []) == Say(REPROMPT)
    # A keyword whose intent no offered tool serves is no match either.
    tools = [ToolSpec("record_note", "Write down a note.")]
    assert decide("cancel it", tools) == Say(REPROMPT)


def test_first_turn_speaks_the_task_or_greeting() -> None:
    task = (
        "Tell the customer that order A-1 for 2 kurtas will be delivered on Friday, and that "
        "899 rupees is to be paid in cash at delivery. Say the date in words. Ask whether "
        "they would like to go ahead. If they confirm, call confirm_order."
    )
    assert decide(None, offered(COD, "confirm_order"), task) == Say(
        "Order A-1 for 2 kurtas will be delivered on Friday, and 899 rupees is to be paid in "
        "cash at delivery. Could you tell me whether you would like to go ahead?"
    )
    assert opening_line("Ask which day suits the customer for delivery.") == (
        "Could you tell me which day suits you for delivery?"
    )
    assert opening_line("Repeat the chosen date back.") == GENERIC_OPENING
    greeting = ScriptedLLMService(policy=replace(POLICY, greeting="Hello!"))
    assert greeting.decide(context(None, [])) == Say("Hello!")
    after = LLMContext(messages=[{"role": "assistant", "content": "Hello!"}])
    assert greeting.decide(after) == Say(GENERIC_OPENING)


def test_keyword_table_is_overridable() -> None:
    intents = (Intent("confirm", ("affirmative",), ("confirm",), affirmative=True),)
    tools = [ToolSpec("confirm_order", "", {"ok": {"type": "boolean"}}, ("ok",))]
    assert choose_tool("yes", tools, intents) is None
    llm = ScriptedLLMService(policy=replace(POLICY, intents=intents))
    assert llm.decide(context("Affirmative.", tools)) == Call("confirm_order", {"ok": True})
    assert [i.name for i in DEFAULT_INTENTS][:3] == ["wrong_person", "human", "callback"]


def test_spoken_dates() -> None:
    assert spoken_date("day after tomorrow", TODAY) == date(2026, 3, 14)
    assert spoken_date("kal", TODAY) == date(2026, 3, 13)
    assert spoken_date("next Thursday", TODAY) == date(2026, 3, 19)
    assert spoken_date("whenever", TODAY) is None


async def test_function_is_called_through_pipecats_function_calling() -> None:
    """Handlers carried by the context's tools run, with the standard frames around them."""
    calls: list[tuple[str, dict[str, Any]]] = []

    async def handler(params: FunctionCallParams) -> None:
        calls.append((params.function_name, dict(params.arguments)))
        await params.result_callback({"status": "done"})

    tools = ToolsSchema(
        standard_tools=[
            FunctionSchema("confirm_order", "Order goes ahead.", {}, [], handler=handler),
            FunctionSchema(
                "cancel_order",
                "Customer does not want it.",
                {"reason": {"type": "string", "enum": ["changed_mind", "too_late"]}},
                ["reason"],
                handler=handler,
            ),
        ]
    )
    ctx = LLMContext(messages=[{"role": "user", "content": "Cancel, it is too late"}], tools=tools)

    down, _ = await run_test(
        ScriptedLLMService(policy=POLICY), frames_to_send=[LLMContextFrame(context=ctx)]
    )

    assert calls == [("cancel_order", {"reason": "too_late"})]
    kinds = [type(f) for f in down]
    assert kinds.index(LLMFullResponseStartFrame) < kinds.index(FunctionCallInProgressFrame)
    assert FunctionCallResultFrame in kinds and LLMFullResponseEndFrame in kinds
    assert LLMTextFrame not in kinds


async def test_text_reply_frames() -> None:
    ctx = LLMContext(messages=[{"role": "user", "content": "What?"}])
    down, _ = await run_test(
        ScriptedLLMService(policy=POLICY), frames_to_send=[LLMContextFrame(context=ctx)]
    )
    reply = [f for f in down if not isinstance(f, LLMServiceMetadataFrame)]
    assert type(reply[0]) is LLMFullResponseStartFrame
    assert type(reply[-1]) is LLMFullResponseEndFrame
    texts = reply[1:-1]
    assert texts and all(isinstance(f, LLMTextFrame) for f in texts)
    assert "".join(f.text for f in texts if isinstance(f, LLMTextFrame)) == REPROMPT


def _node(name: str, task: str, functions: list[Any], *, respond: bool) -> NodeConfig:
    return {
        "name": name,
        "task_messages": [{"role": "developer", "content": task}],
        "functions": functions,
        "respond_immediately": respond,
    }


class _TextCollector(FrameProcessor):
    """Keeps the LLM's text; `asked` is set once it has asked a question."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self.asked = asyncio.Event()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMTextFrame):
            self.texts.append(frame.text)
            if "?" in frame.text:
                self.asked.set()
        await self.push_frame(frame, direction)


async def run_pipeline(
    pipeline: Pipeline, drive: Callable[[PipelineWorker], Awaitable[None]]
) -> None:
    """Run `pipeline`, call `drive` once it has started, then end it (also when `drive` fails)."""
    worker = PipelineWorker(pipeline, cancel_on_idle_timeout=False)
    started = asyncio.Event()
    failures: list[Exception] = []

    @worker.event_handler("on_pipeline_started")  # type: ignore[untyped-decorator]
    async def _on_started(worker: PipelineWorker, frame: Frame) -> None:
        started.set()

    async def go() -> None:
        try:
            async with asyncio.timeout(WAIT_S):
                await started.wait()
                await drive(worker)
        except Exception as exc:  # reported after the pipeline has ended
            failures.append(exc)
        finally:
            await worker.queue_frame(EndFrame())

    runner = WorkerRunner()
    await runner.add_workers(worker)
    await asyncio.gather(runner.run(), go())
    if failures:
        raise failures[0]


async def test_flow_manager_transitions_through_scripted_calls() -> None:
    """Customer transcripts drive a two-node flow: the scripted call runs the edge handler,
    FlowManager moves on, the LLM opens the new node from its task, the next answer runs the
    node's function."""
    handled: list[tuple[str, dict[str, Any]]] = []
    order_confirmed = asyncio.Event()

    async def confirmed(args: FlowArgs, manager: FlowManager) -> tuple[None, NodeConfig]:
        handled.append(("identity_confirmed", dict(args)))
        return None, order_node

    async def confirm(args: FlowArgs, manager: FlowManager) -> tuple[dict[str, str], None]:
        handled.append(("confirm_order", dict(args)))
        order_confirmed.set()
        return {"status": "confirmed"}, None

    order_node = _node(
        "confirm_order",
        "Ask whether they want order A-1 delivered on Friday.",
        [FlowsFunctionSchema("confirm_order", "Order goes ahead.", {}, [], handler=confirm)],
        respond=True,
    )
    verify_node = _node(
        "verify_identity",
        "You asked who is speaking.",
        [FlowsFunctionSchema("identity_confirmed", "The customer.", {}, [], handler=confirmed)],
        respond=False,
    )
    pair = LLMContextAggregatorPair(LLMContext())
    llm = ScriptedLLMService(policy=POLICY)
    collector = _TextCollector()
    pipeline = Pipeline([pair.user(), llm, collector, pair.assistant()])
    managers: list[FlowManager] = []

    async def drive(worker: PipelineWorker) -> None:
        manager = FlowManager(worker=worker, llm=llm, context_aggregator=pair)
        managers.append(manager)
        await manager.initialize(verify_node)
        await worker.queue_frame(TranscriptionFrame("Yes, speaking.", "c", "", finalized=True))
        await collector.asked.wait()
        await worker.queue_frame(TranscriptionFrame("Haan, go ahead", "c", "", finalized=True))
        await order_confirmed.wait()

    await run_pipeline(pipeline, drive)

    assert managers[0].current_node == "confirm_order"
    assert handled == [("identity_confirmed", {}), ("confirm_order", {})]
    assert "".join(collector.texts).startswith(
        "Could you tell me whether you want order A-1 delivered on Friday?"
    )
