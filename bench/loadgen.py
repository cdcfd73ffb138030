"""The load generator: ``python -m bench.loadgen SPEC.json`` drives one scenario, prints one JSON line.

It runs as its own process (asyncio on uvloop), so its CPU is never the server's. Requests go
through ``bench._http``: a lean keep-alive client by default (``"engine": "raw"``), or httpx
(``"engine": "httpx"``) to cross-check. Modes:

- ``runs``: ``concurrency`` clients, each looping submit (``?wait=``) → terminal, ``total`` runs
  in all (B1, B3). Per run: client latency, server ``execution_time``, ``usage.llm_calls``.
- ``burst``: ``total`` submits at once, each held open with ``?wait=`` until its run ends (B2).
- ``throughput``: closed loop of ``concurrency`` clients POSTing for ``duration`` s after a
  warm-up (B4): requests/s and latency percentiles.
- ``openloop``: GETs sent at fixed intervals (``rate`` per second) whatever the replies do
  (B5); latency counts from the scheduled send time, so a slow server cannot hide its queue.
"""

from __future__ import annotations

import asyncio
import json
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench._http import Client, make_client

__all__ = ["main", "percentile"]

TERMINAL = frozenset({"completed", "failed", "cancelled"})
RUN_DEADLINE_S = 540.0  # a run still unfinished after this counts as a client error


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) by linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _latency_summary(seconds: list[float]) -> dict[str, Any]:
    ms = [s * 1000.0 for s in seconds]
    return {
        "n": len(ms),
        "p50_ms": percentile(ms, 50),
        "p90_ms": percentile(ms, 90),
        "p99_ms": percentile(ms, 99),
        "max_ms": max(ms) if ms else None,
        "mean_ms": statistics.fmean(ms) if ms else None,
    }


def _client(spec: dict[str, Any], connections: int, timeout: float) -> Client:
    return make_client(spec.get("engine", "raw"), spec["base_url"], connections=connections, timeout=timeout)


class _Closing:
    """``async with _Closing(client) as c``: the client's sockets are closed on the way out."""

    def __init__(self, client: Client) -> None:
        self.client = client

    async def __aenter__(self) -> Client:
        return self.client

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()


# --- workflow runs ------------------------------------------------------------------------------


async def _one_run(
    client: Client, path: str, body: dict[str, Any], wait: float, *, submit_wait: bool = True
) -> dict[str, Any]:
    """Submit one run and follow it to a terminal status. With ``submit_wait`` the POST itself
    holds (``?wait=``); without, it answers 202 at once and a ``GET ?wait=`` follows."""
    started = time.perf_counter()
    poll_timeouts = 0
    try:
        status, data = await client.request("POST", f"{path}?wait={wait:g}" if submit_wait else path, body)
        submitted = time.perf_counter()
        if status not in (200, 202):
            return {"ok": False, "error": f"submit {status}: {data[:200]!r}", "t0": started}
        record = json.loads(data)
        while record["status"] not in TERMINAL:
            try:
                status, data = await client.request("GET", f"/workflows/{record['workflow_id']}?wait={wait:g}")
            except TimeoutError:
                # A long poll the server did not answer in time: a patient client asks again
                # (counted); the run is judged by its record, up to the load's own deadline.
                poll_timeouts += 1
                if time.perf_counter() - started > RUN_DEADLINE_S:
                    raise
                continue
            if status != 200:
                return {"ok": False, "error": f"poll {status}: {data[:200]!r}", "t0": started}
            record = json.loads(data)
    except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError) as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}", "t0": started}
    finished = time.perf_counter()
    usage = record.get("usage") or {}
    return {
        "ok": True,
        "id": record["workflow_id"],
        "status": record["status"],
        "error_code": (record.get("error") or {}).get("code"),
        "client_s": finished - started,
        "submit_s": submitted - started,
        "execution_time": record.get("execution_time"),
        "llm_calls": usage.get("llm_calls"),
        # Research only: arXiv searches are serialised by the mandated politeness guard.
        "arxiv_queries": sum(
            1 for q in (record.get("result") or {}).get("queries") or [] if q.get("source") == "arxiv"
        ),
        "created_at": record.get("created_at"),
        "finished_at": record.get("finished_at"),
        "poll_timeouts": poll_timeouts,
        "t0": started,
        "t1": finished,
    }


def _runs_summary(results: list[dict[str, Any]], wall: float, keep_runs: bool) -> dict[str, Any]:
    ok = [r for r in results if r["ok"]]
    statuses: dict[str, int] = {}
    for r in results:
        key = r["status"] if r["ok"] else "client_error"
        statuses[key] = statuses.get(key, 0) + 1
    errors = sorted({r["error"] for r in results if not r["ok"]})[:5]
    error_codes = sorted({r["error_code"] for r in ok if r.get("error_code")})
    summary: dict[str, Any] = {
        "runs": len(results),
        "wall_s": wall,
        "statuses": statuses,
        "completed": statuses.get("completed", 0),
        "errors": errors,
        "error_codes": error_codes,
        "client": _latency_summary([r["client_s"] for r in ok]),
        "submit": _latency_summary([r["submit_s"] for r in ok]),
        "execution_time": _latency_summary([r["execution_time"] for r in ok if r["execution_time"] is not None]),
        "llm_calls": sorted({r["llm_calls"] for r in ok if r["llm_calls"] is not None}),
        "poll_timeouts": sum(r.get("poll_timeouts", 0) for r in ok),
        "ids": [r["id"] for r in ok],
    }
    if keep_runs:
        summary["per_run"] = [
            {
                k: r.get(k)
                for k in ("id", "status", "client_s", "execution_time", "llm_calls", "arxiv_queries", "error_code")
            }
            for r in ok
        ]
    return summary


