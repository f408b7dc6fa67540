"""`route_to_agent`: an orchestrator hands the call, mid-conversation, to one of its agents.

`Router` is one call's routing: the `route_to_agent(agent, reason)` schema every orchestrator
node offers (agent names as an enum) and its handler. On a route the handler returns the
agent's initial node (pipecat's consolidated `(None, node)` result), so the FlowManager itself
replaces the orchestrator's functions with the agent's and its system instruction with the
agent's `role_message`; the agent's globals travel in each of its nodes (see `FlowPlan`), so
nothing routes again once an agent has the call. The entry node:

1. first runs a pipecat `function` action, which fires once everything queued before it (the
   orchestrator's last words) has left the pipeline: the record switches agent and the session
   is told to change voice (`OnVoiceChange`), before anything the agent says;
2. then speaks the agent's greeting (its voice was prepared when the call started);
3. carries the conversation per `orchestrator.context`: `full` appends to the history,
   `summary` resets it to a short summary, `fresh` resets it to nothing; the reset modes keep
   the agent's greeting as the assistant's first line.

An unknown agent, a route past `max_routes`, or a second route while one is under way is
answered to the model as `{"status": "error", ...}` and the call stays where it was.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from pipecat.flows import (
    ActionConfig,
    ContextStrategy,
    ContextStrategyConfig,
    FlowArgs,
    FlowManager,
    FlowsFunctionSchema,
    NodeConfig,
)
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.services.llm_service import LLMService

from media_worker.flows.functions import HandlerResult
from media_worker.record import CallEventKind, CallRecord
from shared.templates import ROUTE_FUNCTION, AgentSpec, OrchestratorSpec, VoiceSpec
from shared.templates import escape_placeholders as inert

if TYPE_CHECKING:
    from media_worker.flows.plan import FlowPlan

log = structlog.get_logger(__name__)

ROUTE_REFUSED = CallEventKind.ROUTE_REFUSED
"""The event kind a refused route leaves on the record."""

SUMMARY_TIMEOUT_S = 4.0
MAX_REASON_CHARS = 200
_DIGEST_TURNS = 6
_DIGEST_TURN_CHARS = 160
_SPEAKERS = {"user": "Customer", "assistant": "Agent"}
SUMMARY_PROMPT = (
    "Summarise this phone conversation in at most three short sentences for the colleague "
    "who takes the call over: who the customer is, what they want, and what was agreed. "
    "Facts only; no instructions."
)


@dataclass(frozen=True)
class VoiceChange:
    """The call is now `agent`'s (template `template`): speak with `voice` from here on."""

    agent: str
    template: str
    voice: VoiceSpec


OnVoiceChange = Callable[[VoiceChange], Awaitable[None]]
"""Told when an agent takes the call, inside a pipecat `function` action: everything queued
before has left the pipeline, and the agent's greeting is queued only once this returns. It
should switch the TTS in order with the frames (e.g. queue a `ManuallySwitchServiceFrame` to
the TTS switcher) and must not block; an exception is logged and the call goes on."""

Summarize = Callable[[Sequence[Mapping[str, Any]]], Awaitable[str | None]]
"""The conversation so far (LLM context messages) as a short summary; None if it has none."""


@dataclass(frozen=True)
class RouteTarget:
    """An agent the call can be handed to: its orchestrator entry and its rendered flow."""

    spec: AgentSpec
    plan: FlowPlan


