"""Merchant webhooks, the pure parts: signatures, URL policy, payload, backoff, classification."""

from __future__ import annotations

import hashlib
import hmac
import random
import socket
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from dispatcher.webhooks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    AttemptSummary,
    DeliveryOutcome,
    LeadOutcomeEvent,
    UrlVerdict,
    call_timings,
    check_webhook_url,
    classify_response,
    encode_body,
    lead_outcome_event,
    retry_delay_s,
    sign,
    signature_headers,
    verify,
)
from dispatcher.webhooks.urls import Resolver
from shared.enums import LeadStatus, Outcome

SECRET = "whsec_test"
NOW_S = 1_700_000_000
BODY = b'{"event":"lead.finished","lead_id":"L1"}'

# --- signing --------------------------------------------------------------------------------


def test_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, NOW_S, BODY) == expected


def test_headers_round_trip_through_verify() -> None:
    headers = signature_headers(SECRET, BODY, now_s=NOW_S)
    assert headers[TIMESTAMP_HEADER] == str(NOW_S)
    assert headers[SIGNATURE_HEADER].startswith("v1=") and len(headers[SIGNATURE_HEADER]) == 67
    assert verify(
        SECRET, headers[TIMESTAMP_HEADER], BODY, headers[SIGNATURE_HEADER], now_s=NOW_S + 5
    )


@pytest.mark.parametrize(
    ("secret", "timestamp", "body", "now_s"),
    [
        ("other-secret", NOW_S, BODY, NOW_S),  # wrong secret
        (SECRET, NOW_S, BODY + b" ", NOW_S),  # tampered body
        (SECRET, NOW_S + 1, BODY, NOW_S),  # tampered timestamp
        (SECRET, NOW_S, BODY, NOW_S + 301),  # too old: a replay
        (SECRET, NOW_S, BODY, NOW_S - 301),  # too far in the future
    ],
)
def test_verify_refuses(secret: str, timestamp: int, body: bytes, now_s: int) -> None:
    signature = f"v1={sign(SECRET, NOW_S, BODY)}"
    assert not verify(secret, timestamp, body, signature, now_s=now_s, tolerance_s=300)


@pytest.mark.parametrize(
    "signature", ["", "v1=", "deadbeef", "v0=" + "0" * 64, "v1=ünïcode", "v1=" + "0" * 64]
)
def test_verify_refuses_malformed_signatures(signature: str) -> None:
    assert not verify(SECRET, NOW_S, BODY, signature, now_s=NOW_S)


def test_verify_refuses_non_numeric_timestamps() -> None:
    signature = f"v1={sign(SECRET, NOW_S, BODY)}"
    assert not verify(SECRET, "yesterday", BODY, signature, now_s=NOW_S)


def test_verify_accepts_any_listed_signature_during_rotation() -> None:
    good = sign(SECRET, NOW_S, BODY)
    assert verify(SECRET, NOW_S, BODY, f"v1={'0' * 64}, v1={good}", now_s=NOW_S)


def test_body_encoding_is_compact_and_sorted() -> None:
    assert encode_body({"b": 1, "a": "ä"}) == '{"a":"ä","b":1}'.encode()


# --- URL policy ------------------------------------------------------------------------------


def resolves_to(*addresses: str) -> Resolver:
    def resolve(host: str, port: int) -> list[str]:
        return list(addresses)

    return resolve


def test_https_to_a_public_address_is_allowed() -> None:
    decision = check_webhook_url(
        "https://hooks.example.com/cf", resolve=resolves_to("93.184.216.34")
    )
    assert decision.allowed and decision.addresses == ("93.184.216.34",)


def test_plain_http_needs_the_insecure_option() -> None:
    public = resolves_to("93.184.216.34")
    refused = check_webhook_url("http://hooks.example.com/cf", resolve=public)
    assert refused.verdict is UrlVerdict.REFUSED and "https" in refused.reason
    assert check_webhook_url("http://hooks.example.com/cf", allow_insecure=True, resolve=public)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.5",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "fe80::1",
        "fd00::1",
        "::ffff:127.0.0.1",
    ],
)
def test_non_public_addresses_need_the_insecure_option(address: str) -> None:
    url = "https://hooks.example.com/cf"
    refused = check_webhook_url(url, resolve=resolves_to(address))
    assert refused.verdict is UrlVerdict.REFUSED and address in refused.reason
    assert check_webhook_url(url, allow_insecure=True, resolve=resolves_to(address)).allowed


def test_one_private_address_among_public_ones_is_enough_to_refuse() -> None:
    decision = check_webhook_url(
        "https://hooks.example.com/cf", resolve=resolves_to("93.184.216.34", "10.0.0.1")
    )
    assert decision.verdict is UrlVerdict.REFUSED


@pytest.mark.parametrize("url", ["https://127.0.0.1/cf", "https://[::1]:8443/cf"])
def test_literal_loopback_addresses_are_refused(url: str) -> None:
    assert check_webhook_url(url).verdict is UrlVerdict.REFUSED


