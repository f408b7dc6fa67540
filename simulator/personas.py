"""Who picks up: the persona table (data, not classes) and the rule that picks one per call.

A persona is how the phone is answered (`Pickup`) and, once a media stream is open, a
script of `Step`s that `simulator.conversation.run_script` plays. Chosen, in order, by:
the `<Parameter name="persona">` of the call's `<Stream>`; the first number rule whose
suffix ends the dialed number; a weighted mix; else `confirm`.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

DEFAULT_PERSONA = "confirm"
PERSONA_PARAMETER = "persona"


class Pickup(StrEnum):
    HUMAN = "human"  # answers; AnsweredBy=human when machine detection is on
    MACHINE = "machine"  # voicemail answers; AnsweredBy=machine_start / machine_end_beep
    NO_ANSWER = "no_answer"  # rings until the call's Timeout
    BUSY = "busy"  # busy signal, never rings


class Act(StrEnum):
    WAIT_BOT = "wait_bot"  # wait until the bot has said something and stopped
    SAY = "say"  # speak `text` (only its first `fraction` when < 1)
    BARGE_IN = "barge_in"  # wait until the bot is talking, then `seconds` later speak over it
    PAUSE = "pause"  # stay silent for `seconds`
    DTMF = "dtmf"  # press `digit`
    BEEP = "beep"  # a voicemail tone of `seconds`
    HANGUP = "hangup"  # hang up now


@dataclass(frozen=True)
class Step:
    act: Act
    text: str = ""
    seconds: float = 0.0
    fraction: float = 1.0
    digit: str = ""


@dataclass(frozen=True)
class Persona:
    """`ring_s` before answering; after the last step the caller stays on the line (for the
    bot to end the call) for the simulator's `linger_s`, then hangs up."""

    name: str
    pickup: Pickup
    ring_s: float
    steps: tuple[Step, ...] = ()


def _wait() -> Step:
    return Step(Act.WAIT_BOT)


def _say(text: str, fraction: float = 1.0) -> Step:
    return Step(Act.SAY, text=text, fraction=fraction)


PERSONAS: Mapping[str, Persona] = {
    persona.name: persona
    for persona in (
        Persona(
            "confirm",
            Pickup.HUMAN,
            2.0,
            (
                _wait(),
                _say("Yes, this is me. I can confirm the order."),
                _wait(),
                _say("Yes, that is correct. Please go ahead."),
                _wait(),
                _say("Thank you. Bye."),
            ),
        ),
        Persona(
            "decline",
            Pickup.HUMAN,
            2.5,
            (
                _wait(),
                _say("No, I do not want this order anymore. Please cancel it."),
                _wait(),
                _say("Yes, cancel it please."),
                _wait(),
                _say("Okay. Bye."),
            ),
        ),
        Persona("no_answer", Pickup.NO_ANSWER, 0.0),
        Persona("busy", Pickup.BUSY, 0.5),
        Persona(
            "voicemail",
            Pickup.MACHINE,
            3.0,
            (
                _say(
                    "Hi, you have reached Sam. I cannot take your call right now. "
                    "Please leave a message after the tone."
                ),
                Step(Act.BEEP, seconds=0.5),
            ),
        ),
        Persona(
            "hangup_mid",
            Pickup.HUMAN,
            2.0,
            (
                _wait(),
                _say("Hello? Sorry, I am driving right now, can you call me later", 0.5),
                Step(Act.HANGUP),
            ),
        ),
        Persona(
            "barge_in",
            Pickup.HUMAN,
            1.5,
            (
                Step(Act.BARGE_IN, text="Wait, wait. Which order is this about?", seconds=0.6),
                _wait(),
                _say("Oh, okay. Yes, please confirm it."),
                _wait(),
                _say("Thanks. Bye."),
            ),
        ),
        Persona("silent", Pickup.HUMAN, 2.0),
        Persona(
            "wrong_person",
            Pickup.HUMAN,
            2.0,
            (
                _wait(),
                _say("Sorry, you have the wrong number. There is nobody by that name here."),
                _wait(),
                _say("No problem. Bye."),
            ),
        ),
        # For a front desk that routes: says what the call is about, then deals with the agent.
        Persona(
            "front_desk_order",
            Pickup.HUMAN,
            2.0,
            (
                _wait(),
                _say("Hi. I am calling about my order delivery."),
                _wait(),
                _say("Yes, this is me. I can confirm the order."),
                _wait(),
                _say("Yes, that is correct. Please go ahead."),
                _wait(),
                _say("Thank you. Bye."),
            ),
        ),
        Persona(
            "front_desk_appointment",
            Pickup.HUMAN,
            2.0,
            (
                _wait(),
                _say("Hello. This is about my clinic appointment."),
                _wait(),
                _say("Yes, this is me. I confirm the appointment."),
                _wait(),
                _say("Yes, that is correct. I will be there."),
                _wait(),
                _say("Thank you. Bye."),
            ),
        ),
        Persona(
            "reschedule",
            Pickup.HUMAN,
            2.0,
            (
                _wait(),
                _say("I am busy right now. Can you call me back tomorrow evening?"),
                _wait(),
                _say("Yes, tomorrow at six in the evening works."),
                _wait(),
                _say("Thanks. Bye."),
            ),
        ),
    )
}

# Numbers ending in these digits get this persona unless the TwiML names one.
DEFAULT_NUMBER_RULES: tuple[tuple[str, str], ...] = (
    ("0000", "busy"),
    ("0001", "no_answer"),
    ("0002", "voicemail"),
    ("0003", "decline"),
    ("0004", "hangup_mid"),
    ("0005", "barge_in"),
    ("0006", "silent"),
    ("0007", "wrong_person"),
    ("0008", "reschedule"),
)


def check_names(table: Mapping[str, Persona], names: Sequence[str]) -> None:
    """Raise ValueError naming the first persona that is not in the table."""
    for name in names:
        if name not in table:
            raise ValueError(f"unknown persona {name!r}; known: {', '.join(sorted(table))}")


def choose_persona(
    *,
    requested: str | None,
    to: str,
    table: Mapping[str, Persona],
    number_rules: Sequence[tuple[str, str]],
    mix: Sequence[tuple[str, int]],
    rng: random.Random,
) -> Persona:
    """The persona for one call (see the module docstring for the order)."""
    if requested and requested in table:
        return table[requested]
    for suffix, name in number_rules:
        if to.endswith(suffix) and name in table:
            return table[name]
    weighted = [(name, weight) for name, weight in mix if weight > 0 and name in table]
    if weighted:
        names, weights = zip(*weighted, strict=True)
        return table[rng.choices(names, weights=weights)[0]]
    return table[DEFAULT_PERSONA]


def parse_pairs(text: str, *, numeric: bool) -> tuple[tuple[str, str], ...]:
    """`a=1,b=2` to pairs; `numeric` requires non-negative integer values."""
    pairs: list[tuple[str, str]] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValueError(f"expected key=value, got {item!r}")
        if numeric and not value.strip().isdigit():
            raise ValueError(f"weight must be a non-negative integer, got {item!r}")
        pairs.append((key.strip(), value.strip()))
    return tuple(pairs)
