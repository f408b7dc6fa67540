"""Admission at the media worker's socket, over a real websockets connection playing
Twilio: only a stream with a valid, fresh, unused token for its own call gets through."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from media_worker.admission import Admitted
from media_worker.options import MediaWorkerOptions
from media_worker.server import MediaServer
from media_worker.store import CallStore
from shared.call_tokens import issue_call_token
from shared.settings import Settings
from tests.integration.fleet import Fleet

POLICY_VIOLATION = 1008


class Calls:
    """What the server handed to its call runner (the pipeline is not under test here)."""

    def __init__(self) -> None:
        self.admitted: list[Admitted] = []

    async def run(self, connection: ServerConnection, admitted: Admitted) -> None:
        self.admitted.append(admitted)
        await connection.close()


@pytest.fixture
async def server(
    settings: Settings, sessions: Any, redis_client: Any
) -> AsyncIterator[tuple[MediaServer, Calls]]:
    options = replace(
        MediaWorkerOptions.from_settings(settings, port=0),
        worker_id="mw-admission-test",
        handshake_timeout_s=0.5,
    )
    calls = Calls()
    client = Redis.from_url(settings.redis_url)
    media = MediaServer(
        options, redis=client, recorded_sid=CallStore(sessions).recorded_sid, run_call=calls.run
    )
    await media.start()
    yield media, calls
    await media.stop()
    await client.aclose()


def dialed_call(fleet: Any) -> tuple[str, str, str]:
    """(attempt id, lead id, call sid) of a call the dispatcher placed."""
    f: Fleet = fleet()
    lead_id = f.add_lead("+919812345678")
    f.queue()
    verdict = f.dispatch(lead_id)
    assert verdict.call_sid
    return str(verdict.attempt_id), str(lead_id), verdict.call_sid


def start_message(call_sid: str, token: str | None) -> str:
    parameters = {"token": token} if token is not None else {}
    return json.dumps({
        "event": "start", "sequenceNumber": "1", "streamSid": "MZ" + "0" * 32,
        "start": {
            "streamSid": "MZ" + "0" * 32, "accountSid": "AC" + "0" * 32, "callSid": call_sid,
            "tracks": ["inbound"], "customParameters": parameters,
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        },
    })  # fmt: skip


async def play_twilio(port: int, call_sid: str, token: str | None) -> ClientConnection:
    ws = await connect(f"ws://127.0.0.1:{port}/stream")
    await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
    await ws.send(start_message(call_sid, token))
    return ws


async def close_code(ws: ClientConnection) -> int | None:
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(ws.recv(), timeout=5)
    return ws.close_code


def secret(settings: Settings) -> bytes:
    return settings.call_token_secret.get_secret_value().encode()


async def test_a_valid_token_for_its_own_call_is_admitted(
    server: tuple[MediaServer, Calls], fleet: Any, settings: Settings
) -> None:
    media, calls = server
    attempt_id, lead_id, sid = await asyncio.to_thread(dialed_call, fleet)
    token = issue_call_token(secret(settings), attempt_id=attempt_id, lead_id=lead_id)
    ws = await play_twilio(media.port, sid, token)
    await close_code(ws)
    [admitted] = calls.admitted
    assert str(admitted.attempt_id) == attempt_id and admitted.start.call_sid == sid


@pytest.mark.parametrize("case", ["missing", "forged", "expired", "wrong_call", "not_an_attempt"])
async def test_bad_tokens_are_refused_with_policy_violation(
    server: tuple[MediaServer, Calls], fleet: Any, settings: Settings, case: str
) -> None:
    media, calls = server
    attempt_id, lead_id, sid = await asyncio.to_thread(dialed_call, fleet)
    token: str | None = issue_call_token(secret(settings), attempt_id=attempt_id, lead_id=lead_id)
    if case == "missing":
        token = None
    elif case == "forged":
        token = issue_call_token(
            b"another-secret-of-enough-bytes", attempt_id=attempt_id, lead_id=lead_id
        )
    elif case == "expired":
        token = issue_call_token(
            secret(settings), attempt_id=attempt_id, lead_id=lead_id, now_s=time.time() - 600
        )
    elif case == "wrong_call":
        sid = "CA" + "e" * 32
    elif case == "not_an_attempt":
        token = issue_call_token(secret(settings), attempt_id=str(uuid.uuid4()), lead_id=lead_id)
    ws = await play_twilio(media.port, sid, token)
    assert await close_code(ws) == POLICY_VIOLATION
    assert calls.admitted == []


async def test_a_token_is_single_use(
    server: tuple[MediaServer, Calls], fleet: Any, settings: Settings
) -> None:
    media, calls = server
    attempt_id, lead_id, sid = await asyncio.to_thread(dialed_call, fleet)
    token = issue_call_token(secret(settings), attempt_id=attempt_id, lead_id=lead_id)
    await close_code(await play_twilio(media.port, sid, token))
    assert await close_code(await play_twilio(media.port, sid, token)) == POLICY_VIOLATION
    assert len(calls.admitted) == 1


async def test_a_socket_that_never_starts_is_closed(server: tuple[MediaServer, Calls]) -> None:
    media, calls = server
    ws = await connect(f"ws://127.0.0.1:{media.port}/stream")
    await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
    assert await close_code(ws) == POLICY_VIOLATION
    assert calls.admitted == []


async def test_health_check_and_draining(
    server: tuple[MediaServer, Calls], redis_client: Any
) -> None:
    media, _ = server
    async with httpx.AsyncClient() as http:
        health = await http.get(f"http://127.0.0.1:{media.port}/healthz")
        assert health.json()["status"] == "ok" and health.json()["slots"] == media.options.slots
        from shared.coordination import MediaSlots

        assert MediaSlots(redis_client).free_slots() == media.options.slots
        await media.heartbeat.drain()
        media._draining = True  # what drain() sets before waiting for live calls
        assert MediaSlots(redis_client).reserve(reservation_ttl_s=5) is None
        assert (await http.get(f"http://127.0.0.1:{media.port}/healthz")).json()[
            "status"
        ] == "draining"


async def test_metrics_show_this_workers_calls_and_slots(server: tuple[MediaServer, Calls]) -> None:
    media, _ = server
    async with httpx.AsyncClient() as http:
        page = await http.get(f"http://127.0.0.1:{media.port}/metrics")
    assert page.status_code == 200
    samples = {
        sample.name: sample.value
        for family in text_string_to_metric_families(page.text)
        for sample in family.samples
        if sample.labels == {"worker_id": media.options.worker_id}
    }
    assert samples == {
        "callfleet_media_live_calls": 0,
        "callfleet_media_slots": media.options.slots,
        "callfleet_media_free_slots_local": media.options.slots,
    }
