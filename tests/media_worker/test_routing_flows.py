"""`route_to_agent` from the front-desk example to its agents: the offered function, refusals,
`max_routes`, what each context mode carries, and a whole routed call through pipecat's
FlowManager with the scripted LLM, a tone voice and the call's transcript recorder."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import pytest
from pipecat.flows import ContextStrategy, FlowManager, FlowsFunctionSchema, NodeConfig
from pipecat.frames.frames import EndFrame, Frame, StartFrame, TranscriptionFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.tests.utils import run_test

from media_worker.flows import ConversationEnd, FlowPlan, build_flow
from media_worker.flows.routing import ROUTE_REFUSED, VoiceChange, llm_summarizer
from media_worker.pipeline import TranscriptRecorder
from media_worker.providers.scripted_llm import ScriptedLLMService, ScriptPolicy
from media_worker.providers.tone_tts import ToneTTSService
from media_worker.record import CallEventKind, CallRecord
from shared.enums import Outcome
from shared.templates import TemplateDefinition, load_example, parse_template, render_text
from tests.media_worker.payloads import APPOINTMENT_PAYLOAD, COD_PAYLOAD

PAYLOAD: dict[str, object] = {**COD_PAYLOAD, **APPOINTMENT_PAYLOAD}
COD = parse_template(load_example("cod_confirmation"))
CLINIC = parse_template(load_example("appointment_reminder"))
AGENTS = {"order_confirmation": COD, "appointment_reminder": CLINIC}
COD_GREETING = "Hello, this is Riya calling from Kurta Co. Am I speaking with Asha Verma?"
CALL_TIMEOUT_S = 20
ENTRY = "order_confirmation.verify_identity"


def front_desk(**orchestrator: Any) -> TemplateDefinition:
    document = copy.deepcopy(load_example("front_desk"))
    document["orchestrator"].update(orchestrator)  # type: ignore[attr-defined]
    return parse_template(document)


class Call:
    """One call's plan with what its callbacks were told."""

    def __init__(self, definition: TemplateDefinition, **build: Any) -> None:
        self.record = CallRecord(definition.name)
        self.ends: list[ConversationEnd] = []
        self.voices: list[tuple[VoiceChange, int]] = []
        self.plan: FlowPlan = build_flow(
            definition,
            build.pop("payload", PAYLOAD),
            record=self.record,
            on_end=self._on_end,
            agents=build.pop("agents", AGENTS),
            on_voice_change=self._on_voice_change,
            **build,
        )

    async def _on_end(self, end: ConversationEnd) -> None:
        self.ends.append(end)

    async def _on_voice_change(self, change: VoiceChange) -> None:
        # With how many transcript turns were in when the voice changed.
        self.voices.append((change, len(self.record.utterances)))


class FakeManager:
    """What the handlers read of a FlowManager: the node and the conversation so far."""

    def __init__(self, node: str, messages: Sequence[dict[str, Any]] = ()) -> None:
        self.current_node = node
        self._messages = list(messages)

    def get_current_context(self) -> list[dict[str, Any]]:
        return self._messages


def route_function(config: NodeConfig) -> FlowsFunctionSchema:
    [route] = [f for f in config["functions"] if f.name == "route_to_agent"]
    assert isinstance(route, FlowsFunctionSchema)
    return route


async def route(call: Call, manager: Any, **args: Any) -> tuple[Any, Any]:
    handler = route_function(call.plan.initial_node()).handler
    assert handler is not None
    result: tuple[Any, Any] = await handler(args, manager)  # type: ignore[call-arg,arg-type]
    return result


async def run_switch(node: NodeConfig, manager: Any) -> None:
    """The entry node's first pre-action, as pipecat runs it once the pipeline reaches it."""
    action = node["pre_actions"][0]
    assert action["type"] == "function"
    await action["handler"](action, manager)


# --- the offered function ----------------------------------------------------------------------


def test_route_to_agent_is_offered_in_the_orchestrator_with_the_agents_as_an_enum() -> None:
    call = Call(front_desk())
    triage = call.plan.initial_node()
    names = [f.name for f in triage["functions"]]
    route_schema = route_function(triage)

    assert names == ["request_callback", "not_interested", "route_to_agent"]
    assert route_schema.properties["agent"]["enum"] == [
        "order_confirmation",
        "appointment_reminder",
    ]
    assert route_schema.required == ["agent", "reason"]
    assert "appointment_reminder: Confirms, moves or cancels" in route_schema.description


