"""Per-template call policies: voice and providers, retries, calling window, voicemail."""

from __future__ import annotations

from datetime import datetime, time
from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from shared.enums import Outcome
from shared.templates.errors import TemplateInvalid
from shared.templates.fields import HhMm, RetryableOutcome, StrictModel, Text, raise_if

SttProvider = Literal["sim", "moonshine", "deepgram", "openai"]
LlmProvider = Literal["scripted", "openai"]
TtsProvider = Literal["espeak", "tone", "flaky", "elevenlabs", "cartesia"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_hhmm(value: str) -> time:
    """`"09:30"` -> `time(9, 30)`."""
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


class VoiceChoice(StrictModel):
    """A TTS provider and one of its voices."""

    provider: TtsProvider
    voice_id: Text


class VoiceSpec(VoiceChoice):
    """The call's voice; `fallback` (another provider) takes over when the primary fails."""

    fallback: VoiceChoice | None = None

    @model_validator(mode="after")
    def _check_fallback(self) -> Self:
        if self.fallback is not None and self.fallback.provider == self.provider:
            raise TemplateInvalid(
                ["fallback.provider: must differ from the primary provider it stands in for"]
            )
        return self


class RetryPolicy(StrictModel):
    """How often a lead is dialled again after an attempt ends in one of `retry_on`.

    `intervals_s[i]` is the delay before attempt `i + 2`; the last one repeats. Intervals are
    60 s to 7 days.
    """

    max_attempts: int = Field(default=3, ge=1, le=10)
    retry_on: list[RetryableOutcome] = Field(
        default_factory=lambda: [Outcome.NO_ANSWER, Outcome.BUSY, Outcome.FAILED, Outcome.VOICEMAIL]
    )
    intervals_s: list[Annotated[int, Field(ge=60, le=7 * 24 * 3600)]] = Field(
        default_factory=lambda: [1800, 7200]
    )

    @model_validator(mode="after")
    def _check_intervals(self) -> Self:
        problems = []
        if len(set(self.retry_on)) != len(self.retry_on):
            problems.append("retry_on: outcomes repeat")
        retries = self.max_attempts - 1
        if retries and not self.intervals_s:
            problems.append("intervals_s: at least one interval is needed when max_attempts > 1")
        if "intervals_s" in self.model_fields_set and len(self.intervals_s) > retries:
            problems.append(
                f"intervals_s: {len(self.intervals_s)} intervals for {retries} retries "
                f"(max_attempts {self.max_attempts}); the last interval repeats, so drop the rest"
            )
        raise_if(problems)
        return self

    def delay_before_attempt_s(self, attempt_no: int) -> int:
        """Seconds to wait before dialling attempt `attempt_no` (2, 3, ...)."""
        if attempt_no < 2 or not self.intervals_s:
            raise ValueError(f"no retry delay before attempt {attempt_no}")
        return self.intervals_s[min(attempt_no - 2, len(self.intervals_s) - 1)]


class CallingWindow(StrictModel):
    """When calls may start, in the recipient's local time: on `days`, from `start` (inclusive)
    to `end` (exclusive), `"HH:MM"` 24-hour, `start` before `end` (no overnight windows)."""

    days: list[Weekday] = Field(min_length=1)
    start: HhMm
    end: HhMm

    @model_validator(mode="after")
    def _check_order(self) -> Self:
        problems = []
        if len(set(self.days)) != len(self.days):
            problems.append("days: weekdays repeat")
        if self.start >= self.end:  # zero-padded HH:MM strings order like the times
            problems.append(f"end: must be after start ({self.start} - {self.end})")
        raise_if(problems)
        return self

    @property
    def start_time(self) -> time:
        return parse_hhmm(self.start)

    @property
    def end_time(self) -> time:
        return parse_hhmm(self.end)

    @property
    def weekday_numbers(self) -> frozenset[int]:
        """The days as `date.weekday()` numbers (Monday is 0)."""
        return frozenset(WEEKDAYS.index(day) for day in self.days)

    def is_open_at(self, local: datetime) -> bool:
        """Whether a call may start at `local`, the recipient's wall-clock time."""
        return (
            local.weekday() in self.weekday_numbers
            and self.start_time <= local.time() < self.end_time
        )


class VoicemailPolicy(StrictModel):
    """What to do when the call reaches voicemail; `message` (rendered) only with
    `leave_message`."""

    action: Literal["hang_up", "leave_message"] = "hang_up"
    message: Text | None = None

    @model_validator(mode="after")
    def _check_message(self) -> Self:
        if self.action == "leave_message" and self.message is None:
            raise TemplateInvalid(["message: required with leave_message"])
        if self.action == "hang_up" and self.message is not None:
            raise TemplateInvalid(["message: not used with hang_up; use leave_message"])
        return self
