"""The HTTP API process (`uvicorn dispatcher.api:app`): merchant intake, health, later webhooks."""

from __future__ import annotations

from dispatcher.api.app import create_app

app = create_app()

__all__ = ["app", "create_app"]