async def test_an_agent_without_its_payload_is_not_offered() -> None:
    call = Call(front_desk(), payload={**COD_PAYLOAD})  # nothing for the clinic
    assert route_function(call.plan.initial_node()).properties["agent"]["enum"] == [
        "order_confirmation"
    ]
    nobody = Call(front_desk(), agents={})
    assert [f.name for f in nobody.plan.initial_node()["functions"]] == [
        "request_callback",
        "not_interested",
    ]


async def test_a_route_enters_the_agents_initial_node_with_its_functions_only() -> None:
    call = Call(front_desk(context="full"))
    manager = FakeManager("triage")

    result, node = await route(call, manager, agent="order_confirmation", reason="my order")

    assert result is None
    assert node["name"] == "order_confirmation.verify_identity"
    assert [f.name for f in node["functions"]] == [
        "request_callback",
        "talk_to_support",
        "identity_confirmed",
        "wrong_person",
    ]
    assert node["role_message"].startswith("You are Riya")
    assert [a["type"] for a in node["pre_actions"]] == ["function", "tts_say"]
    assert node["pre_actions"][1]["text"] == COD_GREETING
    assert node["context_strategy"].strategy is ContextStrategy.APPEND
    # The agent's own transitions stay in its namespace.
    identity = next(f for f in node["functions"] if f.name == "identity_confirmed")
    _, confirm = await identity.handler({}, FakeManager(node["name"]))
    assert confirm["name"] == "order_confirmation.confirm_order"
    assert "route_to_agent" not in [f.name for f in confirm["functions"]]

    assert call.record.events == ()  # the switch happens when the pipeline reaches it
    await run_switch(node, manager)
    [switched] = call.record.events
    assert switched.kind == CallEventKind.AGENT_SWITCHED
    assert switched.details == {
        "from": "Front desk",
        "to": "COD order confirmation",
        "reason": "my order",
    }
    assert [change for change, _ in call.voices] == [
        VoiceChange("order_confirmation", "COD order confirmation", COD.voice)
    ]
    assert [(t.from_node, t.to_node, t.function, t.arguments) for t in call.record.traversals] == [
        (
            "triage",
            "order_confirmation.verify_identity",
            "route_to_agent",
            {"agent": "order_confirmation", "reason": "my order"},
        ),
        (
            "order_confirmation.verify_identity",
            "order_confirmation.confirm_order",
            "identity_confirmed",
            {},
        ),
    ]


# --- refusals ----------------------------------------------------------------------------------


async def test_an_unknown_agent_is_refused_and_the_call_stays() -> None:
    call = Call(front_desk())

    result, node = await route(call, FakeManager("triage"), agent="billing", reason="refund")

    assert node is None
    assert result["status"] == "error"
    assert result["error"] == (
        "unknown agent 'billing'; choose one of: order_confirmation, appointment_reminder"
    )
    [traversal] = call.record.traversals
    assert (traversal.from_node, traversal.to_node) == ("triage", "triage")
    [event] = call.record.events
    assert event.kind == ROUTE_REFUSED and event.details["agent"] == "billing"
    # A good route afterwards still goes through.
    _, node = await route(call, FakeManager("triage"), agent="appointment_reminder", reason="x")
    assert node["name"] == "appointment_reminder.remind"


async def test_max_routes_is_enforced() -> None:
    call = Call(front_desk(max_routes=1))
    manager = FakeManager("triage")

    _, first = await route(call, manager, agent="order_confirmation", reason="order")
    busy, none = await route(call, manager, agent="appointment_reminder", reason="clinic")
    assert none is None and busy["error"].startswith("a hand-off is already under way")

    await run_switch(first, manager)
    refused, stays = await route(call, manager, agent="appointment_reminder", reason="clinic")

    assert stays is None
    assert refused == {
        "status": "error",
        "error": "no more hand-offs: this call has had 1, the most allowed; "
        "carry on with the customer here",
    }
    assert [e.kind for e in call.record.events] == [
        ROUTE_REFUSED,
        CallEventKind.AGENT_SWITCHED,
        ROUTE_REFUSED,
    ]


