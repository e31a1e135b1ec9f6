"""What can go wrong with a model call, as types: a server's unusable answer, an answer of the wrong form
(with a kind that code can test, never its message), and a failed call in words for a person."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any, ClassVar


class BadResponse(RuntimeError):
    """The server answered, but not with a usable completion (no choices, content that is no text); re-asked
    like a server error."""


class ParseError(ValueError):
    """An answer that does not have the required form; the task may be re-asked.

    ``kind``: what was wrong, as a short code that is recorded (and cached) with each failed attempt, so that
    counts and re-ask prompts test the kind, not the message. Subclasses below set their own; a plain
    ``ParseError`` is ``"invalid"``, or the ``kind`` given.

    ``fallback``: a value to keep if this is still the error after the last re-ask (e.g. the answer with its
    personal details redacted); the outcome is then a success with ``note`` set to the error.
    """

    kind: ClassVar[str] = "invalid"

    def __init__(self, message: str, fallback: Any = None, *, kind: str | None = None) -> None:
        super().__init__(message)
        self.fallback = fallback
        if kind is not None:
            self.kind = kind  # type: ignore[misc]


class PersonalDetailsInAnswer(ParseError):
    """The answer holds personal details (its ``fallback`` is the answer redacted)."""

    kind = "personal_details"


class MissingNameLine(ParseError):
    """A naming answer with a description but no ``Name:`` line (re-asked for the name alone)."""

    kind = "no_name_line"


def transient_errors() -> tuple[type[BaseException], ...]:
    import litellm

    names = ("RateLimitError", "Timeout", "APIConnectionError", "InternalServerError",
             "ServiceUnavailableError", "BadGatewayError")
    return tuple(getattr(litellm, n) for n in names if hasattr(litellm, n)) + (asyncio.TimeoutError, BadResponse)


def retry_after(exc: BaseException) -> float | None:
    """Seconds a server asked to wait (``Retry-After``: seconds or an HTTP date), or ``None``."""
    from email.utils import parsedate_to_datetime

    for headers in (getattr(exc, "litellm_response_headers", None),
                    getattr(getattr(exc, "response", None), "headers", None)):
        value = headers.get("retry-after") if headers is not None else None
        if value is None:
            continue
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
            except (TypeError, ValueError):
                return None
    return None


def reason_for(exc: BaseException, timeout: float | None = None) -> str:
    """A failed call in words for a person: what happened and, where known, the HTTP status."""
    import litellm

    status = getattr(exc, "status_code", None)
    http = f" (HTTP {status})" if isinstance(status, int) else ""
    message = str(exc)
    for prefix in ("litellm.", "OpenAIException - ", "OpenAIException -"):  # LiteLLM's nested class prefixes
        while prefix in message:
            message = message.split(prefix, 1)[1] if prefix != "litellm." else message.replace(prefix, "", 1)
    message = message.split(": ", 1)[1] if re.match(r"^\w+Error: ", message) else message
    message = message.split("Traceback (most recent call last)", 1)[0].strip().splitlines()[0][:240] \
        if message.strip() else ""
    if isinstance(exc, asyncio.TimeoutError | litellm.Timeout):
        return f"no answer within the {timeout:g} s time-out" if timeout else "the call timed out"
    if isinstance(exc, litellm.RateLimitError):
        return f"rate limited by the server{http}: {message}"
    if isinstance(exc, litellm.APIConnectionError):
        return f"could not reach the server: {message}"
    if isinstance(exc, litellm.AuthenticationError):
        return f"the server refused the API key{http}: {message}"
    if isinstance(exc, litellm.BadRequestError):
        return f"the server refused the request{http}: {message}"
    if isinstance(exc, BadResponse):
        return str(exc)
    # LiteLLM reports a body it cannot read as its own "500", although the server said 200
    if message.startswith("Invalid response object") or "LiteLLM: provider returned" in message:
        detail = message.split("provider returned ", 1)[1].split(". Raw keys", 1)[0] \
            if "provider returned " in message else ""
        return "the server's answer is not a valid chat completion" + (f" ({detail})" if detail else "")
    if re.match(r"^(Expecting |Extra data|Unterminated string|Invalid control character)", message):
        return f"the server's answer is not JSON ({message})"
    if status is not None:
        return f"server error{http}: {message}"
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
