"""The TTS health core without a pipeline: `FailoverState` decisions, and `TTSFrameMonitor`
verdicts fed frame by frame (attribution, the audio timeout on an injected clock, silence)."""

from __future__ import annotations

import asyncio

from pipecat.frames.frames import (
    AggregatedTextFrame,
    ErrorFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.utils.text.base_text_aggregator import TextType

from media_worker.providers.audio import tone_pcm
from media_worker.tts_health import FailoverState, FailureReason
from media_worker.tts_health_monitor import (
    MonitoredVoice,
    TTSFrameMonitor,
    is_dropped,
    provider_of,
)

LOUD = tone_pcm(0.1, 8000)
SILENT = bytes(len(LOUD))


class Listener:
    def __init__(self) -> None:
        self.failed: list[tuple[str, FailureReason]] = []
        self.succeeded: list[str] = []
        self.respeak: list[tuple[str, list[str]]] = []

    async def sentence_failed(self, provider: str, context_id: str, reason: FailureReason) -> None:
        self.failed.append((provider, reason))

    async def sentence_succeeded(self, provider: str) -> None:
        self.succeeded.append(provider)

    async def context_failed(self, provider: str, context_id: str, texts: list[str]) -> None:
        self.respeak.append((provider, texts))


class ManualTimers:
    """An injected sleep: timers wait until the test fires them."""

    def __init__(self) -> None:
        self._fire = asyncio.Event()
        self.waiting = 0

    async def sleep(self, seconds: float) -> None:
        self.waiting += 1
        await self._fire.wait()

    async def fire(self) -> None:
        self._fire.set()
        for _ in range(5):
            await asyncio.sleep(0)


def announce(text: str, context_id: str) -> AggregatedTextFrame:
    frame = AggregatedTextFrame(text, TextType.SENTENCE, context_id=context_id)
    frame.will_be_spoken = True
    return frame


def spoken(text: str, context_id: str) -> TTSTextFrame:
    return TTSTextFrame(text, text_type=TextType.SENTENCE, context_id=context_id)


def monitor(listener: Listener, sleep: ManualTimers | None = None) -> TTSFrameMonitor:
    voices = [
        MonitoredVoice("cartesia", FrameProcessor()),
        MonitoredVoice("espeak", FrameProcessor()),
    ]
    timers = sleep or ManualTimers()
    return TTSFrameMonitor(
        voices, listener, audio_timeout_s=2.0, silence_peak=200, sleep=timers.sleep
    )


def test_failures_switch_at_the_threshold_and_successes_reset_the_count() -> None:
    state = FailoverState(["cartesia", "espeak"], threshold=2)
    first = state.failure("cartesia")
    assert (first.switch_to, first.respeak, first.degrade) == (None, True, False)
    state.success("cartesia")
    assert state.failure("cartesia").switch_to is None  # the success reset the count
    second = state.failure("cartesia")
    assert (second.switch_to, second.respeak, second.degrade) == ("espeak", True, True)
    assert state.active == "espeak"
    # A late failure of the voice already left is re-spoken on the active one, no switch.
    late = state.failure("cartesia")
    assert (late.switch_to, late.respeak, late.degrade) == (None, True, False)


def test_an_unknown_provider_is_never_counted_as_another() -> None:
    state = FailoverState(["cartesia", "espeak"], threshold=1)
    decision = state.failure("elevenlabs")
    assert (decision.switch_to, decision.respeak) == (None, False)
    assert state.failures("cartesia") == 0 and state.active == "cartesia"


def test_a_dead_pair_gives_up_instead_of_looping() -> None:
    state = FailoverState(["cartesia", "espeak"], threshold=1)
    assert state.failure("cartesia").switch_to == "espeak"
    last = state.failure("espeak")
    assert (last.switch_to, last.respeak) == (None, False)
    assert state.active == "espeak"


def test_one_failure_ends_a_probe() -> None:
    state = FailoverState(["cartesia", "espeak"], threshold=3)
    state.probing = "cartesia"
    decision = state.failure("cartesia")
    assert (decision.switch_to, decision.degrade, decision.ended_probe) == ("espeak", True, True)
    assert state.probing is None


async def test_frames_are_tagged_with_the_voice_that_pushed_them() -> None:
    listener = Listener()
    m = monitor(listener)
    audio = TTSAudioRawFrame(LOUD, 8000, 1, context_id="c1")
    text = spoken("Hello.", "c1")
    for frame in (announce("Hello.", "c1"), TTSStartedFrame(context_id="c1"), audio, text):
        await m.on_pushed("espeak", frame)
    await m.on_pushed("espeak", TTSStoppedFrame(context_id="c1"))
    assert provider_of(audio) == provider_of(text) == "espeak"
    assert not is_dropped(audio) and not is_dropped(text)
    assert listener.succeeded == ["espeak"] and listener.failed == []
    await m.close()


async def test_an_error_fails_the_sentence_and_drops_the_rest_of_its_utterance() -> None:
    listener = Listener()
    m = monitor(listener)
    await m.on_pushed("cartesia", announce("One.", "c1"))
    await m.on_pushed("cartesia", TTSStartedFrame(context_id="c1"))
    ok_audio = TTSAudioRawFrame(LOUD, 8000, 1, context_id="c1")
    await m.on_pushed("cartesia", ok_audio)
    await m.on_pushed("cartesia", spoken("One.", "c1"))
    await m.on_pushed("cartesia", announce("Two.", "c1"))
    await m.on_error("cartesia", ErrorFrame("boom"))
    failed_text = spoken("Two.", "c1")
    await m.on_pushed("cartesia", failed_text)
    await m.on_pushed("cartesia", TTSStoppedFrame(context_id="c1"))
    assert not is_dropped(ok_audio) and is_dropped(failed_text)
    assert listener.failed == [("cartesia", FailureReason.ERROR)]
    assert listener.respeak == [("cartesia", ["Two."])]  # the good sentence is not repeated
    await m.close()


async def test_an_error_from_another_processor_counts_for_no_voice() -> None:
    listener = Listener()
    m = monitor(listener)
    await m.on_pushed("cartesia", announce("One.", "c1"))
    await m.on_error("espeak", ErrorFrame("espeak has nothing open"))
    assert listener.failed == []
    await m.close()


async def test_no_audio_within_the_timeout_is_a_failure() -> None:
    listener = Listener()
    timers = ManualTimers()
    m = monitor(listener, timers)
    await m.on_pushed("cartesia", announce("Slow.", "c1"))
    await m.on_pushed("cartesia", TTSStartedFrame(context_id="c1"))
    await asyncio.sleep(0)
    assert timers.waiting == 1 and listener.failed == []
    await timers.fire()
    assert listener.failed == [("cartesia", FailureReason.TIMEOUT)]
    late_audio = TTSAudioRawFrame(LOUD, 8000, 1, context_id="c1")
    await m.on_pushed("cartesia", late_audio)
    assert is_dropped(late_audio)  # the fallback says it instead
    await m.close()


async def test_audio_before_the_timeout_cancels_it() -> None:
    listener = Listener()
    timers = ManualTimers()
    m = monitor(listener, timers)
    await m.on_pushed("cartesia", announce("Quick.", "c1"))
    await m.on_pushed("cartesia", TTSAudioRawFrame(LOUD, 8000, 1, context_id="c1"))
    await timers.fire()
    assert listener.failed == []
    await m.close()


async def test_near_silent_audio_is_a_failure() -> None:
    listener = Listener()
    m = monitor(listener)
    await m.on_pushed("cartesia", announce("Hush.", "c1"))
    await m.on_pushed("cartesia", TTSAudioRawFrame(SILENT, 8000, 1, context_id="c1"))
    text = spoken("Hush.", "c1")
    await m.on_pushed("cartesia", text)
    assert is_dropped(text)
    assert listener.failed == [("cartesia", FailureReason.SILENCE)]
    await m.close()
