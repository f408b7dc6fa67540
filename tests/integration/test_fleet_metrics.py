"""Fleet-wide metrics over the real Redis and PostgreSQL: counters flushed from many
processes, read back as Prometheus families, and the API's `/metrics` page."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import redis
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from dispatcher.call_metrics import count_call_record
from media_worker.record import CallRecord, EndCause
from shared import redis_keys
from shared.coordination import MediaSlots
from shared.enums import Outcome
from shared.fleet_metrics import (
    ADMISSION_SECONDS,
    DISPATCHES,
    WEBHOOK_DELIVERIES,
    FleetCounters,
    read_fleet_metrics,
)
from tests.integration.conftest import MerchantFixture


def _samples(families: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in families
        for sample in family.samples
    }


def test_two_processes_counts_add_up_in_one_hash(redis_client: redis.Redis) -> None:
    first, second = FleetCounters(redis_client), FleetCounters(redis_client)
    first.inc(DISPATCHES, "dialed", "")
    second.inc(DISPATCHES, "dialed", "")
    second.inc(DISPATCHES, "deferred", "CHANNELS_BUSY", amount=3)
    first.observe(ADMISSION_SECONDS, 0.004)
    second.observe(ADMISSION_SECONDS, 0.3)
    first.flush()
    second.flush()
    samples = _samples(read_fleet_metrics(redis_client))
    dialed = (("action", "dialed"), ("reason", ""))
    assert samples[("callfleet_dispatches_total", dialed)] == 2
    busy = (("action", "deferred"), ("reason", "CHANNELS_BUSY"))
    assert samples[("callfleet_dispatches_total", busy)] == 3
    assert samples[("callfleet_admission_seconds_bucket", (("le", "0.005"),))] == 1
    assert samples[("callfleet_admission_seconds_bucket", (("le", "0.25"),))] == 1
    assert samples[("callfleet_admission_seconds_bucket", (("le", "0.5"),))] == 2
    assert samples[("callfleet_admission_seconds_bucket", (("le", "+Inf"),))] == 2
    assert samples[("callfleet_admission_seconds_count", ())] == 2
    assert abs(samples[("callfleet_admission_seconds_sum", ())] - 0.304) < 1e-9


def test_flushes_at_most_once_per_interval(redis_client: redis.Redis) -> None:
    now = [100.0]
    counters = FleetCounters(redis_client, flush_every_s=1.0, clock=lambda: now[0])
    counters.inc(WEBHOOK_DELIVERIES, "DELIVERED")
    now[0] += 0.5
    counters.maybe_flush()
    assert redis_client.hlen(redis_keys.fleet_metrics()) == 0
    now[0] += 0.5
    counters.maybe_flush()
    assert redis_client.hlen(redis_keys.fleet_metrics()) == 1


def test_a_failed_flush_keeps_the_increments(redis_client: redis.Redis) -> None:
    counters = FleetCounters(redis_client)
    counters.inc(WEBHOOK_DELIVERIES, "DELIVERED", amount=2)
    redis_client.set(redis_keys.fleet_metrics(), "not a hash")  # every HINCRBYFLOAT fails
    counters.flush()
    redis_client.delete(redis_keys.fleet_metrics())
    counters.flush()
    samples = _samples(read_fleet_metrics(redis_client))
    assert samples[("callfleet_webhook_deliveries_total", (("result", "DELIVERED"),))] == 2


def test_metrics_page_reports_leads_capacity_and_fleet_counters(
    api: TestClient, merchant: MerchantFixture, redis_client: redis.Redis
) -> None:
    for i in range(3):
        response = api.post(
            "/v1/leads", json=merchant.lead(f"+1415555{1000 + i}"), headers=merchant.auth
        )
        assert response.status_code in (200, 201, 202), response.text
    MediaSlots(redis_client).advertise(
        "w-1", stream_url="wss://w1/stream", slots=4, heartbeat_ttl_s=60
    )
    counters = FleetCounters(redis_client)
    counters.inc(DISPATCHES, "dialed", "")
    counters.flush()

    response = api.get("/metrics")
    assert response.status_code == 200
    samples = _samples(text_string_to_metric_families(response.text))
    statuses = {
        dict(labels)["status"]: value
        for (name, labels), value in samples.items()
        if name == "callfleet_leads"
    }
    assert sum(statuses.values()) == 3 and statuses["FINISHED"] == 0
    assert samples[("callfleet_media_free_slots", ())] == 4
    assert samples[("callfleet_dispatches_total", (("action", "dialed"), ("reason", "")))] == 1
    assert "+1415555" not in response.text


def test_a_finished_calls_record_adds_turn_latency_and_tts_flips(
    redis_client: redis.Redis,
) -> None:
    t0 = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
    record = CallRecord("COD order confirmation", clock=lambda: t0)
    record.add_tts_failover("cartesia", "espeak", "2 failures in a row", t0)
    record.add_event("tts_provider_degraded", {"provider": "cartesia", "reason": "errors"}, t0)
    for ms in (250, 420, 1800):
        record.add_turn_latency_ms(ms)
    record.decide_outcome(Outcome.CONFIRMED)
    record.end(EndCause.CONVERSATION, t0)
    counters = FleetCounters(redis_client)
    count_call_record(counters, record.to_finalize_record()["events"])
    counters.flush()
    samples = _samples(read_fleet_metrics(redis_client))
    assert samples[("callfleet_turn_latency_seconds_count", ())] == 3
    assert samples[("callfleet_turn_latency_seconds_bucket", (("le", "0.3"),))] == 1
    assert samples[("callfleet_turn_latency_seconds_bucket", (("le", "0.5"),))] == 2
    assert samples[("callfleet_turn_latency_seconds_bucket", (("le", "2.0"),))] == 3
    failover = (("from_provider", "cartesia"), ("to_provider", "espeak"))
    assert samples[("callfleet_tts_failovers_total", failover)] == 1
    assert samples[("callfleet_tts_degraded_total", (("provider", "cartesia"),))] == 1
