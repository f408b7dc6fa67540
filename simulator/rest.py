"""The HTTP surface: Twilio's Calls API (2010-04-01, Basic auth, Twilio error bodies) and the
unauthenticated `/_sim/*` admin endpoints.

    POST /2010-04-01/Accounts/{AccountSid}/Calls.json         create (201, status `queued`)
    GET  /2010-04-01/Accounts/{AccountSid}/Calls.json         list: To, From, Status,
                                                              StartTime[<>], PageSize, Page
    GET  /2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json   fetch
    POST /2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json   update: Status=completed|canceled,
                                                              Twiml (redirect)
    GET  /_sim/calls/{Sid}      what the caller heard and said, callbacks sent, errors
    GET  /_sim/calls            every call: sid, status, persona
    GET|POST|DELETE /_sim/faults  read / merge / reset the failure knobs (`simulator.faults`)
    GET  /_sim/health           {"status": "ok", "calls": n, "active_calls": n}
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
from collections.abc import Awaitable, Callable
from typing import Protocol

from aiohttp import web

from simulator.callbacks import API_VERSION
from simulator.calls import Call, CallRegistry, CallRequest, CallStatus
from simulator.errors import TwilioApiError
from simulator.faults import Faults
from simulator.resources import Form, call_json, filter_calls, page_json, parse_create, parse_update
from simulator.settings import SimulatorSettings

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Switchboard(Protocol):
    """What the HTTP layer needs from the server."""

    settings: SimulatorSettings
    faults: Faults
    calls: CallRegistry

    def place(self, request: CallRequest) -> Call: ...


BOARD = web.AppKey("switchboard", Switchboard)


def build_app(board: Switchboard) -> web.Application:
    app = web.Application(middlewares=[_twilio_errors])
    app[BOARD] = board
    calls = f"/{API_VERSION}/Accounts/{{account_sid}}/Calls"
    app.router.add_post(f"{calls}.json", create_call)
    app.router.add_get(f"{calls}.json", list_calls)
    app.router.add_get(f"{calls}/{{sid}}.json", fetch_call)
    app.router.add_post(f"{calls}/{{sid}}.json", update_call)
    app.router.add_get("/_sim/health", health)
    app.router.add_get("/_sim/calls", call_summaries)
    app.router.add_get("/_sim/calls/{sid}", call_report)
    app.router.add_get("/_sim/faults", get_faults)
    app.router.add_post("/_sim/faults", set_faults)
    app.router.add_delete("/_sim/faults", reset_faults)
    return app


def _error(exc: TwilioApiError) -> web.Response:
    headers = {"WWW-Authenticate": 'Basic realm="Twilio API"'} if exc.status == 401 else None
    return web.json_response(exc.body(), status=exc.status, headers=headers)


@web.middleware
async def _twilio_errors(request: web.Request, handler: _Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except TwilioApiError as exc:
        return _error(exc)
    except web.HTTPNotFound:
        message = f"The requested resource {request.path} was not found"
        return _error(TwilioApiError(404, 20404, message))
    except web.HTTPMethodNotAllowed:
        return _error(TwilioApiError(405, 20004, "Method not allowed"))


def _basic_credentials(header: str) -> tuple[str, str]:
    """(login, password) from an `Authorization: Basic ...` header; empty when absent."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return "", ""
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("latin-1")
    except (binascii.Error, ValueError):
        return "", ""
    login, _, password = decoded.partition(":")
    return login, password


def _authorize(request: web.Request) -> Switchboard:
    board = request.app[BOARD]
    login, password = _basic_credentials(request.headers.get("Authorization", ""))
    if not (
        hmac.compare_digest(login.encode(), board.settings.account_sid.encode())
        and hmac.compare_digest(password.encode(), board.settings.token.encode())
    ):
        raise TwilioApiError(401, 20003, "Authenticate")
    if request.match_info["account_sid"] != board.settings.account_sid:
        raise TwilioApiError(404, 20404, f"The requested resource {request.path} was not found")
    return board


async def _form(request: web.Request) -> Form:
    fields = await request.post()
    return Form([(key, value) for key, value in fields.items() if isinstance(value, str)])


def _query(request: web.Request) -> dict[str, str]:
    return {key: request.query[key] for key in request.query}


def _call(board: Switchboard, request: web.Request) -> Call:
    call = board.calls.get(request.match_info["sid"])
    if call is None:
        raise TwilioApiError(404, 20404, f"The requested resource {request.path} was not found")
    return call


async def create_call(request: web.Request) -> web.Response:
    board = _authorize(request)
    form = await _form(request)
    if board.faults.create_latency_ms:
        await asyncio.sleep(board.faults.create_latency_ms / 1000)
    if board.faults.fail_next_creates:
        raise board.faults.fail_next_creates.popleft()
    call = board.place(parse_create(form))
    return web.json_response(call_json(call), status=201)


async def fetch_call(request: web.Request) -> web.Response:
    board = _authorize(request)
    return web.json_response(call_json(_call(board, request)))


async def list_calls(request: web.Request) -> web.Response:
    board = _authorize(request)
    query = _query(request)
    matching = filter_calls(list(board.calls), query)
    return web.json_response(page_json(board.settings.account_sid, matching, query))


async def update_call(request: web.Request) -> web.Response:
    """`Status=completed` hangs up (a call not yet answered ends `canceled`), `canceled` only
    affects calls not yet answered, `Twiml` replaces the running document."""
    board = _authorize(request)
    call = _call(board, request)
    form = await _form(request)
    if board.faults.fail_next_updates:
        raise board.faults.fail_next_updates.popleft()
    status, verbs = parse_update(form)
    if status is not None:
        answered = call.status is CallStatus.IN_PROGRESS
        if not call.status.is_final and (status == "completed" or not answered):
            call.request_hangup()
            try:
                async with asyncio.timeout(board.settings.hangup_wait_s):
                    await call.finished.wait()
            except TimeoutError:
                pass
    elif verbs is not None:
        if call.status is not CallStatus.IN_PROGRESS:
            raise TwilioApiError(400, 21220, "Call is not in-progress. Cannot redirect.")
        call.request_redirect(verbs)
    return web.json_response(call_json(call))


async def health(request: web.Request) -> web.Response:
    board = request.app[BOARD]
    return web.json_response(
        {"status": "ok", "calls": len(board.calls), "active_calls": board.calls.active}
    )


async def call_summaries(request: web.Request) -> web.Response:
    board = request.app[BOARD]
    return web.json_response(
        [
            {"sid": c.sid, "status": c.api_status.value, "persona": c.persona.name}
            for c in board.calls
        ]
    )


async def call_report(request: web.Request) -> web.Response:
    call = _call(request.app[BOARD], request)
    return web.json_response(
        {"call": call_json(call), "final": call.status.is_final, **call.report.as_json()}
    )


async def get_faults(request: web.Request) -> web.Response:
    return web.json_response(request.app[BOARD].faults.as_json())


async def set_faults(request: web.Request) -> web.Response:
    faults = request.app[BOARD].faults
    try:
        body = await request.json()
        if not isinstance(body, dict):
            raise ValueError("the body must be a JSON object")
        faults.apply(body)
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        return web.json_response({"error": str(exc)}, status=400)
    return web.json_response(faults.as_json())


async def reset_faults(request: web.Request) -> web.Response:
    faults = request.app[BOARD].faults
    faults.reset()
    return web.json_response(faults.as_json())
