"""Latency, fault-injection and rate-limit behaviour shared by every stand-in upstream."""

from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = [
    "SPECIAL_FAULTS",
    "BehaviourRuntime",
    "Decision",
    "UpstreamBehaviour",
    "retry_after_headers",
    "validate_fault",
]

#: Faults that are not plain HTTP status codes. Any three-digit status ("503", "429", ...) is
#: also accepted and answered as that HTTP error in the upstream's own error shape.
SPECIAL_FAULTS = frozenset({"timeout", "truncated", "empty"})


def validate_fault(fault: str | int) -> str:
    """Return the canonical name of a fault, or raise ``ValueError`` if it is unknown."""
    name = str(fault).strip().lower()
    if name in SPECIAL_FAULTS:
        return name
    if name.isdigit() and len(name) == 3 and 400 <= int(name) <= 599:
        return name
    raise ValueError(f"unknown fault {fault!r}: use an HTTP status 4xx/5xx or one of {sorted(SPECIAL_FAULTS)}")


@dataclass
class UpstreamBehaviour:
    """How one upstream misbehaves: delay, random or scripted faults, and a rate limit.

    ``faults`` entries are HTTP statuses ("429", "500", "502", "503", ...) or ``"timeout"``
    (hang ``hang_seconds`` before answering), ``"truncated"`` (close mid-body) or ``"empty"``
    (a valid but empty answer). A 429 carries ``Retry-After``/``retry-after-ms`` headers of
    ``retry_after_seconds``. The first ``fail_first_n`` admitted requests fail with
    ``fail_first_fault``; afterwards each fails with probability ``fault_rate`` (seeded RNG).
    ``rpm`` admits at most that many requests per sliding ``rpm_window_seconds`` window.
    """

    latency: float = 0.0
    path_latency: dict[str, float] = field(default_factory=dict)
    fault_rate: float = 0.0
    faults: list[str] = field(default_factory=lambda: ["503"])
    retry_after_seconds: float = 1.0
    hang_seconds: float = 30.0
    fail_first_n: int = 0
    fail_first_fault: str = "503"
    rpm: int | None = None
    rpm_window_seconds: float = 60.0
    seed: int = 0

    def __post_init__(self) -> None:
        self.faults = [validate_fault(f) for f in self.faults]
        self.fail_first_fault = validate_fault(self.fail_first_fault)
        if not 0.0 <= self.fault_rate <= 1.0:
            raise ValueError(f"fault_rate must be within [0, 1], got {self.fault_rate}")
        if self.fault_rate > 0 and not self.faults:
            raise ValueError("fault_rate > 0 needs at least one fault in `faults`")
        if self.rpm is not None and self.rpm < 1:
            raise ValueError(f"rpm must be >= 1, got {self.rpm}")

    def latency_for(self, path: str) -> float:
        """Return the delay for a request to ``path`` (per-path override, else ``latency``)."""
        return self.path_latency.get(path, self.latency)

    @classmethod
    def behaviour_field_names(cls) -> frozenset[str]:
        """Names of the fields defined by :class:`UpstreamBehaviour` itself."""
        return frozenset(f.name for f in fields(UpstreamBehaviour))

    def behaviour_dict(self) -> dict[str, Any]:
        """Return the behaviour fields as a JSON-friendly dict."""
        return {name: getattr(self, name) for name in sorted(UpstreamBehaviour.behaviour_field_names())}


@dataclass(frozen=True)
class Decision:
    """What to do with one request: reject it as rate limited, or delay it and maybe fault it."""

    rate_limited: bool = False
    retry_after: float = 0.0
    latency: float = 0.0
    fault: str | None = None


class BehaviourRuntime:
    """Mutable state behind an :class:`UpstreamBehaviour`: RNG, counters, rate-limit window."""

    def __init__(self, behaviour: UpstreamBehaviour, upstream: str) -> None:
        self.behaviour = behaviour
        self._rng = random.Random(f"{behaviour.seed}:{upstream}")
        self._admitted = 0
        self._window: deque[float] = deque()
        self._lock = threading.Lock()

    def admit(self, path: str, now: float | None = None) -> Decision:
        """Decide the fate of a request that just arrived at ``path``."""
        b = self.behaviour
        now = time.monotonic() if now is None else now
        with self._lock:
            if b.rpm is not None:
                while self._window and now - self._window[0] >= b.rpm_window_seconds:
                    self._window.popleft()
                if len(self._window) >= b.rpm:
                    wait = self._window[0] + b.rpm_window_seconds - now
                    return Decision(rate_limited=True, retry_after=max(wait, 0.001))
                self._window.append(now)
            self._admitted += 1
            fault: str | None = None
            if self._admitted <= b.fail_first_n:
                fault = b.fail_first_fault
            elif b.fault_rate > 0 and self._rng.random() < b.fault_rate:
                fault = self._rng.choice(b.faults)
        return Decision(latency=b.latency_for(path), fault=fault)


def retry_after_headers(seconds: float) -> dict[str, str]:
    """Headers a 429 carries: whole seconds (ceil, >= 1) and exact milliseconds."""
    return {
        "retry-after": str(max(1, math.ceil(seconds))),
        "retry-after-ms": str(max(1, round(seconds * 1000))),
    }
