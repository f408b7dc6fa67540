"""Pure parts: TwiML parsing, persona choice and script interpretation, the playback buffer
and bot-turn tracker, webhook signing, form validation, the call state machine."""

from __future__ import annotations

import asyncio
import random
from types import SimpleNamespace

import pytest
from twilio.request_validator import RequestValidator

from simulator import conversation
from simulator.audio import FRAME_BYTES, SILENCE_FRAME
from simulator.callbacks import signed_request, twilio_signature
from simulator.calls import Call, CallStatus, InvalidTransition, new_sid
from simulator.conversation import run_script
from simulator.errors import TwilioApiError, TwimlError
from simulator.personas import PERSONAS, Act, Persona, Pickup, Step, choose_persona
from simulator.playback import BotTurnTracker, PlaybackBuffer
from simulator.report import CallReport
from simulator.resources import Form, parse_create
from simulator.twiml import Hangup, Pause, Say, Stream, Unsupported, parse_twiml
from tests.simulator.helpers import tone

PRODUCTION_TWIML = (
    '<Response><Connect><Stream url="ws://127.0.0.1:8766/media">'
    '<Parameter name="token" value="t0k3n"/><Parameter name="persona" value="confirm"/>'
    "</Stream></Connect></Response>"
)


def test_parse_production_twiml() -> None:
    (stream,) = parse_twiml(PRODUCTION_TWIML)
    assert stream == Stream(
        url="ws://127.0.0.1:8766/media", parameters={"token": "t0k3n", "persona": "confirm"}
    )


def test_parse_say_pause_hangup_and_unknown_verbs() -> None:
    verbs = parse_twiml(
        '<?xml version="1.0"?><Response><Say loop="2"> Bye now </Say>'
        '<Pause length="1.5"/><Play>x.mp3</Play><Hangup/></Response>'
    )
    assert verbs == (Say("Bye now", loop=2), Pause(1.5), Unsupported("Play"), Hangup())


@pytest.mark.parametrize(
    "document",
    [
        "<Response><Say>unterminated</Response>",
        "<Reply><Hangup/></Reply>",
        '<Response><Connect><Stream url="https://x/y"/></Connect></Response>',
        '<Response><Connect><Stream url="wss://x/y"><Parameter value="v"/></Stream>'
        "</Connect></Response>",
        '<Response><Pause length="soon"/></Response>',
    ],
)
def test_bad_twiml_is_rejected(document: str) -> None:
    with pytest.raises(TwimlError):
        parse_twiml(document)


def _choose(
    requested: str | None = None,
    to: str = "+14155550123",
    mix: tuple[tuple[str, int], ...] = (),
    seed: int = 1,
) -> str:
    return choose_persona(
        requested=requested,
        to=to,
        table=PERSONAS,
        number_rules=(("0000", "busy"), ("99", "voicemail")),
        mix=mix,
        rng=random.Random(seed),
    ).name


def test_persona_choice_order_parameter_then_rule_then_mix_then_default() -> None:
    assert _choose("decline", to="+14155550000", mix=(("silent", 1),)) == "decline"
    assert _choose(None, to="+14155550000", mix=(("silent", 1),)) == "busy"
    assert _choose("no-such-persona", to="+14155550099") == "voicemail"
    assert _choose(None, mix=(("silent", 1),)) == "silent"
    assert _choose(None) == "confirm"


def test_persona_mix_follows_its_weights() -> None:
    rng = random.Random(42)
    picks = [
        choose_persona(
            requested=None,
            to="+14155550123",
            table=PERSONAS,
            number_rules=(),
            mix=(("confirm", 3), ("busy", 1), ("decline", 0)),
            rng=rng,
        ).name
        for _ in range(2000)
    ]
    assert "decline" not in picks
    assert 0.70 < picks.count("confirm") / len(picks) < 0.80


def test_every_builtin_persona_is_listed_in_the_brief() -> None:
    assert set(PERSONAS) == {
        "confirm",
        "decline",
        "no_answer",
        "busy",
        "voicemail",
        "hangup_mid",
        "barge_in",
        "silent",
        "wrong_person",
        "reschedule",
        "front_desk_order",
        "front_desk_appointment",
    }
    assert all(
        step.act is not Act.HANGUP or i == len(p.steps) - 1
        for p in PERSONAS.values()
        for i, step in enumerate(p.steps)
    )


