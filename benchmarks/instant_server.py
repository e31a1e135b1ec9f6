"""An OpenAI-compatible chat-completions server on 127.0.0.1 that answers at once, for throughput benchmarks.

    .venv/bin/python benchmarks/instant_server.py PORT [NAMED_PERCENT]

Run in its own process (so that it does not share the client's interpreter lock). Every answer is drawn
from a fixed pool by a hash of the request's last message, so the same request always gets the same answer:
short one-line summaries like a model's, NAMED_PERCENT of them (default 10) naming a person (so that the PII
check has real work). The privacy auditor's prompt gets a rating of 4 with a reason.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time

from aiohttp import web

VERBS = ["understand", "write", "fix", "plan", "compare", "translate", "summarise", "debug", "draft", "choose"]
THINGS = ["a cover letter for a teaching job", "a Python script that reads CSV files", "a budget for a trip",
          "the difference between index funds and ETFs", "a birthday poem for a friend", "a SQL query with joins",
          "a workout plan for beginners", "a recipe without gluten", "an email to a landlord about heating",
          "the causes of the French revolution", "a React component that shows a table", "a lesson plan on fractions",
          "a product description for a lamp", "a study schedule for an exam", "a bug in a Rust borrow"]
NAMES = ["Maria Lopez", "Jonas Berg", "Aisha Khan", "Tom Hughes", "Elena Petrova"]
NAMED_PERCENT = int(sys.argv[2]) if len(sys.argv) > 2 else 10


def answer_for(body: dict) -> str:
    last = (body.get("messages") or [{}])[-1].get("content") or body.get("prompt") or ""
    h = int.from_bytes(hashlib.blake2b(str(last).encode(), digest_size=8).digest(), "big")
    text = f"{VERBS[h % len(VERBS)]} {THINGS[(h // 10) % len(THINGS)]}"
    if (h // 1000) % 100 < NAMED_PERCENT:
        text += f" for {NAMES[(h // 10000) % len(NAMES)]}"
    return text + "."


AUDIT = "4\nReason: A common task that names no one and no small group."


async def completions(request: web.Request) -> web.Response:
    body = await request.json()
    said = " ".join(str(m.get("content") or "") for m in body.get("messages") or [])
    # the privacy auditor's question gets a rating (every privacy layer runs in an end-to-end benchmark)
    content = AUDIT if "privacy reviewer" in said else answer_for(body)
    return web.json_response({
        "id": "chatcmpl-instant", "object": "chat.completion", "created": int(time.time()), "model": "instant",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": len(json.dumps(body)) // 4, "completion_tokens": len(content) // 4,
                  "total_tokens": len(json.dumps(body)) // 4 + len(content) // 4}})


def main() -> None:
    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_post("/v1/chat/completions", completions)
    app.router.add_post("/chat/completions", completions)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)


if __name__ == "__main__":
    main()
