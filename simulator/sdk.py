"""Pointing the real `twilio` SDK (9.x) at the simulator: the recipe, and a helper for tests.

The SDK builds every Calls URL from `client.api.base_url` (the `Api` domain, default
`https://api.twilio.com`), and it follows list pages through the same domain, so one
assignment (after clearing edge and region) is enough::

    from twilio.rest import Client

    client = Client(account_sid, auth_token)
    client.edge = client.region = None              # see the first note
    client.api.base_url = "http://127.0.0.1:8765"   # the simulator; no trailing path

    call = client.calls.create(to=..., from_=..., twiml=..., status_callback=...,
                               status_callback_event=["initiated", "ringing", "answered",
                                                      "completed"],
                               status_callback_method="POST", timeout=25,
                               machine_detection="Enable")
    client.calls(call.sid).fetch()
    client.calls(call.sid).update(status="completed")      # hang up
    client.calls.list(to=..., start_time_after=datetime(...), limit=20)

Notes for the provider:

- Keep `edge`/`region` unset: with either set (also picked up from `TWILIO_EDGE` /
  `TWILIO_REGION`; `environment={}` does not prevent that, an empty mapping falls back to
  `os.environ`), the SDK rewrites the host into `api.{edge}.{region}.twilio.com` form, which
  mangles `127.0.0.1:PORT`. Clearing both attributes after construction is enough.
- The async flavour is the same (`http_client=AsyncTwilioHttpClient()`, then `create_async`
  and friends), but with aiohttp 3.14 that client builds an `aiohttp.BasicAuth`, which now
  warns `DeprecationWarning`, an error under this repo's pytest settings.
- pipecat's `TwilioFrameSerializer` hangs up through its own HTTP call; give it
  `base_url="http://127.0.0.1:8765"` (same value) so that `auto_hang_up` reaches the simulator.
- Errors come back as `twilio.base.exceptions.TwilioRestException` with Twilio's `status` and
  `code` (e.g. 400/21211 for a bad `To`, 401/20003 for bad credentials, 429/20429).
"""

from __future__ import annotations

from typing import Any

from twilio.rest import Client


def sdk_client(base_url: str, account_sid: str, auth_token: str, http_client: Any = None) -> Any:
    """A twilio `Client` whose API requests go to `base_url` (tests and benchmarks)."""
    client = Client(account_sid, auth_token, http_client=http_client)
    client.edge = client.region = None
    client.api.base_url = base_url
    return client
