"""Builds a Celery application from settings: broker, queues, routing, beat schedule."""

from __future__ import annotations

import os

from celery import Celery
from kombu import Exchange, Queue

from dispatcher import task_display
from dispatcher.providers import CallProvider
from dispatcher.worker_context import WorkerContext
from shared.settings import Settings

QUEUES = ("ingest", "dispatch", "call_events", "webhooks")

TASK_ROUTES = {
    "callfleet.ingest_leads": {"queue": "ingest"},
    "callfleet.sweep_due": {"queue": "dispatch"},
    "callfleet.dispatch_ingested": {"queue": "dispatch"},
    "callfleet.dispatch": {"queue": "dispatch"},
    "callfleet.reconcile": {"queue": "dispatch"},
    "callfleet.health_check": {"queue": "dispatch"},
    "callfleet.finalize_attempt": {"queue": "call_events"},
    "callfleet.call_status": {"queue": "call_events"},
    "callfleet.hang_up": {"queue": "call_events"},
    "callfleet.deliver_webhooks": {"queue": "webhooks"},
}

# Periodic jobs take a Redis lock inside, so a second beat started by mistake is harmless.
BEAT_SCHEDULE = {
    "sweep-due-leads": {"task": "callfleet.sweep_due", "schedule": 1.0},
    "reconcile": {"task": "callfleet.reconcile", "schedule": 30.0},
    "health-check": {"task": "callfleet.health_check", "schedule": 60.0},
    "deliver-webhooks": {"task": "callfleet.deliver_webhooks", "schedule": 5.0},
}

TASK_MODULES = ["ingest", "dispatch", "finalize", "reconcile", "webhooks", "call_events"]


def worker_concurrency(settings: Settings) -> int:
    return settings.dispatcher_concurrency or (os.cpu_count() or 1) + 1


def create_celery(settings: Settings, *, provider: CallProvider | None = None) -> Celery:
    celery = Celery("callfleet", broker=settings.redis_url, backend=settings.redis_url)
    celery.conf.update(
        # One exchange and routing key per queue: a shared default binding would copy
        # every message into every queue.
        task_queues=[Queue(q, Exchange(q, type="direct"), routing_key=q) for q in QUEUES],
        task_default_queue="dispatch",
        task_routes=TASK_ROUTES,
        beat_schedule=BEAT_SCHEDULE,
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        result_expires=3600,
        # Redelivery of unacked tasks is bounded by this; our tasks finish in seconds.
        broker_transport_options={"visibility_timeout": 300},
        worker_concurrency=worker_concurrency(settings),
        worker_prefetch_multiplier=4,
        task_acks_late=False,
        enable_utc=True,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        broker_connection_retry_on_startup=True,
    )
    task_display.install()
    WorkerContext.attach(celery, WorkerContext(settings, provider))
    for module in TASK_MODULES:
        __import__(f"dispatcher.tasks.{module}")
    return celery
