"""``agentflow serve`` with plain flags skips typer: it must mean exactly what typer makes of it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer

from backend import serving
from backend.cli import _FLAGS, ServeFlags, serve_flags
from backend.cli_app import app, run_command_line

PLAIN = [
    [],
    ["--host", "0.0.0.0"],
    ["--host=::1", "--port=8080"],
    ["--port", "0", "--workers", "4"],
    ["--worker-concurrency", "0"],
    ["--port", "0123"],
    ["--host", "127.0.0.1", "--port", "9000", "--workers", "1", "--worker-concurrency", "32"],
]
LEFT_TO_TYPER = [
    ["--help"],
    ["-h"],
    ["--port"],
    ["--port", "-1"],
    ["--port", "8_000"],
    ["--port", " 80"],
    ["--port", "٣"],  # a digit, not an ASCII one
    ["--port", "80", "--port", "81"],
    ["--host="],
    ["--hostname", "x"],
    ["--", "--port", "1"],
    ["extra"],
]


def typer_serve_arguments(args: list[str], monkeypatch: pytest.MonkeyPatch) -> ServeFlags:
    seen: list[dict[str, Any]] = []

    def fake_main(command: str, **flags: Any) -> int:
        assert command == "serve"
        seen.append(flags)
        return 0

    monkeypatch.setattr(serving, "main", fake_main)
    assert run_command_line(["serve", *args]) == 0
    (flags,) = seen
    return ServeFlags(**flags)


@pytest.mark.parametrize("args", PLAIN, ids=" ".join)
def test_plain_flags_mean_what_typer_makes_of_them(args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert serve_flags(args) == typer_serve_arguments(args, monkeypatch)


@pytest.mark.parametrize("args", LEFT_TO_TYPER, ids=" ".join)
def test_anything_else_is_left_to_typer(args: list[str]) -> None:
    assert serve_flags(args) is None


def test_the_flags_are_the_serve_commands_options() -> None:
    group: Any = typer.main.get_command(app)
    options = {opt for param in group.commands["serve"].params for opt in param.opts}
    assert options == set(_FLAGS)


def test_serving_with_plain_flags_imports_no_typer(tmp_path: Path) -> None:
    # The unusable URL ends serving.main at its settings (exit 2): enough to see what was imported.
    code = "import sys; from backend.cli import main; print(main(['serve', '--port', '0']), 'typer' in sys.modules)"
    env = {"AGENTFLOW_DATABASE_URL": "mysql://nope", "PATH": os.environ.get("PATH", "")}
    command = [sys.executable, "-c", code]
    out = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert out.stdout.split() == ["2", "False"], out.stderr
