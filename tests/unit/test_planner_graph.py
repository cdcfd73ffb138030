"""Pure pieces of the planner workflow: plan checks and repair, dispatch, run-wide source ids."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from agents.planner import Plan
from workflows.base import EditProblem
from workflows.graphs.planner import _globalise, _usable, dispatch, supervise
from workflows.planner import SPEC, PlannerRequest, check_plan
from workflows.registry import get_spec


def step(step_id: str, kind: str = "research", depends_on: list[str] | None = None) -> dict[str, Any]:
    return {"id": step_id, "kind": kind, "instruction": f"do {step_id}", "depends_on": depends_on or []}


def plan(*steps: dict[str, Any]) -> Plan:
    return Plan.model_validate({"steps": list(steps)})


def test_a_valid_plan_passes() -> None:
    check_plan(PlannerRequest(topic="t"), plan(step("a"), step("b"), step("c", "write", ["a", "b"])))


@pytest.mark.parametrize(
    ("steps", "loc"),
    [
        ([step("a"), step("b", depends_on=["zz"])], ("steps", 1, "depends_on")),
        ([step("a", depends_on=["b"]), step("b")], ("steps", 0, "depends_on")),  # later step: a cycle risk
        ([step("a"), step("a")], ("steps", 1, "id")),
        ([step("a", depends_on=["a"])], ("steps", 0, "depends_on")),
    ],
)
def test_a_plan_the_run_cannot_execute_is_refused_naming_the_place(
    steps: list[dict[str, Any]], loc: tuple[Any, ...]
) -> None:
    with pytest.raises(EditProblem) as refused:
        check_plan(PlannerRequest(topic="t"), plan(*steps))
    assert refused.value.loc == loc


def test_a_plan_longer_than_max_steps_is_refused() -> None:
    with pytest.raises(EditProblem) as refused:
        check_plan(PlannerRequest(topic="t", max_steps=2), plan(step("a"), step("b"), step("c")))
    assert refused.value.loc == ("steps",)


def test_the_plan_schema_refuses_unknown_kinds_and_fields() -> None:
    with pytest.raises(ValidationError):
        plan(step("a", kind="dance"))
    with pytest.raises(ValidationError):
        Plan.model_validate({"steps": [{**step("a"), "extra": 1}]})
    with pytest.raises(ValidationError):
        plan(step("has space"))


def test_the_models_plan_is_repaired_not_trusted() -> None:
    model_plan = plan(step("a", depends_on=["c"]), step("a"), step("b", "write", ["a", "a", "ghost"]), step("c"))

    usable = _usable(model_plan, max_steps=3)

    assert [(s["id"], s["depends_on"]) for s in usable["steps"]] == [("a", []), ("a_", []), ("b", ["a"])]
    check_plan(PlannerRequest(topic="t"), Plan.model_validate(usable))


async def test_dispatch_sends_every_ready_step_to_its_kind_and_then_synthesizes() -> None:
    steps = [step("r1"), step("r2"), step("w", "write", ["r1", "r2"]), step("c", "critique", ["w"])]
    state: dict[str, Any] = {"topic": "goal", "plan": {"steps": steps}, "outputs": {}}

    first = await dispatch(state)  # type: ignore[arg-type]
    assert isinstance(first, list)
    assert [(send.node, send.arg["step"]["id"]) for send in first] == [("research_step", "r1"), ("research_step", "r2")]

    state["outputs"] = {"r1": {"id": "r1", "text": "one"}, "r2": {"id": "r2", "text": "two"}}
    second = await dispatch(state)  # type: ignore[arg-type]
    assert isinstance(second, list)
    assert [(send.node, [i["id"] for i in send.arg["inputs"]]) for send in second] == [("write_step", ["r1", "r2"])]

    state["outputs"] |= {"w": {"id": "w"}, "c": {"id": "c"}}
    assert await dispatch(state) == "synthesize"  # type: ignore[arg-type]


def source(source_id: str, url: str) -> dict[str, Any]:
    return {"id": source_id, "kind": "web", "title": "T", "url": url, "snippet": "", "authors": [], "published": None}


def test_research_outputs_get_run_wide_source_ids() -> None:
    registry = [source("S1", "https://example.org/a")]
    result = {
        "text": "B says so [S1]. A and B agree [S2, S1].",
        "sources": [source("S1", "https://example.org/b"), source("S2", "https://example.org/a/")],
    }

    text, grown = _globalise(result, registry)

    assert text == "B says so [S2]. A and B agree [S1, S2]."
    assert [(s["id"], s["url"]) for s in grown] == [("S1", "https://example.org/a"), ("S2", "https://example.org/b")]


async def test_supervisor_numbers_sources_in_plan_order_whatever_finished_first() -> None:
    steps = [step("r1"), step("r2")]
    results = [
        {"id": "r2", "text": "two [S1]", "sources": [source("S1", "https://two.example")]},
        {"id": "r1", "text": "one [S1]", "sources": [source("S1", "https://one.example")]},
    ]

    update = await supervise({"plan": {"steps": steps}, "step_results": results}, None)  # type: ignore[arg-type]

    assert update["outputs"]["r1"]["text"] == "one [S1]"
    assert update["outputs"]["r2"]["text"] == "two [S2]"
    assert [s["url"] for s in update["sources"]] == ["https://one.example", "https://two.example"]


def test_the_spec_declares_its_approval_question() -> None:
    assert get_spec("planner") is SPEC
    point = SPEC.interrupt_point("plan_approval")
    assert point is not None
    assert point.edit_field == "plan"
    assert SPEC.may_pause(PlannerRequest(topic="t", approve_plan=True))
    assert not SPEC.may_pause(PlannerRequest(topic="t"))
    assert not get_spec("research").may_pause(get_spec("research").request_model(topic="t"))  # type: ignore[union-attr]
