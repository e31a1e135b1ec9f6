"""Bad input, as a new user or an attacker would give it: every case loads, is set aside with a located reason,
or stops with a located error (``clio-lab: <file>: <what>``, exit 2), never a traceback (issue 18, items 2-4, 7, 8;
README "Reliability")."""

import gzip
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clio_lab import RecordError, load_conversations
from clio_lab.cli import main

GOOD = {"id": "a", "messages": [{"role": "user", "content": "Help me plan a trip"},
                                {"role": "assistant", "content": "Sure."}]}


def _line(rec) -> bytes:
    return (json.dumps(rec, ensure_ascii=False) + "\n").encode()


def _rec(i, text="Help me plan a trip"):
    return {**GOOD, "id": f"c{i}", "messages": [{"role": "user", "content": text}]}


# ------------------------------------------------------------------------------------------- encodings
def test_one_latin1_byte_costs_one_line_named_by_line_and_column(tmp_path):
    path = tmp_path / "mixed.jsonl"
    bad = _line(_rec(2, "café")).replace("café".encode(), "caf\xe9".encode("latin-1"))
    path.write_bytes(_line(_rec(1)) + bad + _line(_rec(3)))
    with pytest.raises(RecordError) as info:
        load_conversations(path)
    assert str(info.value).startswith(f"{path}: line 2: not UTF-8 text: byte 0xe9 at column")
    convs = load_conversations(path, on_error="skip")
    assert [c.id for c in convs] == ["c1", "c3"]
    (skipped,) = convs.report.skipped
    assert skipped.location == "line 2" and "byte 0xe9" in skipped.reason


def test_a_json_array_with_a_bad_byte_loses_only_that_record(tmp_path):
    path = tmp_path / "arr.json"
    text = json.dumps([_rec(1), _rec(2, "naïve"), _rec(3)], ensure_ascii=False, indent=1).encode()
    path.write_bytes(text.replace("naïve".encode(), b"na\xefve"))
    convs = load_conversations(path, on_error="skip")
    assert [c.id for c in convs] == ["c1", "c3"]
    assert convs.report.skipped[0].location == "index 1" and "byte 0xef" in convs.report.skipped[0].reason


@pytest.mark.parametrize("suffix", ["jsonl", "json"])
def test_a_utf8_bom_costs_nothing(tmp_path, suffix):
    path = tmp_path / f"bom.{suffix}"
    body = b"".join(_line(_rec(i)) for i in range(3)) if suffix == "jsonl" else json.dumps(
        [_rec(i) for i in range(3)]).encode()
    path.write_bytes(b"\xef\xbb\xbf" + body)
    assert [c.id for c in load_conversations(path)] == ["c0", "c1", "c2"]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
@pytest.mark.parametrize("suffix", ["jsonl", "json"])
def test_utf16_files_are_read_as_utf16(tmp_path, encoding, suffix):
    path = tmp_path / f"u16.{suffix}"
    body = "".join(json.dumps(_rec(i, "Grüße aus Köln"), ensure_ascii=False) + "\n" for i in range(2)) \
        if suffix == "jsonl" else json.dumps([_rec(0, "Grüße aus Köln"), _rec(1, "Grüße aus Köln")],
                                             ensure_ascii=False)
    path.write_bytes(body.encode(encoding))
    convs = load_conversations(path)
    assert [c.id for c in convs] == ["c0", "c1"] and convs[0].messages[0].content == "Grüße aus Köln"
    assert any("UTF-16" in n for n in convs.report.notes)


def test_a_binary_file_is_a_located_error(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(RecordError, match=r"x.jsonl: not a text file \(a zero byte at offset 0\)"):
        load_conversations(path, on_error="skip")


# ------------------------------------------------------------------------------------- files and formats
def test_gzipped_jsonl_and_json_are_read(tmp_path):
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(b"".join(_line(_rec(i)) for i in range(3))))
    (tmp_path / "a.json.gz").write_bytes(gzip.compress(json.dumps([_rec(i) for i in range(2)]).encode()))
    assert len(load_conversations(tmp_path / "a.jsonl.gz")) == 3
    assert len(load_conversations(tmp_path / "a.json.gz")) == 2


def test_a_gzip_file_cut_off_keeps_the_lines_before_the_cut(tmp_path):
    data = gzip.compress(b"".join(_line(_rec(i, "x" * 200 + str(i))) for i in range(200)))
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    convs = load_conversations(path)
    assert 0 < len(convs) < 200 and convs.report.truncated_at == len(convs)
    assert any("cut off or corrupt" in n for n in convs.report.notes)


