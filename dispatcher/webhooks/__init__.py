"""Merchant webhooks: signing, URL policy, the event payload, and one delivery attempt."""

from __future__ import annotations

from dispatcher.webhooks.delivery import (
    USER_AGENT,
    DeliveryOutcome,
    DeliveryResult,
    classify_response,
    deliver,
    encode_body,
    retry_delay_s,
)
from dispatcher.webhooks.payload import (
    AttemptSummary,
    CallTimings,
    LeadOutcomeEvent,
    TranscriptTurn,
    call_timings,
    lead_outcome_event,
)
from dispatcher.webhooks.signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
    signature_headers,
    verify,
)
from dispatcher.webhooks.urls import UrlDecision, UrlVerdict, check_webhook_url

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "USER_AGENT",
    "AttemptSummary",
    "CallTimings",
    "DeliveryOutcome",
    "DeliveryResult",
    "LeadOutcomeEvent",
    "TranscriptTurn",
    "UrlDecision",
    "UrlVerdict",
    "call_timings",
    "check_webhook_url",
    "classify_response",
    "deliver",
    "encode_body",
    "lead_outcome_event",
    "retry_delay_s",
    "sign",
    "signature_headers",
    "verify",
]
