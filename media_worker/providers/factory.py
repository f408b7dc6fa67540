"""Build a call's STT, LLM and TTS services from the template's provider names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from pipecat.services.llm_service import LLMService
from pipecat.services.stt_service import STTService
from pipecat.services.tts_service import TTSService
from pydantic import SecretStr

from media_worker.providers.errors import (
    ProviderNotConfigured,
    ProviderUnavailable,
    UnknownProvider,
)
from media_worker.providers.espeak_tts import EspeakTTSService
from media_worker.providers.flaky import FlakyKnobs, FlakyTTSService
from media_worker.providers.moonshine_stt import MoonshineSTTService
from media_worker.providers.pcm_tts import PcmTTSService
from media_worker.providers.scripted_llm import ScriptedLLMService, ScriptPolicy
from media_worker.providers.sim_stt import SimSTTService
from media_worker.providers.tone_tts import ToneTTSService
from shared.templates.policies import LlmProvider, SttProvider, TtsProvider


@dataclass(frozen=True)
class ProviderKeys:
    """Credentials of the real providers; a provider whose key is None cannot be built."""

    deepgram_api_key: SecretStr | None = None
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    elevenlabs_api_key: SecretStr | None = None
    cartesia_api_key: SecretStr | None = None


@dataclass(frozen=True)
class CallInfo:
    """The call the services are for: `redis` (borrowed) carries the `sim` STT's words."""

    call_sid: str
    redis: aioredis.Redis
    sample_rate_hz: int = 8000


def build_stt(
    provider: SttProvider, keys: ProviderKeys, call: CallInfo, *, audio_passthrough: bool = True
) -> STTService:
    """The STT named `provider`; raises `ProviderNotConfigured`, `ProviderUnavailable`.
    `audio_passthrough=False` when the STT is the caller audio's last listener: it drops each
    chunk itself instead of handing it on."""
    match provider:
        case "sim":
            return SimSTTService(
                call_sid=call.call_sid, redis=call.redis, audio_passthrough=audio_passthrough
            )
        case "moonshine":
            return MoonshineSTTService(audio_passthrough=audio_passthrough)
        case "deepgram":
            key = _key(provider, keys.deepgram_api_key, "deepgram_api_key")
            try:
                from pipecat.services.deepgram.stt import DeepgramSTTService
            except ImportError as exc:
                raise _sdk_missing(provider, "pipecat-ai[deepgram]") from exc
            return DeepgramSTTService(api_key=key, audio_passthrough=audio_passthrough)
        case "openai":
            key = _key(provider, keys.openai_api_key, "openai_api_key")
            from pipecat.services.openai.stt import OpenAISTTService

            return OpenAISTTService(
                api_key=key,
                base_url=keys.openai_base_url,
                audio_passthrough=audio_passthrough,
            )
        case _:
            raise UnknownProvider("stt", provider)


def build_llm(
    provider: LlmProvider,
    keys: ProviderKeys,
    call: CallInfo,
    *,
    script: ScriptPolicy | None = None,
) -> LLMService[Any]:
    """The LLM named `provider` (`script` configures the scripted one)."""
    match provider:
        case "scripted":
            return ScriptedLLMService(policy=script)
        case "openai":
            key = _key(provider, keys.openai_api_key, "openai_api_key")
            from pipecat.services.openai.llm import OpenAILLMService

            return OpenAILLMService(api_key=key, base_url=keys.openai_base_url)
        case _:
            raise UnknownProvider("llm", provider)


def build_tts(
    provider: TtsProvider,
    voice_id: str,
    keys: ProviderKeys,
    call: CallInfo,
    *,
    flaky: FlakyKnobs | None = None,
) -> TTSService:
    """The TTS named `provider` speaking `voice_id`, at the call's sample rate.

    For `flaky`, `voice_id` names what it wraps: `tone`, `espeak` or `espeak:<voice>`
    (anything else: a tone), and `flaky` sets its failure knobs (default: none).
    """
    rate = call.sample_rate_hz
    match provider:
        case "tone" | "espeak":
            return _offline_voice(provider, voice_id, rate)
        case "flaky":
            inner_name, _, inner_voice = voice_id.partition(":")
            inner = _offline_voice(
                "espeak" if inner_name == "espeak" else "tone", inner_voice or voice_id, rate
            )
            return FlakyTTSService(inner=inner, knobs=flaky, sample_rate=rate)
        case "elevenlabs":
            key = _key(provider, keys.elevenlabs_api_key, "elevenlabs_api_key")
            from pipecat.services.elevenlabs.tts import ElevenLabsTTSService

            voice = ElevenLabsTTSService.Settings(voice=voice_id)
            return ElevenLabsTTSService(api_key=key, settings=voice, sample_rate=rate)
        case "cartesia":
            key = _key(provider, keys.cartesia_api_key, "cartesia_api_key")
            from pipecat.services.cartesia.tts import CartesiaTTSService

            cartesia_voice = CartesiaTTSService.Settings(voice=voice_id)
            return CartesiaTTSService(api_key=key, settings=cartesia_voice, sample_rate=rate)
        case _:
            raise UnknownProvider("tts", provider)


def _offline_voice(provider: str, voice_id: str, sample_rate_hz: int) -> PcmTTSService:
    if provider == "espeak":
        voice = voice_id if voice_id not in ("", "espeak") else "en"
        return EspeakTTSService(voice=voice, sample_rate=sample_rate_hz)
    return ToneTTSService(voice=voice_id, sample_rate=sample_rate_hz)


def _key(provider: str, value: SecretStr | None, field: str) -> str:
    if value is None or not value.get_secret_value():
        raise ProviderNotConfigured(provider, field)
    return value.get_secret_value()


def _sdk_missing(provider: str, extra: str) -> ProviderUnavailable:
    return ProviderUnavailable(provider, f"provider {provider!r} needs `pip install {extra}`")
