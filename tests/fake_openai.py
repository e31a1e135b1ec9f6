"""A fake OpenAI-compatible server on 127.0.0.1 for fault injection: each request is answered by a plan
(a function of the request body and its number) and counted, so a test can check clio_lab's counts against
the requests the server really saw."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    content: Any = "ok"                # the message content (any JSON value); ignored when body is given
    body: bytes | None = None          # raw response body (malformed JSON, markup, ...)
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0                 # seconds before answering
    choices: list | None = None        # replaces the choices list (e.g. [] for empty choices)


def completion_body(content: Any, choices: list | None = None) -> bytes:
    return json.dumps({
        "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()), "model": "fake",
        "choices": choices if choices is not None else [
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}).encode()


class FakeOpenAI:
    """``with FakeOpenAI(plan) as server:`` ... ``server.url`` (an api_base), ``server.requests`` (bodies seen)."""

    def __init__(self, plan: Callable[[dict, int], Reply]):
        self.plan = plan
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with outer._lock:
                    outer.requests.append(body)
                    n = len(outer.requests)
                reply = outer.plan(body, n)
                if reply.delay:
                    time.sleep(reply.delay)
                data = reply.body if reply.body is not None else (
                    completion_body(reply.content, reply.choices) if reply.status == 200
                    else json.dumps({"error": {"message": f"fake error {reply.status}", "type": "fake"}}).encode())
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a time-out)
                    pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAI:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
