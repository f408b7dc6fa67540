"""`FlakyTTSService`: an offline voice wrapped with failure knobs, to exercise TTS failover."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pipecat.utils.errors import ErrorCategory

from media_worker.providers.errors import SynthesisFailed
from media_worker.providers.pcm_tts import PcmTTSService


@dataclass(frozen=True)
class FlakyKnobs:
    """How the wrapper misbehaves, per synthesis request (one sentence).

    - `fail_first_n`: the first N requests fail;
    - `fail_probability`: afterwards each request fails with this probability, drawn from
      `random.Random(seed)`: a run is reproducible, and every call built from these knobs
      draws the same sequence; `seed=None` draws a fresh one per call;
    - `added_latency_s`: wait this long before answering (success or failure);
    - `silent_audio`: succeed, but with zeros of the right length (a provider that answers
      with silence).
    """

    fail_first_n: int = 0
    fail_probability: float = 0.0
    seed: int | None = 0
    added_latency_s: float = 0.0
    silent_audio: bool = False

    def __post_init__(self) -> None:
        if self.fail_first_n < 0:
            raise ValueError("fail_first_n must be >= 0")
        if not 0.0 <= self.fail_probability <= 1.0:
            raise ValueError("fail_probability must be within [0, 1]")
        if self.added_latency_s < 0:
            raise ValueError("added_latency_s must be >= 0")


class Verdict(StrEnum):
    """What the wrapper does with one request."""

    FAIL = "fail"
    SILENT = "silent"
    SPEAK = "speak"


class FailurePlan:
    """The knobs turned into a reproducible sequence of verdicts (pure, no I/O)."""

    def __init__(self, knobs: FlakyKnobs) -> None:
        self.knobs = knobs
        self._rng = random.Random(knobs.seed)
        self.requests = 0

    def next_verdict(self) -> Verdict:
        self.requests += 1
        # The draw happens on every request so that a verdict does not depend on
        # fail_first_n shifting the random sequence.
        draw = self._rng.random()
        if self.requests <= self.knobs.fail_first_n or draw < self.knobs.fail_probability:
            return Verdict.FAIL
        return Verdict.SILENT if self.knobs.silent_audio else Verdict.SPEAK


class FlakyTTSService(PcmTTSService):
    """Wraps another offline voice (`inner`, e.g. `ToneTTSService`) and fails on purpose.

    A failure is an `ErrorFrame` (category SERVER) and no audio, as a real provider outage
    looks to the pipeline; pipecat then closes the silent audio context after
    `stop_frame_timeout_s` (default 3 s) and reports it with an `ErrorFrame` of its own.
    The processor is named `Flaky(<inner name>)` and `inner`/`wrapped_provider` say what is
    wrapped, so a health observer can attribute frames to providers.

    pipecat's own give-up rule (`max_consecutive_zero_audio_contexts`, default 3) still
    applies; pass it through `kwargs` to change it.
    """

    provider = "flaky"

    def __init__(
        self,
        *,
        inner: PcmTTSService,
        knobs: FlakyKnobs | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        **kwargs: Any,
    ):
        kwargs.setdefault("name", f"Flaky({inner.name})")
        super().__init__(voice=inner.voice, **kwargs)
        self._inner = inner
        self._plan = FailurePlan(knobs or FlakyKnobs())
        self._sleep = sleep

    @property
    def inner(self) -> PcmTTSService:
        return self._inner

    @property
    def wrapped_provider(self) -> str:
        return self._inner.provider

    @property
    def plan(self) -> FailurePlan:
        return self._plan

    async def synthesize(self, text: str, sample_rate_hz: int) -> bytes:
        verdict = self._plan.next_verdict()
        if self._plan.knobs.added_latency_s:
            await self._sleep(self._plan.knobs.added_latency_s)
        if verdict is Verdict.FAIL:
            raise SynthesisFailed(
                self.provider,
                f"injected failure #{self._plan.requests} (wrapping {self.wrapped_provider})",
                ErrorCategory.SERVER,
            )
        pcm = await self._inner.synthesize(text, sample_rate_hz)
        return bytes(len(pcm)) if verdict is Verdict.SILENT else pcm
