"""``python -m bench._standins``: the shared stand-ins (same flags, same ready line), served on uvloop.

Same app, config and CLI as ``python -m tests.standins``; only the loop differs. The stand-ins
share the 2 cores with the server under test, and uvloop with httptools costs them less CPU per
request. (It also made the bench immune to the stand-in listener that lacked TCP_NODELAY, which
added ~40 ms to every upstream answer; tests/standins sets it since 6890e51.)
"""

from __future__ import annotations

import sys

from tests.standins.__main__ import main as serve_standins

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    return serve_standins(argv, loop="uvloop", http="httptools")


if __name__ == "__main__":
    sys.exit(main())
