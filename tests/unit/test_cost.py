"""Cost accounting: the Usage type's unknown-cost arithmetic, the price table, cached-input tokens."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from langchain_core.messages import AIMessage
from pydantic import ValidationError

from agents.providers import ChatProvider, OpenAIConfig
from agents.providers.pricing import DEFAULT_PRICES, ModelPrice, PriceTable, estimate_cost
from agents.providers.usage import Usage, add_costs
from backend.config import Settings


def test_an_unknown_cost_makes_the_sum_unknown_and_zero_usage_changes_nothing() -> None:
    priced = Usage(input_tokens=10, output_tokens=5, llm_calls=1, est_cost_usd=0.25)
    unpriced = Usage(input_tokens=7, output_tokens=3, llm_calls=1, est_cost_usd=None)
    assert (priced + Usage()).est_cost_usd == 0.25
    assert (priced + unpriced).est_cost_usd is None
    assert (unpriced + priced).est_cost_usd is None
    total = priced + unpriced
    assert (total.input_tokens, total.output_tokens, total.llm_calls) == (17, 8, 2)  # tokens still add up
    assert add_costs(None, 1.0) is None and add_costs(1.0, 2.0) == 3.0


def test_the_plain_form_keeps_an_unknown_cost_through_state_and_storage() -> None:
    unpriced = Usage(input_tokens=7, output_tokens=3, llm_calls=1, est_cost_usd=None)
    assert unpriced.as_dict()["est_cost_usd"] is None
    assert Usage.from_dict(unpriced.as_dict()) == unpriced
    # Dicts written before the cost could be unknown, or before cached tokens were counted.
    assert Usage.from_dict({"input_tokens": 1, "output_tokens": 2, "llm_calls": 1}).est_cost_usd == 0.0
    assert Usage.from_dict(None) == Usage()
    assert Usage.add_dicts(None, unpriced.as_dict())["est_cost_usd"] is None
    assert Usage.add_dicts(Usage(est_cost_usd=0.5).as_dict(), None)["est_cost_usd"] == 0.5


PLAIN_USAGES: list[dict[str, Any] | None] = [
    None,
    {},
    {"input_tokens": 3, "output_tokens": 4, "llm_calls": 1, "est_cost_usd": 0.0012345678},
    {"input_tokens": 1, "cached_input_tokens": 1, "est_cost_usd": None},
    {"llm_calls": 2, "est_cost_usd": 1e-7},
    {"output_tokens": 5},  # written before costs were kept
    {"input_tokens": 10**9, "output_tokens": 1, "llm_calls": 3, "est_cost_usd": 0.1},
]


@pytest.mark.parametrize("left", PLAIN_USAGES)
@pytest.mark.parametrize("right", PLAIN_USAGES)
def test_the_state_reducer_is_the_sum_of_the_models(left: dict[str, Any] | None, right: dict[str, Any] | None) -> None:
    by_models = (Usage.from_dict(left) + Usage.from_dict(right)).as_dict()
    assert Usage.add_dicts(left, right) == by_models
    assert list(Usage.add_dicts(left, right)) == list(by_models)  # the same keys, in the same order


def test_prices_cover_input_cached_input_and_output() -> None:
    price = ModelPrice(input=1.0, cached_input=0.25, output=4.0)
    # 1000 input of which 400 cached, 500 output: (600 * 1 + 400 * 0.25 + 500 * 4) / 1M
    assert price.cost(1000, 500, 400) == pytest.approx(2700 / 1_000_000)
    assert ModelPrice(input=1.0, output=4.0).cost(1000, 0, 400) == pytest.approx(1000 / 1_000_000)  # no discount
    assert price.cost(100, 0, 1000) == pytest.approx(25 / 1_000_000)  # cached never exceeds input


def test_a_dated_snapshot_is_priced_as_its_family_and_overrides_win() -> None:
    table = PriceTable({"gpt-4o-mini": ModelPrice(input=1.0, output=1.0), "llama3": ModelPrice(input=0, output=0)})
    assert table.family("gpt-4o-mini-2024-07-18") == "gpt-4o-mini"
    assert table.cost("gpt-4o-mini-2024-07-18", 1_000_000, 0) == pytest.approx(1.0)
    assert table.cost("llama3", 5000, 5000) == 0.0
    assert estimate_cost("gpt-4o-mini", 1_000_000, 1_000_000) == pytest.approx(0.15 + 0.60)
    assert set(DEFAULT_PRICES) <= set(table.prices)


def test_an_unknown_model_costs_none_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    table = PriceTable()
    with caplog.at_level(logging.WARNING, logger="agentflow.llm"):
        assert table.cost("my-local-model", 100, 10) is None
        assert table.cost("my-local-model", 100, 10) is None
    warnings = [r for r in caplog.records if getattr(r, "event", None) == "model_price_unknown"]
    assert len(warnings) == 1 and warnings[0].model == "my-local-model"  # type: ignore[attr-defined]


def test_model_prices_come_from_json_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTFLOW_MODEL_PRICES", '{"llama3": {"input": 0.1, "cached_input": 0.05, "output": 0.2}}')
    assert Settings(_env_file=None).model_prices == {  # type: ignore[call-arg]
        "llama3": ModelPrice(input=0.1, cached_input=0.05, output=0.2)
    }
    monkeypatch.setenv("AGENTFLOW_MODEL_PRICES", '{"llama3": {"input": -1, "output": 0.2}}')
    with pytest.raises(ValidationError):
        Settings(_env_file=None)  # type: ignore[call-arg]


def _message(input_tokens: int, output_tokens: int, cached: int | None) -> AIMessage:
    metadata: dict[str, Any] = {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    }
    if cached is not None:
        metadata["input_token_details"] = {"cache_read": cached}
    return AIMessage(content="x", usage_metadata=metadata)  # type: ignore[arg-type]


def test_the_chat_provider_reads_cached_tokens_and_prices_them() -> None:
    provider = ChatProvider(
        OpenAIConfig(
            api_key="sk-test",
            base_url="http://127.0.0.1:9",
            model_prices={"priced": ModelPrice(input=1.0, cached_input=0.5, output=2.0)},
        )
    )
    usage = provider._usage("priced", _message(1000, 100, 600))
    assert (usage.input_tokens, usage.cached_input_tokens, usage.output_tokens, usage.llm_calls) == (1000, 600, 100, 1)
    assert usage.est_cost_usd == pytest.approx((400 * 1.0 + 600 * 0.5 + 100 * 2.0) / 1_000_000)
    assert provider._usage("priced", _message(10, 1, None)).cached_input_tokens == 0
    unknown = provider._usage("nobody-prices-this", _message(10, 1, None))
    assert unknown.est_cost_usd is None and unknown.input_tokens == 10
