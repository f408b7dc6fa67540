"""Media worker load: CPU, memory, first audio, turn latency and pacing per concurrent call."""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Coroutine, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import httpx
import redis
from sqlalchemy import Engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._media_calls import (  # noqa: E402
    CallTiming,
    Figures,
    HangUpStub,
    held_call,
    percentile,
    scripted_call,
    serve_echo,
)
from bench._support import (  # noqa: E402
    ROOT,
    bench_settings,
    child_env,
    free_port,
    record_figure,
    reset_database,
    sample_lead,
    seed_merchant,
)
from dispatcher.intake.schemas import LeadRequest  # noqa: E402
from dispatcher.intake.store import ingest  # noqa: E402
from dispatcher.intake.validate import IntakeLimits  # noqa: E402
from shared.call_tokens import issue_call_token  # noqa: E402
from shared.db.models import CallAttempt  # noqa: E402
from shared.db.session import make_engine, make_session_factory, transaction  # noqa: E402
from shared.enums import AttemptState  # noqa: E402
from shared.settings import Settings  # noqa: E402
from simulator.audio import SpeechSynth  # noqa: E402
from simulator.calls import new_sid  # noqa: E402
from simulator.sidechannel import RedisPublisher  # noqa: E402

BENCH_DB = "callfleet_bench_media"
BENCH_REDIS_DB = 13  # flushed at the start; the other benches use 14, the tests 15
SAMPLE_S = 0.25  # RSS polls of the process under test
FIRST_AUDIO_TARGET_MS = 300
STARVED_TARGET = 0.01  # "real time": callers' playout dry for under 1% of their utterance time
SUMMARY_SQL = text(
    "SELECT a.ended_at IS NOT NULL, e -> 'details' FROM call_attempts a "
    "LEFT JOIN LATERAL jsonb_array_elements(a.events) e ON e ->> 'kind' = 'call_summary' "
    "WHERE a.id = ANY(:ids)"
)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Call:
    attempt_id: uuid.UUID
    lead_id: uuid.UUID
    call_sid: str


@dataclass
class Tier:
    """One process under test serving `calls` concurrent streams, all started at once."""

    calls: int
    base_rss_mb: float
    wall_s: float = 0.0
    cpu_s: float = 0.0
    run_queue_s: float = 0.0
    peak_rss_mb: float = 0.0
    client_cpu_s: float = 0.0
    timings: list[CallTiming] = field(default_factory=list)
    server_latency_ms: list[int] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)
    hang_ups: int = 0

    @property
    def call_s(self) -> float:
        return sum(t.end_s - t.start_s for t in self.timings if t.start_s)


# --- the process under test: /proc, no dependencies ---------------------------------------------


