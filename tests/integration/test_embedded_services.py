"""`python -m shared.embedded` against real embedded PostgreSQL and Redis servers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from shared.embedded import ensure_database

pytestmark = pytest.mark.embedded

REPO = Path(__file__).resolve().parents[2]
SYSTEM_PORTS = {5432, 6379}
INHERITED_CHOICES = ("DATABASE_URL", "REDIS_URL", "CALLFLEET_EMBEDDED")


@dataclass(frozen=True)
class Services:
    run_dir: Path
    database_url: str
    redis_url: str
    report: str


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if key not in INHERITED_CHOICES}
    return subprocess.run(
        [sys.executable, "-m", "shared.embedded", *args],
        cwd=REPO,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def read_env_file(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def up_embedded(run_dir: Path) -> Services:
    result = cli("up", "--embedded", "--run-dir", str(run_dir))
    assert result.returncode == 0, result.stderr
    values = read_env_file(run_dir / "services.env")
    return Services(run_dir, values["DATABASE_URL"], values["REDIS_URL"], result.stderr)


def redis_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_connect_timeout=2, socket_timeout=5, retry=Retry(NoBackoff(), 0)
    )


def postmaster_started(database_url: str) -> object:
    with psycopg.connect(database_url, connect_timeout=5) as conn:
        row = conn.execute("SELECT pg_postmaster_start_time()").fetchone()
    assert row is not None
    return row[0]


def redis_run_id(redis_url: str) -> str:
    client = redis_client(redis_url)
    try:
        return str(client.info("server")["run_id"])
    finally:
        client.close()


@pytest.fixture
def run_dir(tmp_path: Path) -> Iterator[Path]:
    """A run dir whose servers are stopped afterwards, even when the test failed."""
    path = tmp_path / "run"
    yield path
    result = cli("down", "--run-dir", str(path))
    assert result.returncode == 0, result.stderr


@pytest.fixture
def services(run_dir: Path) -> Services:
    return up_embedded(run_dir)


def test_up_starts_real_servers_that_outlive_the_cli(services: Services) -> None:
    for url in (services.database_url, services.redis_url):
        parts = urlsplit(url)
        assert parts.hostname == "127.0.0.1"
        assert parts.port not in SYSTEM_PORTS
    assert "postgres: embedded postgresql://" in services.report
    assert "redis: embedded redis://" in services.report

    with psycopg.connect(services.database_url, connect_timeout=5) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        data_dir = conn.execute("SHOW data_directory").fetchone()
        conn.execute("CREATE TABLE calls (id serial PRIMARY KEY, note text NOT NULL)")
        conn.execute("INSERT INTO calls (note) VALUES (%s)", ("hello",))
        assert conn.execute("SELECT note FROM calls").fetchall() == [("hello",)]
    assert data_dir is not None
    assert Path(data_dir[0]) == (services.run_dir / "pg" / "data").resolve()

    client = redis_client(services.redis_url)
    try:
        assert client.set("greeting", "hi") is True
        assert client.get("greeting") == b"hi"
        script = "return redis.call('INCRBY', KEYS[1], ARGV[1]) * 2"
        assert client.eval(script, 1, "counter", "21") == 42
        assert client.config_get("dir")["dir"] == str((services.run_dir / "redis").resolve())
    finally:
        client.close()


def test_second_up_reuses_running_servers_and_their_data(services: Services) -> None:
    with psycopg.connect(services.database_url, connect_timeout=5) as conn:
        conn.execute("CREATE TABLE kept (value text)")
        conn.execute("INSERT INTO kept VALUES ('still here')")
    client = redis_client(services.redis_url)
    try:
        client.set("kept", "still here")
    finally:
        client.close()
    started, run_id = postmaster_started(services.database_url), redis_run_id(services.redis_url)

    again = up_embedded(services.run_dir)

    assert (again.database_url, again.redis_url) == (services.database_url, services.redis_url)
    assert postmaster_started(again.database_url) == started
    assert redis_run_id(again.redis_url) == run_id
    with psycopg.connect(again.database_url, connect_timeout=5) as conn:
        assert conn.execute("SELECT value FROM kept").fetchall() == [("still here",)]
    client = redis_client(again.redis_url)
    try:
        assert client.get("kept") == b"still here"
    finally:
        client.close()


def test_down_stops_both_and_up_restarts_postgres_on_its_data(services: Services) -> None:
    with psycopg.connect(services.database_url, connect_timeout=5) as conn:
        conn.execute("CREATE TABLE durable (value text)")
        conn.execute("INSERT INTO durable VALUES ('survives a restart')")

    down = cli("down", "--run-dir", str(services.run_dir))

    assert down.returncode == 0, down.stderr
    assert "stopped: postgres, redis" in down.stderr
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(services.database_url, connect_timeout=2).close()
    client = redis_client(services.redis_url)
    try:
        with pytest.raises(redis.ConnectionError):
            client.ping()
    finally:
        client.close()
    idle = cli("down", "--run-dir", str(services.run_dir))
    assert idle.returncode == 0, idle.stderr
    assert "nothing was running" in idle.stderr

    again = up_embedded(services.run_dir)
    assert again.database_url == services.database_url
    with psycopg.connect(again.database_url, connect_timeout=5) as conn:
        assert conn.execute("SELECT value FROM durable").fetchall() == [("survives a restart",)]


def test_concurrent_ups_share_one_set_of_servers(run_dir: Path) -> None:
    env_files = [run_dir.parent / f"{n}.env" for n in range(2)]
    args = [
        ("up", "--embedded", "--run-dir", str(run_dir), "--env-file", str(f)) for f in env_files
    ]

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda argv: cli(*argv), args))

    assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
    first, second = (read_env_file(path) for path in env_files)
    assert first == second
    assert postmaster_started(first["DATABASE_URL"]) is not None


def test_ensure_database_creates_once_and_accepts_existing(services: Services) -> None:
    server = services.database_url.rsplit("/", 1)[0] + "/postgres"

    ensure_database(server, "callfleet_test")
    ensure_database(server.replace("postgresql://", "postgresql+psycopg://"), "callfleet_test")

    with psycopg.connect(server, connect_timeout=5) as conn:
        query = "SELECT count(*) FROM pg_database WHERE datname = 'callfleet_test'"
        assert conn.execute(query).fetchone() == (1,)


def test_env_file_reads_the_same_in_sh_and_make(services: Services) -> None:
    env_file = services.run_dir / "services.env"
    printed = subprocess.run(
        ["sh", "-c", '. "$1" && printf "%s\\n%s\\n" "$DATABASE_URL" "$REDIS_URL"', "sh", env_file],
        capture_output=True,
        text=True,
        check=True,
    )
    assert printed.stdout.splitlines() == [services.database_url, services.redis_url]
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    makefile = f"include {env_file}\nall:\n\t@echo '$(DATABASE_URL)'\n\t@echo '$(REDIS_URL)'\n"
    made = subprocess.run(
        ["make", "-s", "-f", "-"], input=makefile, capture_output=True, text=True, check=True
    )
    assert made.stdout.splitlines() == [services.database_url, services.redis_url]


def test_urls_from_env_are_written_verbatim_and_nothing_starts(
    run_dir: Path, tmp_path: Path
) -> None:
    urls = {
        "DATABASE_URL": "postgresql://app:s3cret@db.invalid:5432/callfleet?sslmode=require",
        "REDIS_URL": "redis://:s3cret@cache.invalid:6379/2",
    }
    env_file = tmp_path / "custom.env"

    result = cli("up", "--run-dir", str(run_dir), "--env-file", str(env_file), env=urls)

    assert result.returncode == 0, result.stderr
    assert read_env_file(env_file) == urls
    assert "postgres: env postgresql://app:***@db.invalid" in result.stderr
    assert "s3cret" not in result.stderr
    assert not (run_dir / "pg").exists()
    assert not (run_dir / "redis").exists()


def test_url_that_sh_would_misread_is_refused_in_one_line(run_dir: Path, tmp_path: Path) -> None:
    env_file = tmp_path / "refused.env"
    urls = {"DATABASE_URL": "postgresql://app:pa$$word@db.invalid/x", "REDIS_URL": "redis://x/0"}

    result = cli("up", "--run-dir", str(run_dir), "--env-file", str(env_file), env=urls)

    assert result.returncode != 0
    assert result.stderr.startswith("shared.embedded: error: DATABASE_URL")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "pa$$word" not in result.stderr
    assert not env_file.exists()
