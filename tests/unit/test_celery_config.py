"""The dispatcher's Celery worker size: one process above the CPUs unless settings say."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from dispatcher.celery_factory import create_celery
from shared.settings import Settings


def test_worker_concurrency_defaults_to_one_above_the_cpus() -> None:
    app = create_celery(Settings(dispatcher_concurrency=None))
    assert app.conf.worker_concurrency == (os.cpu_count() or 1) + 1


def test_worker_concurrency_follows_the_setting() -> None:
    app = create_celery(Settings(dispatcher_concurrency=7))
    assert app.conf.worker_concurrency == 7


def test_a_worker_without_processes_is_refused() -> None:
    with pytest.raises(ValidationError, match="dispatcher_concurrency"):
        Settings(dispatcher_concurrency=0)