def cpu_s(pid: int) -> float:
    """utime + stime of every thread (fields 14 and 15, after the parenthesised name)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def run_queue_s(pid: int) -> float:
    """Time the main (event loop) thread was runnable but waiting for a CPU: on a shared
    machine this is the worker's share of other people's load."""
    return int(Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()[1]) / 1e9


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@contextmanager
def child(command: list[str], env: dict[str, str], health_url: str, log: IO[str]) -> Iterator[int]:
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            with suppress(httpx.TransportError):
                if httpx.get(health_url, timeout=1).status_code == 200:
                    break
            time.sleep(0.2)
        else:
            raise RuntimeError(f"{command} did not become healthy (exit code {proc.poll()})")
        yield proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=40)  # the worker drains live calls on SIGTERM
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# --- set-up -------------------------------------------------------------------------------------


def prepare(settings: Settings, engine: Engine, count: int) -> list[Call]:
    """Fresh schema and Redis db; `count` leads, each with an answered attempt whose call SID
    is recorded, as the dispatcher leaves them when the carrier opens the stream."""
    client = redis.Redis.from_url(settings.redis_url)
    if client.connection_pool.connection_kwargs.get("db") != BENCH_REDIS_DB:
        raise RuntimeError(f"the media bench flushes its Redis db; expected db {BENCH_REDIS_DB}")
    client.flushdb()
    client.close()
    reset_database(settings)
    merchant = seed_merchant(settings)
    now = datetime.now(UTC)
    requests = [LeadRequest.model_validate(sample_lead(i, merchant.template)) for i in range(count)]
    with transaction(make_session_factory(engine)) as session:
        rows = ingest(session, merchant.id, requests, IntakeLimits.from_settings(settings), now)
        calls = [Call(uuid.uuid4(), row.id, new_sid("CA")) for row in rows]
        session.add_all(
            CallAttempt(
                id=call.attempt_id,
                lead_id=call.lead_id,
                attempt_no=1,
                state=AttemptState.IN_PROGRESS,
                provider_call_sid=call.call_sid,
                dialed_at=now,
                answered_at=now,
            )
            for call in calls
        )
    return calls


# --- one tier -----------------------------------------------------------------------------------


async def measure(pid: int, tier: Tier, callers: Sequence[Coroutine[Any, Any, CallTiming]]) -> Tier:
    """Run the callers at once, measuring process `pid` meanwhile."""
    stop = asyncio.Event()

    async def sample_rss() -> None:
        while not stop.is_set():
            tier.peak_rss_mb = max(tier.peak_rss_mb, rss_mb(pid))
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SAMPLE_S)

    sampler = asyncio.create_task(sample_rss())
    cpu0, queue0, client0 = cpu_s(pid), run_queue_s(pid), sum(os.times()[:2])
    wall0 = time.monotonic()
    try:
        tier.timings = list(await asyncio.gather(*callers))
    finally:
        tier.wall_s = time.monotonic() - wall0
        tier.cpu_s = cpu_s(pid) - cpu0
        tier.run_queue_s = run_queue_s(pid) - queue0
        tier.client_cpu_s = sum(os.times()[:2]) - client0
        stop.set()
        await sampler
    return tier


async def collect_records(engine: Engine, tier: Tier, calls: Sequence[Call]) -> None:
    """Turn latencies and outcomes from the attempts' `call_summary` events, once every
    session has saved its record (the save follows the socket's close)."""
    ids = [call.attempt_id for call in calls]
    deadline = time.monotonic() + 15
    while True:
        with engine.connect() as connection:
            rows = connection.execute(SUMMARY_SQL, {"ids": ids}).all()
        if all(ended for ended, _ in rows) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    for _, details in rows:
        outcome = (details or {}).get("outcome") or "unsaved"
        tier.outcomes[outcome] = tier.outcomes.get(outcome, 0) + 1
        tier.server_latency_ms += (details or {}).get("turn_latencies_ms") or []


# --- figures ------------------------------------------------------------------------------------


def _ms(values: Sequence[float], *qs: float) -> str:
    if not values:
        return "n/a"
    return "/".join(f"{percentile(values, q):.0f}" for q in qs) + " ms"


def rows(tier: Tier, *, worker: bool) -> dict[str, str]:
    f = Figures.of(tier.timings)
    wall = tier.wall_s or float("nan")
    out = {
        "process CPU (of one core)": f"{tier.cpu_s / wall:.1%}",
        "  per live call": f"{tier.cpu_s / tier.call_s:.2%}" if tier.call_s else "n/a",
        "  loop thread waiting for CPU": f"{tier.run_queue_s / wall:.0%} of wall",
        "RSS base -> peak": f"{tier.base_rss_mb:.0f} -> {tier.peak_rss_mb:.0f} MB",
        "  per call": f"{(tier.peak_rss_mb - tier.base_rss_mb) / tier.calls:.1f} MB",
        "first audio p50/p95": _ms(f.first_ms, 50, 95),
        "pacing jitter p50/p95/max": _ms(f.deviations_ms, 50, 95, 100),
        "playout starved": f"{f.starved_share:.1%} ({f.audio_ms / 1000:.0f} s audio)",
        "streams with no audio": f"{f.silent}/{tier.calls}",
        "callers' CPU (this process)": f"{tier.client_cpu_s / wall:.0%}",
    }
    if worker:
        response = [ms for t in tier.timings for ms in t.response_ms]
        out["turn latency server p50/p95"] = _ms(tier.server_latency_ms, 50, 95)
        out["turn latency caller p50/p95"] = _ms(response, 50, 95)
        out["outcomes"] = " ".join(f"{v} {k}" for k, v in sorted(tier.outcomes.items()))
        out["REST hang-ups"] = f"{tier.hang_ups}/{tier.calls}"
    out["wall time"] = f"{tier.wall_s:.0f} s"
    return out


def print_table(title: str, tiers: Sequence[Tier], *, worker: bool) -> None:
    print(title)
    table = [rows(tier, worker=worker) for tier in tiers]
    print(f"  {'':<30}" + "".join(f" {f'{t.calls} calls':>24}" for t in tiers))
    for key in table[0]:
        print(f"  {key:<30}" + "".join(f" {row[key]:>24}" for row in table))


def print_targets(measured: Sequence[Tier]) -> None:
    def verdict(met: bool) -> str:
        return "met" if met else "NOT met"

    for tier in measured:
        f = Figures.of(tier.timings)
        if tier.calls == 10:
            p95 = percentile(f.first_ms, 95) if f.first_ms else math.inf
            print(
                f"target: first audio p95 < {FIRST_AUDIO_TARGET_MS} ms with 10 simultaneous"
                f" starts: {p95:.0f} ms, {verdict(p95 < FIRST_AUDIO_TARGET_MS)}"
            )
        if tier.calls == 50:
            ok = f.silent == 0 and f.starved_share < STARVED_TARGET
            print(
                f"target: 50 concurrent calls in real time (every stream answered, playout"
                f" starved < {STARVED_TARGET:.0%}): {f.silent} unanswered,"
                f" {f.starved_share:.1%} starved, {verdict(ok)}"
            )


def record_headlines(measured: Sequence[Tier], baseline: Sequence[Tier]) -> None:
    """The figures `make bench` puts in its one table."""
    echo = {tier.calls: Figures.of(tier.timings) for tier in baseline}
    for tier in measured:
        f = Figures.of(tier.timings)
        if f.first_ms:
            base = echo.get(tier.calls)
            record_figure(
                f"media: first audio p95, {tier.calls} simultaneous starts",
                percentile(f.first_ms, 95), "ms",
                baseline="bare websocket echo",
                baseline_value=percentile(base.first_ms, 95) if base and base.first_ms else None,
            )  # fmt: skip
        if tier.server_latency_ms:
            record_figure(
                f"media: turn latency p50, {tier.calls} calls",
                percentile(tier.server_latency_ms, 50), "ms",
                note=f"p95 {percentile(tier.server_latency_ms, 95):.0f} ms (server side)",
            )  # fmt: skip
        record_figure(
            f"media: playout starved, {tier.calls} calls in one process",
            100 * f.starved_share, "%",
            note=f"CPU per live call {tier.cpu_s / tier.call_s:.1%} of a core"
            if tier.call_s else "",
        )  # fmt: skip


# --- main ---------------------------------------------------------------------------------------


async def run(args: argparse.Namespace, settings: Settings) -> None:
    tiers = [int(n) for n in args.calls.split(",")]
    engine = make_engine(settings, pool_size=2)
    pool = prepare(settings, engine, 1 + sum(tiers))
    secret = settings.call_token_secret.get_secret_value().encode()
    synth = SpeechSynth(None, ms_per_char=60)  # the simulator's speech-like babble
    publisher = RedisPublisher(settings.redis_url)  # the `sim` STT side channel
    stub = HangUpStub()
    stub_url = await stub.start(free_port())
    worker_port, echo_port = free_port(), free_port()
    env = {
        **child_env(settings),
        "CALLFLEET_MEDIA_PORT": str(worker_port),
        "CALLFLEET_MEDIA_SLOTS": str(max(tiers) + 1),
        "CALLFLEET_MEDIA_WORKER_ID": "bench-media",
        "CALLFLEET_TWILIO_API_BASE_URL": stub_url,
    }
    worker_cmd = [sys.executable, "-m", "media_worker", "--providers", "offline"]
    echo_cmd = [sys.executable, "-m", "bench.media", "--echo-server", str(echo_port)]
    worker_url = f"ws://127.0.0.1:{worker_port}/stream"
    echo_url = f"ws://127.0.0.1:{echo_port}/stream"

    def caller(
        call: Call, deadline_s: float, *, greeting_only: bool = False
    ) -> Coroutine[Any, Any, CallTiming]:
        token = issue_call_token(secret, attempt_id=str(call.attempt_id), lead_id=str(call.lead_id))
        return scripted_call(
            worker_url, CallTiming(call.call_sid), token, synth, publisher,
            deadline_s=deadline_s, greeting_only=greeting_only,
        )  # fmt: skip

    load_before = os.getloadavg()[0]
    baseline: list[Tier] = []
    measured: list[Tier] = []
    log = tempfile.NamedTemporaryFile("w", prefix="bench-media-", suffix=".log", delete=False)
    with (
        log,
        child(worker_cmd, env, f"http://127.0.0.1:{worker_port}/healthz", log) as worker,
        child(echo_cmd, env, f"http://127.0.0.1:{echo_port}/healthz", log) as echo,
    ):
        # Warm-up: the first call imports and builds what every later call reuses, so the
        # RSS after it is the base that calls add to.
        warm, *pool = pool
        await caller(warm, time.monotonic() + 30, greeting_only=True)
        await asyncio.sleep(1)
        worker_base, echo_base = rss_mb(worker), rss_mb(echo)
        for n in tiers:
            held = [
                held_call(echo_url, CallTiming(f"echo-{i}"), synth, args.baseline_seconds)
                for i in range(n)
            ]
            baseline.append(await measure(echo, Tier(n, echo_base), held))
            batch, pool = pool[:n], pool[n:]
            hang_ups, deadline = stub.hang_ups, time.monotonic() + args.seconds
            tier = await measure(worker, Tier(n, worker_base), [caller(c, deadline) for c in batch])
            tier.hang_ups = stub.hang_ups - hang_ups
            await collect_records(engine, tier, batch)
            measured.append(tier)
            await asyncio.sleep(1)  # the sessions' ends settle before the next tier
    await stub.stop()
    await publisher.close()
    engine.dispose()

    print(
        f"media: {args.calls} concurrent calls started at once against one process; "
        f"{os.cpu_count()} CPUs, load {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
        " (a shared machine: figures are noisy)"
    )
    print_table(
        f"baseline: bare websocket echo server, {args.baseline_seconds:.0f} s of 20 ms frames",
        baseline, worker=False,
    )  # fmt: skip
    print_table(
        "media worker: python -m media_worker --providers offline (sim STT, scripted LLM,"
        " tone TTS), `confirm` persona",
        measured, worker=True,
    )  # fmt: skip
    print_targets(measured)
    record_headlines(measured, baseline)
    for note in (
        "first audio: `start` sent -> first outbound `media` (echo: the first frame back)",
        "jitter: |inter-arrival - audio the message before carried|, past each utterance's"
        " lead burst; starved: share of utterance time a real-time playout of what arrived was dry",
        "turn latency: server = the records' turn_latencies_ms (n/a when none recorded);"
        " caller = last voiced customer frame sent -> first voiced bot frame received",
        f"worker and echo server output: {log.name}",
    ):
        print(f"  {note}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", default="1,10,50", help="concurrent calls, one tier each")
    parser.add_argument("--seconds", type=float, default=45, help="longest a tier's calls run")
    parser.add_argument("--baseline-seconds", type=float, default=8, help="per echo tier")
    parser.add_argument("--echo-server", type=int, help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.echo_server:
        asyncio.run(serve_echo(args.echo_server))
        return
    asyncio.run(run(args, bench_settings(BENCH_DB, BENCH_REDIS_DB)))


if __name__ == "__main__":
    main()
