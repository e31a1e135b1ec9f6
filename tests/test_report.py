"""The offline report (clio_lab/report.py): one valid HTML document built from the released tree only, every
figure in words or tables (no JSON for a reader), model-written text escaped."""

from html.parser import HTMLParser

import pytest

import clio_lab
from clio_lab import LLM
from clio_lab.report import render_report


class _Page(HTMLParser):
    """The tags, the text a reader sees (outside <script> and <style>) and the images of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []
        self.images: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self._hidden += tag in ("script", "style")
        if tag == "img":
            self.images.append(dict(attrs).get("src", ""))

    def handle_endtag(self, tag):
        self._hidden -= tag in ("script", "style")

    def handle_data(self, data):
        if not self._hidden:
            self.text.append(data)


def _parse(document: str) -> _Page:
    page = _Page()
    page.feed(document)
    page.close()
    return page


@pytest.fixture
def run(tmp_path, fake_llm, fake_embedder, demo_convs):
    convs = [c.model_copy(update={"user_id": f"u{i}"}) for i, c in enumerate(demo_convs)]
    return clio_lab.run_pipeline(convs, llm=LLM(model="fake/m", prompt_style="completion"), embedder=fake_embedder,
                                 cache=tmp_path / "c", k=10, min_conversations=4, min_users=4, progress=False)


def test_the_report_is_one_document_a_person_reads(run):
    page = _parse(render_report(run))
    assert page.tags.count("html") == page.tags.count("body") == 1 and page.tags[0] == "html"
    text = " ".join(" ".join(page.text).split())
    assert '{"' not in text and "': " not in text  # no JSON or Python dict for a reader
    for heading in ("Map", "Clusters", "Hierarchy", "Privacy", "Failures and data", "Run"):
        assert heading in text
    stats = run.stats()
    assert f"{stats['conversations']} conversations" in text or str(stats["conversations"]) in text
    assert "at least 4 conversations and 4 distinct users per cluster" in text
    # the map is drawn into the page itself: nothing is fetched when it opens
    assert page.images and all(src.startswith("data:image/png;base64,") for src in page.images)
    assert not any(src.startswith("http") for src in page.images)


def test_the_report_shows_released_clusters_only(run):
    document = render_report(run)
    shown = {n.name for n in run.hierarchy.nodes.values()}
    hidden = {n.name for n in run.full_hierarchy.nodes.values()} - shown
    assert hidden and not any(name in document for name in hidden)
    assert all(n.name in document for n in run.hierarchy.top)


def test_model_written_markup_is_escaped(run):
    node = run.hierarchy.top[0]
    node.name = '<img src=x onerror="alert(1)">'
    node.description = "<script>alert(2)</script>"
    document = render_report(run)
    assert '<img src=x onerror="alert(1)">' not in document and "<script>alert(2)</script>" not in document
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in document
    assert _parse(document).tags.count("html") == 1


def test_no_category_in_the_report_opens_onto_itself(run):
    from clio_lab.report import _tree

    def walk(nodes):
        for n in nodes:
            kids = n["children"]
            assert not (len(kids) == 1 and kids[0]["name"] == n["name"] and kids[0]["size"] == n["size"]), n["name"]
            walk(kids)

    tree = _tree(run.clusters_frame())
    walk(tree)
    assert sum(n["size"] for n in tree) == len(run.conversations)  # every conversation is still under the top
