"""Fleet-wide counters and histograms that many processes add to and any scrape reads: each
process keeps its increments locally and adds them to one Redis hash at most once a second,
so a Celery child's metrics outlive it and the API can export the whole fleet's."""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import redis
import structlog
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

from shared import redis_keys

log = structlog.get_logger(__name__)

LabelValues = tuple[str, ...]


@dataclass(frozen=True)
class CounterSpec:
    name: str
    documentation: str
    labels: tuple[str, ...]


@dataclass(frozen=True)
class HistogramSpec:
    name: str
    documentation: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...]


DISPATCHES = CounterSpec(
    "callfleet_dispatches",
    "Dispatch verdicts: dialed, deferred (by reason), finished (by outcome), skipped.",
    ("action", "reason"),
)
ADMISSION_SECONDS = HistogramSpec(
    "callfleet_admission_seconds",
    "Time one dispatch spends in admission, the dial included.",
    (),
    (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
WEBHOOK_DELIVERIES = CounterSpec(
    "callfleet_webhook_deliveries",
    "Merchant webhook delivery attempts by result.",
    ("result",),
)
TURN_LATENCY_SECONDS = HistogramSpec(
    "callfleet_turn_latency_seconds",
    "Customer stops speaking to first bot audio, per turn, from finished calls' records.",
    (),
    (0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0),
)
TTS_FAILOVERS = CounterSpec(
    "callfleet_tts_failovers",
    "Calls switched from a failing TTS provider to their fallback voice.",
    ("from_provider", "to_provider"),
)
TTS_DEGRADED = CounterSpec(
    "callfleet_tts_degraded",
    "Times a TTS provider failed past the threshold and was marked degraded fleet-wide.",
    ("provider",),
)
SPECS: tuple[CounterSpec | HistogramSpec, ...] = (
    DISPATCHES,
    ADMISSION_SECONDS,
    WEBHOOK_DELIVERIES,
    TURN_LATENCY_SECONDS,
    TTS_FAILOVERS,
    TTS_DEGRADED,
)

_SEPARATOR = "\x1f"  # never in a label value we write


def _field(name: str, values: LabelValues) -> str:
    return _SEPARATOR.join((name, *values))


def _parse_field(field: str) -> tuple[str, LabelValues]:
    name, *values = field.split(_SEPARATOR)
    return name, tuple(values)


class FleetCounters:
    """Local increments, flushed to Redis by `flush()` or by `maybe_flush()` once
    `flush_every_s` has passed. Thread-safe; a failed flush keeps the increments for the
    next one, so a Redis blip loses nothing."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        flush_every_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._flush_every_s = flush_every_s
        self._clock = clock
        self._pending: defaultdict[str, float] = defaultdict(float)
        self._lock = threading.Lock()
        self._last_flush = clock()

    def inc(self, spec: CounterSpec, *values: str, amount: float = 1) -> None:
        _check_labels(spec.labels, values)
        with self._lock:
            self._pending[_field(spec.name, values)] += amount

    def observe(self, spec: HistogramSpec, value: float, *values: str) -> None:
        _check_labels(spec.labels, values)
        bucket = next((b for b in spec.buckets if value <= b), math.inf)
        with self._lock:
            self._pending[_field(spec.name + "_bucket", (*values, _le(bucket)))] += 1
            self._pending[_field(spec.name + "_sum", values)] += value
            self._pending[_field(spec.name + "_count", values)] += 1

    def maybe_flush(self) -> None:
        if self._clock() - self._last_flush >= self._flush_every_s:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, defaultdict(float)
            self._last_flush = self._clock()
        if not pending:
            return
        try:
            pipe = self._client.pipeline(transaction=False)
            for field, amount in pending.items():
                pipe.hincrbyfloat(redis_keys.fleet_metrics(), field, amount)
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("fleet_metrics_flush_failed", error=type(exc).__name__)
            with self._lock:
                for field, amount in pending.items():
                    self._pending[field] += amount


def _check_labels(labels: Sequence[str], values: Sequence[str]) -> None:
    if len(labels) != len(values):
        raise ValueError(f"expected label values for {list(labels)}, got {list(values)}")
    if any(_SEPARATOR in value for value in values):
        raise ValueError("label values must not contain the field separator")


def _le(bucket: float) -> str:
    return "+Inf" if math.isinf(bucket) else repr(bucket)


def read_fleet_metrics(client: redis.Redis) -> Iterator[Metric]:
    """The fleet's counters and histograms as Prometheus metric families."""
    raw = client.hgetall(redis_keys.fleet_metrics())
    values: dict[str, dict[LabelValues, float]] = defaultdict(dict)
    for field, amount in raw.items():
        name, labels = _parse_field(field.decode() if isinstance(field, bytes) else field)
        values[name][labels] = float(amount)
    for spec in SPECS:
        if isinstance(spec, CounterSpec):
            yield _counter(spec, values.get(spec.name, {}))
        else:
            yield _histogram(spec, values)


def _counter(spec: CounterSpec, values: Mapping[LabelValues, float]) -> Metric:
    family = CounterMetricFamily(spec.name, spec.documentation, labels=list(spec.labels))
    for labels, amount in sorted(values.items()):
        family.add_metric(list(labels), amount)
    return family


def _histogram(spec: HistogramSpec, values: Mapping[str, Mapping[LabelValues, float]]) -> Metric:
    family = HistogramMetricFamily(spec.name, spec.documentation, labels=list(spec.labels))
    counts = values.get(spec.name + "_count", {})
    sums = values.get(spec.name + "_sum", {})
    buckets = values.get(spec.name + "_bucket", {})
    bounds = [*(_le(b) for b in spec.buckets), "+Inf"]
    for labels in sorted(counts):
        cumulative, rows = 0.0, []
        for bound in bounds:
            cumulative += buckets.get((*labels, bound), 0.0)
            rows.append((bound, cumulative))
        family.add_metric(list(labels), rows, sums.get(labels, 0.0))
    return family
