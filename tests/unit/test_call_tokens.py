"""Call tokens, the pure parts: wire format, signature, age, binding to the placed call."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re

import pytest

from shared.call_tokens import (
    CallTokenClaims,
    CallTokenInvalid,
    TokenCallMismatch,
    TokenExpired,
    TokenForged,
    TokenMalformed,
    check_call_binding,
    issue_call_token,
    verify_call_token,
)

SECRET = b"s" * 32
OTHER_SECRET = b"o" * 32
NOW_S = 1_700_000_000.0


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def signed(body: str, secret: bytes = SECRET) -> str:
    """Sign a claims segment exactly as the documented wire format says."""
    mac = hmac.new(secret, b"callfleet.call-token.v1." + body.encode(), hashlib.sha256)
    return f"{body}.{b64(mac.digest())}"


def token() -> str:
    return issue_call_token(
        SECRET, attempt_id="att-1", lead_id="lead-1", now_s=NOW_S, token_id="tid-1"
    )


def test_round_trip_returns_the_claims() -> None:
    claims = verify_call_token(SECRET, token(), now_s=NOW_S + 10)
    assert claims == CallTokenClaims(
        token_id="tid-1", attempt_id="att-1", lead_id="lead-1", issued_at_s=int(NOW_S)
    )


def test_wire_format_is_compact_url_safe_and_documented() -> None:
    issued = token()
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", issued)
    claims = {"aid": "att-1", "iat": int(NOW_S), "lid": "lead-1", "tid": "tid-1"}
    body = b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    assert issued == signed(body)


def test_fresh_token_ids_are_unique() -> None:
    first = issue_call_token(SECRET, attempt_id="a", lead_id="l", now_s=NOW_S)
    second = issue_call_token(SECRET, attempt_id="a", lead_id="l", now_s=NOW_S)
    ids = {verify_call_token(SECRET, t, now_s=NOW_S).token_id for t in (first, second)}
    assert len(ids) == 2


def test_another_secret_means_forged() -> None:
    with pytest.raises(TokenForged):
        verify_call_token(OTHER_SECRET, token(), now_s=NOW_S)


def test_tampered_claims_mean_forged() -> None:
    _, signature = token().split(".")
    body = b64(b'{"aid":"att-2","iat":1700000000,"lid":"lead-1","tid":"tid-1"}')
    with pytest.raises(TokenForged):
        verify_call_token(SECRET, f"{body}.{signature}", now_s=NOW_S)


def test_truncated_signature_means_forged() -> None:
    with pytest.raises(TokenForged):
        verify_call_token(SECRET, token()[:-4], now_s=NOW_S)


@pytest.mark.parametrize(
    "bad",
    ["", "abc", "a.b.c", "!!.??", "a b.c", "x" * 2000, "Zm9v.a"],
)
def test_malformed_tokens(bad: str) -> None:
    with pytest.raises(TokenMalformed):
        verify_call_token(SECRET, bad, now_s=NOW_S)


@pytest.mark.parametrize(
    "claims",
    [
        b"not json",
        b"[1, 2]",
        b'{"aid":"a","iat":1700000000,"lid":"l"}',
        b'{"aid":"a","iat":1700000000,"lid":"l","tid":"t","x":1}',
        b'{"aid":"","iat":1700000000,"lid":"l","tid":"t"}',
        b'{"aid":"a","iat":"1700000000","lid":"l","tid":"t"}',
        b'{"aid":"a","iat":true,"lid":"l","tid":"t"}',
        b"\xff\xfe",
    ],
)
def test_signed_but_wrong_claims_are_malformed(claims: bytes) -> None:
    with pytest.raises(TokenMalformed):
        verify_call_token(SECRET, signed(b64(claims)), now_s=NOW_S)


def test_age_limit_is_inclusive() -> None:
    verify_call_token(SECRET, token(), now_s=NOW_S + 300, max_age_s=300)
    with pytest.raises(TokenExpired):
        verify_call_token(SECRET, token(), now_s=NOW_S + 301, max_age_s=300)


def test_tokens_from_the_future_beyond_skew_are_refused() -> None:
    verify_call_token(SECRET, token(), now_s=NOW_S - 30, clock_skew_s=30)
    with pytest.raises(TokenExpired):
        verify_call_token(SECRET, token(), now_s=NOW_S - 31, clock_skew_s=30)


def test_short_secrets_are_refused() -> None:
    with pytest.raises(ValueError):
        issue_call_token(b"short", attempt_id="a", lead_id="l")
    with pytest.raises(ValueError):
        verify_call_token(b"short", token())


def test_errors_share_one_root_and_never_echo_the_token() -> None:
    issued = token()
    with pytest.raises(CallTokenInvalid) as caught:
        verify_call_token(OTHER_SECRET, issued, now_s=NOW_S)
    assert issued not in str(caught.value)
    assert issued.split(".")[1] not in str(caught.value)


def test_binding_accepts_the_recorded_call_only() -> None:
    claims = verify_call_token(SECRET, token(), now_s=NOW_S)
    check_call_binding(claims, call_sid="CA1", recorded_call_sid="CA1")
    with pytest.raises(TokenCallMismatch):
        check_call_binding(claims, call_sid="CA2", recorded_call_sid="CA1")
    with pytest.raises(TokenCallMismatch):
        check_call_binding(claims, call_sid="CA1", recorded_call_sid=None)
