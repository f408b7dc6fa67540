"""`SimSTTService`: the `sim` STT, which hears the simulator's words over Redis, not audio."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

import redis.asyncio as aioredis
from loguru import logger
from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InterimTranscriptionFrame,
    ProposedUserStartedSpeakingFrame,
    ProposedUserStoppedSpeakingFrame,
    StartFrame,
    STTMetadataFrame,
    TranscriptionFrame,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.settings import STTSettings
from pipecat.services.stt_service import STTService
from pipecat.turns.user_turn_strategies import ExternalUserTurnStrategies
from pipecat.utils.errors import ErrorCategory
from pipecat.utils.time import time_now_iso8601
from redis.exceptions import RedisError

from media_worker.providers.sim_subscription import SimTranscript, TranscriptSubscription
from shared.redis_keys import sim_stt_channel


class SimSTTService(STTService):
    """Turns the simulator's published transcripts for `call_sid` into pipeline frames.

    Turn-taking design (pipecat 1.14). The simulated customer publishes one final transcript the
    moment its utterance's audio ends. For each one this service does what a provider with
    server-side end-of-turn detection does (Sarvam, Deepgram Flux in pipecat):

    1. broadcasts `ProposedUserStartedSpeakingFrame` (a system frame: it may interrupt the bot);
    2. pushes the `TranscriptionFrame` (`finalized=True`, `result` = the published message);
    3. broadcasts `ProposedUserStoppedSpeakingFrame` (a control frame, so it stays behind the
       transcript).

    At start it recommends `ExternalUserTurnStrategies` in its `STTMetadataFrame`, which the user
    aggregator adopts unless the pipeline passed its own `user_turn_strategies`. Those strategies
    resolve the proposals: the turn opens, the transcript is aggregated, and the turn closes as soon
    as the stop proposal arrives with the text in hand, so the LLM runs at once. No VAD, smart-turn
    model or stop timeout is involved. If a VAD also runs in the aggregator and still hears speech
    when the proposal arrives, pipecat holds the turn until the VAD stops and the external strategy
    re-checks (every 0.5 s). `supports_ttfs` is False: there is no speech-end-to-transcript wait.
    Pipeline-supplied strategies win over the recommendation. The call pipeline passes these same
    external strategies itself (`pipeline.user_turn_strategies`): left unset, the aggregator
    would first build pipecat's defaults, whose Smart Turn model loads per call. pipecat's
    defaults would still end the turn at once when no VAD runs, but with a VAD their
    smart-turn model decides.

    `redis` is borrowed (never closed here). The subscription is opened at `StartFrame` (the
    start returns once Redis confirmed it) and torn down at `EndFrame`/`CancelFrame` or
    cleanup; its reader is a task of this processor, cancelled there too. A Redis failure is
    pushed as a CONNECTIVITY `ErrorFrame`. Messages are dropped while the STT is muted, as a
    real STT drops the audio. `user_id` goes on every transcript (default: the call SID).
    """

    provider = "sim"

    def __init__(
        self,
        *,
        call_sid: str,
        redis: aioredis.Redis,
        user_id: str | None = None,
        recommend_turn_strategies: bool = True,
        enable_interruptions: bool = True,
        subscribe_timeout_s: float = 5.0,
        **kwargs: Any,
    ):
        super().__init__(settings=STTSettings(model=None, language=None), **kwargs)
        self._sim_user_id = user_id or call_sid
        self._recommend_turn_strategies = recommend_turn_strategies
        self._enable_interruptions = enable_interruptions
        self._subscription = TranscriptSubscription(
            redis, sim_stt_channel(call_sid), subscribe_timeout_s=subscribe_timeout_s
        )
        self._reader: asyncio.Task[None] | None = None

    @property
    def channel(self) -> str:
        return self._subscription.channel

    @property
    def supports_ttfs(self) -> bool:
        return False

    def service_metadata_frame(self) -> STTMetadataFrame:
        frame = super().service_metadata_frame()
        if self._recommend_turn_strategies:
            frame.user_turn_strategies = ExternalUserTurnStrategies(
                enable_interruptions=self._enable_interruptions
            )
        return frame

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        try:
            await self._subscription.open()
        except (RedisError, OSError, TimeoutError) as exc:
            await self._subscription.close()
            await self.push_error(
                f"sim STT could not subscribe to {self.channel}: {exc!r}",
                exception=exc,
                category=ErrorCategory.CONNECTIVITY,
            )
            return
        self._reader = self.create_task(self._read_transcripts(), name="sim_stt_reader")

    async def stop(self, frame: EndFrame) -> None:
        await self._unsubscribe()
        await super().stop(frame)

    async def cancel(self, frame: CancelFrame) -> None:
        await self._unsubscribe()
        await super().cancel(frame)

    async def cleanup(self) -> None:
        await self._unsubscribe()
        await super().cleanup()  # type: ignore[no-untyped-call]  # pipecat leaves it unannotated

    async def process_audio_frame(
        self, frame: InputAudioRawFrame, direction: FrameDirection
    ) -> None:
        """The sim STT does not listen: audio is handed on, or dropped here when the STT is
        its last listener (`audio_passthrough`)."""

    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame | None, None]:
        """Never called, since audio is not transcribed; pipecat declares it abstract."""
        yield None

    async def _unsubscribe(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            await self.cancel_task(reader)
        await self._subscription.close()

    async def _read_transcripts(self) -> None:
        try:
            async for transcript in self._subscription.transcripts():
                await self._push_transcript(transcript)
        except (RedisError, OSError) as exc:
            await self.push_error(
                f"sim STT lost its subscription to {self.channel}: {exc!r}",
                exception=exc,
                category=ErrorCategory.CONNECTIVITY,
            )

    async def _push_transcript(self, transcript: SimTranscript) -> None:
        if self.is_muted:
            logger.debug(f"{self}: muted, dropping [{transcript.text}]")
            return
        timestamp = time_now_iso8601()
        if not transcript.final:
            await self.push_frame(
                InterimTranscriptionFrame(
                    transcript.text, self._sim_user_id, timestamp, result=transcript.raw
                )
            )
            return
        await self.broadcast_frame(ProposedUserStartedSpeakingFrame)
        await self.push_frame(
            TranscriptionFrame(
                transcript.text,
                self._sim_user_id,
                timestamp,
                result=transcript.raw,
                finalized=True,
            )
        )
        await self.broadcast_frame(ProposedUserStoppedSpeakingFrame)
