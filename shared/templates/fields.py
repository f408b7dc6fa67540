"""Field types shared by the template models: names, text, E.164 numbers, outcomes, times.

Each type is an `Annotated` pydantic type whose validator says in one line what is wrong, so a
merchant reads `'NO_ANSWER' is recorded by the platform ...` rather than a regex.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict

from shared.enums import PLATFORM_OUTCOMES, Outcome
from shared.phones import InvalidPhone, to_e164
from shared.templates.errors import TemplateInvalid

BUSINESS_OUTCOMES = frozenset(Outcome) - PLATFORM_OUTCOMES
"""Outcomes a conversation may decide (`end_call`); the platform records the rest."""

RETRYABLE_OUTCOMES = frozenset({Outcome.NO_ANSWER, Outcome.BUSY, Outcome.FAILED, Outcome.VOICEMAIL})
"""Platform outcomes a retry policy may retry on; the others are final by nature."""

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*")
_HHMM = re.compile(r"([01]\d|2[0-3]):[0-5]\d")


class StrictModel(BaseModel):
    """Base of the template models: unknown keys are errors (typos), instances are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def raise_if(problems: list[str]) -> None:
    """Raise `TemplateInvalid` with `problems` (paths relative to the model) if there are any."""
    if problems:
        raise TemplateInvalid(problems)


def _identifier(value: str) -> str:
    if not _IDENTIFIER.fullmatch(value):
        raise ValueError(
            f"'{value}' is not a valid name: letters, digits and _, not starting with a digit, "
            "at most 64 characters"
        )
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _language(value: str) -> str:
    if not _LANGUAGE.fullmatch(value):
        raise ValueError(f"'{value}' is not a BCP 47 language tag like en-IN")
    return value


def _hhmm(value: str) -> str:
    if not _HHMM.fullmatch(value):
        raise ValueError(f"'{value}' is not a 24-hour time HH:MM like 09:30")
    return value


def _e164(value: str) -> str:
    try:
        return to_e164(value)
    except InvalidPhone as exc:
        raise ValueError(f"expected an E.164 number like +919876543210 ({exc})") from None


def _business_outcome(value: object) -> object:
    names = ", ".join(sorted(BUSINESS_OUTCOMES))
    if isinstance(value, str) and value in PLATFORM_OUTCOMES:
        raise ValueError(
            f"'{value}' is recorded by the platform, not decided by a template; use one of {names}"
        )
    if isinstance(value, str) and value not in BUSINESS_OUTCOMES:
        raise ValueError(f"unknown outcome '{value}'; use one of {names}")
    return value


def _retryable_outcome(value: object) -> object:
    if isinstance(value, str) and value not in RETRYABLE_OUTCOMES:
        names = ", ".join(sorted(RETRYABLE_OUTCOMES))
        raise ValueError(f"cannot retry on '{value}'; retry_on takes {names}")
    return value


Identifier = Annotated[str, AfterValidator(_identifier)]
"""A node, function, property or variable name: a Python-style identifier, at most 64 long."""
Text = Annotated[str, AfterValidator(_not_blank)]
Language = Annotated[str, AfterValidator(_language)]
HhMm = Annotated[str, AfterValidator(_hhmm)]
E164 = Annotated[str, AfterValidator(_e164)]
"""A dialable number, stored normalised (`+91 80 4718 1234` -> `+918047181234`)."""
BusinessOutcome = Annotated[Outcome, BeforeValidator(_business_outcome)]
RetryableOutcome = Annotated[Outcome, BeforeValidator(_retryable_outcome)]
