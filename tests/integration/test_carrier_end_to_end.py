"""A whole outbound call through the production code path, with only Twilio's cloud
replaced: the twilio SDK dials the simulator, the simulator posts signed status callbacks
to a real API server, and a real Celery worker finalizes the attempt."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvicorn
from celery import Celery

from dispatcher.api import create_app
from dispatcher.celery_factory import QUEUES, create_celery
from shared.enums import LeadStatus, Outcome
from shared.settings import Settings
from simulator.server import ThreadedSimulator
from simulator.settings import SimulatorSettings
from tests.integration.celery_worker import running_worker
from tests.integration.fleet import Fleet


def wait_for(condition: Callable[[], bool], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def simulator() -> Iterator[ThreadedSimulator]:
    with ThreadedSimulator(SimulatorSettings(port=0, instant=True)) as sim:
        yield sim


@pytest.fixture
def carrier_settings(settings: Settings, simulator: ThreadedSimulator) -> Settings:
    return settings.model_copy(
        update={
            "provider": "twilio",
            "twilio_api_base_url": simulator.base_url,
            "public_base_url": f"http://127.0.0.1:{free_port()}",
            "conversation_report_grace_s": 0.2,
        }
    )


@pytest.fixture
def worker_app(carrier_settings: Settings, redis_client: Any) -> Iterator[Celery]:
    app = create_celery(carrier_settings)
    with running_worker(app, QUEUES, pool="threads", concurrency=4):
        yield app


@pytest.fixture
def api_server(carrier_settings: Settings, worker_app: Celery, sessions: Any) -> Iterator[str]:
    port = int(carrier_settings.public_base_url.rsplit(":", 1)[1])
    config = uvicorn.Config(
        create_app(carrier_settings, tasks=worker_app), host="127.0.0.1", port=port,
        log_level="warning", lifespan="on",
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started)
    yield carrier_settings.public_base_url
    server.should_exit = True
    thread.join(timeout=10)


@pytest.mark.parametrize(
    ("persona", "lead_status", "attempt_outcome"),
    [
        ("busy", LeadStatus.SCHEDULED, Outcome.BUSY),  # retried later by the policy
        ("confirm", LeadStatus.FINISHED, Outcome.COMPLETED),  # answered; no media worker yet
    ],
)
def test_outbound_call_through_the_simulated_carrier(
    fleet: Any, worker_app: Celery, api_server: str, carrier_settings: Settings,
    persona: str, lead_status: LeadStatus, attempt_outcome: Outcome,
) -> None:  # fmt: skip
    f: Fleet = fleet()
    f.settings = carrier_settings
    lead_id = f.add_lead("+919812345678", payload=_payload(persona))
    f.queue()
    worker_app.send_task("callfleet.dispatch", args=[str(lead_id)])

    def settled() -> bool:
        attempts = f.attempts(lead_id)
        return bool(attempts) and attempts[0].finalized_at is not None

    wait_for(settled)
    [attempt] = f.attempts(lead_id)
    assert attempt.provider_call_sid and attempt.provider_call_sid.startswith("CA")
    assert attempt.outcome == attempt_outcome
    statuses = [e["status"] for e in attempt.events]
    assert statuses[0] == "initiated" and len(statuses) == len(set(statuses))
    assert f.lead(lead_id).status == lead_status
    assert f.channels.in_use(f.number_id()) == 0


def _payload(persona: str) -> dict[str, Any]:
    from tests.integration.fleet import payload

    return {**payload(), "persona": persona}
