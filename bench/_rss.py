"""Memory and CPU of a child process tree, sampled from the driver with psutil."""

from __future__ import annotations

import contextlib
import threading
import time
from types import TracebackType

import psutil

__all__ = ["CpuMeter", "RssSampler", "rss_bytes", "run_delay"]


def _tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    try:
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return [root]


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and its children, in bytes (0 once it is gone)."""
    total = 0
    with contextlib.suppress(psutil.Error):
        for proc in _tree(pid):
            with contextlib.suppress(psutil.Error):
                total += proc.memory_info().rss
    return total


class RssSampler:
    """Samples the RSS of a process tree every ``interval`` s in a thread; keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"rss-{pid}", daemon=True)

    def _loop(self) -> None:
        started = time.monotonic()
        while not self._stop.is_set():
            rss = rss_bytes(self.pid)
            self.samples.append((time.monotonic() - started, rss))
            self.peak = max(self.peak, rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(2.0)


def run_delay(pid: int) -> float:
    """Seconds the threads of ``pid`` and its children spent runnable but waiting for a CPU
    (``/proc/PID/task/TID/schedstat``, Linux; 0 elsewhere). On a shared machine this tells a
    process that waited on I/O from one that waited for the others to let it run."""
    total = 0
    with contextlib.suppress(psutil.Error):
        for proc in _tree(pid):
            with contextlib.suppress(psutil.Error):
                for thread in proc.threads():
                    path = f"/proc/{proc.pid}/task/{thread.id}/schedstat"
                    with contextlib.suppress(OSError, ValueError, IndexError), open(path) as stat:
                        total += int(stat.read().split()[1])
    return total / 1e9


class CpuMeter:
    """CPU seconds (user + system) a set of processes used between ``start()`` and ``stop()``;
    ``waited`` holds the seconds they spent waiting for a CPU meanwhile (``run_delay``)."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self._before: dict[str, float] = {}
        self._delay_before: dict[str, float] = {}
        self.used: dict[str, float] = {}
        self.waited: dict[str, float] = {}

    @staticmethod
    def _cpu(pid: int) -> float:
        total = 0.0
        with contextlib.suppress(psutil.Error):
            for proc in _tree(pid):
                with contextlib.suppress(psutil.Error):
                    times = proc.cpu_times()
                    total += times.user + times.system
        return total

    def start(self) -> CpuMeter:
        self._before = {name: self._cpu(pid) for name, pid in self.pids.items()}
        self._delay_before = {name: run_delay(pid) for name, pid in self.pids.items()}
        return self

    def stop(self) -> dict[str, float]:
        self.used = {name: round(self._cpu(pid) - self._before[name], 3) for name, pid in self.pids.items()}
        self.waited = {name: round(run_delay(pid) - self._delay_before[name], 3) for name, pid in self.pids.items()}
        return self.used
