"""``make demo``: start the offline stand-ins and a real server, run a reflection, a research and a
planner workflow (with a human approval round trip: the run waits with its plan, the demo edits
the plan and resumes it), show progress while polling, then print the results and log lines.

Everything runs on loopback; nothing here needs an API key or the internet.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TERMINAL = {"completed", "failed", "cancelled"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start_standins() -> tuple[subprocess.Popen[str], dict[str, Any]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.standins", "--port", "0", "--openai-latency", "0.4", "--search-latency", "0.3"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    ready = json.loads(proc.stdout.readline())
    return proc, ready


def _start_server(env: dict[str, str], log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [str(BIN / "agentflow"), "serve", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90  # a loaded 2-core machine can take tens of seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/readyz", timeout=0.5).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"server did not start; see {log_path}")


def _run(http: httpx.Client, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    print(f"\n=== {kind} workflow: {body['topic']!r}")
    response = http.post(f"/workflows/{kind}", json=body, headers={"X-Request-ID": f"demo-{kind}"})
    if response.status_code != 202:
        print(f"  submit answered {response.status_code}: {response.text}")
        return response.json()
    record = response.json()
    print(f"  202 Accepted  workflow_id={record['workflow_id']}  Location={response.headers['Location']}")
    return _poll(http, record)


def _poll(http: httpx.Client, record: dict[str, Any]) -> dict[str, Any]:
    """Show progress until the run ends or waits for an answer."""
    last = None
    while record["status"] not in TERMINAL and record["status"] != "waiting":
        time.sleep(0.2)
        record = http.get(f"/workflows/{record['workflow_id']}").json()
        shown = (record["status"], record["progress"]["node"], record["progress"]["iteration"])
        if shown != last:
            print(f"  {record['status']:<9} node={shown[1]!s:<16} iteration={shown[2]}")
            last = shown
    usage = record["usage"]
    took = f"in {record['execution_time']} s" if record["execution_time"] is not None else "so far"
    print(
        f"  {record['status']} {took} — {usage['llm_calls']} LLM calls, "
        f"{usage['input_tokens']}+{usage['output_tokens']} tokens"
    )
    return record


def _approval_round_trip(http: httpx.Client, record: dict[str, Any]) -> dict[str, Any]:
    """The planner run waits with its plan: drop its last step, resume with the edit, follow it."""
    if record.get("status") != "waiting":
        return record
    steps = record["pending"]["plan"]["steps"]
    print(f"  waiting for approval of a {len(steps)}-step plan ({record['pending']['kind']}):")
    for step in steps:
        after = f" after {', '.join(step['depends_on'])}" if step["depends_on"] else ""
        print(f"    {step['id']} [{step['kind']}]{after}: {step['instruction']}")
    kept = steps[:-1] if len(steps) > 1 else steps
    print(f"  POST /workflows/{record['workflow_id']}/resume  action=edit, without step {steps[-1]['id']}")
    answered = http.post(f"/workflows/{record['workflow_id']}/resume", json={"action": "edit", "plan": {"steps": kept}})
    print(f"  {answered.status_code} {answered.json()['status']}")
    return _poll(http, answered.json())


def _show_planner(record: dict[str, Any]) -> None:
    result = record.get("result") or {}
    if not result:
        print(f"  error: {record.get('error')}")
        return
    for step in result["steps"]:
        print(f"  step {step['id']} [{step['kind']}] {step['status']}")
    print(f"  plan: {result['plan_source']}  sources={len(result['sources'])}  citations={result['citations']}")
    print(textwrap.indent(textwrap.shorten(result.get("report_markdown") or "", 800), "  │ "))


def _show_reflection(record: dict[str, Any]) -> None:
    result = record.get("result") or {}
    if not result:
        print(f"  error: {record.get('error')}")
        return
    scores = ", ".join(f"v{d['version']}={(d['critique'] or {}).get('score')}" for d in result["drafts"])
    print(f"  stop_reason={result['stop_reason']}  best_score={result['best_score']}  drafts: {scores}")
    print(textwrap.indent(textwrap.shorten(result["final"], 600), "  │ "))


def _show_research(record: dict[str, Any]) -> None:
    result = record.get("result") or {}
    if not result:
        print(f"  error: {record.get('error')}")
        return
    print(f"  queries: {result.get('queries')}")
    for source in result.get("sources", [])[:8]:
        print(f"  [{source['id']}] ({source['kind']}) {source['title']} — {source['url']}")
    print(f"  citations={result.get('citations')}  removed={result.get('removed_citations')}")
    print(textwrap.indent(textwrap.shorten(result.get("report_markdown") or "", 800), "  │ "))


def _show_logs(log_path: Path, workflow_id: str) -> None:
    print(f"\n--- log lines of workflow {workflow_id}")
    for line in log_path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("workflow_id") != workflow_id:
            continue
        extras = {k: record[k] for k in ("event", "node", "model", "duration_ms") if k in record}
        print(f"  {record['timestamp'][11:23]} {record['level']:<7} {record['message']:<28} {extras}")


def main() -> int:
    standins, ready = _start_standins()
    workdir = Path(tempfile.mkdtemp(prefix="agentflow-demo-"))
    log_path = workdir / "server.log"
    env = {
        "OPENAI_BASE_URL": ready["openai_base_url"],
        "OPENAI_API_KEY": "sk-demo-offline",
        "TAVILY_BASE_URL": ready["tavily_base_url"],
        "TAVILY_API_KEY": "tvly-demo-offline",
        "ARXIV_API_URL": ready["arxiv_query_url"],
        "AGENTFLOW_ARXIV_MIN_INTERVAL": "0.5",
        "AGENTFLOW_DATABASE_URL": f"sqlite+aiosqlite:///{workdir}/demo.db",
    }
    server: subprocess.Popen[bytes] | None = None
    try:
        server, base = _start_server(env, log_path)
        print(f"stand-ins on {ready['base_url']}, agentflow on {base} (logs: {log_path})")
        with httpx.Client(base_url=base, timeout=30) as http:
            reflection = _run(
                http, "reflection", {"topic": "Explain write-ahead logging to a new engineer", "max_iterations": 2}
            )
            _show_reflection(reflection)
            paths = http.get("/openapi.json").json()["paths"]
            research = None
            if "/workflows/research" in paths:
                research = _run(
                    http, "research", {"topic": "retrieval-augmented generation evaluation", "max_queries": 2}
                )
                _show_research(research)
            else:
                print("\n(research workflow not available in this build)")
            planner = _run(
                http,
                "planner",
                {"topic": "a briefing on evaluating retrieval-augmented generation", "approve_plan": True},
            )
            planner = _approval_round_trip(http, planner)
            _show_planner(planner)
        _show_logs(log_path, reflection["workflow_id"])
        if research is not None and "workflow_id" in research:
            _show_logs(log_path, research["workflow_id"])
        if "workflow_id" in planner:
            _show_logs(log_path, planner["workflow_id"])
        ran = (reflection, planner) if research is None else (reflection, research, planner)
        ok = all(record.get("status") == "completed" for record in ran)
        return 0 if ok else 1
    finally:
        for proc in (server, standins):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


if __name__ == "__main__":
    raise SystemExit(main())
