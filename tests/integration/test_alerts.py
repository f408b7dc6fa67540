"""Alerts against real Redis (the fleet-wide throttle) and a local Slack-compatible receiver:
every alert is logged, one per period is posted, and a broken receiver never raises."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest
import redis
import structlog

from dispatcher.alerts import Alerter
from shared.coordination import AlertThrottle
from tests.http_receiver import Receiver, running_receiver


@pytest.fixture
def slack() -> Iterator[Receiver]:
    with running_receiver("/services/T000/B000/secret-path") as state:
        yield state


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False) as http:
        yield http


def test_one_post_per_period_and_a_log_line_every_time(
    redis_client: redis.Redis, slack: Receiver, client: httpx.Client
) -> None:
    alerter = Alerter(AlertThrottle(redis_client), slack_webhook_url=slack.url, client=client)

    with structlog.testing.capture_logs() as logs:
        firsts = [
            alerter.raise_alert(
                "number_unavailable",
                "merchant-1",
                "no outbound number for template 'cod'",
                every_s=600,
                template_id="t-1",
            )
            for _ in range(3)
        ]
        other = alerter.raise_alert("number_unavailable", "merchant-2", "no number", every_s=600)

    assert firsts == [True, False, False] and other is True
    assert len(slack.posts) == 2
    assert "merchant-1" in slack.posts[0]["text"] and "t-1" in slack.posts[0]["text"]
    alerts = [entry for entry in logs if entry["event"] == "alert"]
    assert len(alerts) == 4
    assert all(entry["log_level"] == "warning" for entry in alerts)
    assert alerts[0]["template_id"] == "t-1" and alerts[0]["subject"] == "merchant-1"


def test_a_new_period_posts_again(
    redis_client: redis.Redis, slack: Receiver, client: httpx.Client
) -> None:
    alerter = Alerter(AlertThrottle(redis_client), slack_webhook_url=slack.url, client=client)
    assert alerter.raise_alert("tts_flip", "elevenlabs", "provider failing", every_s=600)
    # The period ends when the throttle's marker expires; end it now rather than waiting.
    for key in redis_client.scan_iter("cf:alert:*"):
        redis_client.delete(key)
    assert alerter.raise_alert("tts_flip", "elevenlabs", "provider failing", every_s=600)
    assert len(slack.posts) == 2


def test_phone_numbers_are_masked_in_the_post(
    redis_client: redis.Redis, slack: Receiver, client: httpx.Client
) -> None:
    alerter = Alerter(AlertThrottle(redis_client), slack_webhook_url=slack.url, client=client)
    alerter.raise_alert("dial_failed", "merchant-1", "could not call +919812345678", every_s=60)
    assert "9812345678" not in slack.posts[0]["text"]


def test_a_failing_receiver_is_logged_never_raised(
    redis_client: redis.Redis, slack: Receiver, client: httpx.Client
) -> None:
    slack.default_status = 500
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_url = f"http://127.0.0.1:{probe.getsockname()[1]}/hook"
    throttle = AlertThrottle(redis_client)
    with structlog.testing.capture_logs() as logs:
        assert Alerter(throttle, slack_webhook_url=slack.url, client=client).raise_alert(
            "k", "s1", "m"
        )
        assert Alerter(throttle, slack_webhook_url=dead_url, client=client).raise_alert(
            "k", "s2", "m"
        )
    failures = [entry for entry in logs if entry["event"] == "alert_post_failed"]
    assert [f.get("status_code") for f in failures] == [500, None]
    assert failures[1]["error"] == "ConnectError"
    assert not any("secret-path" in repr(entry) for entry in logs)


def test_without_a_webhook_alerts_are_only_logged(
    redis_client: redis.Redis, slack: Receiver, client: httpx.Client
) -> None:
    alerter = Alerter(AlertThrottle(redis_client), slack_webhook_url=None, client=client)
    with structlog.testing.capture_logs() as logs:
        assert alerter.raise_alert("k", "s", "m", every_s=60)
        assert not alerter.raise_alert("k", "s", "m", every_s=60)
    assert slack.posts == []
    assert [entry["event"] for entry in logs] == ["alert", "alert"]


class UnreachableThrottle:
    def allow(self, kind: str, subject: str, *, every_s: float) -> bool:
        raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379")


def test_a_broken_throttle_logs_and_stays_quiet(slack: Receiver, client: httpx.Client) -> None:
    alerter = Alerter(UnreachableThrottle(), slack_webhook_url=slack.url, client=client)
    with structlog.testing.capture_logs() as logs:
        assert alerter.raise_alert("k", "s", "m") is False
    assert slack.posts == []
    assert [entry["event"] for entry in logs] == ["alert", "alert_throttle_failed"]
