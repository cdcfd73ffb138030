"""The ``agentflow`` client commands against a real ``agentflow serve`` with stand-in upstreams."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bibtexparser
import httpx
import pytest

from tests.integration.servers import AGENTFLOW, ROOT, ServerProcess, free_port
from tests.standins import OpenAIConfig, StandinServer

pytestmark = pytest.mark.slow

CLI_TIMEOUT = 90.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, standins: StandinServer) -> Iterator[ServerProcess]:
    """One real server for the module; each test's ``standin`` fixture resets the upstreams."""
    database = tmp_path_factory.mktemp("cli") / "cli.db"
    process = ServerProcess(
        {
            **standins.env(),
            "AGENTFLOW_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
            "AGENTFLOW_ARXIV_MIN_INTERVAL": "0",
            "AGENTFLOW_LOG_LEVEL": "WARNING",
        }
    ).start()
    yield process
    process.terminate()


def cli_env(url: str) -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "AGENTFLOW_URL": url}


def cli(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``agentflow ARGS`` to the end, stdout and stderr captured (so neither is a terminal)."""
    return subprocess.run(
        [str(AGENTFLOW), *args],
        cwd=ROOT,
        env=cli_env(server.base_url),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
    )


class Running:
    """An ``agentflow`` command left running; its stderr is collected as it comes (prompts included)."""

    def __init__(self, server: ServerProcess, *args: str, stdin: int | None = None) -> None:
        self.proc = subprocess.Popen(
            [str(AGENTFLOW), *args],
            cwd=ROOT,
            env=cli_env(server.base_url),
            stdin=stdin if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._stderr = bytearray()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def stderr(self) -> str:
        return self._stderr.decode(errors="replace")

    def _read(self) -> None:
        assert self.proc.stderr is not None
        while chunk := self.proc.stderr.read1(4096):
            self._stderr += chunk

    def wait_for(self, text: str, timeout: float = 60.0) -> None:
        """Until ``text`` appears on stderr (fails if the command exits or time runs out first)."""
        deadline = time.monotonic() + timeout
        while text not in self.stderr:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                self.finish()
                raise AssertionError(f"never saw {text!r}; stderr: {self.stderr}")
            time.sleep(0.02)

    def finish(self) -> tuple[int, str, str]:
        """Exit code, stdout and stderr once the command ends (not ``communicate``: it would race
        the reader for stderr)."""
        assert self.proc.stdout is not None
        stdout = self.proc.stdout.read()
        code = self.proc.wait(timeout=CLI_TIMEOUT)
        self._reader.join(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        return code, stdout.decode(), self.stderr


def record_of(server: ServerProcess, workflow_id: str, wait: int = 0) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{server.base_url}/workflows/{workflow_id}?wait={wait}", timeout=70).json()
    return body


# --- run --wait ---------------------------------------------------------------------------------


def test_run_reflection_wait_prints_progress_and_the_result(server: ServerProcess, standin: StandinServer) -> None:
    result = cli(server, "run", "reflection", "Explain vector clocks", "--max-iterations", "1", "--wait")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# Explain vector clocks\n")
    assert "## Appendix: draft history" in result.stdout
    progress = result.stderr.splitlines()
    assert any("running" in line and "node=draft" in line for line in progress), progress
    assert any("node=critique" in line for line in progress)
    assert "reflection run" in progress[-1] and "completed" in progress[-1]
    assert "tokens" in progress[-1] and "$" in progress[-1]
    # Not a terminal: no spinner, no colour, no cursor movement.
    assert "\x1b[" not in result.stdout + result.stderr


def test_run_research_wait_json_parses(server: ServerProcess, standin: StandinServer) -> None:
    result = cli(server, "run", "research", "Tool use in LLM agents", "--sources", "arxiv", "--wait", "--json")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["status"] == "completed"
    assert record["input"]["sources"] == ["arxiv"]
    assert {source["kind"] for source in record["result"]["sources"]} == {"arxiv"}
    assert any("sources=" in line for line in result.stderr.splitlines())


def test_a_failing_run_exits_1(server: ServerProcess, standin: StandinServer) -> None:
    # A 400 from the model server is not retried: the run fails at its first model call.
    standin.configure(openai=OpenAIConfig(fault_rate=1.0, faults=["400"]))
    result = cli(server, "run", "reflection", "Doomed topic", "--wait", "--json")
    assert result.returncode == 1, result.stderr
    record = json.loads(result.stdout)
    assert record["status"] == "failed"
    assert record["error"]["code"].startswith("upstream_")
    last = result.stderr.splitlines()[-1]
    assert "failed" in last and record["error"]["code"] in last


def test_an_invalid_request_is_a_usage_error(server: ServerProcess, standin: StandinServer) -> None:
    result = cli(server, "run", "reflection", "t", "--max-iterations", "99")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "body.max_iterations" in result.stderr


@pytest.mark.parametrize(
    "args",
    [("list",), ("run", "research", "anything", "--wait"), ("get", "some-id"), ("watch", "some-id")],
    ids=["list", "run", "get", "watch"],
)
def test_an_unreachable_server_exits_3_with_one_line(args: tuple[str, ...]) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = subprocess.run(
        [str(AGENTFLOW), *args], cwd=ROOT, env=cli_env(url), capture_output=True, text=True, timeout=CLI_TIMEOUT
    )
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("agentflow: cannot reach the agentflow server at " + url)
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


# --- get ----------------------------------------------------------------------------------------


def test_get_exports_bibtex_markdown_and_html(server: ServerProcess, standin: StandinServer, tmp_path: Path) -> None:
    ran = cli(server, "run", "research", "Retrieval-augmented generation", "--wait", "--json")
    assert ran.returncode == 0, ran.stderr
    record = json.loads(ran.stdout)
    cited = [source for source in record["result"]["sources"] if source["id"] in record["result"]["citations"]]
    assert cited
    workflow_id = record["workflow_id"]

    bib = cli(server, "get", workflow_id, "--format", "bib")
    assert bib.returncode == 0, bib.stderr
    entries = bibtexparser.loads(bib.stdout).entries
    assert len(entries) == len(cited)
    assert {entry["url"] for entry in entries} == {source["url"] for source in cited}
    arxiv = [entry for entry in entries if "eprint" in entry]
    assert arxiv and all(entry["archiveprefix"] == "arXiv" for entry in arxiv)

    markdown = cli(server, "get", workflow_id)
    assert markdown.returncode == 0
    assert markdown.stdout.startswith("# Retrieval-augmented generation\n")
    assert "## References" in markdown.stdout

    target = tmp_path / "report.html"
    html = cli(server, "get", workflow_id, "-f", "html", "-o", str(target))
    assert html.returncode == 0
    assert html.stdout == ""
    assert target.read_text().startswith("<!doctype html>")

    missing = cli(server, "get", "no-such-run")
    assert missing.returncode == 1
    assert missing.stderr.strip() == "agentflow: No workflow with id 'no-such-run'."


# --- list, watch, cancel ------------------------------------------------------------------------


def test_list_watch_and_cancel(server: ServerProcess, standin: StandinServer) -> None:
    # Slow enough that four CLI start-ups on a loaded machine still find the run in flight.
    standin.configure(openai=OpenAIConfig(latency=3.0))
    submitted = cli(server, "run", "reflection", "A slow topic")
    assert submitted.returncode == 0, submitted.stderr
    workflow_id = submitted.stdout.strip()
    assert "agentflow watch " + workflow_id in submitted.stderr

    listed = cli(server, "list", "--type", "reflection", "--json")
    assert listed.returncode == 0
    assert workflow_id in [item["workflow_id"] for item in json.loads(listed.stdout)["items"]]
    plain = cli(server, "list", "--type", "reflection")
    header, *rows = plain.stdout.splitlines()
    assert header.split("\t") == ["id", "type", "status", "created", "node", "topic"]
    assert any(row.startswith(workflow_id + "\treflection\t") and row.endswith("\tA slow topic") for row in rows)

    watcher = Running(server, "watch", workflow_id)
    watcher.wait_for(" running ")
    cancelled = cli(server, "cancel", workflow_id)
    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout.startswith(workflow_id + " ")
    code, _, stderr = watcher.finish()
    assert code == 1  # the watched run was cancelled
    assert "cancelled" in stderr.splitlines()[-1]

    again = cli(server, "cancel", workflow_id)
    assert again.returncode == 1
    assert "already ended as cancelled" in again.stderr


def test_ctrl_c_without_a_terminal_detaches_and_the_run_goes_on(server: ServerProcess, standin: StandinServer) -> None:
    standin.configure(openai=OpenAIConfig(latency=0.5))
    running = Running(server, "run", "reflection", "Keep going", "--max-iterations", "1", "--wait")
    running.wait_for("node=draft")
    running.proc.send_signal(signal.SIGINT)
    code, stdout, stderr = running.finish()
    assert code == 130
    assert stdout == ""
    detached = stderr.strip().splitlines()[-1]
    assert detached.startswith("Detached; the run goes on. Follow it again: agentflow watch ")
    workflow_id = detached.rsplit(" ", 1)[1]
    assert record_of(server, workflow_id, wait=30)["status"] == "completed"


def test_ctrl_c_on_a_terminal_asks_and_cancels(server: ServerProcess, standin: StandinServer) -> None:
    standin.configure(openai=OpenAIConfig(latency=0.5))
    controller, terminal = pty.openpty()
    try:
        running = Running(server, "run", "reflection", "Stop me", "--wait", stdin=terminal)
        running.wait_for("node=draft")
        running.proc.send_signal(signal.SIGINT)
        running.wait_for("Cancel run")
        os.write(controller, b"y\n")
        code, _, stderr = running.finish()
    finally:
        os.close(controller)
        os.close(terminal)
    assert code == 1, stderr
    assert "Cancel requested" in stderr
    last = stderr.strip().splitlines()[-1]
    assert "cancelled" in last
    workflow_id = last.split()[2]
    assert record_of(server, workflow_id)["status"] == "cancelled"


def test_planner_waits_for_approval_then_resumes(server: ServerProcess, standin: StandinServer, tmp_path: Path) -> None:
    asked = cli(server, "run", "planner", "Tool use in agents", "--approve-plan", "--max-steps", "3", "--wait")

    assert asked.returncode == 4, asked.stderr  # waiting for an answer
    assert "plan_approval" in asked.stdout
    assert "agentflow resume" in asked.stdout
    workflow_id = asked.stdout.split("Run ", 1)[1].split()[0]
    pending = httpx.get(f"{server.base_url}/workflows/{workflow_id}").json()["pending"]
    assert len(pending["plan"]["steps"]) == 3
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps({"steps": pending["plan"]["steps"][:1]}))

    edited = cli(server, "resume", workflow_id, "edit", "--plan", str(plan_file), "--wait")

    assert edited.returncode == 0, edited.stderr
    final = httpx.get(f"{server.base_url}/workflows/{workflow_id}").json()
    assert final["status"] == "completed"
    assert [step["id"] for step in final["result"]["steps"]] == ["s1"]
    again = cli(server, "resume", workflow_id, "approve")
    assert again.returncode == 1
    assert "not waiting for an answer" in again.stderr
