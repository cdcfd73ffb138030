"""Rows of the bench table: measured value, target, pass/miss, anchor; printed and saved as JSON."""

from __future__ import annotations

import json
import math
import os
import platform
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

__all__ = ["ANCHORS", "PENDING_MARKERS", "Row", "format_table", "write_json"]

Op = Literal["<=", ">="]
Status = Literal["pass", "miss", "info", "pending", "error"]

# What the rows are compared against in prose: the platform agentflow replaces, and LangGraph's dev server.
ANCHORS = {
    "B1": "LangGraph dev server adds ~1 s per run",
    "B2": "original platform: capped at 8 concurrent; LangGraph dev server: 1 job at a time",
    "B2q": "original platform: capped at 8 concurrent, no workers to add",
    "B3": "LangGraph dev server adds ~1 s per run",
    "B4": "bare FastAPI, same process model, same run",
    "B5": "-",
    "B6": "original platform: cache hits 420 ms",
    "B7": "original platform idled at 380 MB; LangGraph dev server 135 MB",
    "B8": "bare FastAPI, same uvicorn, same run",
    "B9": "original platform and LangGraph dev server: one process, no workers to add",
}
PENDING_MARKERS = {
    "research": "pending (research workflow not available)",
}


@dataclass
class Row:
    """One line of the table. ``value`` is None only for pending or failed rows."""

    key: str
    row: str
    label: str
    value: float | None
    unit: str = ""
    op: Op | None = None
    target: float | None = None
    status: Status = "info"
    note: str = ""
    anchor: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.anchor = self.anchor or ANCHORS.get(self.row, "")
        if self.value is not None and (math.isnan(self.value) or math.isinf(self.value)):
            self.value, self.status = None, "error"
            self.note = self.note or "not a finite number"
        if self.status == "info" and self.value is not None and self.op is not None and self.target is not None:
            met = self.value <= self.target if self.op == "<=" else self.value >= self.target
            self.status = "pass" if met else "miss"

    @classmethod
    def pending(cls, key: str, row: str, label: str, marker: str) -> Row:
        return cls(key=key, row=row, label=label, value=None, status="pending", note=marker)

    @classmethod
    def failed(cls, key: str, row: str, label: str, error: str) -> Row:
        return cls(key=key, row=row, label=label, value=None, status="error", note=error)

    @property
    def target_text(self) -> str:
        if self.op is None or self.target is None:
            return "-"
        return f"{'≤' if self.op == '<=' else '≥'} {_number(self.target)}{self.unit_suffix}"

    @property
    def value_text(self) -> str:
        if self.value is None:
            return self.note or "n/a"
        return f"{_number(self.value)}{self.unit_suffix}"

    @property
    def unit_suffix(self) -> str:
        if not self.unit:
            return ""
        return self.unit if self.unit in ("×", "%") else f" {self.unit}"


def _number(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if abs(value) >= 0.995 else f"{value:.3f}"


def format_table(rows: Iterable[Row], *, title: str) -> str:
    """The table as monospace text: row, what, measured, target, result, anchor, note."""
    header = ("row", "what", "measured", "target", "result", "anchor / note")
    lines: list[tuple[str, ...]] = []
    for r in rows:
        tail = r.anchor if not r.note or r.value is None else f"{r.anchor} | {r.note}" if r.anchor else r.note
        result = {"pass": "PASS", "miss": "MISS", "info": "info", "pending": "pending", "error": "ERROR"}[r.status]
        lines.append((r.row, r.label, r.value_text, r.target_text, result, tail))
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(header)]
    widths[-1] = len(header[-1])  # the last column is free text: never pad it

    def fmt(cols: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(widths[i]) if i < len(cols) - 1 else c for i, c in enumerate(cols)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([title, fmt(header), rule, *(fmt(line) for line in lines)])


def write_json(path: Path, rows: list[Row], *, meta: dict[str, Any]) -> Path:
    """Write the results; ``path`` may be a directory (→ ``latest.json`` inside) or a ``.json`` file."""
    target = path if path.suffix == ".json" else path / "latest.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        **meta,
        "rows": [asdict(r) | {"target_text": r.target_text, "value_text": r.value_text} for r in rows],
    }
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(document, indent=2, default=str) + "\n")
    tmp.replace(target)
    return target
