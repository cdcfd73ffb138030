"""The result-cache key: what changes it, what does not, and the shared ``cache`` field."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from backend.runs.cache import ResultCache, normalised_input
from workflows.base import WorkflowSpec
from workflows.reflection import SPEC as REFLECTION
from workflows.registry import WORKFLOWS
from workflows.research import SPEC as RESEARCH

DEFAULTS = {
    "reflection": {"draft": "gpt-4o-mini", "critique": "gpt-4o-mini", "revise": "gpt-4o-mini"},
    "research": dict.fromkeys(RESEARCH.roles, "gpt-4o-mini"),
}
SETTINGS = {"base_url": "https://api.openai.com/v1", "temperature": 0.2}


def cache(**changes: Any) -> ResultCache:
    values: dict[str, Any] = {"store": None, "default_models": DEFAULTS, "ttl": 60.0, "model_settings": SETTINGS}
    values.update(changes)
    return ResultCache(**values)


def key(spec: WorkflowSpec, body: dict[str, Any], **changes: Any) -> str:
    return cache(**changes).key(spec, spec.request_model.model_validate(body))


def test_the_topic_is_trimmed_collapsed_and_case_folded() -> None:
    base = key(REFLECTION, {"topic": "Explain vector clocks"})
    assert key(REFLECTION, {"topic": "  EXPLAIN   vector\tclocks "}) == base
    assert normalised_input(REFLECTION.request_model.model_validate({"topic": " A  b "}))["topic"] == "a b"


def test_the_cache_policy_and_explicit_defaults_do_not_change_the_key() -> None:
    base = key(REFLECTION, {"topic": "t"})
    assert key(REFLECTION, {"topic": "t", "cache": "refresh"}) == base
    assert key(REFLECTION, {"topic": "t", "max_iterations": 3, "score_threshold": 8}) == base
    assert key(REFLECTION, {"topic": "t", "models": {"draft": "gpt-4o-mini"}}) == base


@pytest.mark.parametrize(
    ("spec", "change"),
    [
        (REFLECTION, {"topic": "u"}),
        (REFLECTION, {"max_iterations": 2}),
        (REFLECTION, {"score_threshold": 9}),
        (REFLECTION, {"max_tokens_budget": 1000}),
        (REFLECTION, {"models": {"revise": "gpt-4o"}}),
        (RESEARCH, {"topic": "u"}),
        (RESEARCH, {"sources": ["arxiv"]}),
        (RESEARCH, {"max_queries": 1}),
        (RESEARCH, {"max_results_per_query": 2}),
        (RESEARCH, {"reflect": True}),
        (RESEARCH, {"unsupported_claims": "drop"}),
        (RESEARCH, {"models": {"plan": "gpt-4o"}}),
    ],
)
def test_every_result_changing_field_changes_the_key(spec: WorkflowSpec, change: dict[str, Any]) -> None:
    assert key(spec, {"topic": "t", **change}) != key(spec, {"topic": "t"})


def test_every_request_field_but_cache_and_webhook_is_in_the_key() -> None:
    # A new request field is part of the key unless it is deliberately left out.
    for spec in WORKFLOWS.values():
        fields = set(spec.request_model.model_fields) - {"cache", "webhook", "models"}
        assert fields <= set(normalised_input(spec.request_model.model_validate({"topic": "t"})))


@pytest.mark.parametrize("spec", [REFLECTION, RESEARCH])
def test_the_webhook_is_not_in_the_key(spec: WorkflowSpec) -> None:
    # Where the result goes cannot change the result: another webhook is still a hit.
    assert key(spec, {"topic": "t", "webhook": "https://a.example/hook"}) == key(spec, {"topic": "t"})


def test_defaults_prompts_settings_scope_and_type_change_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    base = key(REFLECTION, {"topic": "t"})
    other_defaults = {**DEFAULTS, "reflection": {**DEFAULTS["reflection"], "critique": "gpt-4o"}}
    assert key(REFLECTION, {"topic": "t"}, default_models=other_defaults) != base
    assert key(REFLECTION, {"topic": "t"}, model_settings={**SETTINGS, "temperature": 0.9}) != base
    assert cache().key(REFLECTION, REFLECTION.request_model.model_validate({"topic": "t"}), scope="owner-1") != base
    assert key(RESEARCH, {"topic": "t"}) != base
    monkeypatch.setattr("backend.runs.cache.prompt_set_version", lambda: "edited-prompts")
    assert key(REFLECTION, {"topic": "t"}) != base


def test_a_zero_ttl_turns_the_cache_off() -> None:
    body = REFLECTION.request_model.model_validate({"topic": "t"})
    assert cache().policy(body) == "use"
    assert cache(ttl=0.0).policy(body) is None


def test_every_workflow_request_declares_the_cache_field_and_a_spec_without_it_is_refused() -> None:
    for spec in WORKFLOWS.values():
        assert spec.request_model.model_fields["cache"].default == "use"

    class NoCache(BaseModel):
        model_config = ConfigDict(extra="forbid")
        topic: str

    with pytest.raises(TypeError, match="cache"):
        dataclasses.replace(REFLECTION, request_model=NoCache)
