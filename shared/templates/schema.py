"""The conversation-template schema: the pydantic models a merchant's template JSON must fit.

Field names follow `pipecat.flows` (`NodeConfig`, `FlowsFunctionSchema`, `ActionConfig`,
`ContextStrategyConfig`) so that the media worker maps a node to a `NodeConfig` field by field.
Every model forbids unknown keys (a typo is an error) and is frozen. Checks that need the whole
flow (node graph, variables in text, a way to end the call) live in `checks.py` and run from
`TemplateFlow`'s model validator; call policies (voice, retries, window) are in `policies.py`.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    model_validator,
)

from shared.enums import Outcome
from shared.templates.checks import flow_problems
from shared.templates.errors import TemplateInvalid
from shared.templates.fields import (
    E164,
    BusinessOutcome,
    Identifier,
    Language,
    StrictModel,
    Text,
    raise_if,
)
from shared.templates.orchestrator import OrchestratorSpec
from shared.templates.policies import (
    CallingWindow,
    LlmProvider,
    RetryPolicy,
    SttProvider,
    VoicemailPolicy,
    VoiceSpec,
)
from shared.templates.variables import VariableType, value_problem

# --- variables ---------------------------------------------------------------------------------


class VariableSpec(StrictModel):
    """One value the lead payload supplies, rendered into text as `{{ name }}`.

    A `secret` variable reaches handlers only: it is never rendered, and naming it in any
    rendered text is a validation error. A `default` makes the variable optional, so it needs
    `required: false`; a secret cannot have one (a template is not a secret store).
    """

    type: VariableType
    required: bool = True
    description: str = ""
    secret: bool = False
    default: StrictStr | StrictInt | StrictFloat | StrictBool | None = None

    @model_validator(mode="after")
    def _check_default(self) -> Self:
        if self.default is None:
            return self
        problems = []
        if self.required:
            problems.append('required: a default makes a variable optional; set "required": false')
        if self.secret:
            problems.append("default: a secret variable may not have a default")
        elif (message := value_problem(self.type, self.default)) is not None:
            problems.append(f"default: {message}")
        raise_if(problems)
        return self


# --- functions ---------------------------------------------------------------------------------


class FunctionProperty(StrictModel):
    """One argument the LLM passes to a function (a JSON-schema property, as pipecat takes it)."""

    type: Literal["string", "integer", "number", "boolean"]
    description: str = ""
    enum: list[StrictStr | StrictInt | StrictFloat] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _check_enum(self) -> Self:
        if self.enum is None:
            return self
        if self.type == "boolean":
            raise TemplateInvalid(["enum: a boolean property takes no enum"])
        problems = [
            f"enum[{index}]: {message}"
            for index, item in enumerate(self.enum)
            if (message := value_problem(self.type, item)) is not None
        ]
        if len(set(self.enum)) != len(self.enum):
            problems.append("enum: values repeat")
        raise_if(problems)
        return self


class TransitionEffect(StrictModel):
    """Move the conversation to node `to` (the handler returns that node's `NodeConfig`)."""

    kind: Literal["transition"]
    to: Identifier


class EndCallEffect(StrictModel):
    """Record the business `outcome`, say `goodbye` (rendered) if given, and end the call."""

    kind: Literal["end_call"]
    outcome: BusinessOutcome
    goodbye: Text | None = None


class TransferEffect(StrictModel):
    """Say `announcement` (rendered) if given and hand the call to a person at `number`.

    The attempt's outcome is `TRANSFERRED`.
    """

    kind: Literal["transfer"]
    number: E164
    announcement: Text | None = None


Effect = Annotated[TransitionEffect | EndCallEffect | TransferEffect, Field(discriminator="kind")]


class FunctionSpec(StrictModel):
    """A tool the LLM may call at a node: a `FlowsFunctionSchema` whose handler is built in.

    `name`, `description`, `properties` and `required` are pipecat's. `effect` says what a call
    does, a union tagged by `kind`:

    - `{"kind": "transition", "to": "<node>"}` moves to another node;
    - `{"kind": "end_call", "outcome": "CONFIRMED", "goodbye": "..."}` ends the call;
    - `{"kind": "transfer", "number": "+91...", "announcement": "..."}` hands it to a person;
    - absent (null): the arguments are recorded and the conversation stays on the node, as a
      pipecat handler returning `(result, None)` does.

    The arguments of every call are recorded on the attempt whatever the effect.
    """

    name: Identifier
    description: Text
    properties: dict[Identifier, FunctionProperty] = Field(default_factory=dict)
    required: list[Identifier] = Field(default_factory=list)
    effect: Effect | None = None

    @model_validator(mode="after")
    def _check_required(self) -> Self:
        problems = []
        for index, name in enumerate(self.required):
            if name not in self.properties:
                problems.append(f"required[{index}]: '{name}' is not one of the properties")
            elif name in self.required[:index]:
                problems.append(f"required[{index}]: '{name}' is listed twice")
        raise_if(problems)
        return self


# --- nodes -------------------------------------------------------------------------------------


class Message(StrictModel):
    """One task message; `content` is rendered."""

    role: Literal["system", "developer", "user", "assistant"]
    content: Text


class TtsSayAction(StrictModel):
    """pipecat's built-in `tts_say`: speak `text` (rendered)."""

    type: Literal["tts_say"]
    text: Text
    append_text_to_context: bool = True


class EndConversationAction(StrictModel):
    """pipecat's built-in `end_conversation`: say `text` (rendered) if given, then end the call,
    recording `outcome` (a business outcome, `COMPLETED` unless given)."""

    type: Literal["end_conversation"]
    text: Text | None = None
    append_text_to_context: bool = True
    outcome: BusinessOutcome = Outcome.COMPLETED


Action = Annotated[TtsSayAction | EndConversationAction, Field(discriminator="type")]


class ContextStrategySpec(StrictModel):
    """pipecat's `ContextStrategyConfig`; `summary_prompt` (rendered) goes with
    `reset_with_summary` and only with it."""

    strategy: Literal["append", "reset", "reset_with_summary"]
    summary_prompt: Text | None = None

    @model_validator(mode="after")
    def _check_summary_prompt(self) -> Self:
        if self.strategy == "reset_with_summary" and self.summary_prompt is None:
            raise TemplateInvalid(["summary_prompt: required with reset_with_summary"])
        if self.strategy != "reset_with_summary" and self.summary_prompt is not None:
            raise TemplateInvalid([f"summary_prompt: not used with '{self.strategy}'"])
        return self


class NodeSpec(StrictModel):
    """One node of the conversation, a pipecat `NodeConfig` without the code.

    `role_message` is pipecat 1.14's system instruction (a string; the list form
    `role_messages` is deprecated there). `context_strategy` null keeps the FlowManager's
    default (append).
    """

    role_message: Text | None = None
    task_messages: list[Message] = Field(min_length=1)
    functions: list[FunctionSpec] = Field(default_factory=list)
    pre_actions: list[Action] = Field(default_factory=list)
    post_actions: list[Action] = Field(default_factory=list)
    respond_immediately: bool = True
    context_strategy: ContextStrategySpec | None = None


# --- the template ------------------------------------------------------------------------------


class TemplateFlow(BaseModel):
    """The conversation part of a template: what the media worker turns into pipecat nodes.

    `greeting` (rendered) is spoken as soon as the call connects, before `initial_node` is
    entered; an initial node that waits for the answer sets `respond_immediately: false`.

    `orchestrator` set makes the template an orchestrator: every node also offers the built-in
    `route_to_agent`, which hands the call to one of its agents (`orchestrator.py`).

    Its model validator runs the whole-flow checks (`checks.flow_problems`) and raises
    `TemplateInvalid` listing all of them. Extra keys are ignored here, so a whole template
    document validates as a `TemplateFlow` too: `parse_template` does that to report flow
    problems even when an unrelated section (voice, retry policy, ...) is broken.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    greeting: Text
    variables: dict[Identifier, VariableSpec] = Field(default_factory=dict)
    initial_node: Identifier
    nodes: dict[Identifier, NodeSpec] = Field(min_length=1)
    global_functions: list[FunctionSpec] = Field(default_factory=list)
    voicemail: VoicemailPolicy = Field(default_factory=VoicemailPolicy)
    orchestrator: OrchestratorSpec | None = None

    @model_validator(mode="after")
    def _check_flow(self) -> Self:
        raise_if(flow_problems(self))
        return self


class TemplateDefinition(TemplateFlow):
    """A merchant's conversation template: the flow plus what the dispatcher needs.

    `calling_window` null means any time; `outbound_number` pins the caller id (E.164, stored
    normalised), else the merchant's or the shared pool is used. Build one with
    `parse_template`, which reports every problem at once.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    name: Annotated[Text, Field(max_length=120)]
    description: str = ""
    language: Language
    voice: VoiceSpec
    stt: SttProvider = "deepgram"
    llm: LlmProvider = "openai"
    retry_policy: RetryPolicy = Field(default_factory=RetryPolicy)
    calling_window: CallingWindow | None  # required key: null (any time) must be a choice
    outbound_number: E164 | None = None

    @model_validator(mode="after")
    def _check_not_own_agent(self) -> Self:
        if self.orchestrator is None:
            return self
        raise_if(
            [
                f"orchestrator.agents[{index}].template: an orchestrator cannot hand a call to "
                "itself"
                for index, agent in enumerate(self.orchestrator.agents)
                if agent.template == self.name
            ]
        )
        return self