async def runs(spec: dict[str, Any]) -> dict[str, Any]:
    total, concurrency = int(spec["total"]), int(spec["concurrency"])
    wait = float(spec.get("wait", 60))
    submit_wait = bool(spec.get("submit_wait", True))
    remaining = iter(range(total))
    results: list[dict[str, Any]] = []

    async with _Closing(_client(spec, concurrency, wait + 30)) as client:

        async def worker() -> None:
            for _ in remaining:
                results.append(await _one_run(client, spec["path"], spec["body"], wait, submit_wait=submit_wait))

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return _runs_summary(results, wall, keep_runs=bool(spec.get("keep_runs")))


async def burst(spec: dict[str, Any]) -> dict[str, Any]:
    total = int(spec["total"])
    wait = float(spec.get("wait", 60))
    # Every run at once: a 202 submit, then a long poll (GET ?wait=) held open until the run
    # ends, so one connection per run; the 202s show how long submitting alone took.
    async with _Closing(_client(spec, total, wait + 30)) as client:
        started = time.perf_counter()
        results = await asyncio.gather(
            *(_one_run(client, spec["path"], spec["body"], wait, submit_wait=False) for _ in range(total))
        )
        wall = time.perf_counter() - started
    summary = _runs_summary(list(results), wall, keep_runs=False)
    ok = [r for r in results if r["ok"]]
    # When the last submit was answered: how long the submitting alone took under load.
    summary["submit_phase_s"] = max((r["t0"] + r["submit_s"] for r in ok), default=started) - started
    summary["created_at_min"] = min((r["created_at"] for r in ok if r["created_at"]), default=None)
    summary["finished_at_max"] = max((r["finished_at"] for r in ok if r["finished_at"]), default=None)
    return summary


# --- plain request loads ------------------------------------------------------------------------


async def throughput(spec: dict[str, Any]) -> dict[str, Any]:
    concurrency = int(spec["concurrency"])
    warmup, duration = float(spec.get("warmup", 1.0)), float(spec["duration"])
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    errors = 0
    async with _Closing(_client(spec, concurrency, 30.0)) as client:
        start = time.perf_counter()
        measure_from, stop_at = start + warmup, start + warmup + duration

        async def worker() -> None:
            nonlocal errors
            while (now := time.perf_counter()) < stop_at:
                try:
                    status, _data = await client.request("POST", spec["path"], spec["body"])
                except (OSError, TimeoutError, asyncio.IncompleteReadError):
                    errors += 1
                    continue
                done = time.perf_counter()
                if now >= measure_from and done <= stop_at:
                    latencies.append(done - now)
                    key = str(status)
                    statuses[key] = statuses.get(key, 0) + 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    good = sum(n for code, n in statuses.items() if code.startswith("2"))
    return {
        "requests": len(latencies),
        "ok": good,
        "statuses": statuses,
        "transport_errors": errors,
        "rps": good / duration,
        "latency": _latency_summary(latencies),
        "duration_s": duration,
        "concurrency": concurrency,
    }


async def openloop(spec: dict[str, Any]) -> dict[str, Any]:
    rate, duration = float(spec["rate"]), float(spec["duration"])
    paths: list[str] = spec["paths"]
    count = int(rate * duration)
    interval = 1.0 / rate
    from_schedule: list[float] = []
    from_send: list[float] = []
    send_lag: list[float] = []
    statuses: dict[str, int] = {}
    errors = 0
    async with _Closing(_client(spec, int(spec.get("connections", 256)), 30.0)) as client:

        async def one(path: str, scheduled: float) -> None:
            nonlocal errors
            sent = time.perf_counter()
            try:
                status, _data = await client.request("GET", path)
            except (OSError, TimeoutError, asyncio.IncompleteReadError):
                errors += 1
                return
            done = time.perf_counter()
            from_schedule.append(done - scheduled)
            from_send.append(done - sent)
            send_lag.append(sent - scheduled)
            key = str(status)
            statuses[key] = statuses.get(key, 0) + 1

        tasks: list[asyncio.Task[None]] = []
        start = time.perf_counter() + 0.05
        for i in range(count):
            scheduled = start + i * interval
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(paths[i % len(paths)], scheduled)))
        await asyncio.gather(*tasks)
        wall = time.perf_counter() - start
    return {
        "sent": count,
        "offered_rps": rate,
        "achieved_rps": len(from_schedule) / wall if wall > 0 else None,
        "statuses": statuses,
        "transport_errors": errors,
        "latency": _latency_summary(from_schedule),
        "latency_from_send": _latency_summary(from_send),
        "send_lag": _latency_summary(send_lag),
        "duration_s": duration,
    }


MODES = {"runs": runs, "burst": burst, "throughput": throughput, "openloop": openloop}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m bench.loadgen SPEC.json", file=sys.stderr)
        return 2
    spec = json.loads(Path(args[0]).read_text())
    try:
        import uvloop

        loop_factory: Any = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is a server dependency everywhere but Windows
        loop_factory = None
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        result = runner.run(MODES[spec["mode"]](spec))
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    result["loadgen_cpu_s"] = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
