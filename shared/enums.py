"""The one set of states and outcomes shared by the database, the API and the workers."""

from __future__ import annotations

from enum import StrEnum


class LeadStatus(StrEnum):
    SCHEDULED = "SCHEDULED"
    QUEUED = "QUEUED"
    DIALING = "DIALING"
    IN_CALL = "IN_CALL"
    FINISHED = "FINISHED"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        return self in (LeadStatus.FINISHED, LeadStatus.CANCELLED)


class Outcome(StrEnum):
    """Why a lead or an attempt ended. Templates end calls with the business outcomes;
    the platform records the rest."""

    # Decided by the conversation (a template's `end_call(outcome)`).
    CONFIRMED = "CONFIRMED"
    CANCELLED_BY_CUSTOMER = "CANCELLED_BY_CUSTOMER"
    RESCHEDULED = "RESCHEDULED"
    WRONG_PERSON = "WRONG_PERSON"
    NOT_INTERESTED = "NOT_INTERESTED"
    CALLBACK_REQUESTED = "CALLBACK_REQUESTED"
    TRANSFERRED = "TRANSFERRED"
    COMPLETED = "COMPLETED"
    NO_RESPONSE = "NO_RESPONSE"
    # Decided by the platform.
    NO_ANSWER = "NO_ANSWER"
    BUSY = "BUSY"
    FAILED = "FAILED"
    VOICEMAIL = "VOICEMAIL"
    NUMBER_UNAVAILABLE = "NUMBER_UNAVAILABLE"
    DNC = "DNC"
    INVALID_PHONE = "INVALID_PHONE"
    EXPIRED = "EXPIRED"
    MAX_ATTEMPTS = "MAX_ATTEMPTS"
    CANCELLED = "CANCELLED"


PLATFORM_OUTCOMES = frozenset(
    {
        Outcome.NO_ANSWER,
        Outcome.BUSY,
        Outcome.FAILED,
        Outcome.VOICEMAIL,
        Outcome.NUMBER_UNAVAILABLE,
        Outcome.DNC,
        Outcome.INVALID_PHONE,
        Outcome.EXPIRED,
        Outcome.MAX_ATTEMPTS,
        Outcome.CANCELLED,
    }
)


class AttemptState(StrEnum):
    CREATED = "CREATED"
    DIALING = "DIALING"
    RINGING = "RINGING"
    IN_PROGRESS = "IN_PROGRESS"
    ENDED = "ENDED"


class Direction(StrEnum):
    OUTBOUND = "OUTBOUND"
    INBOUND = "INBOUND"


class NumberProvider(StrEnum):
    TWILIO = "twilio"


class DeferralReason(StrEnum):
    """Why a lead went back to SCHEDULED instead of being dialed."""

    WINDOW_CLOSED = "WINDOW_CLOSED"
    RATE_LIMITED = "RATE_LIMITED"
    CHANNELS_BUSY = "CHANNELS_BUSY"
    MEDIA_BUSY = "MEDIA_BUSY"
    PROVIDER_UNAVAILABLE = "PROVIDER_UNAVAILABLE"
    RETRY_SCHEDULED = "RETRY_SCHEDULED"
    DISPATCH_LOST = "DISPATCH_LOST"
    DIAL_UNCONFIRMED = "DIAL_UNCONFIRMED"

    @property
    def is_capacity_wait(self) -> bool:
        return self in (DeferralReason.CHANNELS_BUSY, DeferralReason.MEDIA_BUSY)
