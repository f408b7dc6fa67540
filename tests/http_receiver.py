"""A local HTTP endpoint for tests that stands in for third-party receivers (a merchant's
webhook endpoint, a Slack-compatible alert hook): records each POST, answers as scripted."""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Receiver:
    """Answers from `script` (status, headers) in order, then `default_status`."""

    path: str = "/"
    port: int = 0
    default_status: int = 200
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    script: deque[tuple[int, dict[str, str]]] = field(default_factory=deque)
    stall: threading.Event | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    @property
    def posts(self) -> list[Any]:
        return [json.loads(body) for _, body in self.received]


def _handler_for(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            if receiver.stall is not None:
                receiver.stall.wait(timeout=30)
            status, headers = (
                receiver.script.popleft() if receiver.script else (receiver.default_status, {})
            )
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def running_receiver(path: str = "/") -> Iterator[Receiver]:
    state = Receiver(path=path)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(state))
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        if state.stall is not None:
            state.stall.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
