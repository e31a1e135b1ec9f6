"""Typed records that flow between the pipeline's steps.

Conversations come in through :func:`clio_lab.load_conversations`; every later step takes and returns
plain typed data so that each one can be run alone in a notebook cell.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator
from pydantic.dataclasses import dataclass

Role = Literal["system", "user", "assistant", "tool"]

# Role names seen in the wild, mapped onto the four roles clio_lab knows.
ROLE_ALIASES: dict[str, Role] = {
    "system": "system",
    "user": "user",
    "human": "user",
    "prompter": "user",
    "assistant": "assistant",
    "gpt": "assistant",
    "bing": "assistant",
    "chatgpt": "assistant",
    "bard": "assistant",
    "model": "assistant",
    "bot": "assistant",
    "ai": "assistant",
    "claude": "assistant",
    "tool": "tool",
    "function": "tool",
}


def has_text(text: str | None) -> bool:
    """Whether ``text`` holds anything a reader would see: a string of spaces, zero-width spaces, joiners,
    direction marks or control characters (Unicode categories Z* and C*) holds nothing."""
    return bool(text) and any(unicodedata.category(ch)[0] not in "ZC" for ch in text)  # type: ignore[union-attr]


def normalise_role(role: Any) -> Role:
    """Map a role name from any supported export onto clio_lab's four roles.

    Raises:
        ValueError: for a role this library does not know (the message names it).
    """
    key = str(role).strip().lower()
    if key not in ROLE_ALIASES:
        raise ValueError(f"unknown role {role!r} (known: {', '.join(sorted(ROLE_ALIASES))})")
    return ROLE_ALIASES[key]


@dataclass(frozen=True, slots=True)
class Message:
    """One turn of a conversation: a validated, frozen dataclass with slots rather than a pydantic model (56
    bytes against 488 each besides the text: a million conversations hold about three million of them).
    ``dataclasses.replace(message, content=...)`` makes a changed copy."""

    role: Role
    content: str

    @field_validator("role", mode="before")
    @classmethod
    def _known_role(cls, value: Any) -> Role:
        return normalise_role(value)


class Conversation(BaseModel):
    """A conversation between a user and an AI assistant.

    Example:
        >>> c = Conversation(id="a", messages=[Message(role="user", content="hi")])
        >>> c.turns
        1
    """

    id: str
    messages: list[Message]
    user_id: str | None = None
    created_at: datetime | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> str:
        if value is None or str(value).strip() == "":
            raise ValueError("conversation id is empty")
        return str(value)

    @field_validator("messages")
    @classmethod
    def _not_empty(cls, value: list[Message]) -> list[Message]:
        if not value:
            raise ValueError("conversation has no messages")
        if not any(has_text(m.content) for m in value):
            raise ValueError("conversation has only empty messages (no visible text)")
        return value

    @property
    def turns(self) -> int:
        """Number of user turns."""
        return sum(1 for m in self.messages if m.role == "user")

    @property
    def characters(self) -> int:
        return sum(len(m.content) for m in self.messages)

    def content_hash(self) -> str:
        """Hash of everything a model could see: messages only, not ids or metadata."""
        payload = json.dumps([[m.role, m.content] for m in self.messages], ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def as_text(self, max_chars: int | None = None) -> tuple[str, bool]:
        """Render as a plain transcript, cut Clio-style at ``max_chars``.

        Returns the text and whether it was truncated. A truncated transcript keeps its beginning (where the
        user states the request) and ends with an explicit marker so a model knows text is missing.
        """
        lines = [f"{m.role.capitalize()}: {m.content.strip()}" for m in self.messages if m.content.strip()]
        text = "\n\n".join(lines)
        if max_chars is None or len(text) <= max_chars:
            return text, False
        marker = "\n\n[... conversation truncated ...]"
        return text[: max(0, max_chars - len(marker))].rstrip() + marker, True


class SkippedRecord(BaseModel):
    """A record that could not be loaded and was set aside (``on_error="skip"``)."""

    source: str
    location: str
    field: str | None = None
    reason: str


class LoadReport(BaseModel):
    """What happened while loading: how many records came in, what was set aside and why."""

    source: str
    format: str
    loaded: int = 0
    skipped: list[SkippedRecord] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    truncated_at: int | None = None  # whole records read before a cut-off file ended
    cut_messages: int = 0  # messages cut at the loader's max_message_chars
    longest_message: int = 0  # characters of the longest message that was cut

    def summary(self) -> dict[str, Any]:
        reasons: dict[str, int] = {}
        for s in self.skipped:
            reasons[s.reason.split(":")[0]] = reasons.get(s.reason.split(":")[0], 0) + 1
        return {
            "source": self.source,
            "format": self.format,
            "loaded": self.loaded,
            "skipped": len(self.skipped),
            "skipped_by_reason": reasons,
            "notes": self.notes,
            "truncated_at": self.truncated_at,
            "cut_messages": self.cut_messages,
        }


class Conversations(list):
    """A list of :class:`Conversation` that also carries its :class:`LoadReport`."""

    def __init__(self, items=(), report: LoadReport | None = None):
        super().__init__(items)
        self.report = report
