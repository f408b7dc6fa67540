"""Media Streams against a fake media worker: message shapes, pacing, marks, clear, DTMF,
stop, the caller's speech and its Redis side channel, and what the report measured."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web
from twilio.request_validator import RequestValidator

from shared.settings import Settings
from simulator import SimulatorServer
from simulator.audio import FRAME_BYTES, SILENCE_FRAME
from simulator.personas import PERSONAS, Act, Persona, Pickup, Step
from tests.simulator.helpers import (
    AUTH_TOKEN,
    FROM,
    TO,
    FakeMediaWorker,
    WorkerStream,
    async_sdk,
    callback_receiver,
    report,
    sim_settings,
    stream_twiml,
    tone,
    turn_taking_bot,
    wait_final_report,
)

ALL_EVENTS = ["initiated", "ringing", "answered", "completed"]
SID = re.compile(r"^(CA|MZ)[0-9a-f]{32}$")


async def _first_stream(worker: FakeMediaWorker, timeout_s: float = 5.0) -> WorkerStream:
    async with asyncio.timeout(timeout_s):
        await worker.new_stream.wait()
    stream = worker.streams[0]
    await stream.wait_for(lambda: bool(stream.events("start")), timeout_s)
    return stream


async def test_stream_speaks_the_twilio_protocol_in_real_time() -> None:
    async with (
        SimulatorServer(sim_settings()) as server,
        FakeMediaWorker() as worker,
        async_sdk(server.base_url) as client,
    ):
        with callback_receiver() as hooks:
            call = await client.create(
                to=TO,
                from_=FROM,
                twiml=stream_twiml(worker.url, "silent", token="abc"),
                status_callback=hooks.url,
                status_callback_event=ALL_EVENTS,
            )
            stream = await _first_stream(worker)
            await stream.wait_for(lambda: len(stream.events("media")) >= 60)
            hung_up = await client.update(call.sid, status="completed")
            await stream.wait_for(stream.is_closed)
            final = (await hooks.wait_final_async(call.sid))[-1].params

    assert hung_up.status == "completed"
    messages = [message for _, message in stream.messages]
    assert messages[0] == {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    start = messages[1]
    assert SID.match(start["streamSid"]) and start["streamSid"].startswith("MZ")
    assert start == {
        "event": "start",
        "sequenceNumber": "1",
        "streamSid": start["streamSid"],
        "start": {
            "accountSid": call.account_sid,
            "streamSid": start["streamSid"],
            "callSid": call.sid,
            "tracks": ["inbound"],
            "customParameters": {"token": "abc", "persona": "silent"},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        },
    }
    media = [m for m in messages if m["event"] == "media"]
    for index, message in enumerate(media):
        assert message["sequenceNumber"] == str(index + 2)
        assert message["streamSid"] == start["streamSid"]
        body = message["media"]
        assert (body["track"], body["chunk"], body["timestamp"]) == (
            "inbound",
            str(index + 1),
            str(index * 20),
        )
        assert base64.b64decode(body["payload"]) == SILENCE_FRAME  # `silent` says nothing
    assert messages[-1] == {
        "event": "stop",
        "sequenceNumber": str(len(media) + 2),
        "streamSid": start["streamSid"],
        "stop": {"accountSid": call.account_sid, "callSid": call.sid},
    }
    arrivals = [t for t, m in stream.messages if m["event"] == "media"]
    assert 0.8 <= arrivals[50] - arrivals[0] <= 1.6  # 50 frames of 20 ms, paced, not bursted
    assert final["CallStatus"] == "completed" and int(final["CallDuration"]) >= 1


async def test_marks_echo_after_playback_and_clear_flushes_them() -> None:
    async with (
        SimulatorServer(sim_settings()) as server,
        FakeMediaWorker() as worker,
        async_sdk(server.base_url) as client,
    ):
        call = await client.create(to=TO, from_=FROM, twiml=stream_twiml(worker.url, "silent"))
        stream = await _first_stream(worker)
        loop = asyncio.get_running_loop()

        await stream.send_mark("empty-buffer")
        sent = loop.time()
        await stream.send_audio(tone(600))
        await stream.send_mark("after-600ms")
        await stream.wait_for(lambda: stream.mark_echo_time("after-600ms") is not None)
        empty_echo = stream.mark_echo_time("empty-buffer")
        played_echo = stream.mark_echo_time("after-600ms")

        await stream.send_audio(tone(3000))
        await stream.send_mark("after-3s")
        await asyncio.sleep(0.3)
        cleared = loop.time()
        await stream.send({"event": "clear"})
        await stream.wait_for(lambda: stream.mark_echo_time("after-3s") is not None)
        flushed_echo = stream.mark_echo_time("after-3s")
        data = await report(server.base_url, call.sid)
        await client.update(call.sid, status="completed")

    assert empty_echo is not None and played_echo is not None and flushed_echo is not None
    assert empty_echo - sent < 0.2
    assert 0.5 <= played_echo - sent <= 1.5  # not before 600 ms of audio has played
    assert flushed_echo - cleared < 0.5  # cleared, so not 2.7 s later
    echo = next(m for _, m in stream.messages if m.get("mark", {}).get("name") == "after-3s")
    assert set(echo) == {"event", "sequenceNumber", "streamSid", "mark"}
    (observed,) = data["streams"]
    assert observed["marks_echoed"] == ["empty-buffer", "after-600ms", "after-3s"]
    assert observed["clears"] == 1
    turn = observed["bot_turns"][-1]
    assert turn["interrupted"] and turn["cleared_ms"] > 2000


async def test_confirm_conversation_publishes_transcripts_and_measures_latency(
    settings: Settings,
) -> None:
    redis = aioredis.Redis.from_url(settings.redis_url)
    pubsub = redis.pubsub()
    await pubsub.psubscribe("cf:sim:stt:*")
    config = sim_settings(redis_url=settings.redis_url)
    try:
        async with (
            SimulatorServer(config) as server,
            FakeMediaWorker(turn_taking_bot(reply_delay_s=0.25)) as worker,
            async_sdk(server.base_url) as client,
        ):
            call = await client.create(to=TO, from_=FROM, twiml=stream_twiml(worker.url, "confirm"))
            published: list[dict[str, Any]] = []
            async with asyncio.timeout(20):
                while len(published) < 3:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None:
                        assert message["channel"] == f"cf:sim:stt:{call.sid}".encode()
                        published.append(json.loads(message["data"]))
            stream = worker.streams[0]
            await stream.wait_for(lambda: stream.mark_echo_time("reply-3") is not None)
            await client.update(call.sid, status="completed")
            data = await wait_final_report(server.base_url, call.sid)
    finally:
        await pubsub.aclose()
        await redis.aclose()

    lines = [step.text for step in PERSONAS["confirm"].steps if step.act is Act.SAY]
    assert [item["text"] for item in published] == lines
    assert all(item["final"] is True for item in published)
    assert [item["t_ms"] for item in published] == sorted(item["t_ms"] for item in published)
    (observed,) = data["streams"]
    assert observed["transcripts_published"] == 3
    assert [u["text"] for u in observed["customer"]] == lines
    greeting, *replies = observed["bot_turns"]
    assert greeting["response_latency_ms"] is None and greeting["audio_ms"] == 400
    assert len(replies) == 3
    for reply, utterance in zip(replies, observed["customer"], strict=True):
        assert reply["started_ms"] > utterance["last_word_end_ms"]
        # The bot waits 200 ms of silence plus 250 ms before answering.
        assert 300 <= reply["response_latency_ms"] <= 2500
        assert reply["audio_ms"] == 300
    # The caller waited for the greeting to finish before speaking.
    first_voiced = stream.voiced.index(True)
    greeting_end = stream.mark_echo_time("greeting")
    assert greeting_end is not None
    first_voiced_at = [t for t, m in stream.messages if m["event"] == "media"][first_voiced]
    assert first_voiced_at >= greeting_end
    assert data["call"]["status"] == "completed"


async def test_dtmf_and_caller_hangup_send_stop_without_the_api() -> None:
    presser = Persona(
        "presser",
        Pickup.HUMAN,
        0.0,
        (Step(Act.DTMF, digit="7"), Step(Act.PAUSE, seconds=0.1), Step(Act.HANGUP)),
    )
    async with (
        SimulatorServer(sim_settings(personas={"presser": presser})) as server,
        FakeMediaWorker() as worker,
        async_sdk(server.base_url) as client,
    ):
        with callback_receiver() as hooks:
            call = await client.create(
                to=TO,
                from_=FROM,
                twiml=stream_twiml(worker.url, "presser"),
                status_callback=hooks.url,
            )
            stream = await _first_stream(worker)
            await stream.wait_for(stream.is_closed)
            final = (await hooks.wait_final_async(call.sid))[-1].params

    (dtmf,) = stream.events("dtmf")
    assert dtmf == {
        "event": "dtmf",
        "sequenceNumber": dtmf["sequenceNumber"],
        "streamSid": stream.stream_sid,
        "dtmf": {"track": "inbound_track", "digit": "7"},
    }
    assert stream.events("stop")[0]["stop"]["callSid"] == call.sid
    assert final["CallStatus"] == "completed"


async def test_hangup_mid_cuts_the_sentence_and_hangs_up() -> None:
    async with (
        SimulatorServer(sim_settings()) as server,
        FakeMediaWorker(turn_taking_bot(greeting_ms=300)) as worker,
        async_sdk(server.base_url) as client,
    ):
        call = await client.create(to=TO, from_=FROM, twiml=stream_twiml(worker.url, "hangup_mid"))
        stream = await _first_stream(worker)
        await stream.wait_for(stream.is_closed)
        data = await wait_final_report(server.base_url, call.sid)

    (said,) = data["streams"][0]["customer"]
    assert said["cut"] and len(said["spoken"]) < len(said["text"])
    assert said["text"].startswith(said["spoken"])
    assert data["streams"][0]["end_reason"] == "caller_hangup"
    assert stream.events("stop") and any(stream.voiced)
    assert data["call"]["status"] == "completed"


async def test_barge_in_talks_over_the_bot_until_cleared() -> None:
    async def interruptible_bot(stream: WorkerStream) -> None:
        await stream.send_audio(tone(4000))
        await stream.send_mark("long-greeting")
        await stream.wait_for(lambda: any(stream.voiced))
        await stream.send({"event": "clear"})  # what pipecat does on an interruption

    async with (
        SimulatorServer(sim_settings()) as server,
        FakeMediaWorker(interruptible_bot) as worker,
        async_sdk(server.base_url) as client,
    ):
        call = await client.create(to=TO, from_=FROM, twiml=stream_twiml(worker.url, "barge_in"))
        stream = await _first_stream(worker)
        await stream.wait_for(lambda: stream.mark_echo_time("long-greeting") is not None)
        data = await report(server.base_url, call.sid)
        await client.update(call.sid, status="completed")

    observed = data["streams"][0]
    first_turn = observed["bot_turns"][0]
    assert first_turn["interrupted"] and first_turn["cleared_ms"] > 1000
    assert observed["customer"][0]["overlapped_bot"]
    assert observed["customer"][0]["text"] == PERSONAS["barge_in"].steps[0].text


async def test_worker_closing_the_socket_ends_the_twiml_and_the_call() -> None:
    async def closing_bot(stream: WorkerStream) -> None:
        await stream.wait_for(lambda: len(stream.events("media")) >= 5)
        await stream.ws.close()

    async with (
        SimulatorServer(sim_settings()) as server,
        FakeMediaWorker(closing_bot) as worker,
        async_sdk(server.base_url) as client,
    ):
        call = await client.create(to=TO, from_=FROM, twiml=stream_twiml(worker.url, "confirm"))
        data = await wait_final_report(server.base_url, call.sid)

    assert data["call"]["status"] == "completed"
    assert data["streams"][0]["end_reason"] == "worker_closed"
    assert not worker.streams[0].events("stop")  # nobody to tell: the socket is gone


async def test_url_twiml_is_fetched_signed_and_redirect_replaces_the_stream() -> None:
    fetched: list[tuple[str, dict[str, str], bool]] = []
    async with FakeMediaWorker() as worker:

        async def answer(request: web.Request) -> web.Response:
            params = dict(await request.post())
            valid = RequestValidator(AUTH_TOKEN).validate(
                str(request.url), params, request.headers.get("X-Twilio-Signature", "")
            )
            fetched.append((request.method, {k: str(v) for k, v in params.items()}, valid))
            return web.Response(
                text=stream_twiml(worker.url, "silent"), content_type="application/xml"
            )

        app = web.Application()
        app.router.add_post("/answer", answer)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            async with (
                SimulatorServer(sim_settings()) as server,
                async_sdk(server.base_url) as client,
            ):
                call = await client.create(
                    to=TO,
                    from_=FROM,
                    url=f"http://127.0.0.1:{port}/answer",
                    machine_detection="Enable",
                )
                stream = await _first_stream(worker)
                await client.update(
                    call.sid, twiml="<Response><Say>Goodbye</Say><Hangup/></Response>"
                )
                data = await wait_final_report(server.base_url, call.sid)
        finally:
            await runner.cleanup()

    ((method, params, valid),) = fetched
    assert method == "POST" and valid
    assert params["CallSid"] == call.sid and params["CallStatus"] == "in-progress"
    assert params["AnsweredBy"] == "human" and params["Direction"] == "outbound-api"
    assert stream.events("stop")  # the redirect ended the stream first
    assert data["twiml_said"] == ["Goodbye"]
    assert data["streams"][0]["end_reason"] == "redirected"
    assert data["call"]["status"] == "completed"


def test_silence_frame_is_one_twilio_frame() -> None:
    assert len(SILENCE_FRAME) == FRAME_BYTES == 160


async def test_voicemail_greets_first_then_beeps() -> None:
    async with (
        SimulatorServer(sim_settings()) as server,
        FakeMediaWorker() as worker,
        async_sdk(server.base_url) as client,
    ):
        call = await client.create(
            to=TO,
            from_=FROM,
            machine_detection="Enable",
            twiml=stream_twiml(worker.url, "voicemail"),
        )
        stream = await _first_stream(worker)
        beep = PERSONAS["voicemail"].steps[-1]
        greeting = PERSONAS["voicemail"].steps[0]
        await stream.wait_for(lambda: len(stream.voiced) > 140)
        data = await report(server.base_url, call.sid)
        await client.update(call.sid, status="completed")

    assert data["call"]["answered_by"] == "machine_start"
    (said,) = data["streams"][0]["customer"]  # the beep is a tone, not a transcript
    assert said["text"] == greeting.text and said["ended_ms"] is not None
    assert data["streams"][0]["bot_turns"] == []  # it never waited for the bot
    # Speech starts at once; the beep (one unbroken tone) follows the greeting.
    first = stream.voiced.index(True)
    assert first < 10
    greeting_end = first + said["audio_ms"] // 20
    beep_frames = int(beep.seconds * 1000) // 20
    after = stream.voiced[greeting_end - 2 :]
    assert any(all(after[i : i + beep_frames]) for i in range(0, 6))