async def test_two_routes_are_allowed_when_max_routes_says_so() -> None:
    call = Call(front_desk(max_routes=2))
    manager = FakeManager("triage")
    _, first = await route(call, manager, agent="order_confirmation", reason="order")
    await run_switch(first, manager)
    _, second = await route(call, manager, agent="appointment_reminder", reason="clinic")
    assert second["name"] == "appointment_reminder.remind"


# --- what each context mode carries ------------------------------------------------------------

HISTORY = [
    {"role": "developer", "content": "You have just asked Asha Verma what the call is about."},
    {"role": "assistant", "content": "Which one would you like to talk about?"},
    {"role": "user", "content": "It's about my order {{ order_id }}"},
]


@pytest.mark.parametrize("mode", ["full", "fresh", "summary"])
async def test_context_modes(mode: str) -> None:
    call = Call(front_desk(context=mode))
    _, node = await route(
        call, FakeManager("triage", HISTORY), agent="order_confirmation", reason="order"
    )

    agent_tasks = [m for m in node["task_messages"] if m["role"] == "developer"][-1]
    assert "You have just asked whether you are speaking with Asha Verma" in agent_tasks["content"]
    strategy = node["context_strategy"].strategy
    if mode == "full":
        assert strategy is ContextStrategy.APPEND
        assert len(node["task_messages"]) == 1  # the history stays; the agent's task is added
        return
    assert strategy is ContextStrategy.RESET
    roles = [m["role"] for m in node["task_messages"]]
    if mode == "fresh":
        assert roles == ["assistant", "developer"]
        assert node["task_messages"][0]["content"] == COD_GREETING
        return
    assert roles == ["developer", "assistant", "developer"]
    summary = node["task_messages"][0]["content"]
    # The FlowManager renders task messages again: the customer's words come out as said.
    assert render_text(summary, {}) == (
        "You are taking over this call. The call was handed to you because: order. Summary of "
        "the conversation so far: Agent: Which one would you like to talk about? / Customer: "
        "It's about my order {{ order_id }}"
    )


async def test_the_summary_can_come_from_the_calls_llm() -> None:
    llm = ScriptedLLMService(policy=ScriptPolicy())
    call = Call(front_desk(context="summary"), summarize=llm_summarizer(llm))
    _, node = await route(
        call, FakeManager("triage", HISTORY), agent="order_confirmation", reason=""
    )
    assert node["task_messages"][0]["content"].endswith(
        "so far: The customer said: It's about my order \\{{ order_id }}"
    )


async def test_a_failing_summariser_falls_back_to_the_last_turns() -> None:
    async def broken(messages: Any) -> str | None:
        raise RuntimeError("model down")

    call = Call(front_desk(context="summary"), summarize=broken)
    _, node = await route(
        call, FakeManager("triage", HISTORY), agent="order_confirmation", reason=""
    )
    assert "Customer: It's about my order" in node["task_messages"][0]["content"]


# --- a whole routed call -----------------------------------------------------------------------


class FlowStarter(FrameProcessor):
    """Runs `drive` once the pipeline has started (it needs the worker `run_test` creates)."""

    def __init__(self, drive: Callable[[PipelineWorker], Coroutine[Any, Any, None]]) -> None:
        super().__init__()
        self._drive = drive

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)
        if isinstance(frame, StartFrame):
            self.create_task(self._drive(self.pipeline_worker), "drive_call")


async def until(condition: Callable[[], bool]) -> None:
    """Wait for `condition`; the caller bounds the wait."""
    # Polling: the CallRecord is plain bookkeeping with nothing to await, and it is owned
    # elsewhere, so it gains no event just for this test.
    while not condition():  # noqa: ASYNC110
        await asyncio.sleep(0.01)


def said(record: CallRecord, words: str) -> Callable[[], bool]:
    return lambda: any(words in u.text for u in record.utterances)


