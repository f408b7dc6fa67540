"""`ScriptedLLMService`: a deterministic LLM that picks among the node's functions by keyword."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from pipecat.adapters.llm.base_llm_adapter import BaseLLMAdapter
from pipecat.adapters.llm.services.open_ai_adapter import OpenAILLMAdapter
from pipecat.frames.frames import (
    Frame,
    FunctionCallFromLLM,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
)
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.llm_service import LLMService
from pipecat.services.settings import LLMSettings

from media_worker.providers.scripted_args import build_arguments
from media_worker.providers.scripted_context import (
    REPROMPT,
    assistant_has_spoken,
    new_user_words,
    opening_line,
    task_text,
    tool_specs,
)
from media_worker.providers.scripted_intents import DEFAULT_INTENTS, Intent, choose_tool


@dataclass(frozen=True)
class ScriptPolicy:
    """Everything the scripted LLM decides with; replace any part to change its behaviour.

    `intents`: the keyword table, in priority order (`scripted_intents.DEFAULT_INTENTS`);
    `reprompt`: said when the words match no offered function; `greeting`: said on the first
    run of a call when the assistant has not spoken yet and nobody has said anything;
    `opening`: the line for entering a node, from its task text; `today`: the day relative
    dates ("tomorrow") count from.
    """

    intents: tuple[Intent, ...] = DEFAULT_INTENTS
    reprompt: str = REPROMPT
    greeting: str | None = None
    opening: Callable[[str], str] = opening_line
    today: Callable[[], date] = date.today


@dataclass(frozen=True)
class Say:
    """Answer with text (spoken by the TTS)."""

    text: str


@dataclass(frozen=True)
class Call:
    """Answer with one function call."""

    function_name: str
    arguments: Mapping[str, Any]


class ScriptedLLMService(LLMService):
    """An LLM service that answers each context run deterministically (`decide`):

    - new customer words since the assistant's last turn: call the offered function that
      serves the first intent heard (see `scripted_intents`), with arguments that satisfy its
      schema (`scripted_args`), through pipecat's `run_function_calls`, so FlowManager's
      handlers and transitions run exactly as with a real LLM; nothing matches: `reprompt`;
    - no new words (a node entered with `respond_immediately`, or after a function result):
      `greeting` once if set, else `opening(<the node's task text>)`.

    Text goes out as a real LLM's does: `LLMFullResponseStartFrame`, word `LLMTextFrame`s,
    `LLMFullResponseEndFrame`; a function call sits between the start and end frames.
    """

    provider = "scripted"
    # The adapter pipecat picks by default, but imported with this module: pipecat imports it
    # lazily in the constructor, which put a second-long import on the first call's loop.
    adapter_class: type[BaseLLMAdapter[Any]] | None = OpenAILLMAdapter

    def __init__(self, *, policy: ScriptPolicy | None = None, **kwargs: Any):
        settings = LLMSettings(
            model="scripted",
            system_instruction=None,
            temperature=None,
            max_tokens=None,
            top_p=None,
            top_k=None,
            frequency_penalty=None,
            presence_penalty=None,
            seed=None,
            filter_incomplete_user_turns=False,
            user_turn_completion_config=None,
        )
        super().__init__(settings=settings, **kwargs)
        self._policy = policy or ScriptPolicy()
        self._call_ids = itertools.count(1)

    @property
    def policy(self) -> ScriptPolicy:
        return self._policy

    def can_generate_metrics(self) -> bool:
        return True

    def decide(self, context: LLMContext) -> Say | Call:
        """The reply to one run of `context` (pure: no frames, no side effects)."""
        messages = context.get_messages()
        words = new_user_words(messages)
        if not words:
            if self._policy.greeting and not assistant_has_spoken(messages):
                return Say(self._policy.greeting)
            return Say(self._policy.opening(task_text(messages)))
        choice = choose_tool(words, tool_specs(context.tools), self._policy.intents)
        if choice is None:
            return Say(self._policy.reprompt)
        arguments = build_arguments(choice.tool, words, choice.intent, self._policy.today())
        return Call(choice.tool.name, arguments)

    async def run_inference(
        self,
        context: LLMContext,
        max_tokens: int | None = None,
        system_instruction: str | None = None,
        response_schema: dict[str, Any] | None = None,
    ) -> str | None:
        """Out-of-band inference (e.g. a context summary): what the customer has said."""
        said = [
            str(m.get("content"))
            for m in context.get_messages()
            if isinstance(m, dict) and m.get("role") == "user"
        ]
        return "The customer said: " + " / ".join(said) if said else None

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMContextFrame):
            await self._respond(frame.context)
        else:
            await self.push_frame(frame, direction)

    async def _respond(self, context: LLMContext) -> None:
        await self.push_frame(LLMFullResponseStartFrame())
        await self.start_processing_metrics()
        try:
            reply = self.decide(context)
            if isinstance(reply, Call):
                call = FunctionCallFromLLM(
                    function_name=reply.function_name,
                    tool_call_id=f"scripted-{next(self._call_ids)}",
                    arguments=reply.arguments,
                    context=context,
                )
                await self.run_function_calls([call])
            else:
                for piece in re.findall(r"\S+\s*", reply.text):
                    await self.push_frame(LLMTextFrame(piece))
        finally:
            await self.stop_processing_metrics()
            await self.push_frame(LLMFullResponseEndFrame())
