"""The HTTP edge of a real ``agentflow serve``: oversized headers are a fast 431, and start-up refuses a
database it cannot use with one line naming ``AGENTFLOW_DATABASE_URL``."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.servers import AGENTFLOW, ROOT, ServerProcess, free_port
from tests.standins import StandinServer

pytestmark = pytest.mark.slow


def _exchange(port: int, request: bytes) -> tuple[float, bytes]:
    """Send one request on a fresh connection; the seconds until the whole answer was read, and it."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        started = time.perf_counter()
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):  # the 431 closes the connection
            chunks.append(chunk)
        return time.perf_counter() - started, b"".join(chunks)


@pytest.fixture(scope="module")
def edge_server(tmp_path_factory: pytest.TempPathFactory, standins: StandinServer) -> Iterator[ServerProcess]:
    """One server for the header-limit cases (each tells its requests apart by request id)."""
    database = tmp_path_factory.mktemp("edge") / "edge.db"
    server = ServerProcess({**standins.env(), "AGENTFLOW_DATABASE_URL": f"sqlite+aiosqlite:///{database}"}).start()
    try:
        yield server
    finally:
        server.terminate()


@pytest.mark.parametrize("fields", [1, 64], ids=["one-64-KiB-field", "64-fields-of-1-KiB"])
def test_64_kib_of_headers_is_a_431_problem_in_under_50_ms(edge_server: ServerProcess, fields: int) -> None:
    server = edge_server
    request_id = f"huge-{fields}"
    padding = "".join(f"X-Pad-{n}: {'a' * (65536 // fields)}\r\n" for n in range(fields))
    request = (
        f"POST /workflows/reflection HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-ID: {request_id}\r\n"
        f"Content-Type: application/json\r\nContent-Length: 15\r\n{padding}\r\n"
        '{"topic": "t"} '
    ).encode()
    # Best of five: the machine is shared, and one slow scheduling slice is not the server's doing.
    timings = []
    for _ in range(5):
        seconds, raw = _exchange(server.port, request)
        timings.append(seconds)
        head, _, body = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 431 "), head[:200]
        assert b"content-type: application/problem+json" in head.lower()
        assert f"x-request-id: {request_id}".encode() in head.lower()
        problem = json.loads(body)
        assert problem["code"] == "headers_too_large"
        assert problem["status"] == 431
    assert min(timings) < 0.05, timings

    def answered() -> list[dict[str, Any]]:
        return [
            r
            for r in server.json_lines()
            if r.get("event") == "http_request" and r.get("status") == 431 and r.get("correlation_id") == request_id
        ]

    deadline = time.monotonic() + 60  # each line is logged just after its answer was sent
    while len(answered()) < 5:
        assert time.monotonic() < deadline, answered()
        time.sleep(0.05)
    assert min(r["duration_ms"] for r in answered()) < 50
    assert not any(r.get("event") == "workflow_started" for r in server.json_lines())  # no work was done


def _start(command: str, database_url: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(AGENTFLOW), command],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "HOME": str(home), "AGENTFLOW_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=90,
    )


@pytest.mark.parametrize("command", ["serve", "migrate", "worker"])
@pytest.mark.parametrize(
    ("database_url", "reason"),
    [
        ("mysql://x/y", "unsupported database driver 'mysql'"),
        (f"postgresql://agentflow:secret-pw@127.0.0.1:{free_port()}/agentflow", "Connection refused"),
    ],
    ids=["unknown-driver", "closed-port"],
)
def test_an_unusable_database_stops_startup_with_one_line(
    tmp_path: Path, command: str, database_url: str, reason: str
) -> None:
    result = _start(command, database_url, tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "AGENTFLOW_DATABASE_URL" in lines[0]
    assert reason in lines[0]
    assert "Traceback" not in result.stderr
    assert "secret-pw" not in result.stderr + result.stdout


@pytest.mark.postgres
def test_bad_postgres_credentials_stop_startup_with_one_line(tmp_path: Path, postgres_url: str) -> None:
    from sqlalchemy.engine import make_url

    wrong = make_url(postgres_url).set(username="agentflow_no_such_role", password="secret-pw")
    result = _start("migrate", wrong.render_as_string(hide_password=False), tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("agentflow: AGENTFLOW_DATABASE_URL: ")
    assert "agentflow_no_such_role" in lines[0]
    assert "secret-pw" not in result.stderr
