"""Dispatch speed: dials/s through real Celery workers dialing the in-process instant provider,
and ingest-to-dial latency through the API, printed beside a no-op Celery task's throughput
measured in the same run on the same broker. Figures only, no assertions.

    python bench/dispatch.py              # --rounds 5 --leads 1200, the dispatcher's -c
    python bench/dispatch.py --profile 300   # also cProfile admission in-process

The no-op and dispatch phases alternate for --rounds short rounds and the headline is the
median of the rounds' ratios, so a burst of other work on the machine (or a slower spell of
a shared CPU) skews one round, not the figure. Each phase also reports
the CPU its tasks cost across the worker, PostgreSQL and Redis processes: a steadier figure
than throughput on a shared machine. Every phase stops at --phase-timeout and then reports
what finished; no beat runs, so the latency figure is the at-once path (intake ->
dispatch_ingested -> dispatch), not the sweep.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil
import redis
from celery import Celery
from sqlalchemy import Engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._support import (  # noqa: E402
    BENCH_REDIS_DB,
    BenchMerchant,
    api_server,
    bench_settings,
    celery_app_worker,
    record_figure,
    reset_database,
    sample_lead,
    seed_merchant,
)
from dispatcher.celery_factory import create_celery, worker_concurrency  # noqa: E402
from dispatcher.intake.schemas import LeadRequest  # noqa: E402
from dispatcher.intake.store import ingest  # noqa: E402
from dispatcher.intake.validate import IntakeLimits  # noqa: E402
from dispatcher.providers import InstantProvider  # noqa: E402
from dispatcher.sweep import claim_if_due  # noqa: E402
from dispatcher.templates_store import save_template  # noqa: E402
from dispatcher.worker_context import WorkerContext  # noqa: E402
from shared.coordination import MediaSlots  # noqa: E402
from shared.db.models import PhoneNumber  # noqa: E402
from shared.db.session import make_engine, make_session_factory, transaction  # noqa: E402
from shared.enums import NumberProvider  # noqa: E402
from shared.settings import Settings  # noqa: E402
from shared.templates import load_example  # noqa: E402

WORKER_APP = "bench.bench_celery_app"
NOOP_TASK = "bench.noop"  # registered by bench/bench_celery_app.py
QUEUES = "dispatch,ingest,call_events,webhooks"
OUTBOUND_NUMBER = "+14085550100"
MEDIA_WORKER = "bench-mw"
HUGE = 100_000  # channels on the number and slots on the media worker: capacity is free
BATCH = 1000
WARMUP_LEADS = 20
POLL_S = 0.01  # Redis counter polls
DB_POLL_S = 0.5  # PostgreSQL polls: slower, so the poll does not steal the workers' CPU

DIALED_SQL = text(
    "SELECT count(*), max(a.dialed_at) FROM call_attempts a JOIN leads l ON l.id = a.lead_id "
    "WHERE l.status = 'DIALING' AND a.state = 'DIALING' AND a.provider_call_sid IS NOT NULL"
)
LATENCY_SQL = text(
    "SELECT EXTRACT(EPOCH FROM a.dialed_at - l.created_at) * 1000 FROM leads l "
    "JOIN call_attempts a ON a.lead_id = l.id "
    "WHERE l.id = ANY(:ids) AND a.provider_call_sid IS NOT NULL"
)
STATUS_SQL = text(
    "SELECT status, coalesce(last_deferral_reason, '-'), count(*) FROM leads "
    "WHERE id = ANY(:ids) AND status <> 'DIALING' GROUP BY 1, 2 ORDER BY 3 DESC"
)


@dataclass(frozen=True)
class Throughput:
    done: int
    total: int
    elapsed_s: float
    cpu: dict[str, float]  # CPU seconds the phase cost, by process group

    @property
    def rate(self) -> float:
        return self.done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def cpu_ms_per_task(self, group: str | None = None) -> float:
        spent = sum(self.cpu.values()) if group is None else self.cpu.get(group, 0.0)
        return spent / self.done * 1000 if self.done else float("nan")

    def shortfall(self) -> str:
        return "" if self.done == self.total else f"  [only {self.done}/{self.total} in time]"


class CpuMeter:
    """CPU seconds used by the Celery worker's process tree, PostgreSQL's processes and
    redis-server, read from /proc (psutil) around each phase."""

    GROUPS = ("worker", "postgres", "redis")

    def __init__(self, worker: psutil.Process) -> None:
        self._worker = worker
        self._seen: dict[tuple[int, float], tuple[str, float]] = {}

    def _group(self, process: psutil.Process, workers: set[int]) -> str | None:
        if process.pid in workers:
            return "worker"
        name = process.name()
        if name.startswith("postgres"):
            return "postgres"
        if name.startswith("redis-server"):
            return "redis"
        return None

    def read(self) -> dict[str, float]:
        workers = {self._worker.pid, *(c.pid for c in self._worker.children(recursive=True))}
        for process in psutil.process_iter():
            try:
                group = self._group(process, workers)
                if group is not None:
                    times = process.cpu_times()
                    key = (process.pid, process.create_time())
                    self._seen[key] = (group, times.user + times.system)
            except psutil.Error:
                continue  # exited or not ours to read: its last reading stands
        totals = dict.fromkeys(self.GROUPS, 0.0)
        for group, seconds in self._seen.values():
            totals[group] += seconds
        return totals

    @staticmethod
    def spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        return {group: after[group] - before[group] for group in after}


@dataclass(frozen=True)
class Latency:
    dial_ms: list[float]
    api_ms: list[float]
    total: int


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return float("nan")
    ranked = sorted(values)
    return ranked[min(len(ranked) - 1, max(0, round(q / 100 * len(ranked) + 0.5) - 1))]


def wait_until(done: Callable[[], bool], timeout_s: float, poll_s: float = POLL_S) -> bool:
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(poll_s)
    return True


# --- set-up -------------------------------------------------------------------------------


def prepare(settings: Settings, client: redis.Redis) -> BenchMerchant:
    """Fresh schema and Redis db; a merchant whose template calls at any hour, one number
    and one media worker with capacity to spare."""
    if client.connection_pool.connection_kwargs.get("db") != BENCH_REDIS_DB:
        raise RuntimeError(f"the dispatch bench flushes its Redis db; expected db {BENCH_REDIS_DB}")
    client.flushdb()
    reset_database(settings)
    merchant = seed_merchant(settings)
    document = load_example("cod_confirmation")
    document["calling_window"] = None
    engine = make_engine(settings, pool_size=1)
    with transaction(make_session_factory(engine)) as session:
        name = save_template(session, merchant.id, document).name
        session.add(
            PhoneNumber(
                e164=OUTBOUND_NUMBER,
                provider=NumberProvider.TWILIO,
                max_channels=HUGE,
                merchant_id=merchant.id,
            )
        )
    engine.dispose()
    MediaSlots(client).advertise(
        MEDIA_WORKER, stream_url="ws://127.0.0.1:9/stream", slots=HUGE, heartbeat_ttl_s=600
    )
    return BenchMerchant(merchant.id, merchant.api_key, name)


def queued_leads(
    settings: Settings, engine: Engine, merchant: BenchMerchant, first: int, count: int
) -> list[uuid.UUID]:
    """`count` due leads (distinct phones) through the intake core, claimed to QUEUED."""
    sessions = make_session_factory(engine)
    limits = IntakeLimits.from_settings(settings)
    ids: list[uuid.UUID] = []
    for start in range(first, first + count, BATCH):
        stop = min(start + BATCH, first + count)
        requests = [
            LeadRequest.model_validate(sample_lead(i, merchant.template))
            for i in range(start, stop)
        ]
        with transaction(sessions) as session:
            rows = ingest(session, merchant.id, requests, limits, datetime.now(UTC))
            ids += claim_if_due(session, [row.id for row in rows])
    if len(ids) != count:
        raise RuntimeError(f"queued {len(ids)} of {count} leads")
    return ids


def dialed(engine: Engine) -> tuple[int, datetime | None]:
    with engine.connect() as connection:
        count, last = connection.execute(DIALED_SQL).one()
    return int(count), last


# --- phases -------------------------------------------------------------------------------


def noop_rate(
    app: Celery, client: redis.Redis, total: int, timeout_s: float, meter: CpuMeter
) -> Throughput:
    key = f"bench:noop:{uuid.uuid4().hex}"

    def count() -> int:
        return int(client.get(key) or 0)

    cpu_before = meter.read()
    started = time.perf_counter()
    for _ in range(total):
        app.send_task(NOOP_TASK, args=[key])
    wait_until(lambda: count() >= total, timeout_s)
    elapsed = time.perf_counter() - started
    return Throughput(count(), total, elapsed, meter.spent(cpu_before, meter.read()))


def dispatch_rate(
    app: Celery, engine: Engine, lead_ids: list[uuid.UUID], timeout_s: float, meter: CpuMeter
) -> Throughput:
    """One `callfleet.dispatch` per queued lead; done when every lead is DIALING with a SID.
    The end is the last `dialed_at` (PostgreSQL's clock, as is the start), not the poll."""
    before, _ = dialed(engine)
    cpu_before = meter.read()
    with engine.connect() as connection:
        started_at = connection.execute(text("SELECT clock_timestamp()")).scalar_one()
    started = time.perf_counter()
    for lead_id in lead_ids:
        app.send_task("callfleet.dispatch", args=[str(lead_id)])
    wait_until(lambda: dialed(engine)[0] - before >= len(lead_ids), timeout_s, DB_POLL_S)
    cpu = meter.spent(cpu_before, meter.read())
    count, last = dialed(engine)
    elapsed = (last - started_at).total_seconds() if last else time.perf_counter() - started
    return Throughput(count - before, len(lead_ids), elapsed, cpu)


def ingest_to_dial(
    base: str,
    engine: Engine,
    merchant: BenchMerchant,
    *,
    first: int,
    count: int,
    rate_per_s: float,
    clients: int,
    timeout_s: float,
) -> Latency:
    """POST single due leads at a steady rate; latency is attempt.dialed_at - lead.created_at."""
    headers = {"Authorization": f"Bearer {merchant.api_key}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:

        def post(i: int, start: float) -> tuple[uuid.UUID, float]:
            time.sleep(max(0.0, start + (i - first - 3) / rate_per_s - time.perf_counter()))
            sent = time.perf_counter()
            response = client.post("/v1/leads", json=sample_lead(i, merchant.template))
            response.raise_for_status()
            return uuid.UUID(response.json()["id"]), (time.perf_counter() - sent) * 1000

        warm = [post(i, time.perf_counter())[0] for i in range(first, first + 3)]
        wait_until(lambda: len(_latencies(engine, warm)) == len(warm), timeout_s, DB_POLL_S)
        start = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            posted = list(pool.map(lambda i: post(i, start), range(first + 3, first + 3 + count)))
    ids = [lead_id for lead_id, _ in posted]
    wait_until(lambda: len(_latencies(engine, ids)) >= len(ids), timeout_s, DB_POLL_S)
    return Latency(_latencies(engine, ids), [ms for _, ms in posted], count)


def _latencies(engine: Engine, ids: list[uuid.UUID]) -> list[float]:
    with engine.connect() as connection:
        return [float(ms) for (ms,) in connection.execute(LATENCY_SQL, {"ids": ids})]


def explain_missing(engine: Engine, ids: list[uuid.UUID]) -> None:
    with engine.connect() as connection:
        for status, reason, n in connection.execute(STATUS_SQL, {"ids": ids}):
            print(f"      not dialed: {n} {status} ({reason})")


def profile_admission(
    settings: Settings, engine: Engine, merchant: BenchMerchant, first: int, count: int
) -> None:
    """The admission path alone, in this process (no Celery): ms per dispatch and where the
    time goes, by cumulative time."""
    context = WorkerContext(settings, InstantProvider())
    try:
        warm, *ids = queued_leads(settings, engine, merchant, first, count + 1)
        context.admission.admit(warm, datetime.now(UTC))
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        for lead_id in ids:
            context.admission.admit(lead_id, datetime.now(UTC))
        profiler.disable()
        per_dispatch_ms = (time.perf_counter() - started) / count * 1000
    finally:
        context.close()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
    print(f"\nadmission in-process (profiled): {per_dispatch_ms:.2f} ms/dispatch over {count}")
    print(out.getvalue())


# --- main ---------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternating no-op/dispatch rounds")
    parser.add_argument("--leads", type=int, default=1200, help="dispatches to time per round")
    parser.add_argument("--noop-tasks", type=int, default=2000, help="no-op tasks per round")
    parser.add_argument(
        "--concurrency", type=int, default=None,
        help="worker processes/threads (default: the dispatcher's own, CPUs + 1)",
    )  # fmt: skip
    parser.add_argument("--pool", default="prefork", choices=["prefork", "threads", "solo"])
    parser.add_argument("--latency-leads", type=int, default=300)
    parser.add_argument(
        "--latency-rate", type=float, default=20.0, help="API leads/s (low: capacity is free)"
    )
    parser.add_argument("--latency-clients", type=int, default=4)
    parser.add_argument("--phase-timeout", type=float, default=40.0, help="seconds per phase")
    parser.add_argument("--profile", type=int, default=0, help="also profile N admissions")
    args = parser.parse_args()
    if args.rounds * args.leads + args.latency_leads + args.profile + WARMUP_LEADS + 10 > 10_000:
        parser.error("at most ~10,000 leads in all: each needs its own phone number")
    return args


def print_phase(label: str, phase: Throughput, unit: str) -> None:
    cpu = ", ".join(f"{g} {phase.cpu_ms_per_task(g):.2f}" for g in CpuMeter.GROUPS)
    print(
        f"    {label:<26} {phase.rate:>7,.0f} {unit}   CPU {phase.cpu_ms_per_task():.2f} ms/task"
        f" ({cpu}){phase.shortfall()}"
    )


def main() -> None:
    args = parse_args()
    load_before = os.getloadavg()[0]  # other work on the machine skews every figure
    settings = bench_settings()
    client = redis.Redis.from_url(settings.redis_url)
    merchant = prepare(settings, client)
    engine = make_engine(settings, pool_size=2)
    app = create_celery(settings)
    concurrency = args.concurrency or worker_concurrency(settings)
    # Phone numbers (and idempotency keys) never repeat across phases.
    warm_ids = queued_leads(settings, engine, merchant, 0, WARMUP_LEADS)
    rounds_ids = [
        queued_leads(settings, engine, merchant, WARMUP_LEADS + r * args.leads, args.leads)
        for r in range(args.rounds)
    ]
    latency_first = WARMUP_LEADS + args.rounds * args.leads
    worker = celery_app_worker(
        settings, WORKER_APP, QUEUES, concurrency=concurrency, pool=args.pool
    )
    print(
        f"dispatch: {args.rounds} rounds of {args.noop_tasks} no-op tasks then {args.leads}"
        f" dispatches, worker -c {concurrency} ({args.pool}), {os.cpu_count()} CPUs,"
        f" load before start {load_before:.1f}"
    )
    noops: list[Throughput] = []
    dials: list[Throughput] = []
    try:
        with worker as proc:
            meter = CpuMeter(psutil.Process(proc.pid))
            # Warm-up: every worker child connects to Redis and PostgreSQL, loads the template.
            if not noop_rate(app, client, 4 * concurrency, 20, meter).done:
                raise RuntimeError(f"the Celery worker did not start (exit code {proc.poll()})")
            dispatch_rate(app, engine, warm_ids, 20, meter)
            for number, lead_ids in enumerate(rounds_ids, 1):
                noops.append(noop_rate(app, client, args.noop_tasks, args.phase_timeout, meter))
                dials.append(dispatch_rate(app, engine, lead_ids, args.phase_timeout, meter))
                print(f"  round {number}: {dials[-1].rate / noops[-1].rate:.0%} of no-op")
                print_phase("no-op Celery task", noops[-1], "tasks/s")
                print_phase("admission + dial (instant)", dials[-1], "dials/s")
                if dials[-1].done < dials[-1].total:
                    explain_missing(engine, lead_ids)
            with api_server(settings) as base:
                latency = ingest_to_dial(
                    base, engine, merchant, first=latency_first, count=args.latency_leads,
                    rate_per_s=args.latency_rate, clients=args.latency_clients,
                    timeout_s=args.phase_timeout,
                )  # fmt: skip
        noop = statistics.median(phase.rate for phase in noops)
        dial = statistics.median(phase.rate for phase in dials)
        share = statistics.median(d.rate / n.rate for d, n in zip(dials, noops, strict=True))
        noop_cpu = statistics.median(phase.cpu_ms_per_task() for phase in noops)
        dial_cpu = statistics.median(phase.cpu_ms_per_task() for phase in dials)
        print(f"  medians over {args.rounds} rounds (load after {os.getloadavg()[0]:.1f}):")
        print(f"  {'no-op Celery task':<28} {noop:>7,.0f} tasks/s   CPU {noop_cpu:.2f} ms/task")
        print(
            f"  {'admission + dial (instant)':<28} {dial:>7,.0f} dials/s   CPU {dial_cpu:.2f}"
            f" ms/task   ({share:.0%} of no-op, the rounds' median)"
        )
        record_figure(
            "admission + dial (instant carrier)", dial, "dials/s",
            baseline="no-op Celery task", baseline_value=noop,
            note=f"worker -c {concurrency} {args.pool}; medians of {args.rounds} rounds,"
            f" median round ratio {share:.0%}",
        )  # fmt: skip
        missing = "" if len(latency.dial_ms) == latency.total else (
            f"  [only {len(latency.dial_ms)}/{latency.total} dialed in time]"
        )  # fmt: skip
        print(
            f"  {'ingest-to-dial latency':<28} p50 {percentile(latency.dial_ms, 50):.0f} ms"
            f"   p99 {percentile(latency.dial_ms, 99):.0f} ms"
            f"   (API p50 {percentile(latency.api_ms, 50):.0f} ms,"
            f" p99 {percentile(latency.api_ms, 99):.0f} ms;"
            f" {latency.total} leads at {args.latency_rate:.0f}/s){missing}"
        )
        record_figure(
            "ingest-to-dial latency p50 / p99", percentile(latency.dial_ms, 50), "ms",
            note=f"p99 {percentile(latency.dial_ms, 99):.0f} ms; {latency.total} leads at "
            f"{args.latency_rate:.0f}/s through the API",
        )  # fmt: skip
        if args.profile:
            first = latency_first + 3 + args.latency_leads
            profile_admission(settings, engine, merchant, first, args.profile)
    finally:
        engine.dispose()
        client.close()


if __name__ == "__main__":
    main()
