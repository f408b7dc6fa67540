"""The provider factory: offline providers by name, real ones only with their keys."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, get_args

import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from media_worker.providers.errors import (
    ProviderNotConfigured,
    ProviderUnavailable,
    UnknownProvider,
)
from media_worker.providers.factory import (
    CallInfo,
    ProviderKeys,
    build_llm,
    build_stt,
    build_tts,
)
from media_worker.providers.flaky import FlakyKnobs, FlakyTTSService
from media_worker.providers.moonshine_stt import MoonshineSTTService, moonshine_installed
from media_worker.providers.scripted_llm import ScriptedLLMService, ScriptPolicy
from media_worker.providers.sim_stt import SimSTTService
from media_worker.providers.tone_tts import ToneTTSService
from shared.settings import Settings
from shared.speech import libespeak
from shared.speech.errors import EspeakUnavailable
from shared.templates.policies import LlmProvider, SttProvider, TtsProvider

NO_KEYS = ProviderKeys()


@pytest.fixture
async def call(settings: Settings) -> AsyncIterator[CallInfo]:
    client = aioredis.Redis.from_url(settings.redis_url)
    yield CallInfo(call_sid="CA" + "2" * 32, redis=client, sample_rate_hz=8000)
    await client.aclose()


async def test_offline_providers_are_built_by_name(call: CallInfo) -> None:
    assert isinstance(build_stt("sim", NO_KEYS, call), SimSTTService)
    if moonshine_installed():
        assert isinstance(build_stt("moonshine", NO_KEYS, call), MoonshineSTTService)
    policy = ScriptPolicy(greeting="Hi")
    llm = build_llm("scripted", NO_KEYS, call, script=policy)
    assert isinstance(llm, ScriptedLLMService) and llm.policy is policy
    tone = build_tts("tone", "beep", NO_KEYS, call)
    assert isinstance(tone, ToneTTSService) and tone.voice == "beep"


async def test_flaky_wraps_an_offline_voice(call: CallInfo) -> None:
    knobs = FlakyKnobs(fail_first_n=1)
    flaky = build_tts("flaky", "tone", NO_KEYS, call, flaky=knobs)
    assert isinstance(flaky, FlakyTTSService)
    assert flaky.wrapped_provider == "tone" and flaky.plan.knobs is knobs
    assert build_tts("flaky", "anything", NO_KEYS, call).wrapped_provider == "tone"  # type: ignore[attr-defined]


async def test_espeak_needs_its_library_or_binary(
    call: CallInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable() -> libespeak.LibEspeak:
        raise EspeakUnavailable("libespeak-ng", "the espeakng-loader package is missing")

    monkeypatch.setattr(libespeak, "shared_library", unavailable)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ProviderUnavailable, match="espeak-ng"):
        build_tts("espeak", "en", NO_KEYS, call)
    with pytest.raises(ProviderUnavailable):
        build_tts("flaky", "espeak:en", NO_KEYS, call)


@pytest.mark.parametrize(
    ("role", "provider", "key_field"),
    [
        ("stt", "deepgram", "deepgram_api_key"),
        ("stt", "openai", "openai_api_key"),
        ("llm", "openai", "openai_api_key"),
        ("tts", "elevenlabs", "elevenlabs_api_key"),
        ("tts", "cartesia", "cartesia_api_key"),
    ],
)
async def test_real_providers_need_their_keys(
    call: CallInfo, role: str, provider: Any, key_field: str
) -> None:
    empty = SecretStr("")
    blank = ProviderKeys(
        deepgram_api_key=empty,
        openai_api_key=empty,
        elevenlabs_api_key=empty,
        cartesia_api_key=empty,
    )
    for keys in (NO_KEYS, blank):
        with pytest.raises(ProviderNotConfigured) as caught:
            if role == "stt":
                build_stt(provider, keys, call)
            elif role == "llm":
                build_llm(provider, keys, call)
            else:
                build_tts(provider, "voice", keys, call)
        assert caught.value.key_field == key_field
        assert f"ProviderKeys.{key_field}" in str(caught.value)


async def test_unknown_names_are_rejected(call: CallInfo) -> None:
    with pytest.raises(UnknownProvider):
        build_stt("whisper", NO_KEYS, call)  # type: ignore[arg-type]
    with pytest.raises(UnknownProvider):
        build_tts("polly", "v", NO_KEYS, call)  # type: ignore[arg-type]


def test_every_template_provider_name_is_handled() -> None:
    """The factory covers the template's literals (a new literal needs a builder)."""
    assert set(get_args(SttProvider)) == {"sim", "moonshine", "deepgram", "openai"}
    assert set(get_args(LlmProvider)) == {"scripted", "openai"}
    assert set(get_args(TtsProvider)) == {"espeak", "tone", "flaky", "elevenlabs", "cartesia"}