def test_csv_and_unknown_extensions_say_which_formats_exist(tmp_path):
    (tmp_path / "x.csv").write_text("id,text\n1,hello\n")
    with pytest.raises(RecordError) as info:
        load_conversations(tmp_path / "x.csv")
    msg = str(info.value)
    assert "x.csv" in msg and ".jsonl" in msg and ".parquet" in msg and "pd.read_csv" in msg


def test_a_folder_a_missing_file_and_a_file_that_is_no_parquet(tmp_path):
    (tmp_path / "x.jsonl").mkdir()
    with pytest.raises(RecordError, match=r"x.jsonl: is a folder, not a file"):
        load_conversations(tmp_path / "x.jsonl")
    with pytest.raises(RecordError, match=r"nope.jsonl: no such file"):
        load_conversations(tmp_path / "nope.jsonl")
    (tmp_path / "x.parquet").write_text("not parquet")
    with pytest.raises(RecordError, match=r"x.parquet: not a readable Parquet file"):
        load_conversations(tmp_path / "x.parquet")


@pytest.mark.parametrize("content", [b"", b"\n\n  \n", b"[]", b"   "])
def test_an_empty_file_loads_nothing_and_says_so(tmp_path, content):
    path = tmp_path / ("e.json" if content.strip().startswith(b"[") else "e.jsonl")
    path.write_bytes(content)
    convs = load_conversations(path)
    assert len(convs) == 0 and "no conversations could be read" in convs.report.notes


def test_json_array_oddities_are_read_and_noted(tmp_path):
    path = tmp_path / "odd.json"
    path.write_text("[" + json.dumps(_rec(1)) + "," + json.dumps(_rec(2)) + ",\n]")
    convs = load_conversations(path)
    assert len(convs) == 2 and any("trailing comma" in n and "line 2" in n for n in convs.report.notes)
    path.write_text("[" + json.dumps(_rec(1)) + " " + json.dumps(_rec(2)) + "] trailing")
    convs = load_conversations(path)
    assert len(convs) == 2 and any("no comma between items 0 and 1" in n for n in convs.report.notes)
    assert any("after the closing ']' ignored" in n for n in convs.report.notes)


# ------------------------------------------------------------------------------------------- records
@pytest.mark.parametrize(("record", "field", "reason"), [
    ({"id": "z", "messages": [{"role": "user", "content": "\u200b\u200b\u200c\ufeff"}]}, "messages", "no visible text"),
    ({"id": "n", "messages": [{"role": "user", "content": None}, {"role": "assistant", "content": "Hello!"}]},
     "messages", "no user message has text"),
    ({"id": {"a": 1}, "messages": [{"role": "user", "content": "hi"}]}, "id", "expected text or a number, got dict"),
    ({"id": True, "messages": [{"role": "user", "content": "hi"}]}, "id", "got bool"),
    ({"id": "u", "user_id": [1], "messages": [{"role": "user", "content": "hi"}]}, "user_id", "got list"),
    ({"id": "m", "metadata": "x", "messages": [{"role": "user", "content": "hi"}]}, "metadata", "expected an object"),
])
def test_garbage_is_set_aside_with_its_field(tmp_path, record, field, reason):
    path = tmp_path / "g.jsonl"
    path.write_bytes(_line(GOOD) + _line(record))
    with pytest.raises(RecordError) as info:
        load_conversations(path)
    assert f"line 2: field '{field}'" in str(info.value) and reason in str(info.value)


def test_numeric_ids_are_kept_as_text():
    (conv,) = load_conversations([{"id": 7, "user_id": 12.0, "messages": [{"role": "user", "content": "hi"}]}])
    assert conv.id == "7" and conv.user_id == "12"


CLAUDE = {"uuid": "c-1", "name": "t", "account": {"uuid": "acc"}, "created_at": "2025-01-01T00:00:00Z",
          "chat_messages": [{"sender": "human", "text": "Summarise the attached notes",
                             "attachments": [{"file_name": "notes.txt", "file_type": "txt",
                                              "extracted_content": "Q3 revenue grew 4%"}]},
                            {"sender": "assistant", "text": "Revenue grew."}]}


