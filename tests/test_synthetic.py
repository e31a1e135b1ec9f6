from clio_lab.synthetic import TAXONOMY, generate_corpus


def test_deterministic_by_seed_and_different_across_seeds():
    assert generate_corpus(50, seed=1) == generate_corpus(50, seed=1)
    assert generate_corpus(50, seed=1) != generate_corpus(50, seed=2)


def test_planted_spans_point_at_their_values():
    records = generate_corpus(400, seed=3)
    spans = [(r, s) for r in records for s in r["metadata"]["pii"]]
    assert len(spans) > 100
    for r, s in spans:
        assert r["messages"][s["message"]]["content"][s["start"]:s["end"]] == s["value"]
    assert {s["kind"] for _, s in spans} == {"name", "email", "phone", "address", "id_number", "employer"}


def test_structure_languages_and_repeat_users():
    records = generate_corpus(300, seed=0)
    assert len(TAXONOMY) >= 15
    subs = {r["metadata"]["subtopic"] for r in records}
    assert len(subs) == sum(len(v) for v in TAXONOMY.values())
    assert len({r["metadata"]["language"] for r in records}) >= 5
    users = [r["user_id"] for r in records]
    assert 30 < len(set(users)) < 150 and max(users.count(u) for u in set(users)) >= 10


def test_bundled_file_is_what_the_generator_makes():
    import json

    from conftest import DEMO

    bundled = [json.loads(line) for line in DEMO.read_text().splitlines()]
    assert bundled == generate_corpus(200, seed=0)
