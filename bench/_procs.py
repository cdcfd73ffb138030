"""Child processes of the bench (stand-ins, servers, load generators): start, watch, always stop.

Every child runs in its own session, so a Ctrl-C in the terminal reaches only the driver, which
then stops each child it started by id: SIGTERM to its process group, SIGKILL after a grace.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

__all__ = [
    "REPO",
    "VENV_BIN",
    "Child",
    "Children",
    "free_port",
    "raise_fd_limit",
    "wait_http_ready",
    "wait_port_closed",
]

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
# The server's own settings and provider credentials come only from what the bench sets.
_SCRUBBED_PREFIXES = ("AGENTFLOW_", "OPENAI_", "TAVILY_", "ARXIV_")


def free_port() -> int:
    """An ephemeral loopback port that was free a moment ago (bind port 0, read it, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def raise_fd_limit() -> None:
    """Lift the soft open-files limit to the hard one: thousands of sockets are in flight in B2."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard))


def _child_setup() -> None:
    """In the child before exec: more open files, and SIGTERM if the bench driver dies (even by
    SIGKILL, which leaves it no chance to clean up; Linux only)."""
    raise_fd_limit()
    if sys.platform == "linux":
        import ctypes

        with contextlib.suppress(Exception):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The parent environment without any agentflow/provider settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def wait_http_ready(url: str, *, timeout: float, child: Child | None = None, interval: float = 0.05) -> None:
    """Poll ``url`` every ``interval`` s until it answers 200; fail early if ``child`` exits meanwhile."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if child is not None and child.proc.poll() is not None:
                raise RuntimeError(
                    f"{child.name} exited with {child.proc.returncode} before it was ready\n{child.tail()}"
                )
            try:
                if client.get(url).status_code == 200:
                    return
            except httpx.HTTPError as exc:
                last = exc
            time.sleep(interval)
    raise TimeoutError(f"{url} not ready within {timeout:.0f} s ({last!r})\n{child.tail() if child else ''}")


def wait_port_closed(port: int, *, timeout: float = 10.0) -> bool:
    """Wait until nothing accepts connections on ``port`` (a stopped server let go of it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return True
        time.sleep(0.05)
    return False


@dataclass
class Child:
    """One started process, its log file and (when it serves) its port."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    port: int | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM the child's process group, SIGKILL it after ``grace`` s; then wait for its port."""
        if self.proc.poll() is None:
            _signal_group(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                _signal_group(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5.0)
        # A worker the group signal missed (it changed its group) would hold the port.
        _signal_group(self.proc.pid, signal.SIGKILL)
        if self.port is not None:
            wait_port_closed(self.port, timeout=5.0)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    # The child was started with start_new_session=True, so its pid is its process group id.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class Children:
    """Owns every process the bench starts; ``close()`` (or leaving the ``with``) stops them all."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._children: list[Child] = []

    def __enter__(self) -> Children:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        # Newest first: load generators, then servers, then the stand-ins they call.
        while self._children:
            child = self._children.pop()
            with contextlib.suppress(Exception):
                child.stop()

    def stop(self, child: Child) -> None:
        child.stop()
        with contextlib.suppress(ValueError):
            self._children.remove(child)

    def spawn(
        self,
        name: str,
        argv: list[str],
        *,
        env: Mapping[str, str],
        cwd: Path | None = None,
        port: int | None = None,
        stdout: int | IO[bytes] | None = None,
    ) -> Child:
        """Start ``argv`` in its own session with stderr (and stdout unless piped) to a log file."""
        log_path = self.workdir / f"{name}.log"
        log = log_path.open("ab")
        try:
            proc = subprocess.Popen(
                argv,
                cwd=cwd or REPO,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log if stdout is None else stdout,
                stderr=log,
                start_new_session=True,
                preexec_fn=_child_setup,  # an rlimit and a prctl: no locks taken
            )
        finally:
            log.close()
        child = Child(name=name, proc=proc, log_path=log_path, port=port)
        self._children.append(child)
        return child

    def standins(self, *, openai_latency: float, search_latency: float) -> Child:
        """The stand-ins (``python -m bench._standins``, see there) on a free port, once ready."""
        argv = [
            sys.executable,
            "-m",
            "bench._standins",
            "--port",
            "0",
            "--openai-latency",
            str(openai_latency),
            "--search-latency",
            str(search_latency),
            "--arxiv-latency",
            str(search_latency),
        ]
        child = self.spawn("standins", argv, env=clean_env(), stdout=subprocess.PIPE)
        assert child.proc.stdout is not None
        line = _readline(child, timeout=90.0)
        info = json.loads(line)
        if info.get("event") != "standins_ready":
            raise RuntimeError(f"unexpected stand-in ready line: {line!r}")
        child.port = int(info["port"])
        child.info = info
        return child

    def server(self, name: str, env: Mapping[str, str]) -> Child:
        """Start ``agentflow serve`` on a free port; ``ready(child)`` waits for it.

        Its cwd is the work dir, so no developer ``.env`` leaks into its settings.
        """
        port = free_port()
        argv = [str(VENV_BIN / "agentflow"), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
        return self.spawn(name, argv, env=clean_env(env), cwd=self.workdir, port=port)

    def bare(self, name: str = "bare") -> Child:
        """Start the bare FastAPI baseline, served like the server: uvicorn, uvloop, httptools, 1 worker."""
        port = free_port()
        argv = [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.bare_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--workers",
            "1",
            "--no-access-log",
            "--log-level",
            "warning",
            "--no-server-header",
        ]
        return self.spawn(name, argv, env=clean_env(), port=port)

    @staticmethod
    def ready(child: Child, *, timeout: float = 90.0) -> Child:
        """Wait until ``child`` answers ``GET /healthz``."""
        wait_http_ready(f"http://127.0.0.1:{child.port}/healthz", timeout=timeout, child=child)
        return child

    def iter_pids(self) -> Iterator[int]:
        for child in self._children:
            yield child.pid


def _readline(child: Child, *, timeout: float) -> str:
    """One stdout line of ``child`` within ``timeout`` s (its stdout is a pipe)."""
    import selectors

    assert child.proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(child.proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    buffer = b""
    try:
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or child.proc.poll() is not None:
                raise RuntimeError(f"{child.name} printed no ready line\n{child.tail()}")
            if selector.select(remaining):
                chunk = os.read(child.proc.stdout.fileno(), 4096)
                if not chunk:
                    raise RuntimeError(f"{child.name} closed stdout before its ready line\n{child.tail()}")
                buffer += chunk
    finally:
        selector.close()
    return buffer.split(b"\n", 1)[0].decode()