def test_claude_attachment_text_is_kept_and_marked(tmp_path):
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps([CLAUDE]))
    (conv,) = load_conversations(path)
    assert conv.messages[0].content == ("Summarise the attached notes\n[attachment: notes.txt txt]\n"
                                        "Q3 revenue grew 4%")


def test_claude_message_that_is_a_string_is_one_bad_record(tmp_path):
    path = tmp_path / "conversations.json"
    broken = {**CLAUDE, "uuid": "c-2", "chat_messages": ["just a string"]}
    path.write_text(json.dumps([CLAUDE, broken]))
    with pytest.raises(RecordError, match=r"index 1: field 'chat_messages\[0\]': expected a message object, got str"):
        load_conversations(path)
    assert [c.id for c in load_conversations(path, on_error="skip")] == ["c-1"]


def test_a_5mb_message_is_cut_and_counted(tmp_path):
    path = tmp_path / "long.jsonl"
    path.write_bytes(_line(_rec(1, "word " * 1_000_000)) + _line(_rec(2)))
    convs = load_conversations(path)
    long = convs[0]
    assert len(long.messages[0].content) < 100_100 and long.messages[0].content.endswith("by clio_lab ...]")
    assert long.metadata["cut_messages"] == 1 and convs.report.cut_messages == 1
    assert any("5,000,000" in n for n in convs.report.notes)
    assert len(load_conversations(path, max_message_chars=None)[0].messages[0].content) == 5_000_000


# ---------------------------------------------------------------------------------------------- CLI
@pytest.mark.parametrize(("name", "make", "expected"), [
    ("x.jsonl", lambda p: p.mkdir(), "is a folder, not a file"),
    ("e.jsonl", lambda p: p.write_bytes(b""), "no conversations could be read; the file is empty"),
    ("s.jsonl", lambda p: p.write_bytes(_line({"id": "a", "messages": "x"}) * 2),
     "no conversations could be read; set aside: 2 x expected a list of messages, got str (first at line 1: "
     "field 'messages'"),
    ("b.jsonl", lambda p: p.write_bytes(b"\x00\x01\x02" * 100), "not a text file"),
    ("t.csv", lambda p: p.write_text("a,b\n"), "cannot tell the format"),
])
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, capsys, name, make, expected):
    path = tmp_path / name
    make(path)
    assert main(["run", str(path), "--out", str(tmp_path / "o"), "--on-error", "skip", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"clio-lab: {path}: ") and expected in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------------------------------------- fuzz
_leaf = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
         | st.sampled_from(["user", "assistant", "human", "gpt", "Hello there", "\u200b", "2025-01-01T00:00:00Z"]))
_json = st.recursive(_leaf,
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                     max_leaves=12)
_field = st.sampled_from(["id", "uuid", "messages", "conversations", "chat_messages", "mapping", "current_node",
                          "role", "content", "from", "value", "sender", "text", "attachments", "user_id",
                          "created_at", "metadata", "account", "parent", "message", "author", "parts"])
_anything = st.recursive(st.dictionaries(_field, _json, max_size=5),
                         lambda inner: st.dictionaries(_field, inner | _json | st.lists(inner, max_size=3), max_size=5),
                         max_leaves=20)


def _or_junk(strategy):
    """Mostly the well-formed value, sometimes any JSON in its place."""
    return st.one_of(strategy, strategy, strategy, _json)


_role = st.sampled_from(["user", "assistant", "system", "human", "gpt", "tool", "wizard"])
_text = st.text(max_size=20) | st.sampled_from(["Plan a trip to Rome", "\u200b\u200b", "", "Thanks!"])
_part = _or_junk(st.fixed_dictionaries({"type": st.sampled_from(["text", "image_url", "input_text"]), "text": _text}))
_openai = st.fixed_dictionaries({"id": _or_junk(st.text(min_size=1, max_size=6) | st.integers()),
                                 "messages": _or_junk(st.lists(_or_junk(st.fixed_dictionaries(
                                     {"role": _or_junk(_role),
                                      "content": _or_junk(_text | st.lists(_part, max_size=2))})), max_size=4))},
                                optional={"user_id": _json, "created_at": _json, "metadata": _json})
_sharegpt = st.fixed_dictionaries({"id": _or_junk(st.text(min_size=1, max_size=6)), "conversations": _or_junk(
    st.lists(_or_junk(st.fixed_dictionaries({"from": _or_junk(_role), "value": _or_junk(_text)})), max_size=4))})
