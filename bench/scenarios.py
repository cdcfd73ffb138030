"""The scenarios B1-B7: each starts what it needs, drives a load-generator process, returns rows."""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench._procs import VENV_BIN, Child, Children
from bench._rss import CpuMeter, RssSampler, rss_bytes
from bench.profiles import Profile
from bench.report import PENDING_MARKERS, Row

__all__ = ["REFLECTION_BODY", "RESEARCH_BODY", "Bench", "BurstResult", "burst_rows"]

MIB = 1024 * 1024
# A fixed-size reflection run: with the stand-in's default answers the first critique scores 6
# and is not approved, the revision always changes the text, and max_iterations=1 ends the loop:
# draft → critique → revise → critique → finalize, exactly 4 sequential LLM calls (each run's
# usage.llm_calls is read back anyway, and the critical path is computed from it).
# B1-B5 repeat one request on purpose: "cache": "bypass" makes every submit a real run (B6 is the
# row that measures the result cache).
REFLECTION_BODY = {
    "topic": "Explain retrieval-augmented generation to a product manager",
    "max_iterations": 1,
    "score_threshold": 10,
    "cache": "bypass",
}
RESEARCH_BODY = {
    "topic": "Retrieval-augmented generation evaluation",
    "sources": ["arxiv", "web"],
    "max_queries": 3,
    "cache": "bypass",
}
#: B6's request (the cache's default policy, "use"), and one change of each result-changing parameter.
CACHE_BODY = {"topic": "Explain vector clocks to a new engineer", "max_iterations": 1, "score_threshold": 10}
CACHE_VARIANTS = {
    "topic": {"topic": "Explain Lamport clocks to a new engineer"},
    "iterations": {"max_iterations": 2},
    "model": {"models": {"critique": "gpt-4o"}},
    "threshold": {"score_threshold": 9},
}


