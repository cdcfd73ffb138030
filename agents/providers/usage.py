"""Token usage and its estimated cost: ONE type from the provider call to the JSON a client reads.

A provider call returns a ``Usage``; workflow state keeps its plain-dict form (checkpoints hold
plain data) and adds them up with ``Usage.add_dicts``; the run record and the API schema carry
``Usage`` itself.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Usage"]


class Usage(BaseModel):
    """Tokens, model calls and estimated USD cost of one call, one node or a whole run."""

    model_config = ConfigDict(frozen=True)

    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    llm_calls: int = Field(default=0, ge=0)
    est_cost_usd: float = Field(default=0.0, ge=0, description="Estimated from the model price table.")

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            llm_calls=self.llm_calls + other.llm_calls,
            est_cost_usd=round(self.est_cost_usd + other.est_cost_usd, 6),
        )

    def as_dict(self) -> dict[str, Any]:
        """The plain form kept in workflow state, checkpoints and the database."""
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "llm_calls": self.llm_calls,
            "est_cost_usd": round(self.est_cost_usd, 6),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Usage:
        """Read the plain form back (missing or None: zero usage)."""
        if not data:
            return cls()
        return cls(
            input_tokens=int(data.get("input_tokens", 0)),
            output_tokens=int(data.get("output_tokens", 0)),
            llm_calls=int(data.get("llm_calls", 0)),
            est_cost_usd=float(data.get("est_cost_usd", 0.0)),
        )

    @staticmethod
    def add_dicts(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
        """State reducer: usage adds up across nodes (and survives restarts in checkpoints)."""
        return (Usage.from_dict(left) + Usage.from_dict(right)).as_dict()
