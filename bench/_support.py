"""Shared set-up for benchmarks: a dedicated database, a seeded merchant, child processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url

from dispatcher.merchants import create_merchant
from dispatcher.templates_store import save_template
from shared.db import migrate
from shared.db.session import make_engine, make_session_factory, transaction
from shared.embedded import ensure_database
from shared.settings import Settings
from shared.templates import load_example

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class BenchMerchant:
    id: uuid.UUID
    api_key: str
    template: str


BENCH_REDIS_DB = int(os.environ.get("CALLFLEET_BENCH_REDIS_DB", "14"))


def bench_settings(dbname: str | None = None, redis_db: int = BENCH_REDIS_DB) -> Settings:
    """Settings for a dedicated database and Redis db (both emptied by the benches); the
    environment can move them so two runs on one machine keep apart."""
    dbname = dbname or os.environ.get("CALLFLEET_BENCH_DB", "callfleet_bench")
    base = Settings()
    url = make_url(base.database_url)
    server = url.set(drivername="postgresql", database="postgres")
    ensure_database(server.render_as_string(hide_password=False), dbname)
    redis_url = base.redis_url.rsplit("/", 1)[0] + f"/{redis_db}"
    return Settings(
        DATABASE_URL=url.set(database=dbname).render_as_string(hide_password=False),
        REDIS_URL=redis_url,
        log_level="WARNING",
    )


def reset_database(settings: Settings) -> None:
    engine = make_engine(settings, pool_size=1)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    migrate.upgrade(settings.database_url)


def seed_merchant(settings: Settings) -> BenchMerchant:
    engine = make_engine(settings, pool_size=1)
    with transaction(make_session_factory(engine)) as session:
        merchant = create_merchant(session, f"bench-{uuid.uuid4().hex[:6]}")
        saved = save_template(session, merchant.id, load_example("cod_confirmation"))
    engine.dispose()
    return BenchMerchant(merchant.id, merchant.api_key, saved.name)


def sample_lead(i: int, template: str) -> dict[str, Any]:
    return {
        "phone": f"+1415{5550000 + i % 10000 + 1000000 * (i // 10000 % 3):07d}"[:12],
        "template": template,
        "payload": {
            "customer_name": "Asha",
            "store_name": "Kurta Corner",
            "order_id": f"ORD-{i}",
            "amount": 899.0,
            "items": "2 cotton kurtas",
            "delivery_date": (date.today() + timedelta(days=2)).isoformat(),
        },
        "idempotency_key": f"bench-{i}",
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "CALLFLEET_LOG_LEVEL": "WARNING",
        "CALLFLEET_LOG_FORMAT": "json",
    }


@contextmanager
def api_server(settings: Settings, workers: int = 1) -> Iterator[str]:
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", "dispatcher.api:app",
        "--port", str(port), "--workers", str(workers), "--log-level", "warning",
    ]  # fmt: skip
    proc = subprocess.Popen(command, cwd=ROOT, env=child_env(settings))
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise RuntimeError("API server did not become healthy")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=15)


@contextmanager
def celery_app_worker(
    settings: Settings,
    app: str,
    queues: str,
    *,
    concurrency: int | None = None,
    pool: str = "prefork",
    extra_env: dict[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """A quiet worker (no banner) for any Celery app module; killed if it ignores SIGTERM."""
    command = [
        sys.executable, "-m", "celery", "--quiet", "-A", app, "worker", "-Q", queues,
        "-P", pool, "--loglevel", "WARNING", "--without-gossip", "--without-mingle",
        "--without-heartbeat",
    ]  # fmt: skip
    if concurrency is not None:  # else the app's own `worker_concurrency`, as in production
        command += ["-c", str(concurrency)]
    # Celery warns on every start when run as root (as in containers); that is not news here.
    quiet = {"PYTHONWARNINGS": "ignore:You're running the worker with superuser privileges"}
    env = {**child_env(settings), **quiet, **(extra_env or {})}
    # stdout carries only Celery's shutdown chatter; logs and tracebacks go to stderr.
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


SUMMARY_ENV = "CALLFLEET_BENCH_SUMMARY"


def record_figure(
    figure: str,
    value: float,
    unit: str,
    *,
    baseline: str | None = None,
    baseline_value: float | None = None,
    note: str = "",
) -> None:
    """Add one headline figure to the run's summary file (`make bench` prints them as one
    table); without CALLFLEET_BENCH_SUMMARY set this does nothing."""
    path = os.environ.get(SUMMARY_ENV)
    if not path:
        return
    row = {
        "figure": figure,
        "value": value,
        "unit": unit,
        "baseline": baseline,
        "baseline_value": baseline_value,
        "note": note,
    }
    with open(path, "a", encoding="utf-8") as summary:
        summary.write(json.dumps(row) + "\n")