class RecordingSession:
    def __init__(self, bot_replies: bool = True) -> None:
        self.log: list[str] = []
        self.bot_replies = bot_replies

    async def say(self, text: str, *, fraction: float = 1.0) -> None:
        self.log.append(f"say:{text}:{fraction}")

    async def play_tone(self, duration_s: float) -> None:
        self.log.append(f"tone:{duration_s}")

    async def wait_for_bot_reply(self, timeout_s: float) -> bool:
        self.log.append(f"wait:{timeout_s}")
        return self.bot_replies

    async def wait_for_bot_speaking(self, timeout_s: float) -> bool:
        self.log.append("wait-speaking")
        return True

    async def send_dtmf(self, digit: str) -> None:
        self.log.append(f"dtmf:{digit}")


async def test_script_interpreter_runs_steps_in_order_and_stops_at_hangup() -> None:
    persona = Persona(
        "t",
        Pickup.HUMAN,
        0.0,
        (
            Step(Act.WAIT_BOT),
            Step(Act.SAY, "hi"),
            Step(Act.DTMF, digit="5"),
            Step(Act.BARGE_IN, "stop", seconds=0.01),
            Step(Act.BEEP, seconds=0.2),
            Step(Act.WAIT_BOT, seconds=1.5),
            Step(Act.HANGUP),
            Step(Act.SAY, "never"),
        ),
    )
    session = RecordingSession()
    await asyncio.wait_for(run_script(persona, session, bot_wait_s=9, linger_s=60), 2)
    assert session.log == [
        "wait:9",
        "say:hi:1.0",
        "dtmf:5",
        "wait-speaking",
        "say:stop:1.0",
        "tone:0.2",
        "wait:1.5",
    ]


async def test_script_lingers_after_its_last_step_then_returns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)  # the wait asked for; the test need not spend it

    monkeypatch.setattr(conversation, "asyncio", SimpleNamespace(sleep=record))
    session = RecordingSession()
    await run_script(PERSONAS["silent"], session, bot_wait_s=1, linger_s=0.2)
    assert session.log == []
    assert waits[-1] == 0.2


def test_playback_echoes_marks_only_once_the_audio_before_them_has_played() -> None:
    buffer = PlaybackBuffer()
    buffer.add_mark("before-anything")
    buffer.add_audio(b"\x00" * (FRAME_BYTES * 2 + 40))
    buffer.add_mark("end")
    played, marks = buffer.play()
    assert (len(played), marks) == (FRAME_BYTES, ["before-anything"])
    played, marks = buffer.play()
    assert (len(played), marks) == (FRAME_BYTES, [])
    played, marks = buffer.play()
    assert (len(played), marks) == (40, ["end"])
    assert buffer.pending_bytes == 0


def test_clear_drops_unplayed_audio_and_returns_pending_marks() -> None:
    buffer = PlaybackBuffer()
    buffer.add_audio(b"\x00" * FRAME_BYTES * 10)
    buffer.add_mark("a")
    buffer.add_audio(b"\x00" * FRAME_BYTES)
    buffer.add_mark("b")
    buffer.play()
    assert buffer.clear() == (FRAME_BYTES * 10, ["a", "b"])
    assert buffer.play() == (b"", [])


def test_tracker_measures_turns_and_latency_from_the_last_word() -> None:
    tracker = BotTurnTracker(gap_ms=200)
    greeting = tone(100)
    tracker.on_received(50, greeting)
    for t in (60, 80, 100, 120, 140):
        tracker.on_played(t, greeting[:FRAME_BYTES])
    tracker.tick(300)
    assert tracker.turns[0].ended_ms is None  # 160 ms of silence < gap
    tracker.tick(400)
    first = tracker.turns[0]
    assert (first.started_ms, first.ended_ms, first.response_latency_ms) == (50, 160, None)
    assert first.audio_ms == 100 and first.played_ms == 100
    assert tracker.replied_since(0)
    tracker.on_customer_end(1000)
    tracker.on_received(1100, SILENCE_FRAME)  # silence does not open a turn
    assert len(tracker.turns) == 1
    tracker.on_received(1450, greeting)
    assert tracker.turns[1].response_latency_ms == 450
    assert not tracker.replied_since(1000)