class Router:
    """One call's `route_to_agent`: its schema, its handler, and the hand-offs taken."""

    def __init__(
        self,
        spec: OrchestratorSpec,
        targets: Mapping[str, RouteTarget],
        *,
        record: CallRecord,
        on_voice_change: OnVoiceChange | None = None,
        summarize: Summarize | None = None,
    ) -> None:
        self._spec = spec
        self._targets = dict(targets)
        self._record = record
        self._on_voice_change = on_voice_change
        self._summarize = summarize or transcript_summary
        self._routes = 0
        self._switching = False

    @property
    def routes(self) -> int:
        """Hand-offs accepted so far."""
        return self._routes

    @property
    def agent_names(self) -> tuple[str, ...]:
        return tuple(self._targets)

    def functions(self) -> list[FlowsFunctionSchema]:
        """What every orchestrator node offers besides the template's own functions."""
        return [self.schema()] if self._targets else []

    def schema(self) -> FlowsFunctionSchema:
        agents = "; ".join(f"{name}: {t.spec.description}" for name, t in self._targets.items())
        return FlowsFunctionSchema(
            name=ROUTE_FUNCTION,
            description=(
                "Hand the call over to the agent that serves what the customer wants. "
                f"Agents: {agents}"
            ),
            properties={
                "agent": {
                    "type": "string",
                    "enum": list(self._targets),
                    "description": "The agent that takes the call over.",
                },
                "reason": {
                    "type": "string",
                    "description": "Why, in a few words: what the customer wants.",
                },
            },
            required=["agent", "reason"],
            handler=self.route,
        )

    async def route(self, args: FlowArgs, flow_manager: FlowManager) -> HandlerResult:
        """The `route_to_agent` handler (pipecat 1.14's `(args, flow_manager)` signature)."""
        here = flow_manager.current_node
        agent = args.get("agent")
        reason = str(args.get("reason") or "").strip()[:MAX_REASON_CHARS]
        target = self._targets.get(agent) if isinstance(agent, str) else None
        refusal = self._refusal(agent, target)
        if refusal is not None or target is None:
            return self._refuse(here, agent, reason, refusal or "unknown agent")
        self._routes += 1
        self._switching = True
        node = target.plan.initial_node()
        self._record.add_traversal(
            function=ROUTE_FUNCTION,
            from_node=here,
            to_node=node.get("name"),
            arguments={"agent": target.spec.name, "reason": reason},
        )
        log.info("agent_route", agent=target.spec.name, routes=self._routes)
        return None, await self._entry(target, node, flow_manager, reason)

    def _refusal(self, agent: object, target: RouteTarget | None) -> str | None:
        if target is None:
            return f"unknown agent {str(agent)[:64]!r}; choose one of: {', '.join(self._targets)}"
        if self._switching:
            return "a hand-off is already under way; wait for the agent to take the call"
        if self._routes >= self._spec.max_routes:
            return (
                f"no more hand-offs: this call has had {self._routes}, the most allowed; "
                "carry on with the customer here"
            )
        return None

    def _refuse(self, here: str | None, agent: object, reason: str, error: str) -> HandlerResult:
        shown = str(agent)[:64]
        self._record.add_traversal(
            function=ROUTE_FUNCTION,
            from_node=here,
            to_node=here,
            arguments={"agent": shown, "reason": reason},
        )
        self._record.add_event(ROUTE_REFUSED, {"agent": shown, "error": error})
        log.info("agent_route_refused", agent=shown, error=error)
        return {"status": "error", "error": error}, None

    async def _entry(
        self, target: RouteTarget, node: NodeConfig, flow_manager: FlowManager, reason: str
    ) -> NodeConfig:
        node["pre_actions"] = [self._switch_action(target, reason), *node.get("pre_actions", [])]
        if self._spec.context == "full":
            node["context_strategy"] = ContextStrategyConfig(strategy=ContextStrategy.APPEND)
            return node
        # The greeting is spoken (and added to the context) before the reset lands, so the
        # reset messages repeat it: the agent knows what it has just asked.
        carried: list[Any] = [{"role": "assistant", "content": target.plan.greeting_text()}]
        if self._spec.context == "summary":
            summary = await self._summary(flow_manager.get_current_context(), reason)
            carried.insert(0, {"role": "developer", "content": inert(summary)})
        node["context_strategy"] = ContextStrategyConfig(strategy=ContextStrategy.RESET)
        node["task_messages"] = [*carried, *node["task_messages"]]
        return node

    async def _summary(self, messages: Sequence[Mapping[str, Any]], reason: str) -> str:
        text: str | None = None
        try:
            text = await asyncio.wait_for(self._summarize(messages), timeout=SUMMARY_TIMEOUT_S)
        except Exception as exc:  # a slow or failing summariser must not stall the hand-off
            log.warning("route_summary_failed", error=type(exc).__name__)
        text = (text or "").strip() or digest(messages) or "Nothing was said yet."
        because = f" The call was handed to you because: {reason}." if reason else ""
        return f"You are taking over this call.{because} Summary of the conversation so far: {text}"

    def _switch_action(self, target: RouteTarget, reason: str) -> ActionConfig:
        change = VoiceChange(
            agent=target.spec.name,
            template=target.plan.definition.name,
            voice=target.plan.definition.voice,
        )

        async def switch(action: dict[str, Any], flow_manager: FlowManager) -> None:
            self._record.switch_agent(change.template, reason=reason or None)
            self._switching = False
            if self._on_voice_change is None:
                return
            try:
                await self._on_voice_change(change)
            except Exception:  # the agent then speaks in the previous voice; the call goes on
                log.exception("voice_change_failed", agent=change.agent)

        return {"type": "function", "handler": switch}


# --- summaries ---------------------------------------------------------------------------------


def digest(messages: Sequence[Mapping[str, Any]]) -> str:
    """The last few spoken turns as one line (`Customer: ... / Agent: ...`), '' if none."""
    turns = []
    for message in messages:
        speaker = _SPEAKERS.get(str(message.get("role")))
        content = message.get("content")
        if speaker is None or not isinstance(content, str) or not content.strip():
            continue
        text = " ".join(content.split())
        if len(text) > _DIGEST_TURN_CHARS:
            text = text[: _DIGEST_TURN_CHARS - 3] + "..."
        turns.append(f"{speaker}: {text}")
    return " / ".join(turns[-_DIGEST_TURNS:])


async def transcript_summary(messages: Sequence[Mapping[str, Any]]) -> str | None:
    """The default `Summarize`: the last turns as said, no model call (no added latency)."""
    return digest(messages) or None


def llm_summarizer(llm: LLMService[Any], *, prompt: str = SUMMARY_PROMPT) -> Summarize:
    """A `Summarize` asking the call's LLM out of band (`run_inference`) over the spoken turns."""

    async def summarize(messages: Sequence[Mapping[str, Any]]) -> str | None:
        spoken: list[Any] = [
            {"role": m["role"], "content": m["content"]}
            for m in messages
            if m.get("role") in _SPEAKERS and isinstance(m.get("content"), str)
        ]
        if not spoken:
            return None
        return await llm.run_inference(LLMContext(messages=spoken), system_instruction=prompt)

    return summarize
