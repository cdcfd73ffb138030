"""Run ``agentflow serve`` as a real subprocess for integration tests, and read its output."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
AGENTFLOW = Path(sys.executable).with_name("agentflow")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerProcess:
    """One ``agentflow serve`` process; collects every stdout/stderr line it prints."""

    args: tuple[str, ...] = ("serve",)

    def __init__(self, env: dict[str, str], port: int | None = None) -> None:
        self.port = port or free_port()
        self.env = {**os.environ, **env, "AGENTFLOW_PORT": str(self.port), "AGENTFLOW_HOST": "127.0.0.1"}
        self.lines: list[str] = []
        self.proc: subprocess.Popen[str] | None = None
        self._readers: list[threading.Thread] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    #: Start-up allowance: generous, because a loaded 2-core CI machine can take tens of seconds.
    START_TIMEOUT = 90.0

    def start(self, timeout: float = START_TIMEOUT) -> ServerProcess:
        """Launch and wait until ready; ``launch`` then ``wait_ready`` does the same in two steps."""
        return self.launch().wait_ready(timeout)

    def launch(self) -> ServerProcess:
        self.proc = subprocess.Popen(
            [str(AGENTFLOW), *self.args],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        for stream in (self.proc.stdout, self.proc.stderr):
            reader = threading.Thread(target=self._read, args=(stream,), daemon=True)
            reader.start()
            self._readers.append(reader)
        return self

    def ready(self) -> bool:
        try:
            return httpx.get(self.base_url + "/readyz", timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, timeout: float = START_TIMEOUT) -> ServerProcess:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"process exited with {self.proc.returncode}: {self.lines[-5:]}")
            if self.ready():
                return self
            time.sleep(0.05)
        self.kill()
        raise TimeoutError(f"server not ready in {timeout} s: {self.lines[-5:]}")

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.lines.append(line.rstrip("\n"))

    def terminate(self, timeout: float = 60.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._join()
        return code

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._join()

    def _join(self) -> None:
        for reader in self._readers:
            reader.join(2)
        if self.proc is not None:
            for stream in (self.proc.stdout, self.proc.stderr):
                if stream is not None:
                    stream.close()

    def json_lines(self) -> list[dict[str, Any]]:
        """Every line parsed as JSON (raises on the first line that is not)."""
        return [json.loads(line) for line in self.lines if line.strip()]

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


class WorkerProcess(ServerProcess):
    """One ``agentflow worker`` process: ready once it logs ``event=worker_started``."""

    def __init__(self, env: dict[str, str], concurrency: int) -> None:
        super().__init__(env)
        self.args = ("worker", "--concurrency", str(concurrency))

    def ready(self) -> bool:
        return any('"worker_started"' in line for line in list(self.lines))

    @property
    def name(self) -> str:
        """The worker's name as it records it on the runs it executes (``host:pid``)."""
        return f"{socket.gethostname()}:{self.pid}"
