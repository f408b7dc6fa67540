"""Bearer-key authentication: every /v1 request resolves to exactly one merchant."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from dispatcher.api.deps import ApiDeps
from dispatcher.api.errors import Unauthorized
from dispatcher.merchants import merchant_for_key

_bearer = HTTPBearer(auto_error=False)


def get_deps(request: Request) -> ApiDeps:
    deps: ApiDeps = request.app.state.deps
    return deps


def current_merchant(
    deps: Annotated[ApiDeps, Depends(get_deps)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> uuid.UUID:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("send 'Authorization: Bearer <api key>'")
    with deps.sessions() as session:
        merchant_id = merchant_for_key(session, credentials.credentials)
    if merchant_id is None:
        raise Unauthorized("unknown or revoked API key")
    return merchant_id
