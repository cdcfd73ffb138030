"""The web page in a real browser against a real server: submit, watch live, read, cite, download.

Also renders the CLI's live progress panel from a real event stream and photographs both for the
README (``make screenshots`` refreshes docs/img/).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import bibtexparser
import httpx
import pytest
from rich.console import Console
from rich.terminal_theme import MONOKAI

from backend.client import AgentflowClient
from backend.client.commands import follow
from backend.client.display import ProgressView
from tests.browser.conftest import save_screenshot
from tests.integration.servers import ServerProcess
from tests.standins import OpenAIConfig, StandinServer

pytestmark = pytest.mark.slow

TOPIC = "How do language-model agents decide when to call a tool?"
CLI_TOPIC = "Retrieval-augmented generation for code search"  # another topic: no cached result
RUN_TIMEOUT_MS = 60_000
#: Collects every status the page shows, so a quick run cannot slip past a poll.
WATCH_STATUS = """() => {
  window.seenStatuses = [];
  const status = document.querySelector('#run-status');
  new MutationObserver(() => window.seenStatuses.push(status.textContent))
    .observe(status, {childList: true, characterData: true, subtree: true});
}"""


def test_submit_watch_read_cite_and_download(
    browser: Any, server: ServerProcess, standin: StandinServer, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    standin.configure(openai=OpenAIConfig(latency=0.4))  # slow enough to watch it run
    context = browser.new_context(viewport={"width": 1200, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    try:
        page.goto(server.base_url + "/")
        page.evaluate(WATCH_STATUS)
        page.fill("#topic", TOPIC)
        page.click("#submit")

        expect(page.locator("#run-status")).to_have_text("completed", timeout=RUN_TIMEOUT_MS)
        assert "running" in page.evaluate("window.seenStatuses")
        expect(page.locator("#run-trail")).to_contain_text("plan_queries → ")
        expect(page.locator("#run-trail")).to_contain_text("synthesize")
        workflow_id = page.inner_text("#run-id")
        record = httpx.get(f"{server.base_url}/workflows/{workflow_id}", timeout=10).json()
        assert record["status"] == "completed" and record["input"]["topic"] == TOPIC
        sources = {source["id"]: source for source in record["result"]["sources"]}
        cited = [sources[source_id] for source_id in record["result"]["citations"]]
        expect(page.locator("#run-sources")).to_have_text(str(len(sources)))
        expect(page.locator(f'#runs tr[data-id="{workflow_id}"] .status')).to_have_text("completed")

        # The report, with a citation that jumps to its reference, which links to the source.
        expect(page.locator("#report h1")).to_have_text(TOPIC)
        citation = page.locator('#report a[href^="#ref-"]').first
        anchor = str(citation.get_attribute("href"))[1:]
        page.evaluate("window.scrollTo(0, 0)")
        save_screenshot(page.screenshot(), "web-page.png", tmp_path)
        citation.click()
        assert page.evaluate("location.hash") == f"#{anchor}"
        entry = page.locator(f'#report li:has(a[id="{anchor}"])')
        expect(entry).to_be_in_viewport()
        source = sources[anchor.removeprefix("ref-")]
        link = entry.locator('a[href^="https://"]')
        expect(link).to_have_attribute("href", source["url"])
        expect(link).to_have_attribute("target", "_blank")

        # A download: the BibTeX export, one entry per cited source.
        with page.expect_download() as download:
            page.click('#exports [data-format="bib"]')
        assert download.value.suggested_filename == f"agentflow-research-{workflow_id[:8]}.bib"
        entries = bibtexparser.loads(Path(download.value.path()).read_text()).entries
        assert sorted(entry["url"] for entry in entries) == sorted(source["url"] for source in cited)
    finally:
        context.close()
    assert problems == []  # no script error, no blocked resource (CSP violations are console errors)
    assert requested and all(url.startswith((server.base_url + "/", "blob:")) for url in requested), requested


def test_cancel_from_the_page(browser: Any, server: ServerProcess, standin: StandinServer) -> None:
    from playwright.sync_api import expect

    standin.configure(openai=OpenAIConfig(latency=2.0))
    page = browser.new_page()
    try:
        page.goto(server.base_url + "/")
        page.check('input[name="type"][value="reflection"]')
        expect(page.locator("#topic-label")).to_have_text("Topic")
        page.fill("#topic", "Explain vector clocks")
        page.click("#submit")
        expect(page.locator("#run-status")).to_have_text("running", timeout=RUN_TIMEOUT_MS)
        page.click("#cancel")
        expect(page.locator("#run-status")).to_have_text("cancelled", timeout=RUN_TIMEOUT_MS)
        expect(page.locator("#cancel")).to_be_hidden()
    finally:
        page.close()


def test_cli_progress_panel_screenshot(
    browser: Any, server: ServerProcess, standin: StandinServer, tmp_path: Path
) -> None:
    """The panel ``agentflow run research … --wait`` shows mid-run, rendered from the real stream."""
    standin.configure(openai=OpenAIConfig(latency=0.5))
    view = ProgressView(Console(file=io.StringIO(), width=200))  # fed like the CLI's, shown plain
    shown = view.update
    frames: list[tuple[dict[str, Any], Console]] = []

    def update(record: dict[str, Any]) -> None:
        shown(record)
        if record["status"] == "running" and record["usage"]["input_tokens"]:
            # What a terminal shows right now; the last frame before the end is the fullest.
            terminal = Console(record=True, force_terminal=True, color_system="truecolor", width=88, file=io.StringIO())
            terminal.print(f'[bold green]$[/] agentflow run research "{CLI_TOPIC}" --wait', highlight=False)
            terminal.print(view.panel)
            frames.append((record, terminal))

    view.update = update  # type: ignore[method-assign]
    with AgentflowClient(server.base_url) as client:
        final = follow(client, client.submit("research", {"topic": CLI_TOPIC}), view)
    assert final["status"] == "completed"
    assert frames, "the run was seen running, with tokens spent"
    record, terminal = frames[-1]
    text = terminal.export_text(clear=False)
    for label in ("research", "running", "node", "iteration", "sources", "tokens", "cost", "elapsed"):
        assert label in text
    assert f"node  {record['progress']['node']}" in text

    page = browser.new_page(viewport={"width": 900, "height": 300}, device_scale_factor=1)
    try:
        page.set_content(terminal.export_html(theme=MONOKAI, inline_styles=True))
        page.add_style_tag(content="body { margin: 0; background: #272822; } pre { margin: 0; padding: 14px 18px; }")
        png = page.locator("pre").screenshot()
    finally:
        page.close()
    assert png.startswith(b"\x89PNG")
    save_screenshot(png, "cli-progress.png", tmp_path)
