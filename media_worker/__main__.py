"""`python -m media_worker`: serve Twilio Media Streams until SIGTERM/SIGINT, then drain.

Provider keys come from settings (DEEPGRAM_API_KEY, OPENAI_API_KEY, OPENAI_BASE_URL,
ELEVENLABS_API_KEY, CARTESIA_API_KEY). `--providers offline` (the default when no key is set)
runs every call on sim STT, scripted LLM and tone TTS. `CALLFLEET_MEDIA_MAX_CALL_S` caps a
call's length (default 900); with `CALLFLEET_MACHINE_DETECTION` the worker applies the
template's voicemail policy to answering machines.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gc
import signal
from collections.abc import Sequence

import redis.asyncio as aioredis
import structlog
import uvloop
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from dispatcher.celery_factory import create_celery
from media_worker.options import MediaWorkerOptions
from media_worker.pipeline import ProviderOverrides
from media_worker.providers.factory import ProviderKeys
from media_worker.providers.moonshine_probe import moonshine_support
from media_worker.providers.turn_models import load_turn_models
from media_worker.server import MediaServer
from media_worker.session import SessionDeps, run_call
from media_worker.store import CallStore
from media_worker.transport import HangUpOptions
from media_worker.tts_health import TTSHealthPolicy
from shared.db.session import make_async_engine, make_engine, make_session_factory
from shared.logging import configure_logging, library_log_level, route_loguru
from shared.redis_clients import async_redis
from shared.settings import Settings

log = structlog.get_logger(__name__)


def keys_from(settings: Settings) -> ProviderKeys:
    return ProviderKeys(
        deepgram_api_key=settings.deepgram_api_key,
        openai_api_key=settings.openai_api_key,
        openai_base_url=settings.openai_base_url,
        elevenlabs_api_key=settings.elevenlabs_api_key,
        cartesia_api_key=settings.cartesia_api_key,
    )


def _any_key(keys: ProviderKeys) -> bool:
    return any(
        k is not None
        for k in (
            keys.deepgram_api_key,
            keys.openai_api_key,
            keys.elevenlabs_api_key,
            keys.cartesia_api_key,
        )
    )


# Connections opened before the first call: calls that start together each want one at once
# (Redis: the token, the machine-detection answer, the fleet's TTS health; PostgreSQL: the call
# SID and the call's context), and a connection opened then costs its TCP, client and (for
# PostgreSQL) backend start-up in the middle of everyone's start.
REDIS_WARM_CONNECTIONS = 16
WARM_TIMEOUT_S = 10.0


async def warm_redis_pool(redis: aioredis.Redis, *, connections: int) -> None:
    """Open `connections` pooled connections now (concurrent PINGs each take one)."""
    await asyncio.gather(*(redis.ping() for _ in range(connections)))


async def warm_database_pool(engine: AsyncEngine, *, connections: int) -> None:
    """Open `connections` connections and hand them back to the engine's pool, which keeps up
    to its `pool_size` of them."""
    async with contextlib.AsyncExitStack() as opened:
        for _ in range(connections):
            await opened.enter_async_context(engine.connect())


async def warm_pools(
    redis: aioredis.Redis, read_engine: AsyncEngine, *, slots: int, read_pool_size: int
) -> None:
    """Both warm-ups, best effort: a service that is down now fails calls as they come (and
    is logged here), as it would have without them; it does not stop the worker starting."""
    try:
        async with asyncio.timeout(WARM_TIMEOUT_S):
            await warm_redis_pool(redis, connections=min(slots, REDIS_WARM_CONNECTIONS))
            await warm_database_pool(read_engine, connections=read_pool_size)
    except (RedisError, SQLAlchemyError, OSError, TimeoutError) as exc:
        log.warning("connection_warm_up_failed", error=repr(exc))


async def serve(
    settings: Settings, keys: ProviderKeys, overrides: ProviderOverrides | None
) -> None:
    options = MediaWorkerOptions.from_settings(settings)
    pool_size = max(2, min(options.slots, 10))
    engine = make_engine(settings, pool_size=pool_size)
    # The reads a call's start waits on run on the loop and retry a dropped connection
    # themselves (see `store`). Nothing else bounds how many run at once, so a burst of starts
    # waits for the pool's connections (each read holds one for a round trip) rather than
    # opening overflow connections and closing them again as they are handed back.
    read_engine = make_async_engine(settings, pool_size=pool_size, max_overflow=0, pre_ping=False)
    sessions = make_session_factory(engine)
    store = CallStore(sessions, read_engine=read_engine)
    redis = async_redis(settings.redis_url)
    tasks = create_celery(settings)
    deps = SessionDeps(
        store=store,
        redis=redis,
        tasks=tasks,
        keys=keys,
        overrides=overrides,
        hang_up=HangUpOptions(
            auth_token=settings.twilio_auth_token, api_base_url=settings.twilio_api_base_url
        ),
        channel_lease_ttl_s=options.channel_lease_ttl_s,
        media_reservation_ttl_s=options.media_reservation_ttl_s,
        max_call_s=settings.media_max_call_s,
        # The dispatcher asks Twilio for machine detection on the same setting.
        machine_detection=settings.machine_detection,
        tts_policy=TTSHealthPolicy.from_settings(settings),
    )
    server = MediaServer(
        options,
        redis=redis,
        recorded_sid=store.recorded_sid,
        run_call=functools.partial(run_call, deps=deps),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    if overrides is None or overrides.stt != "sim":
        # Templates' audio STTs run Silero VAD and Smart Turn: load them before any call.
        await asyncio.to_thread(load_turn_models)
    await warm_pools(redis, read_engine, slots=options.slots, read_pool_size=pool_size)
    # What is loaded by now (pipecat and its dependencies: most of the heap) lives as long as
    # the process. Frozen, the collector's full passes skip it; unfrozen, each full pass walked
    # it all (~0.4 s) on the event loop, in the middle of calls.
    gc.collect()
    gc.freeze()
    await server.start()
    try:
        await stop.wait()
        log.info("media_worker_draining")
        await server.drain()
    finally:
        await redis.aclose()
        engine.dispose()
        await read_engine.dispose()
        tasks.close()
    log.info("media_worker_stopped")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m media_worker", description=__doc__)
    parser.add_argument(
        "--providers",
        choices=["template", "offline", "realistic"],
        default=None,
        help="the template's providers; offline: sim STT, scripted LLM, tone voice; realistic:"
        " Silero VAD, moonshine STT, scripted LLM, espeak voice (default: offline without keys)",
    )
    parser.add_argument(
        "--tts-fail-probability",
        type=float,
        default=0.0,
        help="offline modes: the share of sentences the primary voice fails (to see failover)",
    )
    args = parser.parse_args(argv)
    if not 0.0 <= args.tts_fail_probability <= 1.0:
        parser.error("--tts-fail-probability must be within 0..1")
    settings = Settings()
    configure_logging(settings)
    # pipecat logs through loguru, at DEBUG to stderr unless told otherwise.
    route_loguru(library_log_level(settings.log_level))
    keys = keys_from(settings)
    mode = args.providers or ("template" if _any_key(keys) else "offline")
    if mode == "realistic" and not (moonshine := moonshine_support()).runs:
        # Better refused now, in one line, than every call failing to load the model.
        parser.exit(
            2, f"media_worker: --providers realistic needs the moonshine STT: {moonshine.reason}\n"
        )
    overrides = (
        None
        if mode == "template"
        else ProviderOverrides.offline_stack(
            realistic=mode == "realistic", tts_fail_probability=args.tts_fail_probability
        )
    )
    # libuv's loop: every call's frames, timers and socket reads go through it, and on the
    # asyncio loop its own bookkeeping was a large share of a busy worker's CPU.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(settings, keys, overrides))


if __name__ == "__main__":
    main()
