"""Webhook delivery against a real local HTTP receiver: signed bytes, headers, and what each
kind of answer (or silence) means for the next try."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dispatcher.webhooks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    USER_AGENT,
    DeliveryOutcome,
    deliver,
    verify,
)
from tests.http_receiver import Receiver, running_receiver

SECRET = "whsec_merchant_1"
PAYLOAD = {"event": "lead.finished", "lead_id": "L1", "outcome": "CONFIRMED", "attempts": 2}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver("/hooks/callfleet") as state:
        yield state


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False) as http:
        yield http


def send(receiver_url: str, client: httpx.Client, **options: Any) -> Any:
    options.setdefault("allow_insecure", True)
    return deliver(receiver_url, SECRET, PAYLOAD, client=client, timeout_s=5, **options)


def test_the_receiver_gets_a_body_it_can_verify(receiver: Receiver, client: httpx.Client) -> None:
    result = send(receiver.url, client)

    assert result.outcome is DeliveryOutcome.DELIVERED and result.status_code == 200
    [(headers, body)] = receiver.received
    assert json.loads(body) == PAYLOAD
    assert body == json.dumps(PAYLOAD, separators=(",", ":"), sort_keys=True).encode()
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == USER_AGENT
    assert verify(
        SECRET, headers[TIMESTAMP_HEADER.lower()], body, headers[SIGNATURE_HEADER.lower()]
    )
    assert not verify(
        "another-secret", headers["x-callfleet-timestamp"], body, headers["x-callfleet-signature"]
    )


def test_the_signature_uses_the_given_clock(receiver: Receiver, client: httpx.Client) -> None:
    send(receiver.url, client, now_s=1_700_000_000)
    [(headers, body)] = receiver.received
    assert headers["x-callfleet-timestamp"] == "1700000000"
    signature = headers["x-callfleet-signature"]
    assert verify(SECRET, 1_700_000_000, body, signature, now_s=1_700_000_010)
    assert not verify(SECRET, 1_700_000_000, body, signature, now_s=1_700_001_000)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (500, DeliveryOutcome.RETRY),
        (503, DeliveryOutcome.RETRY),
        (408, DeliveryOutcome.RETRY),
        (400, DeliveryOutcome.GIVE_UP),
        (410, DeliveryOutcome.GIVE_UP),
        (302, DeliveryOutcome.GIVE_UP),
    ],
)
def test_answers_decide_the_next_step(
    receiver: Receiver, client: httpx.Client, status: int, outcome: DeliveryOutcome
) -> None:
    receiver.script.append((status, {"Location": "http://169.254.169.254/"}))
    result = send(receiver.url, client)
    assert result.outcome is outcome and result.status_code == status
    assert len(receiver.received) == 1  # a redirect is never followed


def test_a_429_carries_its_retry_after(receiver: Receiver, client: httpx.Client) -> None:
    receiver.script.append((429, {"Retry-After": "7"}))
    result = send(receiver.url, client)
    assert result.outcome is DeliveryOutcome.RETRY and result.retry_after_s == 7


def test_a_refused_connection_is_retried(client: httpx.Client) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = send(f"http://127.0.0.1:{port}/hooks", client)
    assert result.outcome is DeliveryOutcome.RETRY and result.status_code is None
    assert "ConnectError" in result.detail


def test_a_silent_receiver_is_retried(receiver: Receiver, client: httpx.Client) -> None:
    receiver.stall = threading.Event()
    result = deliver(
        receiver.url, SECRET, PAYLOAD, client=client, timeout_s=0.2, allow_insecure=True
    )
    assert result.outcome is DeliveryOutcome.RETRY and "Timeout" in result.detail


def test_a_local_url_is_refused_without_the_insecure_option(
    receiver: Receiver, client: httpx.Client
) -> None:
    result = send(receiver.url, client, allow_insecure=False)
    assert result.outcome is DeliveryOutcome.GIVE_UP and "refused" in result.detail
    assert receiver.received == []


def test_an_unresolvable_host_is_retried_later(client: httpx.Client) -> None:
    def no_answer(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_AGAIN, "temporary failure")

    result = send("https://hooks.example.com/cf", client, resolve=no_answer)
    assert result.outcome is DeliveryOutcome.RETRY


def test_delivery_connects_to_the_address_the_policy_checked(
    receiver: Receiver, client: httpx.Client
) -> None:
    # The hostname is resolved once, by the policy; the request goes to that address and
    # keeps the name in the Host header, so a second DNS answer cannot redirect it.
    def pinned(host: str, port: int) -> list[str]:
        assert host == "merchant.test"
        return ["127.0.0.1"]

    url = f"http://merchant.test:{receiver.port}/hooks/callfleet"
    result = send(url, client, resolve=pinned)
    assert result.outcome is DeliveryOutcome.DELIVERED
    [(headers, _)] = receiver.received
    assert headers["host"] == f"merchant.test:{receiver.port}"


@pytest.mark.parametrize(
    ("address", "expected_host"),
    [("93.184.216.34", "93.184.216.34"), ("2606:4700::1111", "2606:4700::1111")],
)
def test_https_is_pinned_but_tls_still_checks_the_name(address: str, expected_host: str) -> None:
    seen: list[httpx.Request] = []

    def merchant(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    with httpx.Client(transport=httpx.MockTransport(merchant)) as mocked:
        result = deliver(
            "https://hooks.merchant.example:8443/cf?x=1",
            SECRET,
            PAYLOAD,
            client=mocked,
            timeout_s=5,
            resolve=lambda host, port: [address],
        )
    assert result.outcome is DeliveryOutcome.DELIVERED
    [request] = seen
    assert (request.url.host, request.url.port, request.url.path) == (expected_host, 8443, "/cf")
    assert request.url.query == b"x=1"
    assert request.headers["host"] == "hooks.merchant.example:8443"
    assert request.extensions["sni_hostname"] == "hooks.merchant.example"
    assert request.headers["connection"] == "close"
