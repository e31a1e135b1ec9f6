"""One entry point, :func:`load_conversations`, for every conversation format clio_lab reads.

Each format is turned into a stream of ``(location, raw_record)`` pairs, and each raw record into a
:class:`~clio_lab.records.Conversation` by a small parser. A record that fails raises :class:`RecordError`
naming the file, the line or index and the field; with ``on_error="skip"`` it is set aside in the
:class:`~clio_lab.records.LoadReport` instead, so nothing is dropped silently.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from .records import Conversation, Conversations, LoadReport, Message, SkippedRecord, has_text, normalise_role

Format = Literal["auto", "jsonl", "json", "openai", "sharegpt", "claude", "chatgpt", "parquet", "dataframe", "hf"]
NON_TEXT_PLACEHOLDER = "[non-text content: {kind}]"
ATTACHMENT_MARKER = "[attachment: {name}]"
CUT_MARKER = "\n[... message cut at {limit:,} characters by clio_lab ...]"
MAX_MESSAGE_CHARS = 100_000
FORMATS_HELP = ("clio_lab reads .jsonl or .ndjson (one conversation per line), .json (an array of conversations, or "
                "a Claude.ai or ChatGPT export's conversations.json), .parquet, and .jsonl.gz / .json.gz; a CSV or "
                "other table can be read with pandas and passed as a DataFrame: "
                "load_conversations(pd.read_csv(path), columns={...})")


class RecordError(ValueError):
    """A record could not be read. The message names the source, the line or index, and the field."""

    def __init__(self, source: str, location: str | None, reason: str, field: str | None = None):
        self.source, self.location, self.field, self.reason = source, location, field, reason
        where = source + (f": {location}" if location else "") + (f": field '{field}'" if field else "")
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


def _ident(value: Any, field: str) -> str | None:
    """An id as text: strings and whole numbers are ids; an object, a list or a flag is not."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise _FieldError(field, f"expected text or a number, got {type(value).__name__} {_short(value)}")
    return str(int(value)) if float(value).is_integer() else str(value)


def _obj(value: Any, field: str) -> Mapping[str, Any]:
    """An object field; missing or null is an empty object, anything else that is no object is an error."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _FieldError(field, f"expected an object, got {type(value).__name__} {_short(value)}")
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
    if not any(has_text(m.content) for m in messages):
        raise _FieldError("messages", "conversation has only empty messages (no visible text)")
    if not any(m.role == "user" and has_text(m.content) for m in messages):
        raise _FieldError("messages", "no user message has text (Clio describes what users ask)")
    cid = _ident(cid, "id")
    if cid is None or cid.strip() == "":
        raise _FieldError("id", "missing or empty")
    if "user_id" in kw:
        kw["user_id"] = _ident(kw["user_id"], "user_id")
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
        raise _FieldError("chat_messages", "missing or not a list")
    messages = []
    for i, m in enumerate(raw):
        field = f"chat_messages[{i}]"
        if not isinstance(m, Mapping):
            raise _FieldError(field, f"expected a message object, got {type(m).__name__} {_short(m)}")
        try:
            role = normalise_role(m.get("sender"))
        except ValueError as exc:
            raise _FieldError(f"{field}.sender", str(exc)) from None
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
        raise _FieldError(field, f"expected a list, got {type(value).__name__} {_short(value)}")
    return value


def _title(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def parse_chatgpt(rec: Mapping[str, Any]) -> Conversation:
    """ChatGPT export ``conversations.json``: the message tree in ``mapping`` followed from
    ``current_node`` up to the root, so only the branch the user last saw is kept."""
    counts: dict[str, int] = {}
    mapping = rec.get("mapping")
    if not isinstance(mapping, Mapping):
        raise _FieldError("mapping", "missing or not an object")
    node_id = rec.get("current_node")
    if not isinstance(node_id, str | int) or node_id not in mapping:
        raise _FieldError("current_node", f"{node_id!r} is not a node of mapping")
    branch, seen = [], set()
    child = None
    while node_id is not None:
        if not isinstance(node_id, str | int) or isinstance(node_id, bool) or node_id not in mapping:
            where = f"mapping.{child}.parent" if child is not None else "current_node"
            raise _FieldError(where, f"{_short(node_id)} is not a node of mapping")
        if node_id in seen:
            raise _FieldError(f"mapping.{node_id}.parent", "cycle in the message tree")
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
            raise _FieldError(f"{field}.author.role", str(exc)) from None
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
_GZIP_MAGIC = b"\x1f\x8b"
_UNDECODED = re.compile("[\udc80-\udcff]")  # bytes that were not UTF-8, kept by errors="surrogateescape"


def _open_binary(path: Path) -> io.BufferedIOBase:
    """The file's bytes, gunzipped when it is gzip (by its first two bytes, whatever its name)."""
    fh = path.open("rb")
    if fh.peek(2)[:2] == _GZIP_MAGIC:
        return gzip.GzipFile(fileobj=fh)  # type: ignore[return-value]
    return fh  # type: ignore[return-value]