_claude = st.fixed_dictionaries({
    "uuid": _or_junk(st.text(min_size=1, max_size=6)),
    "chat_messages": _or_junk(st.lists(_or_junk(st.fixed_dictionaries(
        {"sender": _or_junk(st.sampled_from(["human", "assistant"])), "text": _or_junk(_text)},
        optional={"content": _or_junk(st.lists(_part, max_size=2)), "files": _json,
                  "attachments": _or_junk(st.lists(_or_junk(st.fixed_dictionaries(
                      {"file_name": _json, "extracted_content": _or_junk(_text)})), max_size=2))})), max_size=3))},
    optional={"account": _or_junk(st.fixed_dictionaries({"uuid": _json})), "name": _json, "created_at": _json})
_node_id = st.sampled_from(["a", "b", "c"])
_chatgpt = st.fixed_dictionaries({
    "id": _or_junk(st.text(min_size=1, max_size=6)), "current_node": _or_junk(_node_id),
    "mapping": _or_junk(st.dictionaries(_node_id, _or_junk(st.fixed_dictionaries(
        {"id": _node_id, "parent": _or_junk(st.none() | _node_id),
         "message": _or_junk(st.none() | st.fixed_dictionaries(
             {"author": _or_junk(st.fixed_dictionaries({"role": _or_junk(_role)})),
              "content": _or_junk(st.fixed_dictionaries({"content_type": st.just("text"),
                                                         "parts": _or_junk(st.lists(_or_junk(_text), max_size=2))}))}))
         })), max_size=3))},
    optional={"title": _json, "create_time": _json})
_record = st.one_of(_openai, _sharegpt, _claude, _chatgpt, _anything)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(_record | _json, max_size=4), junk=st.binary(max_size=40), as_array=st.booleans())
def test_fuzzed_files_load_skip_with_a_place_or_fail_with_one(tmp_path, records, junk, as_array):
    """Any file of JSON-ish records (every parser's field names, any shapes) plus random bytes either loads,
    is set aside record by record with a location and a reason, or raises a located RecordError."""
    path = tmp_path / ("f.json" if as_array else "f.jsonl")
    if as_array:
        body = json.dumps(records).encode()
        body = body[:-1] + junk + b"]" if junk and len(body) > 2 else body
    else:
        body = b"".join(json.dumps(r).encode() + b"\n" for r in records) + junk
    path.write_bytes(body)
    try:
        convs = load_conversations(path, on_error="skip")
    except RecordError as exc:
        assert str(exc).startswith(str(path) + ":") and exc.reason
        return
    for s in convs.report.skipped:
        assert s.location and s.reason and "Traceback" not in s.reason
        assert "a record of a shape clio_lab cannot read" not in s.reason, s.reason  # each shape has its own words
    assert convs.report.loaded == len(convs)


def test_the_pii_detector_reads_any_length_in_overlapping_pieces(monkeypatch):
    """spaCy refuses texts over 1,000,000 characters (E088); the detector reads a long text in pieces and
    finds the same details at the same places as in one piece, including one across a piece's edge."""
    pytest.importorskip("presidio_analyzer")
    from clio_lab import pii

    text = ("Please write back soon. " * 60 + "Mail jane.doe@example.com or call +44 20 7946 0958. ") * 6
    whole = pii.PIIDetector().find(text)
    monkeypatch.setattr(pii, "CHUNK_CHARS", 1500)
    assert len(text) > 5 * pii.CHUNK_CHARS
    pieces = pii.PIIDetector().find(text)
    assert sorted((f.entity, f.start, f.end) for f in pieces) == sorted((f.entity, f.start, f.end) for f in whole)
    assert sum(text[f.start:f.end] == "jane.doe@example.com" for f in pieces) == 6


def test_crlf_line_ends_and_a_5000_turn_conversation_load_whole(tmp_path):
    """Measured working in the probe (issue 18, "also"): kept tested."""
    path = tmp_path / "crlf.jsonl"
    turns = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i}\r\nsecond line"}
             for i in range(5000)]
    path.write_bytes(b"\r\n".join(json.dumps(r).encode() for r in [_rec(1), {"id": "long", "messages": turns}])
                     + b"\r\n")
    convs = load_conversations(path)
    assert [c.id for c in convs] == ["c1", "long"] and len(convs[1].messages) == 5000
    assert convs[1].messages[1].content == "turn 1\r\nsecond line" and not convs.report.notes
