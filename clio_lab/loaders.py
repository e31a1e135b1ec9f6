"""One entry point, :func:`load_conversations`, for every conversation format clio_lab reads.

Each format is turned into a stream of ``(location, raw_record)`` pairs, and each raw record into a
:class:`~clio_lab.records.Conversation` by a small parser. A record that fails raises :class:`RecordError`
naming the file, the line or index and the field; with ``on_error="skip"`` it is set aside in the
:class:`~clio_lab.records.LoadReport` instead, so nothing is dropped silently.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from .records import Conversation, Conversations, LoadReport, Message, SkippedRecord, normalise_role

Format = Literal["auto", "jsonl", "json", "openai", "sharegpt", "claude", "chatgpt", "parquet", "dataframe", "hf"]
NON_TEXT_PLACEHOLDER = "[non-text content: {kind}]"


class RecordError(ValueError):
    """A record could not be read. The message names the source, the line or index, and the field."""

    def __init__(self, source: str, location: str, reason: str, field: str | None = None):
        self.source, self.location, self.field, self.reason = source, location, field, reason
        where = f"{source}: {location}" + (f": field '{field}'" if field else "")
        super().__init__(f"{where}: {reason}")


class _FieldError(ValueError):
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
                raise _FieldError(f"{field}[{i}]", f"content part of type {type(part).__name__} is not text")
        return "\n".join(p for p in pieces if p)
    raise _FieldError(field, f"content of type {type(content).__name__} is not text")


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
        raise _FieldError(field, f"not a timestamp: {value!r}") from exc


def _messages(raw: Any, field: str, role_key: str, content_key: str, counts: dict[str, int]) -> list[Message]:
    if not isinstance(raw, list | tuple) and not hasattr(raw, "tolist"):
        raise _FieldError(field, f"expected a list of messages, got {type(raw).__name__}")
    items = raw.tolist() if hasattr(raw, "tolist") else raw
    out = []
    for i, m in enumerate(items):
        if not isinstance(m, Mapping):
            raise _FieldError(f"{field}[{i}]", f"expected a message object, got {type(m).__name__}")
        if role_key not in m:
            raise _FieldError(f"{field}[{i}].{role_key}", "missing")
        try:
            role = normalise_role(m[role_key])
        except ValueError as exc:
            raise _FieldError(f"{field}[{i}].{role_key}", str(exc)) from None
        out.append(Message(role=role, content=_text_of(m.get(content_key), f"{field}[{i}].{content_key}", counts)))
    return out


def _build(cid: Any, messages: list[Message], counts: dict[str, int], **kw: Any) -> Conversation:
    metadata = dict(kw.pop("metadata", None) or {})
    if counts:
        metadata.update(counts)
    if not messages:
        raise _FieldError("messages", "conversation has no messages")
    if not any(m.content.strip() for m in messages):
        raise _FieldError("messages", "conversation has only empty messages")
    if cid is None or str(cid).strip() == "":
        raise _FieldError("id", "missing or empty")
    try:
        return Conversation(id=str(cid), messages=messages, metadata=metadata, **kw)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise _FieldError(".".join(str(p) for p in err["loc"]) or None, err["msg"]) from None


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
            raise _FieldError(col["text"], f"expected text, got {type(text).__name__}")
        messages = [Message(role="user", content=text)]
    else:
        raise _FieldError(col["messages"], "missing")
    meta = rec.get(col["metadata"]) or {}
    if not isinstance(meta, Mapping):
        raise _FieldError(col["metadata"], f"expected an object, got {type(meta).__name__}")
    meta = dict(meta)
    known = set(col.values())
    for key, value in rec.items():  # other scalar columns travel as metadata (e.g. a label)
        if key not in known and isinstance(value, str | int | float | bool):
            meta.setdefault(key, value)
    user = rec.get(col["user_id"])
    return _build(rec.get(col["id"]), messages, counts, user_id=None if user is None else str(user),
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
        raise _FieldError("chat_messages", "missing or not a list")
    messages = []
    for i, m in enumerate(raw):
        field = f"chat_messages[{i}]"
        try:
            role = normalise_role(m.get("sender"))
        except ValueError as exc:
            raise _FieldError(f"{field}.sender", str(exc)) from None
        # Newer exports carry typed parts in "content"; older ones only "text".
        text = _text_of(m["content"], f"{field}.content", counts) if m.get("content") else m.get("text", "")
        for att in m.get("attachments") or []:
            counts["attachments"] = counts.get("attachments", 0) + 1
            text += "\n" + NON_TEXT_PLACEHOLDER.format(kind=f"attachment {att.get('file_type', '')}".strip())
        for _ in m.get("files") or []:
            counts["non_text_parts"] = counts.get("non_text_parts", 0) + 1
            text += "\n" + NON_TEXT_PLACEHOLDER.format(kind="file")
        messages.append(Message(role=role, content=text.strip()))
    account = rec.get("account") or {}
    return _build(rec.get("uuid"), messages, counts, user_id=account.get("uuid"),
                  created_at=_timestamp(rec.get("created_at"), "created_at"),
                  metadata={"title": rec.get("name") or ""})


def parse_chatgpt(rec: Mapping[str, Any]) -> Conversation:
    """ChatGPT export ``conversations.json``: the message tree in ``mapping`` followed from
    ``current_node`` up to the root, so only the branch the user last saw is kept."""
    counts: dict[str, int] = {}
    mapping = rec.get("mapping")
    if not isinstance(mapping, Mapping):
        raise _FieldError("mapping", "missing or not an object")
    node_id = rec.get("current_node")
    if node_id not in mapping:
        raise _FieldError("current_node", f"{node_id!r} is not a node of mapping")
    branch, seen = [], set()
    while node_id is not None:
        if node_id in seen:
            raise _FieldError(f"mapping.{node_id}.parent", "cycle in the message tree")
        seen.add(node_id)
        node = mapping.get(node_id)
        if node is None:
            raise _FieldError(f"mapping.{node_id}", "parent points at a missing node")
        branch.append(node)
        node_id = node.get("parent")
    messages = []
    for node in reversed(branch):
        msg = node.get("message")
        if not msg:
            continue
        field = f"mapping.{node.get('id')}.message"
        if (msg.get("metadata") or {}).get("is_visually_hidden_from_conversation"):
            continue
        try:
            role = normalise_role((msg.get("author") or {}).get("role"))
        except ValueError as exc:
            raise _FieldError(f"{field}.author.role", str(exc)) from None
        content = msg.get("content") or {}
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
                  metadata={"title": rec.get("title") or ""})


def _sniff(rec: Any) -> Callable[[Mapping[str, Any]], Conversation]:
    if not isinstance(rec, Mapping):
        raise _FieldError(None, f"expected an object, got {type(rec).__name__}")
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


# ----------------------------------------------------------------------------------------------- readers
def _iter_jsonl(path: Path, report: LoadReport) -> Iterator[tuple[str, Any]]:
    with path.open("r", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield f"line {lineno}", json.loads(line)
            except json.JSONDecodeError as exc:
                yield f"line {lineno}", _FieldError(None, f"invalid JSON: {exc.msg} at column {exc.colno}")


def _iter_json_array(path: Path, report: LoadReport) -> Iterator[tuple[str, Any]]:
    """Items of a top-level JSON array, decoded one at a time so that a file cut off mid-way (the real
    ShareGPT V3 file is) yields every whole record before the cut and records where the cut is."""
    text = path.read_text(encoding="utf-8")
    decoder = json.JSONDecoder()
    pos = _skip_ws(text, 0)
    if pos < len(text) and text[pos] == "{":  # a single object, or {"conversations": [...]} wrappers
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RecordError(str(path), f"line {exc.lineno}", f"invalid JSON: {exc.msg}") from None
        items = obj.get("conversations") if isinstance(obj.get("conversations"), list) and "id" not in obj else [obj]
        for i, item in enumerate(items):
            yield f"index {i}", item
        return
    if pos >= len(text) or text[pos] != "[":
        raise RecordError(str(path), "line 1", "expected a JSON array or object")
    pos = _skip_ws(text, pos + 1)
    index = 0
    while pos < len(text) and text[pos] != "]":
        try:
            item, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            line = text.count("\n", 0, pos) + 1
            report.notes.append(
                f"file is cut off or malformed after {index} whole records: item {index} (line {line}) "
                f"does not parse ({exc.msg}); {len(text) - pos:,} trailing characters ignored")
            report.truncated_at = index
            return
        yield f"index {index}", item
        index += 1
        pos = _skip_ws(text, end)
        if pos < len(text) and text[pos] == ",":
            pos = _skip_ws(text, pos + 1)
    if pos >= len(text):
        report.notes.append(f"file ends without closing ']' after {index} whole records")


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _iter_frame(frame: Any, report: LoadReport) -> Iterator[tuple[str, Any]]:
    for i, rec in enumerate(frame.to_dict(orient="records")):
        yield f"row {i}", rec


def _iter_hf(dataset: Any, report: LoadReport) -> Iterator[tuple[str, Any]]:
    for i, rec in enumerate(dataset):
        yield f"row {i}", rec


def _detect(source: Any) -> str:
    if hasattr(source, "to_dict") and hasattr(source, "columns"):
        return "dataframe"
    if isinstance(source, (list, tuple)):
        return "records"
    if hasattr(source, "features") and hasattr(source, "column_names"):
        return "hf"
    path = Path(source)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".json":
        return "json"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise ValueError(f"{path}: cannot tell the format from the extension {suffix!r}; pass format=...")


# ----------------------------------------------------------------------------------------------- entry
def load_conversations(
    source: str | Path | Any,
    format: Format = "auto",
    on_error: Literal["raise", "skip"] = "raise",
    *,
    columns: Mapping[str, str] | None = None,
    limit: int | None = None,
) -> Conversations:
    """Load conversations from a file, a pandas DataFrame, a Hugging Face ``datasets.Dataset`` or a list of
    records (dicts, e.g. from :func:`clio_lab.synthetic.generate_corpus`).

    Args:
        source: a path (``.jsonl``, ``.json``, ``.parquet``), a DataFrame, a Dataset or a list of dicts.
        format: ``"auto"`` sniffs each record's shape: OpenAI messages, ShareGPT, Claude.ai export,
            ChatGPT export. Name one (``"sharegpt"``, ``"claude"``, ``"chatgpt"``, ``"openai"``) to insist on it.
        on_error: ``"raise"`` stops at the first bad record with an error naming file, line/index and
            field; ``"skip"`` sets bad records aside in ``result.report`` with their reasons.
        columns: for tables and JSON records, maps clio_lab's names (``id``, ``messages``, ``text``,
            ``user_id``, ``created_at``, ``metadata``) onto the source's own column names.
        limit: stop after this many conversations.

    Returns:
        A list of :class:`Conversation` with a ``.report`` (:class:`LoadReport`).

    Example:
        >>> convs = load_conversations("datasets/clio_demo.jsonl")  # doctest: +SKIP
        >>> convs.report.summary()["loaded"]  # doctest: +SKIP
        200
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
    known = ("auto", "jsonl", "json", "parquet", "dataframe", "hf", "records", *PARSERS)
    if format not in known:
        raise ValueError(f"unknown format {format!r}; use one of {', '.join(known)}")
    # format names either a container (how to read) or a record shape (how to parse); sniff what is not named.
    container = format if format in ("jsonl", "json", "parquet", "dataframe", "hf", "records") else _detect(source)
    if container in ("dataframe", "hf", "records"):
        label = str(getattr(source, "name", None) or {"dataframe": "<DataFrame>", "hf": "<Dataset>",
                                                      "records": "<records>"}[container])
    else:
        label = str(source)
    report = LoadReport(source=label, format=format if format != "auto" else container)
    if container in ("jsonl",):
        stream = _iter_jsonl(Path(source), report)
    elif container in ("json",):
        stream = _iter_json_array(Path(source), report)
    elif container == "parquet":
        import pandas as pd

        stream = _iter_frame(pd.read_parquet(source), report)
    elif container == "dataframe":
        stream = _iter_frame(source, report)
    elif container in ("hf", "records"):  # a Dataset, or a list of dicts (e.g. clio_lab.synthetic's records)
        stream = _iter_hf(source, report)
    else:
        raise ValueError(f"unknown format {format!r}")

    out: list[Conversation] = []
    first_seen: dict[str, str] = {}
    for location, raw in stream:
        try:
            if isinstance(raw, _FieldError):
                raise raw
            parser = PARSERS[format] if format in PARSERS else _sniff(raw)
            conv = parser(raw, columns) if parser is parse_openai else parser(raw)
            if conv.id in first_seen:
                raise _FieldError("id", f"duplicate id {conv.id!r} (first seen at {first_seen[conv.id]})")
        except _FieldError as exc:
            if on_error == "raise":
                raise RecordError(label, location, exc.reason, exc.field) from None
            report.skipped.append(SkippedRecord(source=label, location=location, field=exc.field,
                                                reason=exc.reason))
            continue
        first_seen[conv.id] = location
        out.append(conv)
        if limit is not None and len(out) >= limit:
            report.notes.append(f"stopped after limit={limit} conversations")
            break
    report.loaded = len(out)
    return Conversations(out, report=report)
