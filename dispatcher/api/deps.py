"""What every request handler needs, built once when the app is created."""

from __future__ import annotations

from dataclasses import dataclass

import redis
from sqlalchemy.orm import Session, sessionmaker

from dispatcher.intake.announce import TaskSender
from dispatcher.intake.validate import IntakeLimits
from shared.settings import Settings


@dataclass(frozen=True)
class ApiDeps:
    settings: Settings
    sessions: sessionmaker[Session]
    redis: redis.Redis
    limits: IntakeLimits
    tasks: TaskSender | None