def test_tracker_splits_a_turn_when_the_caller_spoke_in_between() -> None:
    tracker = BotTurnTracker(gap_ms=10_000)
    tracker.on_received(0, tone(60))
    tracker.on_customer_end(500)
    tracker.on_received(900, tone(60))
    assert [t.started_ms for t in tracker.turns] == [0, 900]
    assert tracker.turns[0].ended_ms is not None
    assert tracker.turns[1].response_latency_ms == 400


def test_signature_matches_twilio_request_validator() -> None:
    url = "https://api.example.com/twilio/status?leg=a"
    params = {
        "CallSid": "CA" + "0" * 32,
        "CallStatus": "completed",
        "To": "+14155550123",
        "Timestamp": "Sat, 21 Nov 2026 14:13:22 +0000",
    }
    signature = twilio_signature("s3cret", url, params.items())
    assert RequestValidator("s3cret").validate(url, params, signature)
    assert not RequestValidator("other").validate(url, params, signature)
    assert not RequestValidator("s3cret").validate(url, {**params, "To": "+1"}, signature)
    get_url, body, headers = signed_request("s3cret", "GET", url, params)
    assert body is None and get_url.startswith(url + "&")
    assert RequestValidator("s3cret").validate(get_url, {}, headers["X-Twilio-Signature"])


def _form(**fields: str | list[str]) -> Form:
    items: list[tuple[str, str]] = []
    for key, value in fields.items():
        items.extend((key, v) for v in (value if isinstance(value, list) else [value]))
    return Form(items)


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"To": "+1415555", "From": "+14155550100"}, 21211),
        ({"To": "14155550123", "From": "+14155550100"}, 21211),
        ({"To": "+14155550123", "From": "sales"}, 21212),
        ({"From": "+14155550100"}, 21201),
        ({"To": "+14155550123", "From": "+14155550100"}, 21205),  # neither Twiml nor Url
        ({"To": "+14155550123", "From": "+14155550100", "Twiml": "<Response>"}, 12100),
        (
            {
                "To": "+14155550123",
                "From": "+14155550100",
                "Twiml": "<Response/>",
                "StatusCallbackEvent": ["completed", "in-progress"],
            },
            20001,
        ),
        (
            {
                "To": "+14155550123",
                "From": "+14155550100",
                "Twiml": "<Response/>",
                "StatusCallback": "ftp://x",
            },
            21609,
        ),
    ],
)
def test_create_validation_uses_twilio_codes(fields: dict[str, str], code: int) -> None:
    with pytest.raises(TwilioApiError) as caught:
        parse_create(_form(**fields))
    assert (caught.value.status, caught.value.code) == (400, code)


def test_create_form_is_parsed_with_repeated_events() -> None:
    request = parse_create(
        _form(
            To="+919876543210",
            From="+14155550100",
            Twiml=PRODUCTION_TWIML,
            Timeout="25",
            StatusCallback="http://127.0.0.1/cb",
            StatusCallbackEvent=["initiated", "answered"],
            MachineDetection="Enable",
        )
    )
    assert request.callback_events == {"initiated", "answered"}
    assert request.timeout_s == 25 and request.machine_detection == "Enable"
    assert request.status_callback_method == "POST" and request.url is None


async def test_call_state_machine_refuses_impossible_moves() -> None:
    request = parse_create(_form(To="+14155550123", From="+14155550100", Twiml="<Response/>"))
    call = Call(new_sid("CA"), "AC" + "0" * 32, request, PERSONAS["confirm"], CallReport("x"))
    assert call.sid.startswith("CA") and len(call.sid) == 34
    call.move(CallStatus.INITIATED)
    assert call.api_status is CallStatus.QUEUED
    with pytest.raises(InvalidTransition):
        call.move(CallStatus.COMPLETED)  # never answered
    call.move(CallStatus.RINGING)
    call.move(CallStatus.IN_PROGRESS)
    call.move(CallStatus.COMPLETED)
    assert call.finished.is_set() and call.duration_s in (0, 1) and call.ended_at is not None
    with pytest.raises(InvalidTransition):
        call.move(CallStatus.RINGING)