class Bench:
    """One bench run: the stand-ins, the servers it starts in turn, and the rows they produce."""

    def __init__(self, profile: Profile, workdir: Path, *, py_spy_dir: Path | None = None, log: Callable[[str], None]):
        self.profile = profile
        self.workdir = workdir
        self.children = Children(workdir)
        self.py_spy_dir = py_spy_dir
        self.log = log
        self.standins: Child | None = None
        self._specs = 0

    def close(self) -> None:
        self.children.close()

    # --- plumbing ---------------------------------------------------------------------------

    def start_standins(self) -> Child:
        self.standins = self.children.standins(openai_latency=0.0, search_latency=0.0)
        self.log(f"stand-ins on port {self.standins.port} (pid {self.standins.pid})")
        return self.standins

    def standin_latency(self, *, openai: float, search: float) -> None:
        """Reconfigure the running stand-ins (their default answers stay) and clear their journal."""
        body = {"openai": {"latency": openai}, "tavily": {"latency": search}, "arxiv": {"latency": search}}
        self._admin("POST", "/_standin/config", json=body)
        self._admin("POST", "/_standin/reset")

    def upstream_busy(self, *, reset: bool = True) -> float:
        """Seconds during which at least one upstream request was in flight (union of the
        journal's intervals), then clear the journal. For sequential runs, ÷ runs = per run."""
        entries = self._admin("GET", "/_standin/requests")
        if reset:
            self._admin("POST", "/_standin/reset")
        intervals = sorted((e["started_at"], e["finished_at"]) for e in entries if e["finished_at"] is not None)
        busy, end = 0.0, float("-inf")
        for start, finish in intervals:
            if start > end:
                busy += finish - start
                end = finish
            elif finish > end:
                busy += finish - end
                end = finish
        return busy

    def standin_stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self._admin("GET", "/_standin/stats")
        return result

    def _admin(self, method: str, path: str, **kwargs: Any) -> Any:
        assert self.standins is not None
        response = httpx.request(method, self.standins.info["base_url"].rstrip("/") + path, timeout=30.0, **kwargs)
        response.raise_for_status()
        return response.json()

    def server_env(self, name: str, **overrides: str | int) -> dict[str, str]:
        assert self.standins is not None
        info = self.standins.info
        dbdir = self.workdir / name
        dbdir.mkdir(parents=True, exist_ok=True)
        env = {
            "AGENTFLOW_DATABASE_URL": f"sqlite+aiosqlite:///{dbdir}/bench.db",
            "OPENAI_BASE_URL": info["openai_base_url"],
            "OPENAI_API_KEY": "sk-bench",
            "TAVILY_BASE_URL": info["tavily_base_url"],
            "TAVILY_API_KEY": "tvly-bench",
            "ARXIV_API_URL": info["arxiv_query_url"],
            "AGENTFLOW_ARXIV_MIN_INTERVAL": "0",
            "AGENTFLOW_RATE_LIMIT_SUBMIT": "1000000/minute",
            "AGENTFLOW_RATE_LIMIT_DEFAULT": "1000000/minute",
            "AGENTFLOW_MAX_CONCURRENT_WORKFLOWS": "64",
            "AGENTFLOW_OPENAI_MAX_CONCURRENCY": "64",
            "AGENTFLOW_LOG_LEVEL": "WARNING",
            "AGENTFLOW_SHUTDOWN_GRACE_SECONDS": "0",  # runs left over at the end need no drain
        }
        env.update({f"AGENTFLOW_{k.upper()}": str(v) for k, v in overrides.items()})
        return env

    def start_servers(self, plan: dict[str, dict[str, str | int] | None]) -> dict[str, Child | Exception]:
        """Start every server of ``plan`` at once (name → settings overrides; None: the bare app).

        They start side by side to keep start-up (~4 s of imports each) off the clock, then sit
        idle until their scenario; each is stopped as soon as its scenario is done.
        """
        started = time.monotonic()
        spawned: dict[str, Child | Exception] = {}
        for name, overrides in plan.items():
            try:
                if overrides is None:
                    spawned[name] = self.children.bare(name)
                else:
                    spawned[name] = self.children.server(name, self.server_env(name, **overrides))
            except Exception as exc:
                spawned[name] = exc
        for name, child in spawned.items():
            if isinstance(child, Exception):
                continue
            try:
                self.children.ready(child)
                self.log(f"{name}: port {child.port}, pid {child.pid}, ready after {time.monotonic() - started:.1f} s")
            except Exception as exc:
                self.log(f"{name} did not start: {exc}")
                self.children.stop(child)
                spawned[name] = exc
        return spawned

    def stop(self, child: Child) -> None:
        self.children.stop(child)

    def loadgen(self, spec: dict[str, Any], *, timeout: float) -> dict[str, Any]:
        """Run one load-generator process on ``spec`` and return its JSON result."""
        self._specs += 1
        path = self.workdir / f"load-{self._specs:02d}-{spec['mode']}.json"
        path.write_text(json.dumps(spec))
        child = self.children.spawn(
            f"loadgen-{self._specs:02d}",
            [sys.executable, "-m", "bench.loadgen", str(path)],
            env=_env_with_repo(),
            stdout=subprocess.PIPE,
        )
        try:
            out, _ = child.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"load generator ({spec['mode']}) ran past {timeout:.0f} s") from None
        finally:
            self.children.stop(child)
        if child.proc.returncode != 0:
            raise RuntimeError(f"load generator failed ({child.proc.returncode}):\n{child.tail()}")
        result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
        return result

    def runs(
        self,
        server: Child,
        body: dict[str, Any],
        *,
        total: int,
        concurrency: int,
        path: str = "/workflows/reflection",
        keep_runs: bool = False,
        submit_wait: bool = True,
        timeout: float = 600.0,
    ) -> dict[str, Any]:
        spec = {
            "mode": "runs",
            "base_url": _base(server),
            "path": path,
            "body": body,
            "total": total,
            "concurrency": concurrency,
            "wait": 60,
            "keep_runs": keep_runs,
            "submit_wait": submit_wait,
        }
        return self.loadgen(spec, timeout=timeout)

    @contextlib.contextmanager
    def py_spy(self, name: str, pid: int) -> Iterator[None]:
        """Record a py-spy profile of ``pid`` meanwhile, when ``--py-spy DIR`` was given."""
        if self.py_spy_dir is None:
            yield
            return
        found = VENV_BIN / "py-spy" if (VENV_BIN / "py-spy").exists() else shutil.which("py-spy")
        if found is None:
            self.log("py-spy is neither in the venv nor on PATH: no profile recorded")
            yield
            return
        binary = Path(found)
        self.py_spy_dir.mkdir(parents=True, exist_ok=True)
        # --gil: only samples holding the GIL, i.e. Python CPU time; idle waits in uvloop and in
        # the SQLite threads do not count.
        argv = [
            str(binary),
            "record",
            "--pid",
            str(pid),
            "--rate",
            "250",
            "--nonblocking",
            "--gil",
            "--format",
            "raw",
            "--output",
            str(self.py_spy_dir / f"{name}.txt"),
        ]
        child = self.children.spawn(f"py-spy-{name}", argv, env=_env_with_repo())
        time.sleep(0.5)  # attach before the load starts
        try:
            yield
        finally:
            # SIGINT makes py-spy write its output and exit.
            with contextlib.suppress(ProcessLookupError):
                child.proc.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.proc.wait(20)
            self.children.stop(child)

    def warm(self, server: Child, *, runs: int = 1, latency: float = 0.0) -> None:
        """Runs (at zero latency by default) so lazy start-up work (graph compile, clients) is not measured.

        Several runs at once, each call taking ``latency``, reach every worker process behind
        a queue (each takes a job while the others' jobs are still running).
        """
        self.standin_latency(openai=latency, search=latency)
        result = self.runs(server, REFLECTION_BODY, total=runs, concurrency=runs, timeout=120)
        if result["completed"] != runs:
            raise RuntimeError(f"warm-up run did not complete: {result['statuses']} {result['errors']}")

    # --- scenarios --------------------------------------------------------------------------

    def b7_idle_rss(self, server: Child) -> list[Row]:
        time.sleep(self.profile.b7_settle)
        samples = []
        for _ in range(self.profile.b7_samples):
            samples.append(rss_bytes(server.pid))
            time.sleep(0.1)
        value = statistics.median(samples) / MIB
        return [
            Row(
                key="B7.idle_rss",
                row="B7",
                label="idle RSS after start-up",
                value=value,
                unit="MiB",
                op="<=",
                target=120,
                details={"settle_s": self.profile.b7_settle, "samples_mib": [s / MIB for s in samples]},
            )
        ]

    def b8_startup(self) -> list[Row]:
        """Start-up → ready: ``agentflow serve`` until ``/readyz`` answers 200, against the bare app
        until ``/healthz`` does, in alternating rounds, one process at a time.

        The first agentflow start creates its database (migrations run); the later ones restart
        on it, as a deploy or a crash restart does, and are the ones the row compares.
        """
        from bench._procs import wait_http_ready

        env = self.server_env("b8")
        bare_s: list[float] = []
        serve_s: list[float] = []
        cold_s: float | None = None
        for round_ in range(self.profile.b8_rounds + 1):
            for kind in ("bare", "serve"):
                started = time.monotonic()
                child = self.children.bare("b8-bare") if kind == "bare" else self.children.server("b8", env)
                try:
                    path = "/healthz" if kind == "bare" else "/readyz"
                    # Polled every 5 ms: at the default 50 ms, the wait alone could add a fifth to
                    # the bare app's ~0.25 s.
                    wait_http_ready(f"{_base(child)}{path}", timeout=120.0, child=child, interval=0.005)
                    took = time.monotonic() - started
                finally:
                    self.stop(child)
                if kind == "bare":
                    bare_s.append(took)
                elif round_ == 0:
                    cold_s = took  # fresh database: migrations ran
                else:
                    serve_s.append(took)
        bare_s = bare_s[1:]  # round 0 pairs with the cold start; the restarts pair with the rest
        ratios = [a / b for a, b in zip(serve_s, bare_s, strict=True)]
        serve, bare = statistics.median(serve_s), statistics.median(bare_s)
        return [
            Row(
                key="B8.startup_ratio",
                row="B8",
                label="start-up → /readyz ÷ bare FastAPI → /healthz",
                value=statistics.median(ratios),
                unit="×",
                op="<=",
                target=2.0,
                note=(
                    f"restart {serve:.2f} s vs bare {bare:.2f} s (median of {len(ratios)} alternating rounds); "
                    f"first start on a fresh database {cold_s:.2f} s"
                ),
                details={"serve_s": serve_s, "bare_s": bare_s, "cold_s": cold_s, "ratios": ratios},
            )
        ]

    def research_available(self, server: Child) -> bool:
        paths = httpx.get(f"{_base(server)}/openapi.json", timeout=30.0).json().get("paths", {})
        return "/workflows/research" in paths

    def b1_overhead(self, server: Child) -> list[Row]:
        p = self.profile
        latency = p.b1_latency
        self.warm(server)
        self.standin_latency(openai=latency, search=latency)
        rows: list[Row] = []
        reflection = self.runs(server, REFLECTION_BODY, total=p.b1_runs, concurrency=1, keep_runs=True)
        busy = self.upstream_busy()
        rows += self._b1_rows("reflection", reflection, lambda run: run["llm_calls"] * latency, busy)
        if self.research_available(server):
            research = self.runs(
                server, RESEARCH_BODY, total=p.b1_runs, concurrency=1, keep_runs=True, path="/workflows/research"
            )
            busy = self.upstream_busy()
            # plan + synthesize (+ critique/revise when it reflects) are sequential LLM calls; the
            # searches run side by side, except that arXiv's terms allow one request at a time, so
            # the search stage takes max(S, arxiv_queries x S): the "mandated spacing aside".
            rows += self._b1_rows(
                "research",
                research,
                lambda run: run["llm_calls"] * latency + max(1, run["arxiv_queries"]) * latency,
                busy,
            )
        else:
            marker = PENDING_MARKERS["research"]
            rows += [
                Row.pending("B1.research.server", "B1", "research: server wall ÷ critical path", marker),
                Row.pending("B1.research.client", "B1", "research: client wall ÷ critical path", marker),
            ]
        return rows

    def _b1_rows(
        self, kind: str, result: dict[str, Any], critical: Callable[[dict[str, Any]], float], busy: float
    ) -> list[Row]:
        runs = [r for r in result.get("per_run", []) if r["status"] == "completed" and r["llm_calls"]]
        label_server = f"{kind}: server wall ÷ critical path"
        label_client = f"{kind}: client wall ÷ critical path"
        if not runs:
            error = f"no completed {kind} run: {result['statuses']} {result['errors']} {result['error_codes']}"
            return [
                Row.failed(f"B1.{kind}.server", "B1", label_server, error),
                Row.failed(f"B1.{kind}.client", "B1", label_client, error),
            ]
        server = statistics.median(r["execution_time"] / critical(r) for r in runs)
        client = statistics.median(r["client_s"] / critical(r) for r in runs)
        calls = sorted({r["llm_calls"] for r in runs})
        details = {
            "runs": len(runs),
            "statuses": result["statuses"],
            "llm_calls": calls,
            "critical_path_s": sorted({critical(r) for r in runs}),
            "execution_time_s": [round(r["execution_time"], 4) for r in runs],
            "client_s": [round(r["client_s"], 4) for r in runs],
        }
        extra_ms = statistics.median(r["execution_time"] - critical(r) for r in runs) * 1000
        # What the stand-ins saw: time with an upstream call in flight, per run (runs are sequential).
        busy_per_run = busy / result["runs"] if result["runs"] else 0.0
        details["upstream_busy_s_per_run"] = busy_per_run
        over_busy_ms = (statistics.median(r["execution_time"] for r in runs) - busy_per_run) * 1000
        note = (
            f"{len(runs)} run{'s' if len(runs) != 1 else ''}, {'/'.join(map(str, calls))} LLM calls, "
            f"+{extra_ms:.0f} ms over the critical path; "
            f"upstreams busy {busy_per_run:.2f} s/run, +{over_busy_ms:.0f} ms beyond that"
        )
        return [
            Row(
                key=f"B1.{kind}.server",
                row="B1",
                label=label_server,
                value=server,
                unit="×",
                op="<=",
                target=1.05,
                note=note,
                details=details,
            ),
            Row(
                key=f"B1.{kind}.client",
                row="B1",
                label=label_client,
                value=client,
                unit="×",
                op="<=",
                target=1.05,
                details=details,
            ),
        ]

    def b3_per_run(self, server: Child, *, serial: int, concurrent: int, tag: str) -> tuple[list[Row], list[str]]:
        """Per-run overhead at zero upstream latency; returns rows and the completed workflow ids."""
        p = self.profile
        self.standin_latency(openai=0.0, search=0.0)
        pids = {"server": server.pid, "standins": self.standins.pid if self.standins else server.pid}
        rows: list[Row] = []
        ids: list[str] = []
        suffix = f" [{tag}]"
        for key, total, concurrency in (("serial", serial, 1), ("c64", concurrent, p.b3_concurrency)):
            meter = CpuMeter(pids).start()
            with self.py_spy(f"b3-{key}-{tag.lower()}", server.pid) if key == "c64" else contextlib.nullcontext():
                result = self.runs(server, REFLECTION_BODY, total=total, concurrency=concurrency)
            cpu = meter.stop()
            ids += result["ids"]
            completed = result["completed"]
            pace = "one at a time" if concurrency == 1 else f"{concurrency} at a time"
            label = f"server CPU per run, {pace}{suffix}"
            if completed == 0:
                rows.append(
                    Row.failed(f"B3.{key}.{tag.lower()}", "B3", label, f"no run completed: {result['statuses']}")
                )
                continue
            # Issue 16's measure: the server's CPU per run (HTTP, graph, store, logs: everything).
            # Wall time per run is in the note; on shared cores it measures the neighbours too.
            value = cpu["server"] / result["runs"] * 1000
            details = {
                "runs": result["runs"],
                "statuses": result["statuses"],
                "wall_s": result["wall_s"],
                "client_latency_ms": result["client"],
                "execution_time_ms": result["execution_time"],
                "llm_calls": result["llm_calls"],
                "cpu_s": cpu | {"loadgen": result["loadgen_cpu_s"]},
                "server_cpu_ms_per_run": value,
                "wall_ms_per_run": result["wall_s"] / result["runs"] * 1000,
                "standins_cpu_ms_per_run": cpu["standins"] / result["runs"] * 1000,
            }
            note = (
                f"{result['runs']} runs; wall {details['wall_ms_per_run']:.1f} ms/run, "
                f"stand-ins' CPU {details['standins_cpu_ms_per_run']:.1f} ms/run"
            )
            if completed != result["runs"]:
                note += f"; only {completed}/{result['runs']} completed"
            rows.append(
                Row(
                    key=f"B3.{key}.{tag.lower()}",
                    row="B3",
                    label=label,
                    value=value,
                    unit="ms",
                    op="<=",
                    target=11 if tag.upper() == "INFO" else 10,  # INFO logs may cost 1 ms per run
                    note=note,
                    details=details,
                )
            )
        return rows, ids

    def b5_poll(self, server: Child, ids: list[str]) -> list[Row]:
        p = self.profile
        if not ids:
            error = "no workflow ids to poll"
            return [
                Row.failed("B5.p50", "B5", "GET /workflows/{id} p50", error),
                Row.failed("B5.p99", "B5", "GET /workflows/{id} p99", error),
            ]
        spec = {
            "mode": "openloop",
            "base_url": _base(server),
            "paths": [f"/workflows/{i}" for i in ids[:5000]],
            "rate": p.b5_rate,
            "duration": p.b5_duration,
            "connections": 256,
        }
        meter = CpuMeter({"server": server.pid}).start()
        with self.py_spy("b5", server.pid):
            result = self.loadgen(spec, timeout=p.b5_duration + 120)
        cpu = meter.stop()
        lat = result["latency"]
        bad = sum(n for code, n in result["statuses"].items() if code != "200") + result["transport_errors"]
        # Answered per second over the whole load (it drains after the last send): the server's
        # GET capacity when it is below the offered rate.
        note = (
            f"{result['sent']} GETs offered at {p.b5_rate:.0f}/s open-loop, answered {result['achieved_rps']:.0f}/s; "
            f"p99 from send {result['latency_from_send']['p99_ms']:.1f} ms; "
            f"server CPU {cpu['server'] / p.b5_duration * 100:.0f} %"
        )
        if bad:
            note += f"; {bad} non-200/errors"
        details = result | {"server_cpu_s": cpu["server"]}
        return [
            Row(
                key="B5.p50",
                row="B5",
                label=f"GET /workflows/{{id}} p50 @ {p.b5_rate:.0f} req/s",
                value=lat["p50_ms"],
                unit="ms",
                details=details,
            ),
            Row(
                key="B5.p99",
                row="B5",
                label=f"GET /workflows/{{id}} p99 @ {p.b5_rate:.0f} req/s",
                value=lat["p99_ms"],
                unit="ms",
                op="<=",
                target=5,  # issue 16's acceptance
                note=note,
            ),
        ]

    def b2_concurrency(self, server: Child) -> list[Row]:
        try:
            self.warm(server)
            measured = self.single_then_burst(server, {"server": server.pid}, py_spy_name="b2-burst")
        finally:
            self.stop(server)
        return burst_rows("B2", measured, wall_target=3.0, rss_label="peak server RSS during B2")

    def single_then_burst(
        self,
        api: Child,
        processes: dict[str, int],
        *,
        py_spy_name: str,
        during_burst: Sequence[contextlib.AbstractContextManager[object]] = (),
    ) -> BurstResult:
        """B2's measurement on any set-up: one run alone (submit, then a long poll), then the
        profile's B2 burst at once, at the profile's B2 latency, both through ``api``.

        ``processes`` (name → pid) are the ones that do the work: their RSS is sampled every
        100 ms from the single run on, their CPU read around the burst; a ``--py-spy`` profile
        of each is recorded during the burst. ``during_burst``: more meters, entered around the burst.
        """
        p = self.profile
        total = p.b2_total
        self.standin_latency(openai=p.b2_latency, search=p.b2_latency)
        with contextlib.ExitStack() as sampling:
            rss = {name: sampling.enter_context(RssSampler(pid, interval=0.1)) for name, pid in processes.items()}
            # Measured like each run of the burst: a 202 submit, then a long poll.
            single = self.runs(api, REFLECTION_BODY, total=p.b2_single_runs, concurrency=1, submit_wait=False)
            self.standin_latency(openai=p.b2_latency, search=p.b2_latency)  # fresh journal for the burst
            meter = CpuMeter(processes).start()
            spec = {
                "mode": "burst",
                "base_url": _base(api),
                "path": "/workflows/reflection",
                "body": REFLECTION_BODY,
                "total": total,
                "wait": 60,
            }
            with contextlib.ExitStack() as profiling:
                for extra in during_burst:
                    profiling.enter_context(extra)
                for name, pid in processes.items():
                    suffix = "" if len(processes) == 1 else f"-{name}"
                    profiling.enter_context(self.py_spy(f"{py_spy_name}{suffix}", pid))
                # Bounded, but not below what a loaded 2-core machine needs for the burst.
                burst = self.loadgen(spec, timeout=max(600.0, total * 1.5))
            cpu = meter.stop()
        return BurstResult(
            total=total,
            latency=p.b2_latency,
            single=single,
            burst=burst,
            cpu_s=cpu,
            cpu_wait_s=meter.waited,
            peak_rss={name: sampler.peak for name, sampler in rss.items()},
            rss_samples={name: sampler.samples for name, sampler in rss.items()},
            openai=self.standin_stats()["upstreams"]["openai"],
        )

    def b4_submit_throughput(self, server: Child, bare: Child) -> list[Row]:
        p = self.profile
        try:
            # The first run loads the workflow stack (and a submit waits for it to check its
            # providers): a start-up cost, not the submit path's.
            self.warm(server)
            self.standin_latency(openai=p.b4_latency, search=p.b4_latency)
            results: dict[str, list[dict[str, Any]]] = {"bare": [], "agentflow": []}
            for round_ in range(p.b4_rounds):
                for name, target in (("bare", bare), ("agentflow", server)):
                    spec = {
                        "mode": "throughput",
                        "base_url": _base(target),
                        "path": "/workflows/reflection",
                        "body": REFLECTION_BODY,
                        "concurrency": p.b4_concurrency,
                        "warmup": p.b4_warmup,
                        "duration": p.b4_duration,
                    }
                    meter = CpuMeter({"target": target.pid}).start()
                    profile = (
                        self.py_spy(f"b4-round{round_}", target.pid)
                        if name == "agentflow"
                        else contextlib.nullcontext()
                    )
                    with profile:
                        result = self.loadgen(spec, timeout=p.b4_warmup + p.b4_duration + 120)
                    result["server_cpu_pct"] = meter.stop()["target"] / (p.b4_warmup + p.b4_duration) * 100
                    results[name].append(result)
        finally:
            self.stop(bare)
            self.stop(server)
        bare_rps = statistics.median(r["rps"] for r in results["bare"])
        af_rps = statistics.median(r["rps"] for r in results["agentflow"])
        af_p50 = statistics.median(r["latency"]["p50_ms"] for r in results["agentflow"])
        af_p99 = statistics.median(r["latency"]["p99_ms"] for r in results["agentflow"])
        bare_p50 = statistics.median(r["latency"]["p50_ms"] for r in results["bare"])
        bare_p99 = statistics.median(r["latency"]["p99_ms"] for r in results["bare"])
        af_bad = sum(n for r in results["agentflow"] for code, n in r["statuses"].items() if not code.startswith("2"))
        details = {"rounds": results, "concurrency": p.b4_concurrency, "stand-in latency_s": p.b4_latency}
        note = (
            f"{af_rps:,.0f} vs bare {bare_rps:,.0f} req/s; {p.b4_rounds}×{p.b4_duration:g} s each, "
            f"{p.b4_concurrency} connections"
        )
        if af_bad:
            note += f"; {af_bad} non-2xx"
        return [
            Row(
                key="B4.ratio",
                row="B4",
                label="submit req/s ÷ bare FastAPI req/s",
                value=af_rps / bare_rps,
                unit="×",
                op=">=",
                target=0.4,
                note=note,
                details=details,
            ),
            Row(key="B4.rps", row="B4", label="POST /workflows/reflection req/s", value=af_rps, unit="req/s"),
            Row(
                key="B4.p50",
                row="B4",
                label="submit latency p50",
                value=af_p50,
                unit="ms",
                note=f"bare: {bare_p50:.1f} ms",
            ),
            Row(
                key="B4.p99",
                row="B4",
                label="submit latency p99",
                value=af_p99,
                unit="ms",
                note=f"bare: {bare_p99:.1f} ms",
            ),
        ]

    def b6_cache(self, server: Child) -> list[Row]:
        """Result cache: hit latency and upstream calls, misses on changed parameters, single flight."""
        p = self.profile
        try:
            self.warm(server)
            self.standin_latency(openai=0.0, search=0.0)
            seeded = self._submit(server, CACHE_BODY)
            if seeded["status"] != "completed":
                raise RuntimeError(f"the run to be cached did not complete: {seeded}")
            self.standin_latency(openai=0.0, search=0.0)  # clears the journal
            before = self._summary(server)["cache"]
            spec = {
                "mode": "throughput",
                "base_url": _base(server),
                "path": "/workflows/reflection",
                "body": CACHE_BODY,
                "concurrency": 1,
                "warmup": p.b6_warmup,
                "duration": p.b6_duration,
            }
            meter = CpuMeter({"server": server.pid}).start()
            hits = self.loadgen(spec, timeout=p.b6_warmup + p.b6_duration + 120)
            cpu = meter.stop()
            hit_upstream = len(self._admin("GET", "/_standin/requests"))
            after = self._summary(server)["cache"]
            served = after["hits"] - before["hits"]  # warm-up included

            misses: dict[str, bool] = {}
            for name, change in CACHE_VARIANTS.items():
                self.standin_latency(openai=0.0, search=0.0)
                record = self._submit(server, {**CACHE_BODY, **change})
                upstream = len(self._admin("GET", "/_standin/requests"))
                misses[name] = record["cache_outcome"] == "miss" and record["status"] == "completed" and upstream > 0

            # Single flight: identical submits at once, while the first is still running.
            self.standin_latency(openai=p.b6_flight_latency, search=p.b6_flight_latency)
            flight_body = {**CACHE_BODY, "topic": "Explain single flight to a new engineer"}
            burst = self.loadgen(
                {
                    "mode": "burst",
                    "base_url": _base(server),
                    "path": "/workflows/reflection",
                    "body": flight_body,
                    "total": p.b6_flight_runs,
                    "wait": 60,
                },
                timeout=600,
            )
            flight_upstream = len(self._admin("GET", "/_standin/requests"))
            one_run = max(burst["llm_calls"], default=0)
        finally:
            self.stop(server)
        lat = hits["latency"]
        details = {
            "hits": hits,
            "served_from_cache": served,
            "server_cpu_ms_per_hit": cpu["server"] / max(hits["requests"], 1) * 1000,
            "misses": misses,
            "flight": {"statuses": burst["statuses"], "upstream_calls": flight_upstream, "one_run_calls": one_run},
        }
        bad = sum(n for code, n in hits["statuses"].items() if code != "202")
        note = (
            f"{hits['requests']} sequential repeats measured, p99 {lat['p99_ms']:.1f} ms; {served} answered from "
            f"the cache (warm-up included); server CPU {details['server_cpu_ms_per_hit']:.2f} ms/hit"
        )
        if bad:
            note += f"; {bad} not 202"
        missed = sum(misses.values())
        return [
            Row(
                key="B6.cache_hit_p50",
                row="B6",
                label="cache hit p50 (repeated identical submit)",
                value=lat["p50_ms"],
                unit="ms",
                op="<=",
                target=5,
                note=note,
                details=details,
            ),
            Row(
                key="B6.hit_upstream_calls",
                row="B6",
                label="upstream calls made by the repeats",
                value=float(hit_upstream),
                op="<=",
                target=0,
                note=f"stand-in journal over the {served} repeated submits",
            ),
            Row(
                key="B6.changed_misses",
                row="B6",
                label="changed parameter misses (" + ", ".join(CACHE_VARIANTS) + ")",
                value=missed / len(misses) * 100,
                unit="%",
                op=">=",
                target=100,
                note=", ".join(f"{name} {'missed' if ok else 'HIT'}" for name, ok in misses.items()),
            ),
            Row(
                key="B6.single_flight",
                row="B6",
                label=f"{p.b6_flight_runs} identical concurrent submits: upstream calls ÷ one run's",
                value=flight_upstream / one_run if one_run else float("nan"),
                unit="×",
                op="<=",
                target=1.0,
                note=f"{flight_upstream} upstream calls for {p.b6_flight_runs} submits (one run makes {one_run}); "
                f"statuses {burst['statuses']}",
            ),
        ]

    def _submit(self, server: Child, body: dict[str, Any]) -> dict[str, Any]:
        """One submit held until the run ends; the final record."""
        response = httpx.post(f"{_base(server)}/workflows/reflection?wait=60", json=body, timeout=90.0)
        response.raise_for_status()
        record: dict[str, Any] = response.json()
        return record

    @staticmethod
    def _summary(server: Child) -> dict[str, Any]:
        response = httpx.get(f"{_base(server)}/metrics/summary", timeout=30.0)
        response.raise_for_status()
        summary: dict[str, Any] = response.json()
        return summary


