"""Fixtures for the chaos suite: its own redis-server and database for the session, a fresh
fleet of real processes per test, and the counts of every scenario in the run's summary."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.chaos.fleet import ChaosFleet
from tests.chaos.observe import Recorder, Snapshot
from tests.chaos.services import (
    ChaosRedis,
    chaos_database_url,
    make_engine_for,
    reset_schema,
    truncate_all,
)

REPORTS = pytest.StashKey[list[str]]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[REPORTS] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    reports = terminalreporter.config.stash.get(REPORTS, [])
    if reports:
        terminalreporter.section("chaos counts")
        for report in reports:
            terminalreporter.write_line(report)


@pytest.fixture(scope="session")
def chaos_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaosRedis]:
    server = ChaosRedis(tmp_path_factory.mktemp("chaos-redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def chaos_database() -> Iterator[tuple[str, Engine]]:
    url = chaos_database_url()
    reset_schema(url)
    engine = make_engine_for(url)
    yield url, engine
    engine.dispose()


@pytest.fixture
def chaos(
    request: pytest.FixtureRequest,
    chaos_redis: ChaosRedis,
    chaos_database: tuple[str, Engine],
    tmp_path: Path,
) -> Iterator[ChaosFleet]:
    url, engine = chaos_database
    if chaos_redis.process is None or chaos_redis.process.poll() is not None:
        chaos_redis.start()  # a test that failed mid-restart left it down
    client = chaos_redis.client()
    client.flushall()
    client.close()
    truncate_all(url)
    fleet = ChaosFleet(chaos_redis, engine, url, tmp_path)
    fleet.seed()
    try:
        yield fleet
    finally:
        fleet.stop()
        failed = getattr(request.node, "chaos_failed", False)
        if failed:
            print(fleet.logs())
        gc.collect()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    report = yield
    if call.when == "call" and getattr(report, "failed", False):
        item.chaos_failed = True  # type: ignore[attr-defined]
    return report


@pytest.fixture
def record_counts(request: pytest.FixtureRequest, chaos: ChaosFleet) -> Recorder:
    """Print a scenario's counts now (shown with -s or on failure) and in the run's summary."""

    def record(scenario: str, snap: Snapshot, seconds: float | None) -> None:
        text = snap.report(scenario, seconds, chaos.recovery_actions())
        print(text)
        request.config.stash[REPORTS].append(text)

    return record