def _encoding(head: bytes, label: str) -> tuple[str, int]:
    """``(encoding, bytes of BOM to skip)`` from a file's first bytes; a binary file is a located error."""
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8", 3
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16", 0  # Python's utf-16 codec reads the BOM and drops it
    if len(head) >= 4 and head[1] == 0 and head[3] == 0 and head[0] != 0:
        return "utf-16-le", 0
    if len(head) >= 4 and head[0] == 0 and head[2] == 0 and head[1] != 0:
        return "utf-16-be", 0
    zero = head.find(b"\x00")
    if zero >= 0:
        raise RecordError(label, None, f"not a text file (a zero byte at offset {zero}); {FORMATS_HELP}")
    return "utf-8", 0


def _undecodable(line: str, lineno: int) -> _FieldError:
    bad = _UNDECODED.search(line)
    byte = ord(bad.group()) - 0xDC00 if bad else 0
    column = bad.start() + 1 if bad else 0
    return _FieldError(None, f"not UTF-8 text: byte 0x{byte:02x} at column {column} of line {lineno}; "
                             "save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)")


def _iter_jsonl(path: Path, report: LoadReport) -> Iterator[tuple[str, Any]]:
    """One record per line, decoded line by line: a line that is not UTF-8 or not JSON is one bad record
    (skippable), never the whole file. A UTF-8 BOM is dropped; UTF-16 files are read as such."""
    label = str(path)
    lineno = 0
    with _open_binary(path) as fh:
        try:
            encoding, bom = _encoding(fh.peek(64)[:64] if hasattr(fh, "peek") else b"", label)
            if encoding != "utf-8":
                report.notes.append(f"read as {encoding.upper()} (found by its first bytes)")
            lines: Iterable[str] = (io.TextIOWrapper(fh, encoding=encoding, newline="") if encoding != "utf-8"
                                    else (b.decode("utf-8", "surrogateescape") for b in fh))
            for lineno, line in enumerate(lines, 1):
                if lineno == 1 and bom:
                    line = line.lstrip("\ufeff")
                if not line.strip():
                    continue
                if _UNDECODED.search(line):
                    yield f"line {lineno}", _undecodable(line, lineno)
                    continue
                try:
                    yield f"line {lineno}", json.loads(line)
                except json.JSONDecodeError as exc:
                    yield f"line {lineno}", _FieldError(None, f"invalid JSON: {exc.msg} at column {exc.colno}")
                except RecursionError:
                    yield f"line {lineno}", _FieldError(None, "invalid JSON: nested too deeply to read")
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            report.notes.append(f"the gzip data is cut off or corrupt after line {lineno} ({exc}); "
                                "the lines before it were read")
            report.truncated_at = lineno
        except UnicodeDecodeError as exc:
            raise RecordError(label, f"line {lineno + 1}", f"not {exc.encoding.upper()} text: {exc.reason}") from None
    if lineno == 0:
        report.notes.append("the file is empty")


