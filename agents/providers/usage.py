"""Token usage and its estimated cost: ONE type from the provider call to the JSON a client reads.

A provider call returns a ``Usage``; workflow state keeps its plain-dict form (checkpoints hold
plain data) and adds them up with ``Usage.add_dicts``; the run record and the API schema carry
``Usage`` itself.

``est_cost_usd`` is ``None`` when the cost is unknown: a call to a model missing from the price
table reports its tokens and a ``None`` cost. Unknown is contagious on purpose: a sum that
includes an unknown cost is itself unknown (``None``), never a silent under-estimate. Zero usage
(``Usage()``, e.g. a node that made no model call) costs exactly ``0.0`` and leaves a sum as it is.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Usage", "add_costs"]


def add_costs(left: float | None, right: float | None) -> float | None:
    """Add two cost estimates; unknown (``None``) on either side makes the sum unknown."""
    if left is None or right is None:
        return None
    return round(left + right, 6)


class Usage(BaseModel):
    """Tokens, model calls and estimated USD cost of one call, one node or a whole run."""

    model_config = ConfigDict(frozen=True)

    input_tokens: int = Field(default=0, ge=0)
    cached_input_tokens: int = Field(
        default=0, ge=0, description="The part of input_tokens the model server read from its prompt cache."
    )
    output_tokens: int = Field(default=0, ge=0)
    llm_calls: int = Field(default=0, ge=0)
    est_cost_usd: float | None = Field(
        default=0.0,
        ge=0,
        description="Estimated from the model price table; null when a model without a known price was called.",
    )

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            cached_input_tokens=self.cached_input_tokens + other.cached_input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            llm_calls=self.llm_calls + other.llm_calls,
            est_cost_usd=add_costs(self.est_cost_usd, other.est_cost_usd),
        )

    def as_dict(self) -> dict[str, Any]:
        """The plain form kept in workflow state, checkpoints and the database."""
        return {
            "input_tokens": self.input_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "output_tokens": self.output_tokens,
            "llm_calls": self.llm_calls,
            "est_cost_usd": None if self.est_cost_usd is None else round(self.est_cost_usd, 6),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Usage:
        """Read the plain form back (missing or None: zero usage; a stored null cost stays unknown)."""
        if not data:
            return cls()
        cost = data.get("est_cost_usd", 0.0)
        return cls(
            input_tokens=int(data.get("input_tokens", 0)),
            cached_input_tokens=int(data.get("cached_input_tokens", 0)),
            output_tokens=int(data.get("output_tokens", 0)),
            llm_calls=int(data.get("llm_calls", 0)),
            est_cost_usd=None if cost is None else float(cost),
        )

    @staticmethod
    def add_dicts(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
        """State reducer: usage adds up across nodes (and survives restarts in checkpoints).

        The sum of the plain forms, as ``(from_dict(left) + from_dict(right)).as_dict()`` gives it,
        without building the three models: LangGraph calls this for every node's update.
        """
        left, right = left or {}, right or {}
        total: dict[str, Any] = {name: int(left.get(name, 0)) + int(right.get(name, 0)) for name in _COUNTS}
        total["est_cost_usd"] = add_costs(_cost(left), _cost(right))
        return total


#: ``Usage``'s integer fields, in its order.
_COUNTS = ("input_tokens", "cached_input_tokens", "output_tokens", "llm_calls")


def _cost(plain: dict[str, Any]) -> float | None:
    cost = plain.get("est_cost_usd", 0.0)
    return None if cost is None else float(cost)
