"""The voices one call may speak with, built at its start: the template's primary and fallback
and, for an orchestrator, each agent's pair, so that a hand-off never waits on a cold TTS.

A voice is a provider name, a voice id and its built service; a *pair* is one speaker's voices
in preference order (primary, then the fallback when it is another provider that can be built
here). Voices equal in provider, voice id and failure knobs are built once and shared between
pairs: the `ServiceSwitcher` holds each service once (`CallVoices.services`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import structlog
from pipecat.processors.frame_processor import FrameProcessor

from media_worker.providers.errors import ProviderError, ProviderNotConfigured, ProviderUnavailable
from media_worker.providers.factory import CallInfo, ProviderKeys, build_tts
from media_worker.providers.flaky import FlakyKnobs
from media_worker.providers.pcm_tts import PcmTTSService
from media_worker.tts_health_call import Voice
from shared.templates import TemplateDefinition, VoiceSpec
from shared.templates.policies import TtsProvider

log = structlog.get_logger(__name__)

VoicePair = tuple[Voice, ...]
"""One speaker's voices, primary first."""


@dataclass(frozen=True)
class VoiceOverrides:
    """What replaces a template's voice (offline runs, tests). `tts_voice` replaces the voice id
    (None keeps the template's); `tts_fallback` (+ `tts_fallback_voice`) the fallback; the
    `*_flaky` fields are the failure knobs of a `flaky` voice."""

    tts: TtsProvider | None = None
    tts_voice: str | None = None
    tts_flaky: FlakyKnobs | None = None
    tts_fallback: TtsProvider | None = None
    tts_fallback_voice: str | None = None
    tts_fallback_flaky: FlakyKnobs | None = None


_Key = tuple[str, str, FlakyKnobs | None]


class VoiceBuilder:
    """Builds one call's voices, each distinct voice once."""

    def __init__(self, keys: ProviderKeys, call: CallInfo) -> None:
        self._keys = keys
        self._call = call
        self._built: dict[_Key, Voice] = {}

    @property
    def built(self) -> tuple[Voice, ...]:
        """Every voice built so far, in the order first built."""
        return tuple(self._built.values())

    def voice(self, provider: TtsProvider, voice_id: str, flaky: FlakyKnobs | None = None) -> Voice:
        """Raises the factory's errors (`ProviderNotConfigured`, `ProviderUnavailable`, ...)."""
        key = (provider, voice_id, flaky if provider == "flaky" else None)
        voice = self._built.get(key)
        if voice is None:
            service = build_tts(provider, voice_id, self._keys, self._call, flaky=flaky)
            voice = Voice(provider, voice_id, service, isinstance(service, PcmTTSService))
            self._built[key] = voice
        return voice

    def pair(self, spec: VoiceSpec, overrides: VoiceOverrides) -> VoicePair:
        """The primary voice, then the fallback (the template's or overridden) when it is
        another provider and can be built here; one that cannot is logged and left out (the
        call still speaks). Raises the factory's errors for the primary."""
        provider = overrides.tts or spec.provider
        voice_id = overrides.tts_voice or spec.voice_id
        primary = self.voice(provider, voice_id, overrides.tts_flaky)
        template_fallback = spec.fallback
        fallback_provider = overrides.tts_fallback or (
            template_fallback.provider if template_fallback else None
        )
        if fallback_provider is None or fallback_provider == provider:
            return (primary,)
        fallback_voice = overrides.tts_fallback_voice or (
            template_fallback.voice_id
            if template_fallback and template_fallback.provider == fallback_provider
            else fallback_provider
        )
        try:
            fallback = self.voice(fallback_provider, fallback_voice, overrides.tts_fallback_flaky)
        except (ProviderNotConfigured, ProviderUnavailable) as exc:
            log.warning("tts_fallback_unavailable", provider=fallback_provider, error=str(exc))
            return (primary,)
        return (primary, fallback)


@dataclass(frozen=True)
class CallVoices:
    """The call's own pair (`main`, the template's voice) and each agent's, by agent name."""

    main: VoicePair
    agents: Mapping[str, VoicePair] = field(default_factory=dict)
    built: tuple[Voice, ...] = ()

    @property
    def services(self) -> list[FrameProcessor]:
        """What the switcher holds: each distinct service once, the call's primary first."""
        return [voice.service for voice in self.built or self.main]

    def for_agent(self, agent: str) -> VoicePair | None:
        return self.agents.get(agent)


def build_call_voices(
    definition: TemplateDefinition,
    agents: Mapping[str, TemplateDefinition],
    overrides_for: Callable[[str | None], VoiceOverrides],
    keys: ProviderKeys,
    call: CallInfo,
) -> CallVoices:
    """Every voice the call may use. `overrides_for(None)` applies to the template's own voice,
    `overrides_for(agent)` to that agent's. The template's primary must build (its errors are
    raised); an agent whose primary cannot is logged and left without voices of its own (it
    then speaks in the voice in use when it takes the call)."""
    builder = VoiceBuilder(keys, call)
    main = builder.pair(definition.voice, overrides_for(None))
    pairs: dict[str, VoicePair] = {}
    for name, agent in agents.items():
        try:
            pairs[name] = builder.pair(agent.voice, overrides_for(name))
        except ProviderError as exc:
            log.warning("agent_voice_unavailable", agent=name, error=str(exc))
    return CallVoices(main, pairs, builder.built)
