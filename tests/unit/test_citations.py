"""The citation verifier: only retrieved sources may be cited in a research report."""

from __future__ import annotations

import pytest

from agents.citations import arxiv_id_of, source_key, verify_citations

SOURCES = [
    {"id": "S1", "url": "https://arxiv.org/abs/2401.01234", "kind": "arxiv"},
    {"id": "S2", "url": "https://example.org/rag/guide", "kind": "web"},
    {"id": "S3", "url": "https://docs.example.com/agents?page=2", "kind": "web"},
]


def verify(text: str) -> tuple[str, dict[str, int], list[str]]:
    result = verify_citations(text, SOURCES)
    return result.text, result.citations, result.removed


# --- [S#] citations -----------------------------------------------------------------------------


def test_single_citation_is_kept_and_counted() -> None:
    assert verify("RAG helps [S2].") == ("RAG helps [S2].", {"S2": 1}, [])


def test_grouped_citations_are_kept_and_each_counted() -> None:
    text, citations, removed = verify("Both agree [S1, S2]. Again [S1,S3] and [S2; S3].")
    assert text == "Both agree [S1, S2]. Again [S1, S3] and [S2, S3]."
    assert citations == {"S1": 2, "S2": 2, "S3": 2}
    assert removed == []


def test_adjacent_citations_are_kept() -> None:
    text, citations, removed = verify("Shown twice [S1][S2].")
    assert text == "Shown twice [S1][S2]."
    assert citations == {"S1": 1, "S2": 1}
    assert removed == []


def test_unknown_id_is_removed_with_its_brackets() -> None:
    text, citations, removed = verify("A real claim [S1] and an invented one [S99].")
    assert text == "A real claim [S1] and an invented one."
    assert citations == {"S1": 1}
    assert removed == ["S99"]


def test_unknown_ids_are_dropped_from_a_group_and_from_adjacent_brackets() -> None:
    text, citations, removed = verify("Mixed [S2, S99, S2] and [S98][S3].")
    assert text == "Mixed [S2] and [S3]."
    assert citations == {"S2": 1, "S3": 1}
    assert removed == ["S99", "S98"]


def test_citation_counts_are_ordered_numerically() -> None:
    sources = [{"id": f"S{n}", "url": f"https://example.org/{n}"} for n in range(1, 12)]
    result = verify_citations("[S11] [S2] [S10] [S1]", sources)
    assert list(result.citations) == ["S1", "S2", "S10", "S11"]


def test_sources_without_citations_are_not_counted() -> None:
    assert verify("No citations at all.")[1] == {}


# --- URLs ---------------------------------------------------------------------------------------


def test_unretrieved_bare_url_is_removed() -> None:
    text, _, removed = verify("See https://evil.example.com/paper for details [S1].")
    assert text == "See for details [S1]."
    assert "evil.example.com" not in text
    assert removed == ["https://evil.example.com/paper"]


def test_retrieved_bare_url_is_rewritten_to_its_id() -> None:
    text, citations, removed = verify("See https://example.org/rag/guide.")
    assert text == "See [S2]."
    assert citations == {"S2": 1}
    assert removed == []


def test_url_matching_ignores_scheme_www_trailing_slash_and_fragment() -> None:
    text, citations, _ = verify("A http://www.example.org/rag/guide/#intro B")
    assert text == "A [S2] B"
    assert citations == {"S2": 1}


def test_url_query_strings_must_match() -> None:
    text, _, removed = verify("https://docs.example.com/agents?page=2 and https://docs.example.com/agents?page=3")
    assert text == "[S3] and"
    assert removed == ["https://docs.example.com/agents?page=3"]


def test_unretrieved_markdown_link_keeps_its_text() -> None:
    text, citations, removed = verify("Read [the survey](https://nowhere.example.net/x) first.")
    assert text == "Read the survey first."
    assert removed == ["https://nowhere.example.net/x"]
    assert citations == {}


def test_retrieved_markdown_link_becomes_text_and_citation() -> None:
    text, citations, removed = verify('Read [the guide](https://example.org/rag/guide "Guide") first.')
    assert text == "Read the guide [S2] first."
    assert citations == {"S2": 1}
    assert removed == []


def test_citation_written_as_a_link_is_judged_by_its_id() -> None:
    text, citations, removed = verify(
        "Claim [S1](https://evil.example.com/q) and [S42](https://example.org/rag/guide)."
    )
    assert text == "Claim [S1] and."
    assert citations == {"S1": 1}
    assert removed == ["https://evil.example.com/q", "S42"]


