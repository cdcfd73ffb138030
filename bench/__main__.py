"""``python -m bench [--quick]``: run B1-B9 (and B2q) against real processes, print the table, save the JSON."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from bench._procs import REPO, Child, raise_fd_limit
from bench.profiles import FULL, QUICK, SMOKE
from bench.report import Row, format_table, write_json
from bench.scale_out import b2q_queue_burst, b9_workers
from bench.scenarios import Bench

ROWS = ("B1", "B2", "B2q", "B3", "B4", "B5", "B6", "B7", "B8", "B9")
Log = Callable[[str], None]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    sizes = parser.add_mutually_exclusive_group()
    sizes.add_argument("--quick", action="store_true", help="reduced sizes: under a minute on 2 cores")
    sizes.add_argument(
        "--smoke", action="store_true", help="the smallest sizes that run every row (the test suite's end-to-end check)"
    )
    parser.add_argument(
        "--json-out",
        type=Path,
        default=REPO / "bench" / "results",
        help="directory (latest.json inside) or .json file for the results (default: bench/results/)",
    )
    parser.add_argument("--only", help="comma-separated rows to run, e.g. B1,B3,B2q (default: all)")
    parser.add_argument(
        "--py-spy",
        type=Path,
        metavar="DIR",
        help="record py-spy profiles (GIL-holding samples) of the B2 and B2q bursts, B3 (64 at a time), B4, B5 here",
    )
    parser.add_argument("--keep-workdir", action="store_true", help="keep the temp dir (server logs, databases)")
    return parser


def _selected(only: str | None) -> set[str]:
    """The rows ``--only`` names, matched case-insensitively (``b2q`` is ``B2q``); all without it."""
    if not only:
        return set(ROWS)
    known = {row.upper(): row for row in ROWS}
    names = [name.strip() for name in only.split(",") if name.strip()]
    unknown = [name for name in names if name.upper() not in known]
    if unknown:
        raise SystemExit(f"python -m bench: --only: unknown rows {', '.join(unknown)} (known: {', '.join(ROWS)})")
    return {known[name.upper()] for name in names}


def _terminate_on_signal() -> None:
    """SIGINT/SIGTERM/SIGHUP unwind as KeyboardInterrupt, so every started process is stopped
    on the way out (SIGINT explicitly too: a shell's background job starts with it ignored)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)


def _guarded(rows: list[Row], row: str, fn: Callable[[], list[Row]], log: Log) -> None:
    """Run one scenario; a failure becomes an ERROR row instead of ending the whole bench."""
    started = time.monotonic()
    try:
        rows += fn()
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        log(f"{row} failed:\n{traceback.format_exc()}")
        rows.append(Row.failed(f"{row}.error", row, "scenario failed", f"{type(exc).__name__}: {exc}"[:300]))
    log(f"{row} done in {time.monotonic() - started:.1f} s")


def _plan(bench: Bench, only: set[str]) -> dict[str, dict[str, str | int] | None]:
    """Which servers the selected rows need, with their settings (None: the bare FastAPI app)."""
    total = bench.profile.b2_total
    plan: dict[str, dict[str, str | int] | None] = {}
    if only & {"B1", "B3", "B5", "B7"}:
        plan["main"] = {}  # WARNING logs, 64 concurrent runs
    if "B3" in only:
        plan["info"] = {"log_level": "INFO"}
    if "B2" in only:
        plan["b2"] = {"max_concurrent_workflows": max(total, 64), "openai_max_concurrency": total}
    if "B6" in only:
        plan["b6"] = {}
    if "B4" in only:
        # One run at a time against a 30 s upstream: submitted runs queue as idle tasks and
        # take no CPU from the submit path being measured (see README, B4).
        plan["b4"] = {"max_concurrent_workflows": 1}
        plan["bare"] = None
    return plan


#: The project's packages, compiled before anything starts (as ``make test`` does).
PACKAGES = ("backend", "agents", "workflows", "prompts", "tests", "bench")


def compile_bytecode() -> None:
    """Compile the project's modules to bytecode once, as installing a wheel does (pip compiles them).

    Python reads existing bytecode even under ``PYTHONDONTWRITEBYTECODE`` but, with it set (as on the
    bench machine), never writes it: every server the bench starts would compile agentflow's
    source from scratch, ~90 ms of each start-up (B8) that no installed server pays.
    """
    import compileall

    for package in PACKAGES:
        compileall.compile_dir(REPO / package, quiet=1)


def _run_all(bench: Bench, only: set[str], rows: list[Row], log: Log) -> None:
    profile = bench.profile
    compile_bytecode()
    bench.start_standins()
    if "B8" in only:  # first, alone: no other server is starting or running meanwhile
        _guarded(rows, "B8", bench.b8_startup, log)
    servers = bench.start_servers(_plan(bench, only))

    def need(name: str, covered: set[str]) -> Child | None:
        server = servers.get(name)
        if isinstance(server, Child):
            return server
        for row in sorted(only & covered):
            rows.append(Row.failed(f"{row}.error", row, f"server '{name}' did not start", str(server)[:300]))
        return None

    # main: idle RSS first (nothing has run yet), then B1, then B3, whose finished runs B5 polls.
    if (main := need("main", {"B1", "B3", "B5", "B7"})) is not None:
        try:
            if "B7" in only:
                _guarded(rows, "B7", lambda: bench.b7_idle_rss(main), log)
            if "B1" in only:
                _guarded(rows, "B1", lambda: bench.b1_overhead(main), log)
            ids: list[str] = []
            if only & {"B3", "B5"}:

                def b3() -> list[Row]:
                    if "B1" not in only:
                        bench.warm(main)
                    serial, concurrent = (
                        (profile.b3_serial_runs, profile.b3_concurrent_runs) if "B3" in only else (0, 256)
                    )
                    found, got = bench.b3_per_run(main, serial=serial, concurrent=concurrent, tag="WARNING")
                    ids.extend(got)
                    return found if "B3" in only else []

                _guarded(rows, "B3", b3, log)
            if "B5" in only:
                _guarded(rows, "B5", lambda: bench.b5_poll(main, ids), log)
        finally:
            bench.stop(main)
    if "B3" in only and (info := need("info", {"B3"})) is not None:

        def b3_info() -> list[Row]:
            try:
                bench.warm(info)
                found, _ = bench.b3_per_run(
                    info, serial=profile.b3_info_serial_runs, concurrent=profile.b3_info_concurrent_runs, tag="INFO"
                )
                return found
            finally:
                bench.stop(info)

        _guarded(rows, "B3", b3_info, log)
    if "B2" in only and (b2 := need("b2", {"B2"})) is not None:
        _guarded(rows, "B2", lambda: bench.b2_concurrency(b2), log)
    if "B2q" in only:
        _guarded(rows, "B2q", lambda: b2q_queue_burst(bench), log)
    if "B4" in only and (b4 := need("b4", {"B4"})) is not None and (bare := need("bare", {"B4"})) is not None:
        _guarded(rows, "B4", lambda: bench.b4_submit_throughput(b4, bare), log)
    if "B6" in only and (b6 := need("b6", {"B6"})) is not None:
        _guarded(rows, "B6", lambda: bench.b6_cache(b6), log)
    if "B9" in only:
        _guarded(rows, "B9", lambda: b9_workers(bench), log)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    profile = SMOKE if args.smoke else QUICK if args.quick else FULL
    only = _selected(args.only)
    raise_fd_limit()
    _terminate_on_signal()
    workdir = Path(tempfile.mkdtemp(prefix="agentflow-bench-"))
    began = time.monotonic()

    def log(message: str) -> None:
        print(f"[bench {time.monotonic() - began:6.1f}s] {message}", file=sys.stderr, flush=True)

    bench = Bench(profile, workdir, py_spy_dir=args.py_spy, log=log)
    rows: list[Row] = []
    interrupted = False
    try:
        _run_all(bench, only, rows, log)
    except KeyboardInterrupt:
        interrupted = True
        log("interrupted: stopping every started process")
    except Exception as exc:  # e.g. the stand-ins did not start: nothing could be measured
        log(f"bench failed:\n{traceback.format_exc()}")
        rows.append(Row.failed("bench.error", "-", "bench set-up failed", f"{type(exc).__name__}: {exc}"[:300]))
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # let the clean-up finish (it is bounded)
            signal.signal(sig, signal.SIG_IGN)
        bench.close()
        if args.keep_workdir:
            log(f"work dir kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    rows.sort(key=lambda r: r.row)  # stable: each row keeps its lines in run order
    elapsed = time.monotonic() - began
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    title = f"agentflow bench ({profile.name}{', interrupted' if interrupted else ''}) — {elapsed:.0f} s on {cpus} CPUs"
    print(format_table(rows, title=title))
    meta = {"profile": profile.name, "interrupted": interrupted, "duration_s": round(elapsed, 1)}
    path = write_json(args.json_out, rows, meta=meta)
    print(f"\nresults: {path}")
    if interrupted:
        return 130
    return 1 if any(r.status == "error" for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
