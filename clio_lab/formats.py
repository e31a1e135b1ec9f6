"""Record shapes: each raw record (a dict read from a file, a row, a dataset item) turned into a
:class:`~clio_lab.records.Conversation` by a small parser, one per format (OpenAI messages, ShareGPT, Claude.ai
and ChatGPT exports). A parser raises :class:`FieldError` naming the field; :mod:`clio_lab.loaders` adds the
file and the line or index, and reads the files.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import ValidationError

from .records import Conversation, Message, has_text, normalise_role

Format = Literal["auto", "jsonl", "json", "openai", "sharegpt", "claude", "chatgpt", "parquet", "dataframe", "hf"]
NON_TEXT_PLACEHOLDER = "[non-text content: {kind}]"
ATTACHMENT_MARKER = "[attachment: {name}]"
CUT_MARKER = "\n[... message cut at {limit:,} characters by clio_lab ...]"
MAX_MESSAGE_CHARS = 100_000
FORMATS_HELP = ("clio_lab reads .jsonl or .ndjson (one conversation per line), .json (an array of conversations, or "
                "a Claude.ai or ChatGPT export's conversations.json), .parquet, and .jsonl.gz / .json.gz; a CSV or "
                "other table can be read with pandas and passed as a DataFrame: "
                "load_conversations(pd.read_csv(path), columns={...})")


class FieldError(ValueError):
    """Raised inside a parser; the loader adds source and location."""

    def __init__(self, field: str | None, reason: str):
        self.field, self.reason = field, reason
        super().__init__(reason)


# ----------------------------------------------------------------------------------------------- helpers
def _text_of(content: Any, field: str, counts: dict[str, int]) -> str:
    """Flatten message content (a string or a list of typed parts) to text; non-text parts become markers."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Mapping):
        content = [content]
    if isinstance(content, Iterable):
        pieces = []
        for i, part in enumerate(content):
            if isinstance(part, str):
                pieces.append(part)
            elif isinstance(part, Mapping):
                kind = str(part.get("type") or part.get("content_type") or "unknown")
                if isinstance(part.get("text"), str) and kind in ("text", "input_text", "output_text", "unknown"):
                    pieces.append(part["text"])
                else:
                    counts["non_text_parts"] = counts.get("non_text_parts", 0) + 1
                    pieces.append(NON_TEXT_PLACEHOLDER.format(kind=kind))
            else:
                raise FieldError(f"{field}[{i}]", f"content part of type {type(part).__name__} is not text")
        return "\n".join(p for p in pieces if p)
    raise FieldError(field, f"content of type {type(content).__name__} is not text")


def _ident(value: Any, field: str) -> str | None:
    """An id as text: strings and whole numbers are ids; an object, a list or a flag is not."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise FieldError(field, f"expected text or a number, got {type(value).__name__} {_short(value)}")
    return str(int(value)) if float(value).is_integer() else str(value)


def _obj(value: Any, field: str) -> Mapping[str, Any]:
    """An object field; missing or null is an empty object, anything else that is no object is an error."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise FieldError(field, f"expected an object, got {type(value).__name__} {_short(value)}")
    return value


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _timestamp(value: Any, field: str) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value
    try:
        if isinstance(value, int | float):
            return datetime.fromtimestamp(float(value), tz=UTC)
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError) as exc:
        raise FieldError(field, f"not a timestamp: {value!r}") from exc


def _messages(raw: Any, field: str, role_key: str, content_key: str, counts: dict[str, int]) -> list[Message]:
    if not isinstance(raw, list | tuple) and not hasattr(raw, "tolist"):
        raise FieldError(field, f"expected a list of messages, got {type(raw).__name__}")
    items = raw.tolist() if hasattr(raw, "tolist") else raw
    out = []
    for i, m in enumerate(items):
        if not isinstance(m, Mapping):
            raise FieldError(f"{field}[{i}]", f"expected a message object, got {type(m).__name__}")
        if role_key not in m:
            raise FieldError(f"{field}[{i}].{role_key}", "missing")
        try:
            role = normalise_role(m[role_key])
        except ValueError as exc:
            raise FieldError(f"{field}[{i}].{role_key}", str(exc)) from None
        out.append(Message(role=role, content=_text_of(m.get(content_key), f"{field}[{i}].{content_key}", counts)))
    return out


