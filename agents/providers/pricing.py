"""Model prices per million tokens (input, cached input, output), for ``usage.est_cost_usd``.

One ``PriceTable`` per process: the public list prices below, overridden or extended by
``AGENTFLOW_MODEL_PRICES`` (JSON, ``{"model": {"input": 0.15, "cached_input": 0.075, "output": 0.6}}``).
A dated snapshot finds its family by the longest matching prefix (``gpt-4o-mini-2024-07-18`` →
``gpt-4o-mini``). A model with no price (local or self-hosted, or simply not listed) costs
``None``: its tokens are still reported, and a warning is logged once per model and process.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DEFAULT_PRICES", "ModelPrice", "PriceTable", "estimate_cost"]

logger = logging.getLogger("agentflow.llm")


class ModelPrice(BaseModel):
    """USD per 1M tokens. ``cached_input`` defaults to ``input`` (no discount assumed)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)

    def cost(self, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0) -> float:
        cached = min(cached_input_tokens, input_tokens)
        cached_rate = self.input if self.cached_input is None else self.cached_input
        return ((input_tokens - cached) * self.input + cached * cached_rate + output_tokens * self.output) / 1_000_000


def _price(per_input: float, per_cached_input: float, per_output: float) -> ModelPrice:
    return ModelPrice(input=per_input, cached_input=per_cached_input, output=per_output)


# Public list prices (USD per 1M tokens: input, cached input, output), used for estimates only.
DEFAULT_PRICES: dict[str, ModelPrice] = {
    "gpt-4o-mini": _price(0.15, 0.075, 0.60),
    "gpt-4o": _price(2.50, 1.25, 10.00),
    "gpt-4.1-nano": _price(0.10, 0.025, 0.40),
    "gpt-4.1-mini": _price(0.40, 0.10, 1.60),
    "gpt-4.1": _price(2.00, 0.50, 8.00),
    "gpt-5-nano": _price(0.05, 0.005, 0.40),
    "gpt-5-mini": _price(0.25, 0.025, 2.00),
    "gpt-5": _price(1.25, 0.125, 10.00),
    "o4-mini": _price(1.10, 0.275, 4.40),
}


class PriceTable:
    """Prices by model family; the built-in list with ``overrides`` laid over it."""

    def __init__(self, overrides: Mapping[str, ModelPrice] | None = None) -> None:
        self.prices: dict[str, ModelPrice] = {**DEFAULT_PRICES, **(overrides or {})}
        self._warned: set[str] = set()

    def family(self, model: str) -> str | None:
        """The price-table entry ``model`` is billed as (longest prefix), or None."""
        if model in self.prices:
            return model
        return max((name for name in self.prices if model.startswith(name)), key=len, default=None)

    def cost(self, model: str, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0) -> float | None:
        """USD estimate of one call, or None (warned once per model) when ``model`` has no price."""
        family = self.family(model)
        if family is None:
            if model not in self._warned:
                self._warned.add(model)
                logger.warning(
                    "no price for model %s: its usage reports tokens with est_cost_usd null",
                    model,
                    extra={"event": "model_price_unknown", "model": model},
                )
            return None
        return self.prices[family].cost(input_tokens, output_tokens, cached_input_tokens)


_DEFAULT_TABLE = PriceTable()


def estimate_cost(model: str, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0) -> float | None:
    """USD estimate from the built-in list prices; None for a model without a price."""
    return _DEFAULT_TABLE.cost(model, input_tokens, output_tokens, cached_input_tokens)
