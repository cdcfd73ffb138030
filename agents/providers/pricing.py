"""Estimated prices per million tokens, for the ``est_cost_usd`` in a workflow's usage."""

from __future__ import annotations

__all__ = ["estimate_cost"]

# (input, output) USD per 1M tokens; public list prices, used for estimates only.
_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-5-nano": (0.05, 0.40),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5": (1.25, 10.00),
    "o4-mini": (1.10, 4.40),
}


def estimate_cost(model: str, input_tokens: int, output_tokens: int) -> float:
    """USD estimate; unknown models (local or self-hosted) cost 0."""
    # Longest prefix wins so dated snapshots ("gpt-4o-mini-2024-07-18") find their family.
    match = max((name for name in _PRICES if model.startswith(name)), key=len, default=None)
    if match is None:
        return 0.0
    price_in, price_out = _PRICES[match]
    return (input_tokens * price_in + output_tokens * price_out) / 1_000_000