def test_a_hostname_resolving_to_loopback_is_refused() -> None:
    # `localhost` resolves through the real resolver (hosts file), no network needed.
    decision = check_webhook_url("https://localhost/cf")
    assert decision.verdict is UrlVerdict.REFUSED
    assert "non-public" in decision.reason


@pytest.mark.parametrize(
    "url",
    [
        "ftp://hooks.example.com/cf",
        "hooks.example.com/cf",
        "https:///cf",
        "https://user:pass@hooks.example.com/cf",
        "https://hooks.example.com:99999/cf",
        "https://hooks.example.com/" + "a" * 3000,
    ],
)
def test_malformed_urls_are_refused_with_a_reason(url: str) -> None:
    decision = check_webhook_url(url, resolve=resolves_to("93.184.216.34"))
    assert decision.verdict is UrlVerdict.REFUSED and decision.reason


def test_a_host_that_does_not_resolve_is_unresolvable_not_refused() -> None:
    def fail(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "not known")

    decision = check_webhook_url("https://hooks.example.com/cf", resolve=fail)
    assert decision.verdict is UrlVerdict.UNRESOLVABLE and not decision.allowed


# --- classification and backoff ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, DeliveryOutcome.DELIVERED),
        (204, DeliveryOutcome.DELIVERED),
        (301, DeliveryOutcome.GIVE_UP),
        (400, DeliveryOutcome.GIVE_UP),
        (401, DeliveryOutcome.GIVE_UP),
        (404, DeliveryOutcome.GIVE_UP),
        (408, DeliveryOutcome.RETRY),
        (429, DeliveryOutcome.RETRY),
        (500, DeliveryOutcome.RETRY),
        (503, DeliveryOutcome.RETRY),
    ],
)
def test_status_classification(status: int, outcome: DeliveryOutcome) -> None:
    result = classify_response(status)
    assert result.outcome is outcome and result.status_code == status


def test_retry_after_seconds_are_kept() -> None:
    assert classify_response(429, "7").retry_after_s == 7
    assert classify_response(503, "Wed, 21 Oct 2015 07:28:00 GMT").retry_after_s is None


class UpperBound(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return b


def test_backoff_ceiling_doubles_up_to_the_cap() -> None:
    ceilings = [retry_delay_s(n, base_s=5, cap_s=60, rng=UpperBound()) for n in range(1, 7)]
    assert ceilings == [5, 10, 20, 40, 60, 60]
    assert retry_delay_s(10_000, base_s=5, cap_s=60, rng=UpperBound()) == 60


def test_backoff_is_jittered_within_the_ceiling() -> None:
    rng = random.Random(7)
    delays = [retry_delay_s(4, base_s=5, cap_s=3600, rng=rng) for _ in range(200)]
    assert all(0 <= d <= 40 for d in delays)
    assert len(set(delays)) > 100


# --- payload ---------------------------------------------------------------------------------


def test_event_masks_the_phone_and_carries_string_ids() -> None:
    dialed = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    event = lead_outcome_event(
        event="lead.finished",
        event_id="9a3f",
        occurred_at=dialed + timedelta(minutes=2),
        lead_id="0b6c",
        phone="+919812345678",
        status=LeadStatus.FINISHED,
        outcome=Outcome.CONFIRMED,
        attempts=1,
        idempotency_key="order-1234",
        template="cod_confirmation",
        attempt=AttemptSummary(
            attempt_no=1,
            outcome=Outcome.CONFIRMED,
            call_sid="CA1",
            timings=call_timings(
                dialed, dialed + timedelta(seconds=8), dialed + timedelta(seconds=70)
            ),
        ),
        transcript=[{"speaker": "customer", "text": "Haan, order 12345678 confirm"}],
    )
    payload = event.to_payload()
    assert payload["phone_masked"] == "+919•••••••78"
    assert "9812345678" not in encode_body(payload).decode()
    assert payload["lead_id"] == "0b6c" and payload["event_id"] == "9a3f"
    timings = payload["attempt"]["timings"]
    assert (timings["ring_s"], timings["talk_s"]) == (8, 62)
    assert payload["transcript"][0]["text"] == "Haan, order 12345678 confirm"
    assert LeadOutcomeEvent.model_validate(payload) == event


def test_timings_of_an_unanswered_call() -> None:
    dialed = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    timings = call_timings(dialed, None, dialed + timedelta(seconds=25))
    assert timings.ring_s == 25 and timings.talk_s is None


def test_event_refuses_naive_times_and_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        lead_outcome_event(
            event="lead.finished",
            event_id="e",
            occurred_at=datetime(2026, 1, 5, 10, 0),
            lead_id="l",
            phone="+919812345678",
            status=LeadStatus.FINISHED,
            outcome=None,
            attempts=0,
        )
    with pytest.raises(ValidationError):
        lead_outcome_event(
            event="lead.finished",
            event_id="e",
            occurred_at=datetime(2026, 1, 5, 10, 0, tzinfo=UTC),
            lead_id="l",
            phone="+919812345678",
            status=LeadStatus.FINISHED,
            outcome=None,
            attempts=0,
            transcript=[{"speaker": "agent", "text": "hi", "phone": "+919812345678"}],
        )
