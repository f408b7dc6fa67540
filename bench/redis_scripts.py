"""Coordination scripts: calls/s of each primitive beside a raw EVALSHA of a trivial `return 1`
script, measured in alternating rounds on one connection so that both see the same machine load.
Figures only, no assertions.

    python bench/redis_scripts.py --calls 20000      # REDIS_URL's server, always on db 14
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._support import BENCH_REDIS_DB, record_figure  # noqa: E402
from shared import redis_keys  # noqa: E402
from shared.coordination import (  # noqa: E402
    AdmissionGates,
    ChannelLeases,
    GateNumber,
    GateRefused,
    MediaSlots,
    RateLimiter,
)

WARMUP_CALLS = 300
Body = Callable[[int], object]


def bench_client() -> redis.Redis:
    """REDIS_URL's server (default local), switched to the benchmark db whatever the URL says."""
    parts = urlsplit(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    return redis.Redis.from_url(urlunsplit(parts._replace(path=f"/{BENCH_REDIS_DB}")))


def _loop(body: Body, start: int, count: int) -> float:
    started = time.perf_counter()
    for i in range(start, start + count):
        body(i)
    return time.perf_counter() - started


@dataclass
class Bench:
    """Runs each measured body in rounds, each round right after a raw round of the same size."""

    calls: int
    rounds: int
    raw: Body
    raw_seconds: float = 0.0
    raw_calls: int = 0

    def measure(self, name: str, body: Body, trips: int = 1, per_call: int = 1) -> None:
        """Print calls/s, time per call, and the median per-round-trip cost relative to raw.

        `trips`: round trips per body call (a pair makes two); `per_call`: scripts per body call
        (a pipeline of N), counted as N calls.
        """
        raw_chunk = max(self.calls // self.rounds, 1)
        chunk = max(raw_chunk // per_call, 1)
        _loop(self.raw, -WARMUP_CALLS, WARMUP_CALLS)
        warmup = max(WARMUP_CALLS // per_call, 1)
        _loop(body, -warmup, warmup)  # negative ids: never reused by the rounds
        total_s, ratios, raw_total_s = 0.0, [], 0.0
        for r in range(self.rounds):
            raw_s = _loop(self.raw, r * raw_chunk, raw_chunk)
            raw_total_s += raw_s
            body_s = _loop(body, r * chunk, chunk)
            self.raw_seconds, self.raw_calls = self.raw_seconds + raw_s, self.raw_calls + raw_chunk
            total_s += body_s
            ratios.append((body_s / (chunk * per_call * trips)) / (raw_s / raw_chunk))
        calls, ratio = chunk * per_call * self.rounds, statistics.median(ratios)
        self.line(name, calls, total_s, ratio)
        raw_rate = raw_chunk * self.rounds / raw_total_s
        record_figure(
            f"redis: {name}", calls / total_s, "calls/s",
            baseline="raw EVALSHA, same rounds", baseline_value=raw_rate,
            note=f"{ratio:.2f}x a raw round trip",
        )  # fmt: skip

    @staticmethod
    def line(name: str, calls: int, seconds: float, ratio: float | None) -> None:
        shown = f"{ratio:>8.2f}" if ratio is not None else f"{'1.00':>8}"
        rate, per_call_us = calls / seconds, seconds / calls * 1e6
        print(f"{name:<44} {calls:>7} {rate:>11,.0f}/s {per_call_us:>8.1f} µs {shown}")


def _admission_step(client: redis.Redis, merchant: str, phones: list[str], number_id: str) -> Body:
    """The four capacity gates in one script, then the releases a finished call makes."""
    gates = AdmissionGates(client)
    numbers = [GateNumber(number_id, 1000)]

    def step(i: int) -> object:
        taken = gates.take(
            merchant_id=merchant, e164=phones[i % len(phones)], rate_member=f"g{i}",
            limit=1_000_000, window_s=60, numbers=numbers, lease_ttl_s=60, reservation_ttl_s=30,
        )  # fmt: skip
        if isinstance(taken, GateRefused):
            raise RuntimeError(f"admission gates refused: {taken.reason}")
        with client.pipeline(transaction=False) as pipe:
            pipe.zrem(redis_keys.channel_leases(number_id), taken.channel_token_id)
            pipe.zrem(redis_keys.media_reservations(taken.worker_id), taken.reservation_id)
            return pipe.execute()

    return step


def run(client: redis.Redis, calls: int, rounds: int, batch: int) -> None:
    run_id = secrets.token_hex(4)
    merchant, number = f"bench-{run_id}", f"bench-{run_id}"
    phones = [f"+1415555{i:04d}" for i in range(1000)]
    workers = [f"bench-{run_id}-w{i}" for i in range(64)]
    limiter, channels, slots = RateLimiter(client), ChannelLeases(client), MediaSlots(client)
    trivial = client.register_script("return 1")

    def raw_pipelined(i: int) -> object:
        with client.pipeline(transaction=False) as pipe:
            for _ in range(batch):
                trivial(client=pipe)
            return pipe.execute()

    def peek(i: int) -> object:
        return limiter.peek(merchant, phones[0], limit=5, window_s=60)

    def record(i: int) -> object:
        phone = phones[i % len(phones)]
        return limiter.record(merchant, phone, member=f"a{i}", limit=1_000_000, window_s=60)

    def channel_pair(i: int) -> object:
        token = channels.try_acquire(number, max_channels=1000, lease_ttl_s=60)
        return token and channels.release(number, token)

    def media_pair(i: int) -> object:
        reservation = slots.reserve(reservation_ttl_s=30)
        return reservation and slots.release(reservation.worker_id, reservation.reservation_id)

    admission_step = _admission_step(client, merchant, phones, f"{number}-g")
    bench = Bench(calls, rounds, lambda i: trivial())
    print(f"redis {client.info('server')['redis_version']}, db {BENCH_REDIS_DB}, one connection")
    print(f"{'operation':<44} {'calls':>7} {'rate':>13} {'per call':>11} {'x raw':>8}")
    try:
        for j in range(3):
            limiter.record(merchant, phones[0], member=f"seed-{j}", limit=10, window_s=60)
        bench.measure(
            f"raw EVALSHA `return 1`, pipelined by {batch}", raw_pipelined, per_call=batch
        )
        bench.measure("rate-limit peek (3 in window)", peek)
        bench.measure("rate-limit record (1000 phones, admitted)", record)
        bench.measure("channel acquire+release (pairs)", channel_pair, trips=2)
        for live in (8, 64):
            for worker_id in workers[:live]:
                slots.advertise(worker_id, stream_url="wss://bench", slots=50, heartbeat_ttl_s=300)
            bench.measure(f"media reserve+release, {live} workers (pairs)", media_pair, trips=2)
        bench.measure("gates in one script, 64 workers (+release)", admission_step, trips=2)
    finally:
        for worker_id in workers:
            slots.withdraw(worker_id)
        client.delete(*(redis_keys.rate_window(merchant, phone) for phone in phones))
        client.delete(redis_keys.channel_leases(number))
        client.delete(redis_keys.channel_leases(f"{number}-g"))
    bench.line("raw EVALSHA `return 1` (all rounds)", bench.raw_calls, bench.raw_seconds, None)
    print("x raw: median over rounds of time per round trip / raw EVALSHA's in the same round;")
    print("       a pair makes two round trips, the pipelined line counts one per script")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=20_000, help="calls per measurement")
    parser.add_argument("--rounds", type=int, default=10, help="alternating raw/body rounds")
    parser.add_argument("--batch", type=int, default=100, help="pipeline depth for the raw loop")
    args = parser.parse_args()
    client = bench_client()
    try:
        run(client, args.calls, args.rounds, args.batch)
    finally:
        client.close()


if __name__ == "__main__":
    main()