@dataclass
class BurstResult:
    """What ``Bench.single_then_burst`` measured: one run alone, then a burst, per process."""

    total: int
    latency: float
    single: dict[str, Any]
    burst: dict[str, Any]
    cpu_s: dict[str, float]
    #: Seconds each process was runnable but waiting for a CPU during the burst (Linux).
    cpu_wait_s: dict[str, float]
    peak_rss: dict[str, int]
    rss_samples: dict[str, list[tuple[float, int]]]
    openai: dict[str, Any]

    @property
    def single_wall(self) -> float | None:
        return self.single["client"]["p50_ms"] / 1000 if self.single["completed"] else None

    def cpu_pct(self, name: str) -> float:
        """CPU of one process over the burst, in % of one core."""
        wall = self.burst["wall_s"]
        return self.cpu_s[name] / wall * 100 if wall else 0.0

    def cpu_text(self) -> str:
        """Each process's CPU over the burst, and how long it waited for a CPU (a shared machine)."""
        return ", ".join(
            f"{name} {cpu:.0f} s = {self.cpu_pct(name):.0f} % (waited {self.cpu_wait_s.get(name, 0):.0f} s)"
            for name, cpu in self.cpu_s.items()
        )

    def details(self) -> dict[str, Any]:
        burst = self.burst
        return {
            "total": self.total,
            "latency_s": self.latency,
            "statuses": burst["statuses"],
            "errors": burst["errors"],
            "error_codes": burst["error_codes"],
            "burst_wall_s": burst["wall_s"],
            "single_wall_s": self.single_wall,
            "submit_phase_s": burst["submit_phase_s"],
            "client_latency_ms": burst["client"],
            "submit_latency_ms": burst["submit"],
            "execution_time_ms": burst["execution_time"],
            "llm_calls": burst["llm_calls"],
            "poll_timeouts": burst["poll_timeouts"],
            "standin_openai": self.openai,
            "cpu_s": self.cpu_s,
            "cpu_pct_of_one_core": {name: round(self.cpu_pct(name), 1) for name in self.cpu_s},
            "cpu_wait_s": self.cpu_wait_s,
            "loadgen_cpu_s": burst["loadgen_cpu_s"],
            "peak_rss_mib": {name: round(peak / MIB, 1) for name, peak in self.peak_rss.items()},
            "rss_mib_timeline": {
                name: [(round(t, 1), round(b / MIB, 1)) for t, b in samples[:: max(1, len(samples) // 60)]]
                for name, samples in self.rss_samples.items()
            },
        }


def burst_rows(row: str, measured: BurstResult, *, wall_target: float, rss_label: str) -> list[Row]:
    """B2's lines for one set-up: % completed, wall ÷ one run alone, peak upstream calls in
    flight, peak RSS (of the largest process; every process's in the note)."""
    burst, total = measured.burst, measured.total
    single_wall = measured.single_wall
    rows = [
        Row(
            key=f"{row}.completed",
            row=row,
            label=f"{total} runs in flight @ L={measured.latency:g}s: completed",
            value=burst["completed"] / total * 100,
            unit="%",
            op=">=",
            target=100,
            note=f"statuses {burst['statuses']}"
            + (f"; errors {burst['errors'][:2]}" if burst["errors"] else "")
            + (f"; {burst['poll_timeouts']} long polls timed out and were retried" if burst["poll_timeouts"] else ""),
            details=measured.details(),
        ),
    ]
    if single_wall:
        rows.append(
            Row(
                key=f"{row}.wall_ratio",
                row=row,
                label="wall ÷ single-workflow wall",
                value=burst["wall_s"] / single_wall,
                unit="×",
                op="<=",
                target=wall_target,
                note=(
                    f"{burst['wall_s']:.1f} s vs {single_wall:.2f} s alone; "
                    f"submits took {burst['submit_phase_s']:.1f} s; "
                    f"CPU over the burst (% of one core): {measured.cpu_text()}"
                ),
            )
        )
    else:
        rows.append(Row.failed(f"{row}.wall_ratio", row, "wall ÷ single-workflow wall", "the single run failed"))
    rows.append(
        Row(
            key=f"{row}.in_flight",
            row=row,
            label="peak upstream LLM calls in flight",
            value=float(measured.openai.get("max_in_flight") or 0),
            unit="calls",
            op=">=",
            target=total / 2,
            note=f"the OpenAI stand-in's own count; CPU {measured.cpu_text()}",
        )
    )
    peaks = measured.peak_rss
    rows.append(
        Row(
            key=f"{row}.peak_rss",
            row=row,
            label=rss_label,
            value=max(peaks.values()) / MIB,
            unit="MiB",
            op="<=",
            target=400,
            note="psutil every 100 ms from the driver"
            + ("" if len(peaks) == 1 else ": " + ", ".join(f"{n} {b / MIB:.0f} MiB" for n, b in peaks.items())),
        )
    )
    return rows


def _base(child: Child) -> str:
    return f"http://127.0.0.1:{child.port}"


def _env_with_repo() -> dict[str, str]:
    from bench._procs import clean_env

    return clean_env()
