"""Live state shared by the stand-in app and its handle: configs, behaviour runtimes, journal."""

from __future__ import annotations

import threading
from typing import Any

from starlette.requests import Request

from .behaviour import BehaviourRuntime, Decision
from .config import UPSTREAMS, StandinConfig, UpstreamConfig, coerce_upstream_config
from .journal import Journal

__all__ = ["StandinState", "get_state", "journal_entry"]


class StandinState:
    """Holds the current configuration and the journal; safe to use from any thread."""

    def __init__(self, config: StandinConfig | None = None) -> None:
        self._lock = threading.Lock()
        self.config = config or StandinConfig()
        self.journal = Journal(UPSTREAMS)
        self._runtimes = {name: BehaviourRuntime(self.config.get(name), name) for name in UPSTREAMS}

    def upstream(self, name: str) -> UpstreamConfig:
        """Current config of one upstream."""
        with self._lock:
            return self.config.get(name)

    def admit(self, name: str, path: str) -> Decision:
        """Run one arriving request through the upstream's rate limit and fault plan."""
        with self._lock:
            runtime = self._runtimes[name]
        return runtime.admit(path)

    def configure(
        self,
        config: StandinConfig | None = None,
        *,
        keep_responder: bool = False,
        **upstreams: Any,
    ) -> None:
        """Replace the whole config, or only the upstreams passed by keyword.

        Each keyword value may be the upstream's config class, a plain ``UpstreamBehaviour``
        or a JSON dict. Replaced upstreams restart their fault counters, RNG and rate window.
        With ``keep_responder`` a new OpenAI config without a responder keeps the old one.
        """
        unknown = set(upstreams) - set(UPSTREAMS)
        if unknown:
            raise ValueError(f"unknown upstreams {sorted(unknown)}")
        with self._lock:
            new: dict[str, Any] = {name: self.config.get(name) for name in UPSTREAMS}
            if config is not None:
                new = {name: config.get(name) for name in UPSTREAMS}
            for name, value in upstreams.items():
                new[name] = coerce_upstream_config(name, value)
            old_openai = self.config.openai
            self.config = StandinConfig.from_parts(new)
            if keep_responder and self.config.openai.responder is None:
                self.config.openai.responder = old_openai.responder
            for name in UPSTREAMS:
                if config is not None or name in upstreams:
                    self._runtimes[name] = BehaviourRuntime(self.config.get(name), name)

    def reset(self) -> None:
        """Clear the journal and restart every upstream's fault counters, RNG and rate window."""
        with self._lock:
            self.journal.clear()
            self._runtimes = {name: BehaviourRuntime(self.config.get(name), name) for name in UPSTREAMS}


def get_state(request: Request) -> StandinState:
    """The :class:`StandinState` of the app serving ``request``."""
    return request.app.state.standin  # type: ignore[no-any-return]


def journal_entry(request: Request) -> dict[str, Any] | None:
    """The live journal entry of ``request`` (None for unjournaled paths)."""
    return request.scope.get("standin_entry")
