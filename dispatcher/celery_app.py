"""The Celery application: broker, queues and routing (`celery -A dispatcher.celery_app ...`)."""

from __future__ import annotations

from celery import Celery
from celery.signals import setup_logging, worker_process_shutdown
from kombu import Exchange, Queue

from dispatcher.worker_context import WorkerContext
from shared.logging import configure_logging
from shared.settings import Settings

QUEUES = ("ingest", "dispatch", "call_events", "webhooks")

TASK_ROUTES = {
    "callfleet.ingest_leads": {"queue": "ingest"},
}


def create_celery(settings: Settings) -> Celery:
    celery = Celery("callfleet", broker=settings.redis_url, backend=settings.redis_url)
    celery.conf.update(
        # One exchange and routing key per queue: a shared default binding would copy
        # every message into every queue.
        task_queues=[
            Queue(name, Exchange(name, type="direct"), routing_key=name) for name in QUEUES
        ],
        task_default_queue="dispatch",
        task_routes=TASK_ROUTES,
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        result_expires=3600,
        # Redelivery of unacked tasks is bounded by this; our tasks finish in seconds.
        broker_transport_options={"visibility_timeout": 300},
        worker_prefetch_multiplier=4,
        task_acks_late=False,
        enable_utc=True,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        broker_connection_retry_on_startup=True,
    )
    WorkerContext.attach(celery, settings)
    celery.autodiscover_tasks(["dispatcher.tasks"], related_name="ingest", force=True)
    return celery


settings = Settings()
app = create_celery(settings)


@setup_logging.connect
def _configure_logging(**_: object) -> None:
    # Connecting this signal stops Celery from installing its own handlers.
    configure_logging(settings)


@worker_process_shutdown.connect
def _close_worker_context(**_: object) -> None:
    WorkerContext.of(app).close()