def _read_text(path: Path, report: LoadReport) -> str:
    """The whole file as text (gunzipped, BOM dropped, UTF-16 decoded); bytes that are not UTF-8 are kept as
    surrogate escapes so that the record holding them can be named and set aside."""
    label = str(path)
    try:
        with _open_binary(path) as fh:
            data = fh.read()
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise RecordError(label, None, f"the gzip data is cut off or corrupt ({exc})") from None
    encoding, bom = _encoding(data[:64], label)
    if encoding != "utf-8":
        report.notes.append(f"read as {encoding.upper()} (found by its first bytes)")
        try:
            return data.decode(encoding)
        except UnicodeDecodeError as exc:
            line = data[: exc.start].decode(encoding, "replace").count("\n") + 1
            raise RecordError(label, f"line {line}", f"not {encoding.upper()} text: {exc.reason}") from None
    return data[bom:].decode("utf-8", "surrogateescape")


def _iter_json_array(path: Path, report: LoadReport) -> Iterator[tuple[str, Any]]:
    """Items of a top-level JSON array, decoded one at a time so that a file cut off mid-way (the real
    ShareGPT V3 file is) yields every whole record before the cut and records where the cut is. What strict
    JSON forbids but is plainly meant (a trailing comma, a missing comma between items) is read and noted."""
    text = _read_text(path, report)
    label = str(path)
    decoder = json.JSONDecoder()

    def line_of(pos: int) -> int:
        return text.count("\n", 0, pos) + 1

    pos = _skip_ws(text, 0)
    if pos >= len(text):
        report.notes.append("the file is empty")
        return
    if text[pos] == "{":  # a single object, or {"conversations": [...]} wrappers
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RecordError(label, f"line {exc.lineno}", f"invalid JSON: {exc.msg}") from None
        except RecursionError:
            raise RecordError(label, None, "invalid JSON: nested too deeply to read") from None
        items = obj.get("conversations") if isinstance(obj.get("conversations"), list) and "id" not in obj else [obj]
        for i, item in enumerate(items):
            bad = _UNDECODED.search(json.dumps(item, ensure_ascii=False))
            yield f"index {i}", _FieldError(None, "not UTF-8 text: a byte that is not UTF-8 in this record; "
                                            "save the file as UTF-8") if bad else item
        return
    if text[pos] != "[":
        raise RecordError(label, f"line {line_of(pos)}", f"expected a JSON array or object, found {text[pos]!r}")
    pos = _skip_ws(text, pos + 1)
    index, oddities = 0, []
    while pos < len(text) and text[pos] != "]":
        try:
            item, end = decoder.raw_decode(text, pos)
        except (json.JSONDecodeError, RecursionError) as exc:
            why = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply to read"
            report.notes.append(
                f"file is cut off or malformed after {index} whole records: item {index} (line {line_of(pos)}) "
                f"does not parse ({why}); {len(text) - pos:,} trailing characters ignored")
            report.truncated_at = index
            return
        if _UNDECODED.search(text, pos, end):
            yield f"index {index}", _undecodable(text[pos:end], line_of(_UNDECODED.search(text, pos, end).start()))
        else:
            yield f"index {index}", item
        index += 1
        pos = _skip_ws(text, end)
        if pos < len(text) and text[pos] == ",":
            pos = _skip_ws(text, pos + 1)
            if pos < len(text) and text[pos] == "]":
                oddities.append(f"a trailing comma after the last item (line {line_of(pos)})")
        elif pos < len(text) and text[pos] != "]":
            oddities.append(f"no comma between items {index - 1} and {index} (line {line_of(pos)})")
    if oddities:
        report.notes.append("not strict JSON, read anyway: " + "; ".join(oddities[:3])
                            + (f" and {len(oddities) - 3} more" if len(oddities) > 3 else ""))
    if pos >= len(text):
        report.notes.append(f"file ends without closing ']' after {index} whole records")
    elif text[_skip_ws(text, pos + 1):].strip():
        report.notes.append(f"{len(text) - pos - 1:,} characters after the closing ']' ignored")


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
    suffixes = [x.lower() for x in path.suffixes[-2:]]
    suffix = suffixes[-2] if suffixes[-1:] == [".gz"] and len(suffixes) == 2 else (suffixes or [""])[-1]
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".json":
        return "json"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise RecordError(str(path), None, f"cannot tell the format from the extension {''.join(suffixes)!r} "
                      f"(pass format='jsonl' or 'json' if it is one of them); {FORMATS_HELP}")


