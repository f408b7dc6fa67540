"""Ingestion throughput: leads/s through the batch API and the Celery task, printed beside a
raw multi-row INSERT of the same rows measured in the same run. Figures only, no assertions.

    make bench            # or: python bench/ingest.py --leads 20000
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from sqlalchemy import TextClause, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._support import (  # noqa: E402
    BenchMerchant,
    api_server,
    bench_settings,
    celery_app_worker,
    record_figure,
    reset_database,
    sample_lead,
    seed_merchant,
)
from dispatcher.celery_factory import create_celery  # noqa: E402
from dispatcher.intake.schemas import LeadRequest  # noqa: E402
from dispatcher.intake.validate import request_hash  # noqa: E402
from shared.db.session import make_engine  # noqa: E402
from shared.settings import Settings  # noqa: E402


def _clear_leads(settings: Settings) -> None:
    engine = make_engine(settings, pool_size=1)
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE leads CASCADE"))
    engine.dispose()


def _batches(total: int, size: int, template: str, offset: int) -> list[list[dict[str, object]]]:
    leads = [sample_lead(offset + i, template) for i in range(total)]
    return [leads[i : i + size] for i in range(0, total, size)]


def raw_insert(settings: Settings, merchant: BenchMerchant, total: int, size: int) -> float:
    """The floor: the same rows as one multi-row INSERT per batch, no validation at all."""
    engine = make_engine(settings, pool_size=1)
    with engine.connect() as connection:
        template_id = connection.execute(text("SELECT id FROM templates LIMIT 1")).scalar_one()
    columns = (
        "id, merchant_id, template_id, direction, phone, payload, idempotency_key, "
        "request_hash, status, attempts, max_attempts, next_attempt_at"
    )

    def statement(rows: int) -> TextClause:
        values = ", ".join(
            f"(:id{i}, :m, :t, 'OUTBOUND', :phone{i}, CAST(:payload{i} AS jsonb), :key{i}, "
            f":hash{i}, 'SCHEDULED', 0, 3, now())"
            for i in range(rows)
        )
        return text(f"INSERT INTO leads ({columns}) VALUES {values}")

    batches = _batches(total, size, merchant.template, offset=0)
    started = time.perf_counter()
    for batch in batches:
        params: dict[str, object] = {"m": merchant.id, "t": template_id}
        for i, lead in enumerate(batch):
            params |= {
                f"id{i}": uuid.uuid4(),
                f"phone{i}": lead["phone"],
                f"payload{i}": json.dumps(lead["payload"]),
                f"key{i}": lead["idempotency_key"],
                f"hash{i}": request_hash(LeadRequest.model_validate(lead), str(lead["phone"])),
            }
        with engine.begin() as connection:
            connection.execute(statement(len(batch)), params)
    elapsed = time.perf_counter() - started
    engine.dispose()
    return total / elapsed


def through_api(
    settings: Settings, merchant: BenchMerchant, total: int, size: int, clients: int
) -> float:
    batches = _batches(total, size, merchant.template, offset=0)
    headers = {"Authorization": f"Bearer {merchant.api_key}"}
    with api_server(settings) as base, httpx.Client(base_url=base, timeout=60) as client:
        client.post("/v1/leads/batch", json={"leads": batches[0][:1]}, headers=headers)  # warm-up
        _clear_leads(settings)

        def post(batch: list[dict[str, object]]) -> int:
            response = client.post("/v1/leads/batch", json={"leads": batch}, headers=headers)
            response.raise_for_status()
            return int(response.json()["created"])

        started = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            created = sum(pool.map(post, batches))
        elapsed = time.perf_counter() - started
    if created != total:
        raise RuntimeError(f"API created {created} of {total} leads")
    return total / elapsed


def through_celery(settings: Settings, merchant: BenchMerchant, total: int, size: int) -> float:
    batches = _batches(total, size, merchant.template, offset=0)
    app = create_celery(settings)
    with celery_app_worker(settings, "dispatcher.celery_app", "ingest"):
        warm = app.send_task("callfleet.ingest_leads", args=[str(merchant.id), batches[0][:1]])
        warm.get(timeout=60)
        _clear_leads(settings)
        started = time.perf_counter()
        results = [
            app.send_task("callfleet.ingest_leads", args=[str(merchant.id), batch])
            for batch in batches
        ]
        created = sum(int(r.get(timeout=300)["created"]) for r in results)
        elapsed = time.perf_counter() - started
    if created != total:
        raise RuntimeError(f"Celery created {created} of {total} leads")
    return total / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=2, help="concurrent API clients")
    args = parser.parse_args()

    settings = bench_settings()
    reset_database(settings)
    merchant = seed_merchant(settings)
    phases: list[tuple[str, Callable[[], float]]] = [
        ("raw multi-row INSERT", lambda: raw_insert(settings, merchant, args.leads, args.batch)),
        (
            f"batch API ({args.clients} clients)",
            lambda: through_api(settings, merchant, args.leads, args.batch, args.clients),
        ),
        ("Celery ingest_leads", lambda: through_celery(settings, merchant, args.leads, args.batch)),
    ]
    print(f"ingest: {args.leads} leads in batches of {args.batch}")
    baseline = None
    for name, run in phases:
        _clear_leads(settings)
        rate = run()
        baseline = baseline or rate
        print(f"  {name:<28} {rate:>9,.0f} leads/s  ({rate / baseline:5.1%} of raw INSERT)")
        if rate is not baseline:
            record_figure(
                f"ingest: {name}", rate, "leads/s",
                baseline="raw multi-row INSERT", baseline_value=baseline,
            )  # fmt: skip


if __name__ == "__main__":
    main()
