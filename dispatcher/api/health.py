"""`/healthz`: is this API process able to reach PostgreSQL and Redis."""

from __future__ import annotations

from typing import Annotated

import redis
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from dispatcher.api.auth import get_deps
from dispatcher.api.deps import ApiDeps

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(deps: Annotated[ApiDeps, Depends(get_deps)]) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        with deps.sessions() as session:
            session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except SQLAlchemyError:
        checks["database"] = "unreachable"
    try:
        deps.redis.ping()
        checks["redis"] = "ok"
    except redis.RedisError:
        checks["redis"] = "unreachable"
    healthy = all(v == "ok" for v in checks.values())
    body = {"status": "ok" if healthy else "degraded", **checks}
    return JSONResponse(body, status_code=200 if healthy else 503)
