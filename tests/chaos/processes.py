"""The fleet's real processes for the chaos suite: started in their own process groups, logging
to files, killed by their own ids (SIGKILL for a crash, SIGTERM for a clean stop)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
QUEUES = "ingest,dispatch,call_events,webhooks"
STOP_TIMEOUT_S = 20


@dataclass
class Proc:
    """One child process and everything it forked (its own session, so one killpg takes all)."""

    name: str
    command: list[str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self, env: dict[str, str]) -> Proc:
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill9(self) -> None:
        """A crash: the process and its children (Celery's prefork pool) die at once."""
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.popen.wait(timeout=STOP_TIMEOUT_S)

    def stop(self) -> None:
        """A clean stop (SIGTERM, what a supervisor sends), SIGKILL if it lingers."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                pass
        # Children a clean exit left behind (none expected) go too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=STOP_TIMEOUT_S)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Launcher:
    """Builds and tracks the fleet's processes; `stop_all` ends every one it started."""

    log_dir: Path
    env: dict[str, str]
    started: list[Proc] = field(default_factory=list)

    def _run(self, name: str, command: list[str], extra_env: dict[str, str] | None = None) -> Proc:
        proc = Proc(name, command, self.log_dir / f"{name}.log")
        self.started.append(proc.start({**self.env, **(extra_env or {})}))
        return proc

    def api(self, port: int) -> Proc:
        command = [
            sys.executable, "-m", "uvicorn", "dispatcher.api:app", "--host", "127.0.0.1",
            "--port", str(port), "--log-level", "warning",
        ]  # fmt: skip
        return self._run("api", command)

    def worker(self, name: str, queues: str = QUEUES, concurrency: int = 2) -> Proc:
        """A Procfile `dispatcher` entry: prefork, as in production."""
        command = [
            sys.executable, "-m", "celery", "-A", "dispatcher.celery_app", "worker",
            "-n", f"{name}@%h", "-Q", queues, "-c", str(concurrency), "-P", "prefork",
            "--loglevel", "INFO", "--without-gossip", "--without-mingle",
        ]  # fmt: skip
        return self._run(name, command)

    def beat(self, name: str) -> Proc:
        """The Procfile `beat` entry on the chaos app (a shorter reconcile interval)."""
        schedule = self.log_dir / f"{name}-schedule"
        command = [
            sys.executable, "-m", "celery", "-A", "tests.chaos.beat_app", "beat",
            "--loglevel", "INFO", "--schedule", str(schedule),
        ]  # fmt: skip
        return self._run(name, command)

    def simulator(self, port: int, *, instant: bool) -> Proc:
        command = [
            sys.executable, "-m", "simulator", "--port", str(port), "--espeak", "none",
            "--ring-s", "0.05",
        ]  # fmt: skip
        if instant:
            # No media in instant mode, so no speech side channel through Redis either.
            command += ["--instant", "--redis-url", "none"]
        return self._run("simulator", command)

    def media_worker(self, name: str, port: int) -> Proc:
        extra = {"CALLFLEET_MEDIA_PORT": str(port), "CALLFLEET_MEDIA_WORKER_ID": name}
        return self._run(name, [sys.executable, "-m", "media_worker"], extra)

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            proc.stop()
