"""Citations that cannot be smuggled past the verifier, end to end through the app and both writers.

The OpenAI stand-in writes a report (or, with ``reflect``, a revision) holding every reference form
users found reaching completed reports; none may reach ``report_markdown``.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.standins import ChatRequest, StandinServer
from tests.standins import OpenAIConfig as OpenAIStandin
from workflows.graphs.research import build_graph

TOPIC = "Tool use in language model agents"
SMALL = {"max_queries": 1, "max_results_per_query": 2}  # at most four sources: S1 to S4

# (sentence as the model writes it, what ``removed_citations`` must name); LEFT: what each leaves behind
SMUGGLED = [
    ("Planning improves with scale HTTPS://EVIL.example.com/upper.", "HTTPS://EVIL.example.com/upper"),
    ("Tools reduce errors Http://evil.example.com/mixed.", "Http://evil.example.com/mixed"),
    ("Benchmarks saturate quickly, see www.evil-example.com/x.", "www.evil-example.com/x"),
    ("Costs fall every year, per evil-example.org/report.pdf.", "evil-example.org/report.pdf"),
    ("Logs are mirrored at ftp://files.evil-example.net/data.", "ftp://files.evil-example.net/data"),
    ("Agents cache results //evilhost/x.", "//evilhost/x"),
    ("Memory helps long tasks doi:10.9999/abc.123.", "doi:10.9999/abc.123"),
    ("Retrieval beats fine-tuning 10.9999/abc.", "10.9999/abc"),
    ("Critics catch most mistakes arXiv:1912.99999.", "arXiv:1912.99999"),
    ("Reflection doubles accuracy (Smith et al., 2020).", "(Smith et al., 2020)"),
    ("Smith and Jones (2019) showed that agents self-correct.", "Smith and Jones (2019)"),
    ("Search agents hallucinate less (S42).", "S42"),
    ("Tool errors compound over steps S77.", "S77"),
    ("Parallel calls halve latency [S 88].", "[S 88]"),
    ("Verifiers generalise poorly [s55].", "[s55]"),
    ("Small models plan badly ［S66］.", "［S66］"),
    ("Every agent needs a planner [S99].", "S99"),
]
LEFT = [
    "Planning improves with scale.",
    "Tools reduce errors.",
    "Benchmarks saturate quickly, see.",
    "Costs fall every year, per.",
    "Logs are mirrored at.",
    "Agents cache results.",
    "Memory helps long tasks.",
    "Retrieval beats fine-tuning.",
    "Critics catch most mistakes.",
    "Reflection doubles accuracy.",
    "showed that agents self-correct.",
    "Search agents hallucinate less.",
    "Tool errors compound over steps.",
    "Parallel calls halve latency.",
    "Verifiers generalise poorly.",
    "Small models plan badly.",
    "Every agent needs a planner.",
]
SUPPORTED = "Agents call tools through structured interfaces [S1]."
SMUGGLING_REPORT = (
    f"## Summary\n\n{SUPPORTED}\n\n## Findings\n\n"
    + "\n".join(f"- {sentence}" for sentence, _ in SMUGGLED)
    + "\n\n## References\n\n- [S1] A retrieved source.\n- Smith, J. (2020). Never retrieved. Journal of Agents.\n"
)
CLEAN_REPORT = f"## Summary\n\n{SUPPORTED}\n"
# Fragments of the smuggled references that must not survive anywhere in the report.
FRAGMENTS = ["://", "www.", "evil", "10.9999", "1912.99999", "Smith", "Jones", "S42", "S77", "S 88", "s55", "S66"]


def is_synthesis(request: ChatRequest) -> bool:
    message = request.last_user_message
    return request.schema_name is None and "<sources>" in message and "<report>" not in message


def is_revision(request: ChatRequest) -> bool:
    return request.schema_name is None and "<report>" in request.last_user_message


async def research(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    """Submit a research workflow, wait for it to end and return its completed record."""
    response = await client.post("/workflows/research?wait=30", json={"topic": TOPIC, **SMALL, **body})
    assert response.status_code == 200, response.text
    record: dict[str, Any] = response.json()
    assert record["status"] == "completed", record
    return record


def assert_nothing_smuggled(result: dict[str, Any]) -> None:
    report = result["report_markdown"]
    known = {source["id"] for source in result["sources"]}
    assert len(known) <= 4
    for sentence, token in SMUGGLED:
        assert token not in report, token
        assert token in result["removed_citations"], token
        assert sentence not in report
    for fragment in FRAGMENTS:
        assert fragment not in report, fragment
    assert "Smith, J. (2020). Never retrieved. Journal of Agents." in result["removed_citations"]
    # Allow-list: the only bracketed things left are canonical groups of retrieved sources.
    assert re.findall(r"[\[［【(][^\]］】)]*[\]］】)]", report) == re.findall(r"\[S\d+(?:, S\d+)*\]", report)
    assert set(re.findall(r"S\d+", report)) <= known
    assert SUPPORTED in report
    assert result["citations"] == {"S1": 2}  # the supported claim and its references entry


def test_every_node_that_writes_report_text_hands_it_to_the_verifier() -> None:
    edges = {(edge.source, edge.target, edge.conditional) for edge in build_graph().get_graph().edges}
    writers = {"synthesize", "revise"}  # they write ``draft``; only verify_citations writes ``report``

    assert {(source, target) for source, target, conditional in edges if source in writers} == {
        ("synthesize", "verify_citations"),
        ("revise", "verify_citations"),
    }
    assert not any(conditional for source, _, conditional in edges if source in writers)


async def test_a_synthesized_report_keeps_no_smuggled_citation(
    client: httpx.AsyncClient, standin: StandinServer
) -> None:
    standin.configure(
        openai=OpenAIStandin(responder=lambda request: SMUGGLING_REPORT if is_synthesis(request) else None)
    )

    record = await research(client)
    result = record["result"]

    assert_nothing_smuggled(result)
    assert result["unsupported_claims"] == LEFT
    assert all(claim in result["report_markdown"] for claim in LEFT)  # "flag" keeps them
    assert record["input"]["unsupported_claims"] == "flag"


async def test_unsupported_claims_can_be_dropped_from_the_report(
    client: httpx.AsyncClient, standin: StandinServer
) -> None:
    standin.configure(
        openai=OpenAIStandin(responder=lambda request: SMUGGLING_REPORT if is_synthesis(request) else None)
    )

    result = (await research(client, unsupported_claims="drop"))["result"]

    assert_nothing_smuggled(result)
    assert result["unsupported_claims"] == LEFT
    assert result["report_markdown"] == (f"## Summary\n\n{SUPPORTED}\n\n## References\n\n- [S1] A retrieved source.")


async def test_a_revision_is_verified_like_the_first_report(client: httpx.AsyncClient, standin: StandinServer) -> None:
    def respond(request: ChatRequest) -> str | None:
        if is_synthesis(request):
            return CLEAN_REPORT
        return SMUGGLING_REPORT if is_revision(request) else None

    standin.configure(openai=OpenAIStandin(responder=respond))

    result = (await research(client, reflect=True))["result"]

    kinds = [entry.get("schema_name") or "text" for entry in standin.requests("openai")]
    assert kinds == ["ResearchPlan", "text", "Critique", "text"]  # plan, synthesize, critique, revise
    assert result["revised"] is True
    assert_nothing_smuggled(result)
    assert result["unsupported_claims"] == LEFT


async def test_a_clean_revision_clears_the_first_reports_unsupported_claims(
    client: httpx.AsyncClient, standin: StandinServer
) -> None:
    revision_prompts: list[str] = []

    def respond(request: ChatRequest) -> str | None:
        if is_synthesis(request):
            return SMUGGLING_REPORT
        if is_revision(request):
            revision_prompts.append(request.last_user_message)
            return CLEAN_REPORT
        return None

    standin.configure(openai=OpenAIStandin(responder=respond))

    result = (await research(client, reflect=True, unsupported_claims="drop"))["result"]

    assert result["revised"] is True
    # The critic and the reviser only ever saw the verified report, with its unsupported claims dropped.
    [prompt] = revision_prompts
    report_seen = prompt.split("<report>", 1)[1].split("</report>", 1)[0]
    assert SUPPORTED in report_seen
    assert all(fragment not in report_seen for fragment in FRAGMENTS)
    assert all(claim not in report_seen for claim in LEFT)
    assert result["report_markdown"] == CLEAN_REPORT.strip()  # the agents hand text on trimmed
    assert result["unsupported_claims"] == []  # they describe the final report only
    assert {token for _, token in SMUGGLED} <= set(result["removed_citations"])  # removals add up


async def test_an_unknown_unsupported_claims_policy_is_a_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/workflows/research", json={"topic": TOPIC, "unsupported_claims": "hide"})

    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"
    assert any(error["field"] == "body.unsupported_claims" for error in response.json()["errors"])