def test_image_and_autolink_urls_are_checked_too() -> None:
    text, citations, removed = verify("![chart](https://evil.example.com/c.png) <https://example.org/rag/guide>")
    assert text == "chart [S2]"
    assert citations == {"S2": 1}
    assert removed == ["https://evil.example.com/c.png"]


def test_removed_urls_leave_no_empty_parentheses_bullets_or_separators() -> None:
    text, _, removed = verify(
        "Claim [S1] (https://bad.example/a).\n- https://bad.example/b\n- kept [S2]\nSee: https://c.bad, https://d.bad\n"
    )
    assert text == "Claim [S1].\n- kept [S2]\nSee:\n"
    assert removed == ["https://bad.example/a", "https://bad.example/b", "https://c.bad", "https://d.bad"]


# --- arXiv identifiers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mention", "token"),
    [
        ("arXiv:2402.99999", "arXiv:2402.99999"),
        ("arXiv: 2402.99999v3", "arXiv: 2402.99999v3"),
        ("2402.99999v2", "2402.99999v2"),
        ("2402.9999", "2402.9999"),
        ("arXiv:hep-th/9901001", "arXiv:hep-th/9901001"),
    ],
)
def test_unretrieved_arxiv_id_is_removed(mention: str, token: str) -> None:
    text, _, removed = verify(f"As shown in {mention}, agents plan [S1].")
    assert text == "As shown in, agents plan [S1]."
    assert removed == [token]


@pytest.mark.parametrize("mention", ["arXiv:2401.01234", "2401.01234v2", "https://arxiv.org/pdf/2401.01234v1.pdf"])
def test_retrieved_arxiv_id_or_url_is_rewritten_to_its_id(mention: str) -> None:
    text, citations, removed = verify(f"As shown in {mention}.")
    assert text == "As shown in [S1]."
    assert citations == {"S1": 1}
    assert removed == []


@pytest.mark.parametrize("number", ["3.14159", "2024.5", "1234.56789", "2401.1", "v2401.01234", "12401.01234"])
def test_ordinary_numbers_are_not_mistaken_for_arxiv_ids(number: str) -> None:
    assert verify(f"The value was {number} overall.") == (f"The value was {number} overall.", {}, [])


# --- the whole pass -----------------------------------------------------------------------------


def test_a_report_keeps_only_retrieved_citations() -> None:
    report = (
        "## Findings\n\n"
        "Agents use tools [S1, S99]. A blog agrees (https://example.org/rag/guide) and so does "
        "[a paper](https://arxiv.org/abs/2401.01234v2), unlike arXiv:2501.00001 and "
        "https://made-up.example.org/x.\n"
    )
    text, citations, removed = verify(report)
    assert text == (
        "## Findings\n\nAgents use tools [S1]. A blog agrees ([S2]) and so does a paper [S1], unlike and.\n"
    )
    assert citations == {"S1": 2, "S2": 1}
    assert removed == ["https://made-up.example.org/x", "arXiv:2501.00001", "S99"]


def test_no_sources_means_every_citation_is_removed() -> None:
    result = verify_citations("Claim [S1] from https://example.org/x.", [])
    assert result.text == "Claim from."
    assert result.citations == {}
    assert result.removed == ["https://example.org/x", "S1"]


def test_result_unpacks_as_a_tuple_and_ignores_stray_markers() -> None:
    text, citations, removed = verify_citations("a\x00b [S1]", SOURCES)
    assert (text, citations, removed) == ("ab [S1]", {"S1": 1}, [])


def test_markdown_structure_is_left_alone() -> None:
    report = "# Title\n\n    indented code 1234.5678\n\n| a | b |\n|---|---|\n| 1 | 2 [S3] |\n"
    assert verify(report) == (report, {"S3": 1}, [])


# --- keys ---------------------------------------------------------------------------------------


def test_source_keys() -> None:
    assert source_key("https://arxiv.org/abs/2401.01234v3") == "arxiv:2401.01234"
    assert source_key("http://export.arxiv.org/pdf/2401.01234.pdf") == "arxiv:2401.01234"
    assert source_key("HTTPS://WWW.Example.org/a/#x") == "example.org/a"
    assert source_key("https://example.org:8443/a?q=1") == "example.org:8443/a?q=1"
    assert arxiv_id_of("https://example.org/abs/2401.01234") is None