# ----------------------------------------------------------------------------------------------- entry
def load_conversations(
    source: str | Path | Any,
    format: Format = "auto",
    on_error: Literal["raise", "skip"] = "raise",
    *,
    columns: Mapping[str, str] | None = None,
    limit: int | None = None,
    max_message_chars: int | None = MAX_MESSAGE_CHARS,
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
        max_message_chars: a longer message is cut here, with a marker, and counted in the report and in the
            conversation's ``metadata["cut_messages"]`` (the model reads only a conversation's first few
            thousand characters, and the PII scan slows with length); ``None`` keeps every message whole.

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
        path = Path(source)
        if not path.exists():
            raise RecordError(label, None, "no such file")
        if path.is_dir():
            raise RecordError(label, None, "is a folder, not a file: give the file inside it "
                                           "(for an export, its conversations.json)")
    report = LoadReport(source=label, format=format if format != "auto" else container)
    if container in ("jsonl",):
        stream = _iter_jsonl(Path(source), report)
    elif container in ("json",):
        stream = _iter_json_array(Path(source), report)
    elif container == "parquet":
        import pandas as pd

        try:
            frame = pd.read_parquet(source)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises many kinds for a file that is no Parquet
            raise RecordError(label, None, f"not a readable Parquet file ({type(exc).__name__}: {exc})") from None
        stream = _iter_frame(frame, report)
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
            try:
                conv = parser(raw, columns) if parser is parse_openai else parser(raw)
            except _FieldError:
                raise
            except Exception as exc:  # noqa: BLE001 - a shape no parser expects is one bad record, located
                raise _FieldError(None, f"a record of a shape clio_lab cannot read ({type(exc).__name__}: "
                                        f"{str(exc)[:200]})") from None
            if conv.id in first_seen:
                raise _FieldError("id", f"duplicate id {conv.id!r} (first seen at {first_seen[conv.id]})")
        except _FieldError as exc:
            if on_error == "raise":
                raise RecordError(label, location, exc.reason, exc.field) from None
            report.skipped.append(SkippedRecord(source=label, location=location, field=exc.field,
                                                reason=exc.reason))
            continue
        first_seen[conv.id] = location
        if max_message_chars is not None:
            conv = _cut_long_messages(conv, max_message_chars, report)
        out.append(conv)
        if limit is not None and len(out) >= limit:
            report.notes.append(f"stopped after limit={limit} conversations")
            break
    report.loaded = len(out)
    if report.cut_messages:
        report.notes.append(f"{report.cut_messages} messages longer than {max_message_chars:,} characters were cut "
                            f"there (max_message_chars; the longest had {report.longest_message:,})")
    if not out:
        report.notes.append("no conversations could be read" + (
            f": all {len(report.skipped)} records were set aside (see skipped)" if report.skipped else ""))
    return Conversations(out, report=report)


def _cut_long_messages(conv: Conversation, limit: int, report: LoadReport) -> Conversation:
    """Messages longer than ``limit`` characters cut there with a marker, counted in the report and in the
    conversation's metadata."""
    if all(len(m.content) <= limit for m in conv.messages):
        return conv
    cut, messages = 0, []
    for m in conv.messages:
        if len(m.content) > limit:
            cut += 1
            report.longest_message = max(report.longest_message, len(m.content))
            m = m.model_copy(update={"content": m.content[:limit] + CUT_MARKER.format(limit=limit)})
        messages.append(m)
    report.cut_messages += cut
    return conv.model_copy(update={"messages": messages, "metadata": {**conv.metadata, "cut_messages": cut}})
