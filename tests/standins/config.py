"""Per-upstream configuration of the stand-ins, buildable from Python or from JSON."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .behaviour import UpstreamBehaviour
from .chat_types import ChatRule, Responder

__all__ = [
    "UPSTREAMS",
    "ArxivConfig",
    "OpenAIConfig",
    "StandinConfig",
    "TavilyConfig",
    "UpstreamConfig",
    "coerce_upstream_config",
]

UPSTREAMS: tuple[str, ...] = ("openai", "tavily", "arxiv")


@dataclass
class OpenAIConfig(UpstreamBehaviour):
    """OpenAI stand-in: behaviour plus scripted answers (``responder`` first, then ``rules``)."""

    responder: Responder | None = None
    rules: list[ChatRule] = field(default_factory=list)
    require_auth: bool = True
    models: list[str] = field(default_factory=lambda: ["gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "gpt-4.1"])

    def __post_init__(self) -> None:
        super().__post_init__()
        self.rules = [r if isinstance(r, ChatRule) else ChatRule.from_dict(r) for r in self.rules]


@dataclass
class TavilyConfig(UpstreamBehaviour):
    """Tavily stand-in: behaviour plus result-count defaults."""

    require_auth: bool = True
    default_max_results: int = 5


@dataclass
class ArxivConfig(UpstreamBehaviour):
    """arXiv stand-in: behaviour plus how many papers every query matches."""

    total_results: int = 20


UpstreamConfig = OpenAIConfig | TavilyConfig | ArxivConfig
_C = TypeVar("_C", OpenAIConfig, TavilyConfig, ArxivConfig)
_CLASSES: dict[str, type[Any]] = {
    "openai": OpenAIConfig,
    "tavily": TavilyConfig,
    "arxiv": ArxivConfig,
}


def _from_dict(cls: type[_C], data: dict[str, Any]) -> _C:
    names = {f.name for f in dataclasses.fields(cls)} - {"responder"}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys {sorted(unknown)}; allowed: {sorted(names)}")
    return cls(**data)


def coerce_upstream_config(upstream: str, value: Any) -> UpstreamConfig:
    """Turn ``None``, a JSON dict, a plain :class:`UpstreamBehaviour` or the right config class
    into the config class of ``upstream``."""
    cls = _CLASSES[upstream]
    if value is None:
        return cls()  # type: ignore[no-any-return]
    if isinstance(value, cls):
        return value  # type: ignore[no-any-return]
    if isinstance(value, dict):
        return _from_dict(cls, value)  # type: ignore[no-any-return]
    if type(value) is UpstreamBehaviour:
        return cls(**dataclasses.asdict(value))  # type: ignore[no-any-return]
    raise TypeError(f"{upstream} config must be {cls.__name__}, a dict or UpstreamBehaviour")


def config_to_dict(config: UpstreamConfig) -> dict[str, Any]:
    """Return the JSON form of an upstream config (the responder shows as a flag)."""
    data: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.name == "responder":
            data["has_responder"] = value is not None
        elif f.name == "rules":
            data["rules"] = [rule.to_dict() for rule in value]
        else:
            data[f.name] = value
    return data


@dataclass
class StandinConfig:
    """Configuration of all three upstreams."""

    openai: OpenAIConfig = field(default_factory=OpenAIConfig)
    tavily: TavilyConfig = field(default_factory=TavilyConfig)
    arxiv: ArxivConfig = field(default_factory=ArxivConfig)

    def __post_init__(self) -> None:
        for name in UPSTREAMS:
            setattr(self, name, coerce_upstream_config(name, getattr(self, name)))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StandinConfig:
        """Build from ``{"openai": {...}, "tavily": {...}, "arxiv": {...}}`` (all optional)."""
        unknown = set(data) - set(UPSTREAMS)
        if unknown:
            raise ValueError(f"unknown upstreams {sorted(unknown)}; allowed: {list(UPSTREAMS)}")
        return cls.from_parts({name: data.get(name) for name in UPSTREAMS})

    @classmethod
    def from_parts(cls, parts: dict[str, Any]) -> StandinConfig:
        """Build from per-upstream values that ``coerce_upstream_config`` accepts."""
        return cls(openai=parts["openai"], tavily=parts["tavily"], arxiv=parts["arxiv"])

    def get(self, upstream: str) -> UpstreamConfig:
        """Return the config of one upstream."""
        if upstream not in UPSTREAMS:
            raise KeyError(upstream)
        return getattr(self, upstream)  # type: ignore[no-any-return]

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form of the whole configuration."""
        return {name: config_to_dict(self.get(name)) for name in UPSTREAMS}
