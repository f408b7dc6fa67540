"""Periodic-job locks: two beat processes running by mistake never run the same job at once.

`SET key token NX PX ttl` takes the lock; release is a compare-and-delete script, so a holder
whose lock expired (a run longer than `ttl_s`) cannot delete the lock a later run took. Pick
`ttl_s` above the job's worst run time: past it, the lock no longer excludes anyone.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

import redis

from shared import redis_keys
from shared.coordination._scripts import load_lua, to_ms

_RELEASE_LUA = load_lua("lock_release.lua")


class PeriodicLock:
    """A lock on one periodic job; `with PeriodicLock(...) as acquired:` runs only if acquired."""

    def __init__(self, client: redis.Redis, job: str, ttl_s: float) -> None:
        self._client = client
        self._key = redis_keys.periodic_lock(job)
        self._ttl_ms = to_ms(ttl_s, "ttl_s")
        self._release = client.register_script(_RELEASE_LUA)
        self._token: str | None = None

    @property
    def acquired(self) -> bool:
        """Whether this instance took the lock and has not released it yet."""
        return self._token is not None

    def acquire(self) -> bool:
        """Take the lock if nobody holds it; False if another holder does (or this one already)."""
        if self._token is not None:
            return False
        token = secrets.token_hex(16)
        if self._client.set(self._key, token, nx=True, px=self._ttl_ms):
            self._token = token
        return self._token is not None

    def release(self) -> bool:
        """Delete the lock if it is still ours; False if it expired (or was never taken)."""
        token, self._token = self._token, None
        if token is None:
            return False
        return int(self._release(keys=[self._key], args=[token])) == 1

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()


@contextmanager
def periodic_lock(client: redis.Redis, job: str, ttl_s: float) -> Iterator[bool]:
    """Yield whether this run holds `job`'s lock; release it (if still ours) on exit."""
    with PeriodicLock(client, job, ttl_s) as acquired:
        yield acquired
