"""Fixtures: a simulator on a background thread, a twilio SDK client aimed at it, and a
status-callback receiver."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from simulator import ThreadedSimulator
from simulator.sdk import sdk_client
from tests.simulator.helpers import ACCOUNT_SID, AUTH_TOKEN, CallbackReceiver, sim_settings


@pytest.fixture
def sim() -> Iterator[ThreadedSimulator]:
    with ThreadedSimulator(sim_settings()) as running:
        yield running


@pytest.fixture
def client(sim: ThreadedSimulator) -> Iterator[Any]:
    twilio = sdk_client(sim.base_url, ACCOUNT_SID, AUTH_TOKEN)
    yield twilio
    twilio.http_client.session.close()


@pytest.fixture
def receiver() -> Iterator[CallbackReceiver]:
    hooks = CallbackReceiver().start()
    yield hooks
    hooks.stop()


@pytest.fixture
def sim_factory() -> Iterator[Any]:
    """`with sim_factory(**settings) as (sim, client):` for tests that need other settings."""
    from contextlib import contextmanager

    @contextmanager
    def start(**overrides: Any) -> Iterator[tuple[ThreadedSimulator, Any]]:
        with ThreadedSimulator(sim_settings(**overrides)) as running:
            twilio = sdk_client(running.base_url, ACCOUNT_SID, AUTH_TOKEN)
            try:
                yield running, twilio
            finally:
                twilio.http_client.session.close()

    yield start