def _shared(value: Any) -> Any:
    """One copy of a short text that many records repeat (a metadata key, a topic, a model's name): each JSON
    line is decoded on its own, so without this every record holds its own copy (about 400 bytes per
    synthetic conversation)."""
    return sys.intern(value) if isinstance(value, str) and len(value) <= 64 else value


def _build(cid: Any, messages: list[Message], counts: dict[str, int], **kw: Any) -> Conversation:
    metadata = {_shared(k): _shared(v) for k, v in (kw.pop("metadata", None) or {}).items()}
    if counts:
        metadata.update(counts)
    if not messages:
        raise FieldError("messages", "conversation has no messages")
    if not any(has_text(m.content) for m in messages):
        raise FieldError("messages", "conversation has only empty messages (no visible text)")
    if not any(m.role == "user" and has_text(m.content) for m in messages):
        raise FieldError("messages", "no user message has text (Clio describes what users ask)")
    cid = _ident(cid, "id")
    if cid is None or cid.strip() == "":
        raise FieldError("id", "missing or empty")
    if "user_id" in kw:
        kw["user_id"] = _ident(kw["user_id"], "user_id")
    try:
        return Conversation(id=str(cid), messages=messages, metadata=metadata, **kw)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise FieldError(".".join(str(p) for p in err["loc"]) or None, err["msg"]) from None


# ----------------------------------------------------------------------------------------------- parsers
def parse_openai(rec: Mapping[str, Any], columns: Mapping[str, str] | None = None) -> Conversation:
    """``{"id", "messages": [{"role", "content"}], "user_id"?, "created_at"?, "metadata"?}``.

    A record with a ``text`` field instead of ``messages`` becomes a one-message conversation (plain texts,
    e.g. Banking77 utterances). ``columns`` maps clio_lab's field names onto the record's own.
    """
    col = {"id": "id", "messages": "messages", "text": "text", "user_id": "user_id",
           "created_at": "created_at", "metadata": "metadata", **(columns or {})}
    counts: dict[str, int] = {}
    if col["messages"] in rec and rec[col["messages"]] is not None:
        messages = _messages(rec[col["messages"]], col["messages"], "role", "content", counts)
    elif col["text"] in rec:
        text = rec[col["text"]]
        if not isinstance(text, str):
            raise FieldError(col["text"], f"expected text, got {type(text).__name__}")
        messages = [Message(role="user", content=text)]
    else:
        raise FieldError(col["messages"], "missing")
    meta = dict(_obj(rec.get(col["metadata"]), col["metadata"]))
    known = set(col.values())
    for key, value in rec.items():  # other scalar columns travel as metadata (e.g. a label)
        if key not in known and isinstance(value, str | int | float | bool):
            meta.setdefault(key, value)
    return _build(rec.get(col["id"]), messages, counts, user_id=_ident(rec.get(col["user_id"]), col["user_id"]),
                  created_at=_timestamp(rec.get(col["created_at"]), col["created_at"]), metadata=meta)


def parse_sharegpt(rec: Mapping[str, Any]) -> Conversation:
    """ShareGPT: ``{"id", "conversations": [{"from": "human"|"gpt", "value"}]}``."""
    counts: dict[str, int] = {}
    messages = _messages(rec.get("conversations"), "conversations", "from", "value", counts)
    meta = {k: v for k, v in rec.items() if k not in ("id", "conversations") and isinstance(v, str | int | float)}
    return _build(rec.get("id"), messages, counts, metadata=meta)


