"""Celery entrypoint for the chaos suite's beat (`celery -A tests.chaos.beat_app beat`): the
product's app and schedule, with the reconciler every few seconds instead of every 30."""

from __future__ import annotations

import os

from dispatcher.celery_app import app
from dispatcher.celery_factory import BEAT_SCHEDULE

# The interval is not a setting (BEAT_SCHEDULE fixes 30 s); recovery within a test's deadline
# needs the same job, sooner.
RECONCILE_EVERY_S = float(os.environ.get("CALLFLEET_CHAOS_RECONCILE_EVERY_S", "2"))

app.conf.beat_schedule = {
    **BEAT_SCHEDULE,
    "reconcile": {**BEAT_SCHEDULE["reconcile"], "schedule": RECONCILE_EVERY_S},
}

__all__ = ["app"]
