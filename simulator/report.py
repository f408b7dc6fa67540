"""What the simulator observed on a call, served as JSON at `GET /_sim/calls/{Sid}`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from simulator.playback import BotTurn


@dataclass
class Utterance:
    """One thing the caller said. `spoken` is what was actually voiced (shorter than `text`
    when the caller hung up mid-sentence); `ended_ms` is when its last frame was sent."""

    text: str
    spoken: str
    started_ms: int
    ended_ms: int | None = None
    last_word_end_ms: int | None = None  # bot response latencies are measured from here
    audio_ms: int = 0
    cut: bool = False
    overlapped_bot: bool = False


@dataclass
class StreamReport:
    url: str
    stream_sid: str
    custom_parameters: dict[str, str]
    persona: str
    speech_engine: str
    frames_sent: int = 0
    bot_media_messages: int = 0
    bot_audio_ms: int = 0
    marks_received: list[str] = field(default_factory=list)
    marks_echoed: list[str] = field(default_factory=list)
    clears: int = 0
    dtmf_sent: list[str] = field(default_factory=list)
    bad_messages: int = 0
    transcripts_published: int = 0
    customer: list[Utterance] = field(default_factory=list)
    bot_turns: list[BotTurn] = field(default_factory=list)
    end_reason: str | None = None

    def as_json(self) -> dict[str, object]:
        data = asdict(self)
        data["bot_turns"] = [turn.as_json() for turn in self.bot_turns]
        return data


@dataclass
class CallbackRecord:
    sequence: int
    status: str
    deliveries: list[str] = field(default_factory=list)  # HTTP status or error, per attempt


@dataclass
class CallReport:
    persona: str
    streams: list[StreamReport] = field(default_factory=list)
    twiml_said: list[str] = field(default_factory=list)
    dialed: list[str] = field(default_factory=list)  # `<Dial>` numbers, in order
    callbacks: list[CallbackRecord] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {
            "persona": self.persona,
            "streams": [stream.as_json() for stream in self.streams],
            "twiml_said": list(self.twiml_said),
            "dialed": list(self.dialed),
            "callbacks": [asdict(record) for record in self.callbacks],
            "errors": list(self.errors),
        }
