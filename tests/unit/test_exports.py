"""Exports as pure functions: Markdown structure, HTML that stays inert, BibTeX that parses."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import bibtexparser
import pytest

from agents.errors import Conflict
from backend.api.exports import negotiate, render_export
from backend.api.schemas import WorkflowPublic

ATTACK = (
    "Intro <script>alert(1)</script> text.\n\n"
    '[click me](javascript:alert(2)) and <a href="javascript:alert(3)">raw link</a>\n\n'
    '<img src="https://tracker.example/pixel.png" onerror="alert(4)">\n\n'
    '<p onclick="alert(5)" style="position:fixed">para</p> <svg onload="alert(6)"></svg>\n\n'
    '<iframe src="https://evil.example"></iframe> [data](data:text/html;base64,PHNjcmlwdD4=) '
    '<a href="JaVaScRiPt:alert(7)">mixed case</a> [S1]'
)


def research(report: str = "Tools help agents [S1]. Planning matters [S1, S3].", **result: Any) -> WorkflowPublic:
    sources = [
        {
            "id": "S1",
            "kind": "arxiv",
            "title": "Toolformer: Language Models Can Teach Themselves to Use Tools",
            "url": "https://arxiv.org/abs/2302.04761",
            "snippet": "…",
            "authors": ["Timo Schick", "Jane Dwivedi-Yu", "Roberto Dessì", "Roberta Raileanu"],
            "published": "2023-02-09",
        },
        {
            "id": "S2",
            "kind": "web",
            "title": "Never cited",
            "url": "https://example.org/uncited",
            "snippet": "…",
            "authors": [],
            "published": None,
        },
        {
            "id": "S3",
            "kind": "web",
            "title": "Agents & tools: 100% {practical} guide_#1",
            "url": "https://example.org/guide?a=1&b={x}",
            "snippet": "…",
            "authors": [],
            "published": None,
        },
    ]
    body = {
        "report_markdown": report,
        "sources": sources,
        "citations": {"S1": 2, "S3": 1},
        "removed_citations": [],
        "unsupported_claims": [],
        "abstained": False,
        **result,
    }
    return record("research", {"topic": "How do LLM agents use tools?", "sources": ["arxiv", "web"]}, body)


def reflection() -> WorkflowPublic:
    drafts = [
        {
            "version": 1,
            "text": "First try.",
            "critique": {"score": 5.0, "issues": [{"severity": "high", "text": "Thin"}]},
        },
        {"version": 2, "text": "## Better\n\nSecond try.", "critique": {"score": 8.5, "issues": [], "approved": True}},
    ]
    result = {"final": "## Better\n\nSecond try.", "best_version": 2, "best_score": 8.5, "drafts": drafts}
    return record("reflection", {"topic": "Explain vector clocks"}, result)


def record(
    kind: str, given: dict[str, Any], result: dict[str, Any] | None, status: str = "completed"
) -> WorkflowPublic:
    return WorkflowPublic.model_validate(
        {
            "workflow_id": "0b4f6c1e-1111-2222-3333-444455556666",
            "workflow_type": kind,
            "status": status,
            "created_at": "2026-03-01T10:00:00Z",
            "started_at": "2026-03-01T10:00:01Z",
            "finished_at": "2026-03-01T10:00:09Z" if result is not None else None,
            "execution_time": 8.0 if result is not None else None,
            "input": given,
            "result": result,
            "error": None,
            "progress": {"node": "finalize", "iteration": 0},
            "usage": {"input_tokens": 1200, "output_tokens": 300, "llm_calls": 3, "est_cost_usd": 0.0012},
            "correlation_id": None,
        }
    )


class _Collector(HTMLParser):
    """Every start tag with its attributes, for checks that do not depend on formatting."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags_of(page: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Collector()
    parser.feed(page)
    return parser.tags


# --- Markdown -----------------------------------------------------------------------------------


