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
    assert text == ("## Findings\n\nAgents use tools [S1]. A blog agrees ([S2]) and so does a paper [S1], unlike.\n")
    assert citations == {"S1": 2, "S2": 1}
    assert removed == ["https://made-up.example.org/x", "arXiv:2501.00001", "S99"]


def test_no_sources_means_every_citation_is_removed() -> None:
    result = verify_citations("Claim [S1] from https://example.org/x.", [])
    assert result.text == "Claim from."
    assert result.citations == {}
    assert result.removed == ["https://example.org/x", "S1"]


def test_result_unpacks_as_a_tuple_and_ignores_stray_markers() -> None:
    text, citations, removed, unsupported = verify_citations("a\x00b\x01 [S1]", SOURCES)
    assert (text, citations, removed, unsupported) == ("ab [S1]", {"S1": 1}, [], [])


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


# --- every other form of reference is removed ---------------------------------------------------


@pytest.mark.parametrize(
    "mention",
    [
        "HTTPS://EVIL.example.com/A",
        "Http://evil.example.com/paper",
        "www.example.com/x",
        "WWW.evil.example.com",
        "example.net/report.pdf",
        "evil-site.co.uk/a/b?c=1",
        "ftp://files.example.net/data.csv",
        "s3://bucket/key",
        "//host/x",
        "//cdn.example.net/lib.js",
        "doi:10.9999/abc.123",
        "DOI: 10.9999/xyz",
        "10.9999/abc",
        "10.1016/S0140-6736(20)30183-5",
        "https://doi.org/10.9999/abc",
        "arXiv:2402.99999",
        "(Smith et al., 2020)",
        "(Smith and Jones, 2019; Lee 2021)",
        "(see García-Pérez & O'Neil 2018a, p. 4)",
        "(van der Berg, 2017)",
        "(WHO, 2020)",
        "[Smith, 2020]",
        "(S42)",
        "(S1)",
        "(S1, S2)",
        "S77",
        "S1",
        "[S 88]",
        "[s55]",
        "[s1]",
        "［S66］",
        "［S1］",
        "【S7】",
        "[Ｓ９]",
        "[^3]",
        "[12]",
        "[2, 3]",
        "[Source 2]",
        "[ref. 4]",
    ],
)
def test_every_other_reference_form_is_removed_and_listed(mention: str) -> None:
    text, citations, removed, unsupported = verify_citations(f"Agents plan well {mention}, and act [S1].", SOURCES)
    assert text == "Agents plan well, and act [S1]."
    # Ids are listed without the parentheses around them; everything else as written.
    assert removed == (mention.strip("()").split(", ") if mention[:3] in {"(S1", "(S4"} else [mention])
    assert citations == {"S1": 1}
    assert unsupported == []  # the sentence still cites a retrieved source


@pytest.mark.parametrize(
    ("sentence", "expected", "token"),
    [
        ("Agents plan, as Smith and Jones (2019) found [S1].", "Agents plan, as found [S1].", "Smith and Jones (2019)"),
        ("Agents plan, as Smith et al. (2020) found [S1].", "Agents plan, as found [S1].", "Smith et al. (2020)"),
        ("Agents plan, as Smith's (2020) study found [S1].", "Agents plan, as study found [S1].", "Smith's (2020)"),
        (
            "Agents plan, as Lee, Kim and Park (2021a) found [S1].",
            "Agents plan, as found [S1].",
            "Lee, Kim and Park (2021a)",
        ),
        ("Agents plan, as Smith et al. found [S1].", "Agents plan, as found [S1].", "Smith et al."),
        ("Agents plan [S1], as found by Smith et al.", "Agents plan [S1], as found by.", "Smith et al"),
    ],
)
def test_narrative_author_year_citations_are_removed(sentence: str, expected: str, token: str) -> None:
    text, _, removed, _ = verify_citations(sentence, SOURCES)
    assert text == expected
    assert removed == [token]


