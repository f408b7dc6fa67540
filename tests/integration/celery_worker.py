"""A real Celery worker in a thread for tests, torn down only once its running tasks are done."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from celery import Celery
from celery.contrib.testing.worker import start_worker

from dispatcher.worker_context import WorkerContext


@contextmanager
def running_worker(
    app: Celery, queues: Sequence[str], *, pool: str = "solo", concurrency: int = 1
) -> Iterator[Celery]:
    with start_worker(
        app, pool=pool, concurrency=concurrency, perform_ping_check=False, loglevel="WARNING",
        queues=list(queues),
    ) as worker:  # fmt: skip
        executor = getattr(worker.pool, "executor", None)
        yield app
    # The test worker stops by terminating, which leaves a thread pool's running tasks
    # running; disposing the engines under them would strand their checked-out connections.
    if isinstance(executor, ThreadPoolExecutor):
        executor.shutdown(wait=True)
    WorkerContext.of(app).close()