def test_research_markdown_has_title_question_report_and_numbered_references() -> None:
    text = render_export(research(), "md").body
    assert text.startswith("# How do LLM agents use tools?\n")
    assert "> **Question:** How do LLM agents use tools?" in text
    # Each cited id links to its entry in the references list.
    assert "Tools help agents [[S1](#ref-S1)]." in text
    assert "Planning matters [[S1](#ref-S1), [S3](#ref-S3)]." in text
    references = text.split("## References", 1)[1]
    assert '<a id="ref-S1"></a>**[S1]** Timo Schick, Jane Dwivedi-Yu, Roberto Dessì et al. (2023).' in references
    assert "(<https://arxiv.org/abs/2302.04761>)" in references
    assert "**[S3]**" in references
    assert "S2" not in references  # retrieved but never cited: not a reference


def test_research_markdown_lists_unsupported_claims() -> None:
    text = render_export(research(unsupported_claims=["LLMs never err."]), "md").body
    assert "## Unsupported claims" in text
    assert "- LLMs never err." in text


def test_reflection_markdown_has_final_draft_and_history_with_scores() -> None:
    text = render_export(reflection(), "md").body
    assert text.startswith("# Explain vector clocks\n")
    assert "> **Topic:** Explain vector clocks" in text
    final, appendix = text.split("## Appendix: draft history")
    assert "## Better\n\nSecond try." in final
    assert "### Version 1 · score 5/10" in appendix
    assert "- *high*: Thin" in appendix
    assert "> First try." in appendix
    assert "### Version 2 · score 8.5/10 · chosen" in appendix


def test_no_result_is_a_conflict() -> None:
    running = record("research", {"topic": "t"}, None, status="running")
    with pytest.raises(Conflict, match="running"):
        render_export(running, "md")


def test_bibtex_of_a_reflection_run_is_a_conflict() -> None:
    with pytest.raises(Conflict, match="BibTeX"):
        render_export(reflection(), "bib")


# --- HTML ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("workflow", [research(ATTACK), reflection()], ids=["research", "reflection"])
def test_html_is_a_self_contained_page(workflow: WorkflowPublic) -> None:
    export = render_export(workflow, "html")
    assert export.media_type == "text/html; charset=utf-8"
    page = export.body
    assert page.startswith("<!doctype html>")
    assert "<style>" in page and "@media print" in page
    for tag, attrs in tags_of(page):
        assert tag not in {"script", "link", "img", "iframe", "object", "embed", "svg"}
        assert "src" not in attrs


def test_html_renders_model_text_inert() -> None:
    page = render_export(research(ATTACK), "html").body
    tags = tags_of(page)
    lowered = page.lower()
    assert "<script" not in lowered
    assert "alert(1)" not in page  # the script's content goes with it
    # A refused link stays visible as text, but nothing points at a script or data URL.
    assert '="javascript:' not in lowered and "=javascript:" not in lowered
    assert '="data:' not in lowered
    assert "tracker.example" not in page
    assert "evil.example" not in page
    for _, attrs in tags:
        assert not [name for name in attrs if name.startswith("on")], attrs
        assert "style" not in attrs or attrs["style"] in {"text-align:left", "text-align:right", "text-align:center"}
    links = [attrs.get("href") for tag, attrs in tags if tag == "a" and attrs.get("href")]
    assert links, "the citations and references are still links"
    assert all(str(href).startswith(("#ref-", "https://")) for href in links), links
    assert not [attrs for _, attrs in tags if any("script" in str(value).lower() for value in attrs.values())]
    # The harmless text around the attack survives.
    assert "Intro" in page and "raw link" in page and "mixed case" in page