def test_url_forms_of_a_retrieved_source_become_its_id() -> None:
    report = (
        "A HTTPS://EXAMPLE.ORG/rag/guide B www.example.org/rag/guide C example.org/rag/guide/ "
        "D //example.org/rag/guide E ftp://example.org/rag/guide F arxiv.org/abs/2401.01234v2."
    )
    text, citations, removed, _ = verify_citations(report, SOURCES)
    assert text == "A [S2] B [S2] C [S2] D [S2] E [S2] F [S1]."
    assert citations == {"S1": 1, "S2": 5}
    assert removed == []


def test_a_doi_of_a_retrieved_source_becomes_its_id() -> None:
    sources = [*SOURCES, {"id": "S4", "url": "https://doi.org/10.1234/abc.5"}]
    text, citations, removed, _ = verify_citations("Shown in doi:10.1234/abc.5 and 10.1234/abc.5.", sources)
    assert text == "Shown in [S4] and [S4]."
    assert citations == {"S4": 2}
    assert removed == []


def test_html_and_reference_style_links_are_judged_like_inline_links() -> None:
    report = (
        'Read <a href="https://evil.example.com/a">this page</a>, [the guide][g] and [that][o].\n\n'
        "[g]: https://example.org/rag/guide\n"
        '[o]: https://evil.example.com/o "Title"\n'
    )
    text, citations, removed, _ = verify_citations(report, SOURCES)
    assert text == "Read this page, the guide [S2] and that.\n"
    assert citations == {"S2": 1}
    assert removed == ["https://evil.example.com/a", "https://evil.example.com/o"]


def test_links_within_the_report_are_not_references() -> None:
    assert verify("See [the method](#method) below [S1].") == ("See the method below [S1].", {"S1": 1}, [])


def test_footnotes_are_removed_with_their_definitions() -> None:
    text, _, removed, unsupported = verify_citations("Agents plan[^1].\n\n[^1]: Smith 2020, Journal of X.\n", SOURCES)
    assert text == "Agents plan.\n"
    assert removed == ["[^1]", "Smith 2020, Journal of X."]
    assert unsupported == ["Agents plan."]


@pytest.mark.parametrize(
    "prose",
    [
        "Accuracy rose from 3.5 to 4.25 points (about 21%), roughly 1.5x; it costs $3.50 per 1,000 tokens.",
        "Use Python 3.11 or version 2.1.3-beta; v1.2, 1.0.0rc1 and 10.12 also work.",
        "Models such as GPT-4 and Llama 2 (2023) were compared, e.g. on MMLU, i.e. a benchmark.",
        "In 2020 the field grew; by 2023 (and again in 2024) it doubled. COVID (2020) and BERT (2018) mattered.",
        "The files report.pdf and config.yaml live in docs/guide.md and src/agents/citations.py.",
        "Frameworks like Node.js/Deno and ASP.NET/C# are common, and/or TCP/IP.",
        "Dr. Smith and Prof. Lee met at 10.30 a.m. on Jan. 5 in the U.S. and the E.U.",
        "The ratio was 10.5/20, scores of 9/10 were common, and f(x) = [0, 1] while x[1] = 2.",
        "Step 1: plan. Section 3 covers S-curves, the S&P 500, Amazon S3, Table S2 and Figure S1.",
        "Use [x] for done and [ ] for open; [sic] and [...] are editorial.",
        "Write to team@example.com in March (2021) or by June 2022.",
        "- first item\n- second item with 2.5 ms latency\n\n| Model | Score |\n|---|---|\n| A | 3.5 |\n",
        "```python\nx = 1.5  # see report.pdf\n```\n",
    ],
)
def test_ordinary_prose_is_left_alone(prose: str) -> None:
    assert verify_citations(prose, SOURCES) == (prose, {}, [], [])


# --- claims left without a citation -------------------------------------------------------------