async def run_routed_call(call: Call) -> tuple[Sequence[Frame], FlowManager]:
    """The customer asks for the order agent, confirms who they are and the order."""
    pair = LLMContextAggregatorPair(LLMContext())
    llm = ScriptedLLMService(policy=ScriptPolicy())
    managers: list[FlowManager] = []
    failures: list[BaseException] = []

    async def say(worker: PipelineWorker, words: str) -> None:
        await worker.queue_frame(TranscriptionFrame(words, "customer", "", finalized=True))

    async def drive(worker: PipelineWorker) -> None:
        try:
            async with asyncio.timeout(CALL_TIMEOUT_S):
                manager = FlowManager(worker=worker, llm=llm, context_aggregator=pair)
                managers.append(manager)
                await manager.initialize(call.plan.initial_node())
                await until(said(call.record, "Which one would you like to talk about?"))
                await say(worker, "It's about my order.")
                # The agent's node is set once its context and tools are queued: words said
                # from then on reach the agent (a reset would drop earlier ones).
                entered = said(call.record, "Am I speaking with Asha Verma?")
                await until(lambda: entered() and manager.current_node == ENTRY)
                await say(worker, "Yes, speaking.")
                await until(said(call.record, "would like to go ahead?"))
                await say(worker, "Yes, go ahead.")
        except BaseException as exc:  # end the pipeline now rather than at the test timeout
            failures.append(exc)
            await worker.queue_frame(EndFrame())

    pipeline = Pipeline(
        [
            FlowStarter(drive),
            TranscriptRecorder(call.record, speaker="customer"),
            pair.user(),
            llm,
            ToneTTSService(ms_per_char=1),
            TranscriptRecorder(call.record, speaker="agent", tts_provider="tone"),
            pair.assistant(),
        ]
    )
    down, _ = await asyncio.wait_for(
        run_test(pipeline, frames_to_send=[], send_end_frame=False), CALL_TIMEOUT_S + 5
    )
    assert failures == []
    return down, managers[0]


@pytest.mark.parametrize("mode", ["summary", "full", "fresh"])
async def test_orchestrator_to_agent_to_end_call_in_one_transcript(mode: str) -> None:
    call = Call(front_desk(context=mode))

    down, manager = await run_routed_call(call)

    assert isinstance(down[-1], EndFrame)
    assert manager.current_node == "confirm_order:end"
    assert call.record.outcome is Outcome.CONFIRMED
    assert call.ends == [ConversationEnd(Outcome.CONFIRMED)]
    assert [(t.function, t.to_node) for t in call.record.traversals] == [
        ("route_to_agent", "order_confirmation.verify_identity"),
        ("identity_confirmed", "order_confirmation.confirm_order"),
        ("confirm_order", None),
    ]
    assert call.record.traversals[0].arguments == {
        "agent": "order_confirmation",
        "reason": "It's about my order.",
    }
    # One transcript: the desk's turns, then the agent's, each labelled with who spoke.
    turns = [(u.speaker, u.agent, u.text) for u in call.record.utterances]
    assert turns[0] == ("agent", "Front desk", render_text(call.plan.definition.greeting, {
        "customer_name": "Asha Verma", "store_name": "Kurta Co"}))  # fmt: skip
    assert turns[1] == ("customer", None, "It's about my order.")
    assert turns[2] == ("agent", "COD order confirmation", COD_GREETING)
    assert turns[3] == ("customer", None, "Yes, speaking.")
    assert turns[-2] == ("customer", None, "Yes, go ahead.")
    assert turns[-1][:2] == ("agent", "COD order confirmation")
    assert turns[-1][2].startswith("Thank you, Asha Verma. Your order is confirmed.")
    # The voice changed after the desk's last words and before the agent's first.
    [(change, turns_before)] = call.voices
    assert change.voice == COD.voice and turns_before == 2

    context = manager.get_current_context()
    texts = [str(m.get("content")) for m in context if isinstance(m, dict)]
    desk_task = "You have just asked Asha Verma whether they want"
    carried_summary = any(t.startswith("You are taking over this call.") for t in texts)
    assert any(desk_task in t for t in texts) is (mode == "full")
    assert carried_summary is (mode == "summary")
    if mode == "summary":
        [summary] = [t for t in texts if t.startswith("You are taking over")]
        assert "Customer: It's about my order." in summary