def parse_claude(rec: Mapping[str, Any]) -> Conversation:
    """Claude.ai export ``conversations.json``: ``{"uuid", "name", "account", "chat_messages": [...]}``."""
    counts: dict[str, int] = {}
    raw = rec.get("chat_messages")
    if not isinstance(raw, list):
        raise FieldError("chat_messages", "missing or not a list")
    messages = []
    for i, m in enumerate(raw):
        field = f"chat_messages[{i}]"
        if not isinstance(m, Mapping):
            raise FieldError(field, f"expected a message object, got {type(m).__name__} {_short(m)}")
        try:
            role = normalise_role(m.get("sender"))
        except ValueError as exc:
            raise FieldError(f"{field}.sender", str(exc)) from None
        # Newer exports carry typed parts in "content"; older ones only "text".
        text = _text_of(m["content"] if m.get("content") else m.get("text"), f"{field}.content", counts)
        for j, att in enumerate(_list(m.get("attachments"), f"{field}.attachments")):
            att = _obj(att, f"{field}.attachments[{j}]")
            counts["attachments"] = counts.get("attachments", 0) + 1
            name = " ".join(str(att.get(k) or "") for k in ("file_name", "file_type")).strip() or "file"
            extracted = att.get("extracted_content")
            # the export carries the attachment's text: keep it, marked, so that the model sees what was sent
            if isinstance(extracted, str) and has_text(extracted):
                text += "\n" + ATTACHMENT_MARKER.format(name=name) + "\n" + extracted
            else:
                text += "\n" + NON_TEXT_PLACEHOLDER.format(kind=f"attachment {att.get('file_type') or ''}".strip())
        for _ in _list(m.get("files"), f"{field}.files"):
            counts["non_text_parts"] = counts.get("non_text_parts", 0) + 1
            text += "\n" + NON_TEXT_PLACEHOLDER.format(kind="file")
        messages.append(Message(role=role, content=text.strip()))
    account = _obj(rec.get("account"), "account")
    return _build(rec.get("uuid"), messages, counts, user_id=account.get("uuid"),
                  created_at=_timestamp(rec.get("created_at"), "created_at"),
                  metadata={"title": _title(rec.get("name"))})


def _list(value: Any, field: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise FieldError(field, f"expected a list, got {type(value).__name__} {_short(value)}")
    return value


def _title(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def parse_chatgpt(rec: Mapping[str, Any]) -> Conversation:
    """ChatGPT export ``conversations.json``: the message tree in ``mapping`` followed from
    ``current_node`` up to the root, so only the branch the user last saw is kept."""
    counts: dict[str, int] = {}
    mapping = rec.get("mapping")
    if not isinstance(mapping, Mapping):
        raise FieldError("mapping", "missing or not an object")
    node_id = rec.get("current_node")
    if not isinstance(node_id, str | int) or node_id not in mapping:
        raise FieldError("current_node", f"{node_id!r} is not a node of mapping")
    branch, seen = [], set()
    child = None
    while node_id is not None:
        if not isinstance(node_id, str | int) or isinstance(node_id, bool) or node_id not in mapping:
            where = f"mapping.{child}.parent" if child is not None else "current_node"
            raise FieldError(where, f"{_short(node_id)} is not a node of mapping")
        if node_id in seen:
            raise FieldError(f"mapping.{node_id}.parent", "cycle in the message tree")
        seen.add(node_id)
        node = _obj(mapping[node_id], f"mapping.{node_id}")
        branch.append(node)
        child, node_id = node_id, node.get("parent")
    messages = []
    for node in reversed(branch):
        field = f"mapping.{node.get('id')}.message"
        msg = _obj(node.get("message"), field)
        if not msg:
            continue
        if _obj(msg.get("metadata"), f"{field}.metadata").get("is_visually_hidden_from_conversation"):
            continue
        try:
            role = normalise_role(_obj(msg.get("author"), f"{field}.author").get("role"))
        except ValueError as exc:
            raise FieldError(f"{field}.author.role", str(exc)) from None
        content = _obj(msg.get("content"), f"{field}.content")
        kind = content.get("content_type", "text")
        if "parts" in content:
            text = _text_of(content.get("parts"), f"{field}.content.parts", counts)
        elif isinstance(content.get("text"), str):
            text = content["text"]
        else:
            counts["non_text_parts"] = counts.get("non_text_parts", 0) + 1
            text = NON_TEXT_PLACEHOLDER.format(kind=kind)
        if role == "system" and not text.strip():
            continue
        messages.append(Message(role=role, content=text))
    return _build(rec.get("conversation_id") or rec.get("id"), messages, counts,
                  created_at=_timestamp(rec.get("create_time"), "create_time"),
                  metadata={"title": _title(rec.get("title"))})


def sniff(rec: Any) -> Callable[[Mapping[str, Any]], Conversation]:
    if not isinstance(rec, Mapping):
        raise FieldError(None, f"expected an object, got {type(rec).__name__}")
    if "mapping" in rec and "current_node" in rec:
        return parse_chatgpt
    if "chat_messages" in rec:
        return parse_claude
    if "conversations" in rec:
        return parse_sharegpt
    return parse_openai


PARSERS: dict[str, Callable[[Mapping[str, Any]], Conversation]] = {
    "openai": parse_openai, "sharegpt": parse_sharegpt, "claude": parse_claude, "chatgpt": parse_chatgpt,
}