UNSUPPORTED_REPORT = (
    "# Report\n\n"
    "## Findings (Smith, 2020)\n\n"
    "Agents plan [S1]. Agents never fail [S99]. Tools help (Smith et al., 2020). Memory helps [S2, S42].\n\n"
    "- Search wins, e.g. in www.evil.example.com/x.\n"
    "- Reflection works [S3].\n"
    "- Uncited, but nothing was removed.\n\n"
    "Claim one. [S98] Claim two [S3].\n\n"
    "## References\n\n"
    "- [S1] A retrieved paper.\n"
    "- Smith, J. (2020). A paper nobody retrieved. https://evil.example.com/p\n"
)
UNSUPPORTED = ["Agents never fail.", "Tools help.", "Search wins, e.g. in.", "Claim one."]


def test_sentences_that_lost_their_only_citation_are_flagged() -> None:
    text, citations, removed, unsupported = verify_citations(UNSUPPORTED_REPORT, SOURCES)
    assert unsupported == UNSUPPORTED
    assert all(sentence in text for sentence in unsupported)
    assert text == (
        "# Report\n\n"
        "## Findings\n\n"
        "Agents plan [S1]. Agents never fail. Tools help. Memory helps [S2].\n\n"
        "- Search wins, e.g. in.\n"
        "- Reflection works [S3].\n"
        "- Uncited, but nothing was removed.\n\n"
        "Claim one. Claim two [S3].\n\n"
        "## References\n\n"
        "- [S1] A retrieved paper.\n"
    )
    assert citations == {"S1": 2, "S2": 1, "S3": 2}
    assert removed == [
        "www.evil.example.com/x",
        "https://evil.example.com/p",
        "(Smith, 2020)",
        "(Smith et al., 2020)",
        "S99",
        "S42",
        "S98",
        "Smith, J. (2020). A paper nobody retrieved.",
    ]


def test_sentences_that_lost_their_only_citation_can_be_dropped() -> None:
    text, citations, _, unsupported = verify_citations(UNSUPPORTED_REPORT, SOURCES, unsupported="drop")
    assert unsupported == UNSUPPORTED
    assert all(sentence not in text for sentence in unsupported)
    assert text == (
        "# Report\n\n"
        "## Findings\n\n"
        "Agents plan [S1]. Memory helps [S2].\n\n"
        "- Reflection works [S3].\n"
        "- Uncited, but nothing was removed.\n\n"
        "Claim two [S3].\n\n"
        "## References\n\n"
        "- [S1] A retrieved paper.\n"
    )
    assert citations == {"S1": 2, "S2": 1, "S3": 2}


def test_dropping_every_sentence_of_a_paragraph_drops_the_paragraph() -> None:
    report = "## A\n\nAgents plan [S1].\n\nThey never fail [S99]. Ever (Smith, 2020).\n\n## B\n\nTools help [S2].\n"
    text, _, _, unsupported = verify_citations(report, SOURCES, unsupported="drop")
    assert text == "## A\n\nAgents plan [S1].\n\n## B\n\nTools help [S2].\n"
    assert unsupported == ["They never fail.", "Ever."]


def test_a_references_list_keeps_only_retrieved_sources() -> None:
    report = (
        "Agents plan [S1].\n\n"
        "**Sources:**\n\n"
        "1. Doe, J. (2021). Made up. Journal of Things.\n"
        "2. Lee, K. Another one, 2019.\n"
    )
    text, _, removed, unsupported = verify_citations(report, SOURCES)
    assert text == "Agents plan [S1].\n"
    assert removed == ["Doe, J. (2021). Made up. Journal of Things.", "Lee, K. Another one, 2019."]
    assert unsupported == []


def test_a_claim_that_never_had_a_citation_is_not_reported() -> None:
    assert verify_citations("Agents plan. Tools help [S1].", SOURCES).unsupported == []
