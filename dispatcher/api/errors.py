"""Turns every failure into a 4xx/5xx with one machine-readable body shape:
`{"error": {"code", "message", "problems": [{"row", "field", "code", "message"}]}}`."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from dispatcher.intake.errors import IntakeError, ValidationFailed, problem_from_pydantic


class Unauthorized(IntakeError):
    status_code = 401
    code = "unauthorized"


class MalformedJson(IntakeError):
    status_code = 400
    code = "malformed_json"


async def _on_intake_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, IntakeError)
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else None
    return JSONResponse(exc.as_body(), status_code=exc.status_code, headers=headers)


async def _on_request_invalid(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        malformed = MalformedJson("request body is not valid JSON")
        return JSONResponse(malformed.as_body(), status_code=malformed.status_code)
    failed = ValidationFailed(
        "request does not match the schema; nothing was written",
        [problem_from_pydantic(dict(e)) for e in errors],
    )
    return JSONResponse(failed.as_body(), status_code=failed.status_code)


async def _on_http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(
        exc.status_code, "http_error"
    )
    body = {"error": {"code": code, "message": str(exc.detail)}}
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(IntakeError, _on_intake_error)
    app.add_exception_handler(RequestValidationError, _on_request_invalid)
    app.add_exception_handler(HTTPException, _on_http_error)
