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

    def __init__(self, plan: Callable[[dict, int], Reply], batch_status: str = "completed", batch_polls: int = 1,
                 keep_alive: bool = False):
        self.plan = plan
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        # the batch API (/v1/files, /v1/batches): a batch's lines are answered by ``plan`` when it is created;
        # it reads "in_progress" for its first ``batch_polls`` looks, then ``batch_status``
        self.batch_status, self.batch_polls = batch_status, batch_polls
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict] = {}
        self.batch_lines: list[int] = []  # lines per batch created, in order
        outer = self

        class Handler(BaseHTTPRequestHandler):
            # HTTP/1.1 keeps each connection open for the next request, as real servers do (http.server's
            # default, 1.0, closes it after every answer)
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _json(self, obj: Any, status: int = 200) -> None:
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                path = self.path.split("?")[0].rstrip("/")
                if path.startswith("/v1/batches/"):
                    batch = outer.batches[path.rsplit("/", 1)[1]]
                    batch["_looks"] += 1
                    if batch["_looks"] > outer.batch_polls and batch["status"] == "in_progress":
                        batch["status"] = outer.batch_status
                        batch["output_file_id"] = batch["_output"] if outer.batch_status != "failed" else None
                    return self._json({k: v for k, v in batch.items() if not k.startswith("_")})
                if path.startswith("/v1/files/") and path.endswith("/content"):
                    data = outer.files[path.split("/")[3]]
                    self.send_response(200)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                self._json({"error": {"message": f"no route {path}"}}, 404)

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                path = self.path.split("?")[0].rstrip("/")
                if path.endswith("/files"):
                    return self._json(outer._upload(self.headers.get("Content-Type", ""), raw))
                if path.endswith("/batches"):
                    return self._json(outer._create_batch(json.loads(raw)))
                if path.endswith("/cancel"):
                    batch = outer.batches[path.split("/")[-2]]
                    batch["status"] = "cancelled"
                    return self._json({k: v for k, v in batch.items() if not k.startswith("_")})
                body = json.loads(raw or b"{}")
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

    def _upload(self, content_type: str, raw: bytes) -> dict:
        from email.parser import BytesParser
        from email.policy import HTTP

        msg = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
        data = next(part.get_payload(decode=True) for part in msg.iter_parts()
                    if part.get_param("name", header="content-disposition") == "file")
        with self._lock:
            fid = f"file-{len(self.files) + 1}"
            self.files[fid] = data
        return {"id": fid, "object": "file", "bytes": len(data), "created_at": int(time.time()),
                "filename": "input.jsonl", "purpose": "batch", "status": "processed"}

    def _create_batch(self, req: dict) -> dict:
        lines = [json.loads(x) for x in self.files[req["input_file_id"]].decode().splitlines() if x.strip()]
        out = []
        for line in lines:
            with self._lock:
                self.requests.append(line["body"])
                n = len(self.requests)
            reply = self.plan(line["body"], n)
            body = (json.loads(completion_body(reply.content, reply.choices)) if reply.status == 200 else
                    {"error": {"message": f"fake error {reply.status}", "type": "fake"}})
            out.append(json.dumps({"id": f"req-{n}", "custom_id": line["custom_id"], "error": None,
                                   "response": {"status_code": reply.status, "request_id": f"r{n}", "body": body}}))
        with self._lock:
            bid = f"batch_{len(self.batches) + 1}"
            oid = f"file-out-{bid}"
            self.files[oid] = ("\n".join(out) + "\n").encode()
            self.batch_lines.append(len(lines))
            self.batches[bid] = {
                "id": bid, "object": "batch", "endpoint": req["endpoint"], "input_file_id": req["input_file_id"],
                "completion_window": req["completion_window"], "status": "in_progress", "output_file_id": None,
                "error_file_id": None, "created_at": int(time.time()), "metadata": req.get("metadata"),
                "request_counts": {"total": len(lines), "completed": len(lines), "failed": 0},
                "_looks": 0, "_output": oid}
            return {k: v for k, v in self.batches[bid].items() if not k.startswith("_")}

    def __enter__(self) -> FakeOpenAI:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
