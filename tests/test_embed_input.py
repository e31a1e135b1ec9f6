"""What each conversation contributes to its embedding (clio_lab/embed_input.py)."""

import clio_lab
from clio_lab.embed_input import RepeatedSentences, embed_conversations, sentence_key, texts_to_embed
from clio_lab.facets import user_text


def _conv(i, text, user=None):
    return clio_lab.Conversation(id=str(i), user_id=user, messages=[clio_lab.Message(role="user", content=text)])


def test_sentences_repeated_across_the_corpus_are_left_out_and_topical_ones_kept():
    texts = [f"Hi! Nothing I try works. {topic} Thanks so much." for topic in
             ["Fix my Python loop.", "Bake sourdough bread.", "Plan a trip to Lisbon."] * 10]
    rep = RepeatedSentences(max_share=0.4, min_count=5).fit(texts)  # repeated: in more than 12 of the 30
    assert rep.transform(texts[:2]) == ["Fix my Python loop.", "Bake sourdough bread."]
    assert len(rep.keys_) == 3  # "Hi!", "Nothing I try works.", "Thanks so much." (each topic is in only 10)


def test_both_floors_must_be_passed():
    texts = ["Should I see a doctor? I have a cough."] * 6 + [f"Request {i}." for i in range(194)]
    assert RepeatedSentences().fit(texts).keys_ == frozenset()  # 6 of 200: over 1% but not over 20
    assert RepeatedSentences(min_count=5).fit(texts).keys_ == {sentence_key("Should I see a doctor?"),
                                                                sentence_key("I have a cough.")}


def test_a_text_made_only_of_repeated_sentences_is_kept_whole_and_case_or_punctuation_do_not_matter():
    rep = RepeatedSentences(min_count=1, max_share=0.1).fit(["Please continue.", "please CONTINUE!", "Write a poem."])
    assert rep.remove("Please continue") == ("Please continue", 0)
    assert rep.remove("Please continue. Write a haiku.") == ("Write a haiku.", 1)


def test_without_repeated_sentences_the_embedded_text_is_what_it_always_was():
    convs = [_conv(1, "Fix my code. " * 300), _conv(2, "Bake bread.")]
    texts, sources = texts_to_embed(convs, [None, "bake bread."], "text")
    assert texts == [user_text(c) for c in convs] and sources == ["text", "text"]
    texts, sources = texts_to_embed(convs, [None, "bake bread."], "summary")
    assert texts == [user_text(convs[0]), "bake bread."] and sources == ["text (summary failed)", "summary"]


def test_a_corpus_is_embedded_without_its_boilerplate_and_saves_only_hashes(fake_embedder):
    topics = ["Fix my Python loop.", "Bake sourdough bread.", "Plan a trip.", "Write a poem.", "Fix a tap.",
              "Learn French."]
    convs = [_conv(i, f"Hello there. {t}", user=f"u{i % 7}") for i, t in enumerate(topics * 10)]
    space = embed_conversations(convs, [None] * 60, fake_embedder, embed_on="text", cache=None)
    assert space.texts[:2] == ["Fix my Python loop.", "Bake sourdough bread."]
    assert space.requests == space.texts and space.X.shape == (60, 64)
    saved = space.repeated_config()
    assert saved["sentences"] == 1 and all(len(k) == 16 for k in saved["keys"])  # hashes, never the sentences
    assert "hello" not in str(saved).lower()
    assert space.centring == {"centred": [], "reason": "one language"}


def test_unit_rows_uses_unit_float32_rows_as_they_are_and_normalises_anything_else():
    import numpy as np

    from clio_lab.embeddings import l2_normalise, unit_rows

    X = l2_normalise(np.random.default_rng(0).random((10, 4)))
    X[3] = 0.0  # a zero row stays zero and does not force a copy
    assert unit_rows(X) is X
    assert unit_rows(X, chunk=3) is X
    raw = np.random.default_rng(1).random((10, 4)).astype(np.float32)
    out = unit_rows(raw, chunk=3)
    assert out is not raw and np.allclose(np.linalg.norm(out, axis=1), 1.0)
    as64 = X.astype(np.float64)
    assert unit_rows(as64).dtype == np.float32  # the dtype the steps expect, whatever came in