def test_html_citations_jump_to_reference_anchors() -> None:
    page = render_export(research(), "html").body
    tags = tags_of(page)
    anchors = {attrs["id"] for tag, attrs in tags if tag == "a" and attrs.get("id")}
    targets = {str(attrs["href"])[1:] for tag, attrs in tags if tag == "a" and str(attrs.get("href")).startswith("#")}
    assert targets == {"ref-S1", "ref-S3"}
    assert targets <= anchors
    assert '<a href="https://arxiv.org/abs/2302.04761" rel="noopener noreferrer nofollow">' in page
    assert "<title>How do LLM agents use tools?</title>" in page


def test_html_title_is_escaped() -> None:
    workflow = record("reflection", {"topic": "</title><script>x()</script>"}, reflection().result)
    page = render_export(workflow, "html").body
    assert "<title>&lt;/title&gt;&lt;script&gt;x()&lt;/script&gt;</title>" in page
    assert "<script" not in page.lower()


# --- BibTeX -------------------------------------------------------------------------------------


def test_bibtex_has_one_entry_per_cited_source_and_parses() -> None:
    export = render_export(research(), "bib")
    assert export.media_type == "application/x-bibtex; charset=utf-8"
    assert export.filename == "agentflow-research-0b4f6c1e.bib"
    entries = {entry["note"]: entry for entry in bibtexparser.loads(export.body).entries}
    assert set(entries) == {"Cited as [S1]", "Cited as [S3]"}
    paper = entries["Cited as [S1]"]
    assert paper["ENTRYTYPE"] == "misc"
    assert paper["ID"] == "schick2023toolformer"
    assert paper["eprint"] == "2302.04761"
    assert paper["archiveprefix"] == "arXiv"
    assert paper["author"] == "Timo Schick and Jane Dwivedi-Yu and Roberto Dessì and Roberta Raileanu"
    assert paper["year"] == "2023"
    assert paper["title"] == "Toolformer: Language Models Can Teach Themselves to Use Tools"
    page = entries["Cited as [S3]"]
    assert page["url"] == "https://example.org/guide?a=1&b=%7Bx%7D"
    assert page["urldate"] == "2026-03-01"
    # LaTeX specials are escaped, so the braces of the field stay balanced.
    assert page["title"] == r"Agents \& tools: 100\% \{practical\} guide\_\#1"
    assert "eprint" not in page


def test_bibtex_keys_are_unique() -> None:
    workflow = research()
    assert workflow.result is not None
    twin = {**workflow.result["sources"][0], "id": "S2", "url": "https://arxiv.org/abs/2302.99999"}
    workflow.result["sources"][1] = twin
    workflow.result["citations"] = {"S1": 1, "S2": 1}
    keys = [entry["ID"] for entry in bibtexparser.loads(render_export(workflow, "bib").body).entries]
    assert sorted(keys) == ["schick2023toolformer", "schick2023toolformera"]


def test_bibtex_header_cannot_open_an_entry() -> None:
    workflow = research()
    workflow.input["topic"] = "@misc{injected, title={x}}"
    body = render_export(workflow, "bib").body
    assert len(bibtexparser.loads(body).entries) == 2
    assert re.search(r"^@misc\{injected", body, re.MULTILINE) is None


def test_bibtex_of_an_abstained_run_is_empty() -> None:
    workflow = research("No report was written.", sources=[], citations={}, abstained=True)
    assert bibtexparser.loads(render_export(workflow, "bib").body).entries == []


# --- JSON and negotiation -----------------------------------------------------------------------


def test_json_export_is_the_public_record() -> None:
    workflow = research()
    assert WorkflowPublic.model_validate_json(render_export(workflow, "json").body) == workflow


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "md"),
        ("*/*", "md"),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "html"),
        ("application/json", "json"),
        ("application/x-bibtex", "bib"),
        ("text/markdown;charset=utf-8", "md"),
        ("text/html;q=0.5, application/json;q=0.9", "json"),
        ("application/json;q=0, text/html", "html"),
        ("image/png", "md"),
    ],
)
def test_accept_negotiation(accept: str | None, expected: str) -> None:
    assert negotiate(accept) == expected
