"""``python -m bench._standins``: the shared stand-ins (same flags, same ready line), served on uvloop.

Same app, config and CLI as ``python -m tests.standins``; only the loop differs. The stand-ins
share the 2 cores with the server under test, and uvloop with httptools costs them less CPU per
request. (It also made the bench immune to the stand-in listener that lacked TCP_NODELAY, which
added ~40 ms to every upstream answer; tests/standins sets it since 6890e51.)
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from types import FrameType

from tests.standins import StandinServer
from tests.standins.__main__ import build_config, parse_args

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
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
    server = StandinServer(config, host=args.host, port=args.port, loop="uvloop", http="httptools")
    server.start()
    try:
        print(json.dumps({**server.ready_info(), "pid": os.getpid(), "loop": "uvloop"}), flush=True)
        while not stop.wait(0.2):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
