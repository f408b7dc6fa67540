"""`CallControl`: one live call over Twilio's REST API (machine detection, hang-up, transfer)."""

from __future__ import annotations

from typing import Any

import httpx
import structlog
from twilio.twiml.voice_response import Dial, VoiceResponse

log = structlog.get_logger(__name__)

TWILIO_API_ROOT = "https://api.twilio.com"


class CallControlError(Exception):
    """A REST request about the live call failed; `status_code` None: no HTTP answer."""

    def __init__(self, operation: str, status_code: int | None = None) -> None:
        detail = f": HTTP {status_code}" if status_code else ""
        super().__init__(f"twilio {operation} failed{detail}")
        self.operation = operation
        self.status_code = status_code


def dial_twiml(number: str) -> str:
    """`<Response><Dial>number</Dial></Response>`: hand the call to `number` (E.164)."""
    dial = Dial()
    dial.number(number)
    response = VoiceResponse()
    response.append(dial)
    twiml: str = response.to_xml()
    return twiml


def is_machine(answered_by: str | None) -> bool:
    """Twilio AMD's `AnsweredBy` for an answering machine or fax (`machine_start`,
    `machine_end_beep`, `fax`, ...); `human`, `unknown` and None are not."""
    return bool(answered_by) and str(answered_by).startswith(("machine", "fax"))


class CallControl:
    """One call's Call resource: `{api_root}/2010-04-01/Accounts/{account}/Calls/{sid}.json`.

    `api_base_url` None means Twilio itself; tests and the simulator pass theirs.
    """

    def __init__(
        self,
        *,
        account_sid: str,
        call_sid: str,
        auth_token: str,
        api_base_url: str | None = None,
        timeout_s: float = 5.0,
    ) -> None:
        root = (api_base_url or TWILIO_API_ROOT).rstrip("/")
        self._url = f"{root}/2010-04-01/Accounts/{account_sid}/Calls/{call_sid}.json"
        self._auth = httpx.BasicAuth(account_sid, auth_token)
        self._timeout_s = timeout_s

    async def answered_by(self) -> str | None:
        """The answering-machine result (`AnsweredBy`); None without machine detection."""
        body = await self._request("fetch_call", "GET")
        value = body.get("answered_by")
        return None if value is None else str(value)

    async def hang_up(self) -> None:
        """End the call (`Status=completed`)."""
        await self._request("hang_up", "POST", data={"Status": "completed"})

    async def transfer(self, number: str) -> None:
        """Replace the call's TwiML with a `<Dial>` to `number`: the carrier stops our media
        stream and connects the caller to the number."""
        await self._request("transfer", "POST", data={"Twiml": dial_twiml(number)})

    async def _request(
        self, operation: str, method: str, data: dict[str, str] | None = None
    ) -> dict[str, Any]:
        try:
            async with httpx.AsyncClient(auth=self._auth, timeout=self._timeout_s) as client:
                response = await client.request(method, self._url, data=data)
        except httpx.HTTPError as exc:
            log.warning("call_control_unreachable", operation=operation, error=type(exc).__name__)
            raise CallControlError(operation) from None
        if response.status_code >= 400:
            log.warning("call_control_refused", operation=operation, status=response.status_code)
            raise CallControlError(operation, response.status_code)
        try:
            body = response.json()
        except ValueError:
            raise CallControlError(operation, response.status_code) from None
        return body if isinstance(body, dict) else {}
