"""GET /workflows/{id}/export and the web page, through the app with stand-in upstreams."""

from __future__ import annotations

import re
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Any

import bibtexparser
import httpx
import pytest

from backend.config import Settings
from tests.helpers import wait_terminal
from tests.standins import ChatReply, ChatRequest, OpenAIConfig, StandinServer

ATTACK = (
    "## Findings\n\nVector clocks order events <script>alert(1)</script> across nodes.\n\n"
    'See [the demo](javascript:alert(2)) or <a href="javascript:alert(3)" onclick="alert(4)">this</a>.\n\n'
    '<img src=x onerror="alert(5)">'
)


def attacking_writer(request: ChatRequest) -> ChatReply:
    """Every draft is hostile text; every critique approves it at once."""
    if request.schema_name is not None:
        return ChatReply(json={"score": 9, "issues": [], "approved": True})
    return ChatReply(content=ATTACK)


async def research_run(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.post("/workflows/research?wait=30", json={"topic": "Tool use in LLM agents"})
    assert response.status_code == 200, response.text
    record: dict[str, Any] = response.json()
    assert record["status"] == "completed"
    return record


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    return body


async def test_every_format_of_a_research_run(client: httpx.AsyncClient) -> None:
    record = await research_run(client)
    url = f"/workflows/{record['workflow_id']}/export"
    short = record["workflow_id"][:8]
    expected = {"md": "text/markdown", "html": "text/html", "json": "application/json", "bib": "application/x-bibtex"}
    bodies = {}
    for fmt, media in expected.items():
        response = await client.get(url, params={"format": fmt})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == f"{media}; charset=utf-8"
        assert response.headers["content-disposition"] == f'inline; filename="agentflow-research-{short}.{fmt}"'
        bodies[fmt] = response.text
    cited = [s for s in record["result"]["sources"] if s["id"] in record["result"]["citations"]]
    assert cited, "the stand-in report cites sources"
    assert bodies["md"].startswith("# Tool use in LLM agents\n")
    assert all(f"**[{source['id']}]**" in bodies["md"] for source in cited)
    assert all(f'href="{source["url"]}"' in bodies["html"] for source in cited)
    assert httpx.Response(200, content=bodies["json"]).json()["workflow_id"] == record["workflow_id"]
    entries = bibtexparser.loads(bodies["bib"]).entries
    assert sorted(entry["note"] for entry in entries) == sorted(f"Cited as [{s['id']}]" for s in cited)


async def test_html_export_loads_nothing_and_runs_nothing(client: httpx.AsyncClient) -> None:
    record = await research_run(client)
    response = await client.get(f"/workflows/{record['workflow_id']}/export?format=html")
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src" not in policy  # falls back to 'none'


@pytest.mark.parametrize(
    ("accept", "media"),
    [
        ("text/html,application/xhtml+xml,*/*;q=0.8", "text/html"),
        ("application/x-bibtex", "application/x-bibtex"),
        ("application/json", "application/json"),
        ("text/markdown", "text/markdown"),
        ("*/*", "text/markdown"),
    ],
)
async def test_accept_chooses_the_format(client: httpx.AsyncClient, accept: str, media: str) -> None:
    record = await research_run(client)
    response = await client.get(f"/workflows/{record['workflow_id']}/export", headers={"Accept": accept})
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == media
    assert "Accept" in response.headers["vary"]


async def test_reflection_html_renders_hostile_model_text_inert(
    client: httpx.AsyncClient, standin: StandinServer
) -> None:
    standin.configure(openai=OpenAIConfig(responder=attacking_writer))
    response = await client.post("/workflows/reflection?wait=30", json={"topic": "Vector clocks", "max_iterations": 1})
    record = response.json()
    assert record["status"] == "completed", record
    assert "<script>alert(1)</script>" in record["result"]["final"]  # the model really wrote it
    page = (await client.get(f"/workflows/{record['workflow_id']}/export?format=html")).text
    lowered = page.lower()
    assert "<script" not in lowered and "alert(1)" not in page
    assert not re.search(r"""(href|src)\s*=\s*["']?\s*javascript:""", lowered)
    assert not re.search(r"\son[a-z]+\s*=", lowered)
    assert "<img" not in lowered
    assert "Vector clocks order events" in page and "across nodes" in page
    # The appendix carries the draft history with its scores.
    assert "Appendix: draft history" in page and "score 9/10" in page


async def test_unknown_run_is_404(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/workflows/no-such-run/export?format=md"), 404, "not_found")


async def test_unknown_format_is_422_naming_the_parameter(client: httpx.AsyncClient) -> None:
    record = await research_run(client)
    body = assert_problem(
        await client.get(f"/workflows/{record['workflow_id']}/export?format=pdf"), 422, "validation_error"
    )
    assert [error["field"] for error in body["errors"]] == ["query.format"]


async def test_a_run_without_result_is_409(client: httpx.AsyncClient, standin: StandinServer) -> None:
    standin.configure(openai=OpenAIConfig(latency=2.0))
    submitted = (await client.post("/workflows/reflection", json={"topic": "slow"})).json()
    body = assert_problem(await client.get(f"/workflows/{submitted['workflow_id']}/export?format=md"), 409, "conflict")
    assert "no result" in body["detail"]
    await client.post(f"/workflows/{submitted['workflow_id']}/cancel")
    await wait_terminal(client, submitted["workflow_id"])


async def test_bibtex_of_a_reflection_run_is_409(client: httpx.AsyncClient) -> None:
    record = (await client.post("/workflows/reflection?wait=30", json={"topic": "t", "max_iterations": 1})).json()
    assert_problem(await client.get(f"/workflows/{record['workflow_id']}/export?format=bib"), 409, "conflict")


# --- the web page -------------------------------------------------------------------------------


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [str(value) for name, value in attrs if name in {"src", "href", "action"} and value]


async def test_web_page_references_only_its_own_assets(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'self'" in response.headers["content-security-policy"]
    parser = _References()
    parser.feed(response.text)
    assert parser.urls, "the page loads its script and stylesheet"
    for url in parser.urls:
        assert url.startswith("/") and not url.startswith("//"), url
        asset = await client.get(url)
        assert asset.status_code == 200, url
    for name, media in [("app.js", "text/javascript"), ("app.css", "text/css")]:
        asset = await client.get(f"/ui/{name}")
        assert asset.headers["content-type"].startswith(media)
        assert "://" not in asset.text, f"{name} must not load anything from elsewhere"


async def test_unknown_page_asset_is_404(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/ui/../backend/config.py"), 404, "not_found")
    assert_problem(await client.get("/ui/secret.txt"), 404, "not_found")
    redirect = await client.get("/ui")
    assert redirect.status_code == 308 and redirect.headers["location"] == "/"


async def test_the_page_loads_without_a_key_when_auth_is_required(
    make_settings: Callable[..., Settings], app_factory: Callable[[Settings], Any]
) -> None:
    client = await app_factory(make_settings(auth="required"))
    for path in ("/", "/ui/app.js", "/ui/app.css", "/ui/favicon.svg"):
        assert (await client.get(path)).status_code == 200, path  # the page asks for the key itself
    assert (await client.get("/workflows")).status_code == 401
    assert (await client.get("/workflows/some-id/export?format=md")).status_code == 401
