"""`python -m simulator`: settings from arguments and environment, and a real process that
serves the API and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from simulator.__main__ import settings_from
from simulator.personas import DEFAULT_NUMBER_RULES
from simulator.settings import DEV_ACCOUNT_SID
from tests.simulator.helpers import ACCOUNT_SID, AUTH_TOKEN

ROOT = Path(__file__).resolve().parents[2]


def test_settings_come_from_environment_then_arguments() -> None:
    env = {
        "CALLFLEET_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "CALLFLEET_TWILIO_AUTH_TOKEN": "s3cr3t-value",
        "REDIS_URL": "redis://127.0.0.1:6379/3",
        "CALLFLEET_SIMULATOR_PORT": "9999",
    }
    from_env = settings_from([], env)
    assert (from_env.account_sid, from_env.port) == (ACCOUNT_SID, 9999)
    assert from_env.token == "s3cr3t-value"
    assert from_env.redis_url == "redis://127.0.0.1:6379/3"
    assert from_env.number_rules == DEFAULT_NUMBER_RULES and not from_env.instant
    assert "s3cr3t-value" not in repr(from_env)  # the token is a SecretStr
    args = settings_from(
        [
            "--port",
            "0",
            "--auth-token",
            "other",
            "--instant",
            "--persona-mix",
            "confirm=5, busy=1",
            "--number-rules",
            "99=silent",
            "--redis-url",
            "none",
            "--espeak",
            "none",
        ],
        env,
    )
    assert (args.port, args.token, args.instant) == (0, "other", True)
    assert args.persona_mix == (("confirm", 5), ("busy", 1))
    assert args.number_rules == (("99", "silent"),)
    assert args.redis_url is None and args.espeak_binary is None
    assert settings_from([], {}).account_sid == DEV_ACCOUNT_SID
    assert settings_from([], {}).espeak_binary == "auto"  # libespeak-ng, else the binary


@pytest.mark.parametrize("argv", [["--persona-mix", "confirm=often"], ["--number-rules", "0000"]])
def test_malformed_options_exit_with_usage(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        settings_from(argv, {})
    assert caught.value.code == 2


def test_the_process_serves_and_stops_on_sigterm() -> None:
    env = {
        **os.environ,
        "CALLFLEET_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "CALLFLEET_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "CALLFLEET_LOG_FORMAT": "json",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "simulator", "--port", "0", "--redis-url", "none"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        started = json.loads(process.stderr.readline())
        assert started["event"] == "simulator_started"
        health = httpx.get(f"{started['url']}/_sim/health", timeout=5)
        unauthorized = httpx.get(f"{started['url']}/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()
    assert health.json()["status"] == "ok"
    assert unauthorized.json()["code"] == 20003
