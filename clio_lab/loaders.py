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
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from .formats import (  # noqa: F401  (the parsers' names, importable from here as before)
    ATTACHMENT_MARKER,
    CUT_MARKER,
    FORMATS_HELP,
    MAX_MESSAGE_CHARS,
    NON_TEXT_PLACEHOLDER,
    PARSERS,
    FieldError,
    Format,
    parse_chatgpt,
    parse_claude,
    parse_openai,
    parse_sharegpt,
    sniff,
)
from .records import Conversation, Conversations, LoadReport, Message, SkippedRecord


class RecordError(ValueError):
    """A record could not be read. The message names the source, the line or index, and the field."""

    def __init__(self, source: str, location: str | None, reason: str, field: str | None = None):
        self.source, self.location, self.field, self.reason = source, location, field, reason
        where = source + (f": {location}" if location else "") + (f": field '{field}'" if field else "")
        super().__init__(f"{where}: {reason}")


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


def _undecodable(line: str, lineno: int) -> FieldError:
    bad = _UNDECODED.search(line)
    byte = ord(bad.group()) - 0xDC00 if bad else 0
    column = bad.start() + 1 if bad else 0
    return FieldError(None, f"not UTF-8 text: byte 0x{byte:02x} at column {column} of line {lineno}; "
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
                    yield f"line {lineno}", FieldError(None, f"invalid JSON: {exc.msg} at column {exc.colno}")
                except RecursionError:
                    yield f"line {lineno}", FieldError(None, "invalid JSON: nested too deeply to read")
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
            yield f"index {i}", FieldError(None, "not UTF-8 text: a byte that is not UTF-8 in this record; "
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
            if isinstance(raw, FieldError):
                raise raw
            parser = PARSERS[format] if format in PARSERS else sniff(raw)
            try:
                conv = parser(raw, columns) if parser is parse_openai else parser(raw)
            except FieldError:
                raise
            except Exception as exc:  # noqa: BLE001 - a shape no parser expects is one bad record, located
                raise FieldError(None, f"a record of a shape clio_lab cannot read ({type(exc).__name__}: "
                                        f"{str(exc)[:200]})") from None
            if conv.id in first_seen:
                raise FieldError("id", f"duplicate id {conv.id!r} (first seen at {first_seen[conv.id]})")
        except FieldError as exc:
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
            m = Message(role=m.role, content=m.content[:limit] + CUT_MARKER.format(limit=limit))
        messages.append(m)
    report.cut_messages += cut
    return conv.model_copy(update={"messages": messages, "metadata": {**conv.metadata, "cut_messages": cut}})
