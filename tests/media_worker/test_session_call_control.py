"""The pure parts of reaching a live call over REST: the transfer's TwiML (as the simulator,
standing in for Twilio, reads it) and which `AnsweredBy` values mean a machine."""

from __future__ import annotations

import pytest

from media_worker.transport import dial_twiml, is_machine
from simulator.twiml import Dial, parse_twiml


def test_the_transfer_twiml_dials_the_number_and_nothing_else() -> None:
    assert parse_twiml(dial_twiml("+918047181234")) == (Dial("+918047181234"),)


def test_a_plain_dial_parses_like_a_dial_with_a_number_noun() -> None:
    document = "<Response><Dial> +14155550100 </Dial><Hangup/></Response>"
    assert parse_twiml(document)[0] == Dial("+14155550100")


@pytest.mark.parametrize(
    ("answered_by", "machine"),
    [
        ("machine_start", True),
        ("machine_end_beep", True),
        ("machine_end_silence", True),
        ("fax", True),
        ("human", False),
        ("unknown", False),
        (None, False),
        ("", False),
    ],
)
def test_machine_answers_are_told_from_people_and_unknowns(
    answered_by: str | None, machine: bool
) -> None:
    assert is_machine(answered_by) is machine
