"""CLI: ``python -m tests.standins --port P ...`` serves the stand-ins until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from .config import UPSTREAMS, StandinConfig
from .server import StandinServer

__all__ = ["build_config", "main", "parse_args"]


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    p = argparse.ArgumentParser(
        prog="python -m tests.standins",
        description="Offline OpenAI/Tavily/arXiv stand-ins on one port. Prints one JSON "
        "'standins_ready' line on stdout when accepting connections.",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--openai-latency", type=float, default=0.0, help="seconds per request")
    p.add_argument("--search-latency", type=float, default=0.0, help="Tavily seconds/request")
    p.add_argument("--arxiv-latency", type=float, default=0.0, help="arXiv seconds/request")
    p.add_argument("--fault-rate", type=float, default=0.0, help="probability of a fault")
    p.add_argument("--faults", type=_csv, default=None, help="e.g. 503,429,500,timeout,truncated")
    p.add_argument("--fail-first-n", type=int, default=0, help="first N requests fail")
    p.add_argument("--fail-first-fault", default="503")
    p.add_argument("--rpm", type=int, default=None, help="max requests per 60 s window")
    p.add_argument("--retry-after", type=float, default=1.0, help="Retry-After of injected 429s")
    p.add_argument("--hang-seconds", type=float, default=30.0, help="duration of 'timeout'")
    p.add_argument(
        "--fault-upstreams",
        type=_csv,
        default=list(UPSTREAMS),
        help="upstreams the fault/rpm flags apply to (default: openai,tavily,arxiv)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--config",
        default=None,
        help='JSON (inline or a file path): {"openai": {...}, "tavily": {...}, "arxiv": {...}}; merged over the flags',
    )
    p.add_argument("--log-level", default="warning")
    return p.parse_args(argv)


def _load_json(value: str) -> dict[str, Any]:
    text = value if value.lstrip().startswith("{") else Path(value).read_text()
    data = json.loads(text)
    if not isinstance(data, dict):
        raise SystemExit("--config must be a JSON object")
    return data


def build_config(args: argparse.Namespace) -> StandinConfig:
    """Turn the parsed flags (and ``--config``) into a :class:`StandinConfig`."""
    unknown = set(args.fault_upstreams) - set(UPSTREAMS)
    if unknown:
        raise SystemExit(f"--fault-upstreams: unknown {sorted(unknown)}")
    latency = {
        "openai": args.openai_latency,
        "tavily": args.search_latency,
        "arxiv": args.arxiv_latency,
    }
    data: dict[str, dict[str, Any]] = {}
    for name in UPSTREAMS:
        upstream: dict[str, Any] = {"latency": latency[name], "seed": args.seed}
        if name in args.fault_upstreams:
            upstream.update(
                fault_rate=args.fault_rate,
                fail_first_n=args.fail_first_n,
                fail_first_fault=args.fail_first_fault,
                rpm=args.rpm,
                retry_after_seconds=args.retry_after,
                hang_seconds=args.hang_seconds,
            )
            if args.faults:
                upstream["faults"] = args.faults
        data[name] = upstream
    if args.config:
        for name, overrides in _load_json(args.config).items():
            if name not in UPSTREAMS or not isinstance(overrides, dict):
                raise SystemExit(f"--config: unknown upstream or non-object value for {name!r}")
            data[name].update(overrides)
    return StandinConfig.from_dict(data)


def main(argv: list[str] | None = None, *, loop: str = "asyncio", http: str = "auto") -> int:
    """Serve until SIGTERM/SIGINT; return the exit status (``loop``/``http`` as for uvicorn)."""
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    try:
        config = build_config(args)
    except ValueError as exc:
        print(f"invalid configuration: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server = StandinServer(config, host=args.host, port=args.port, loop=loop, http=http)
    server.start()
    try:
        print(json.dumps({**server.ready_info(), "pid": os.getpid(), "loop": loop}), flush=True)
        while not stop.wait(0.2):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
