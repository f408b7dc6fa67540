"""Load: 100 concurrent calls through the SDK in instant mode, and 100 live media streams
held at once by one simulator process. Bounded by timeouts; no assertions on speed."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from simulator import SimulatorServer, ThreadedSimulator
from simulator.sdk import sdk_client
from tests.simulator.helpers import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    FROM,
    CallbackReceiver,
    FakeMediaWorker,
    async_sdk,
    sim_settings,
    stream_twiml,
)

CALLS = 100


def test_100_concurrent_instant_calls_all_complete(receiver: CallbackReceiver) -> None:
    with ThreadedSimulator(sim_settings(instant=True)) as sim:

        def place(batch: int) -> list[str]:
            client = sdk_client(sim.base_url, ACCOUNT_SID, AUTH_TOKEN)
            try:
                return [
                    client.calls.create(
                        to=f"+1415555{batch:02d}{i:02d}",
                        from_=FROM,
                        twiml="<Response><Hangup/></Response>",
                        status_callback=receiver.url,
                        status_callback_event=["initiated", "ringing", "answered", "completed"],
                    ).sid
                    for i in range(10)
                ]
            finally:
                client.http_client.session.close()

        with ThreadPoolExecutor(max_workers=10) as pool:
            sids = [sid for batch in pool.map(place, range(10, 20)) for sid in batch]
        finals = [hook.params for hook in receiver.wait_finals(sids, timeout_s=30).values()]
        client = sdk_client(sim.base_url, ACCOUNT_SID, AUTH_TOKEN)
        try:
            listed = client.calls.list(status="completed", page_size=30)
        finally:
            client.http_client.session.close()

    assert len(set(sids)) == CALLS
    assert all(params["CallStatus"] == "completed" for params in finals)
    assert {call.sid for call in listed} == set(sids)
    assert len(receiver.hooks) == 4 * CALLS


async def test_one_process_holds_100_live_media_streams() -> None:
    started = asyncio.Event()

    async def worker_counts(stream: Any) -> None:
        if len(worker.streams) >= CALLS:
            started.set()

    async with (
        SimulatorServer(sim_settings(linger_s=60.0)) as server,
        FakeMediaWorker(worker_counts) as worker,
        async_sdk(server.base_url) as client,
    ):
        twiml = stream_twiml(worker.url, "silent")
        calls = await asyncio.gather(
            *(client.create(to=f"+14155551{i:03d}", from_=FROM, twiml=twiml) for i in range(CALLS))
        )
        async with asyncio.timeout(30):
            await started.wait()
        await asyncio.sleep(1.5)  # every stream keeps flowing while all are up
        held = worker.max_concurrent
        live_calls = server.calls.active
        await asyncio.gather(*(client.update(call.sid, status="completed") for call in calls))
        async with asyncio.timeout(30):
            for stream in worker.streams:
                await stream.wait_for(stream.is_closed, timeout_s=30)

    assert held == CALLS and live_calls == CALLS
    for stream in worker.streams:
        media = stream.events("media")
        assert len(media) >= 50  # at least a second of audio each
        assert [m["media"]["chunk"] for m in media] == [str(i + 1) for i in range(len(media))]
        assert stream.events("stop")
    assert all(call.status == "completed" for call in server.calls)
