"""The Markdown export: title, question, report or final draft, references, draft history."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from backend.api.schemas import WorkflowPublic

__all__ = ["cited_sources", "reference_anchor", "title_of", "to_markdown"]

TITLE_LENGTH = 100
#: A citation group as the research workflow leaves it in a verified report: ``[S3]``, ``[S1, S2]``.
_CITATION = re.compile(r"\[(S\d+(?:[ \t]*[,;][ \t]*S\d+)*)\]")
_ID_SEPARATOR = re.compile(r"[ \t]*[,;][ \t]*")


def title_of(workflow: WorkflowPublic) -> str:
    """A one-line title: the topic, whitespace collapsed, cut at ``TITLE_LENGTH`` characters."""
    topic = " ".join(str(workflow.input.get("topic") or "").split()) or f"{workflow.workflow_type} run"
    return topic if len(topic) <= TITLE_LENGTH else topic[: TITLE_LENGTH - 1].rstrip() + "…"


def reference_anchor(source_id: str) -> str:
    """The HTML id of a source's entry in the references list (``ref-S3``)."""
    return f"ref-{source_id}"


def cited_sources(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The research sources the report cites, in source-id order."""
    cited = result.get("citations") or {}
    return [source for source in result.get("sources") or [] if cited.get(source.get("id"), 0)]


def to_markdown(workflow: WorkflowPublic) -> str:
    """The run's result as a Markdown document (the HTML export is rendered from it)."""
    result = workflow.result or {}
    lines = [f"# {_inline(title_of(workflow))}", "", _byline(workflow), ""]
    topic = str(workflow.input.get("topic") or "")
    label = {"research": "Question", "planner": "Goal"}.get(workflow.workflow_type, "Topic")
    lines += [*_quoted(f"**{label}:** {topic.strip()}"), ""]
    if workflow.workflow_type in ("research", "planner"):  # both: a cited report and its sources
        lines += _research(result)
    elif workflow.workflow_type == "reflection":
        lines += _reflection(result)
    else:
        lines += ["```json", _json(result), "```"]
    return "\n".join(lines).rstrip() + "\n"


# --- per workflow -------------------------------------------------------------------------------


def _research(result: Mapping[str, Any]) -> list[str]:
    sources = {source.get("id"): source for source in result.get("sources") or []}
    report = str(result.get("report_markdown") or "")
    lines = [_link_citations(report, sources).strip(), ""]
    claims = result.get("unsupported_claims") or []
    if claims:
        lines += ["## Unsupported claims", "", "These sentences lost the citations the model gave them:", ""]
        lines += [f"- {_inline(str(claim))}" for claim in claims] + [""]
    cited = cited_sources(result)
    if cited:
        lines += ["## References", ""]
        lines += [_reference(source) for source in cited] + [""]
    return lines


def _reflection(result: Mapping[str, Any]) -> list[str]:
    lines = [str(result.get("final") or "*No draft was written.*").strip(), ""]
    drafts: Sequence[Mapping[str, Any]] = result.get("drafts") or []
    if not drafts:
        return lines
    lines += ["## Appendix: draft history", ""]
    best = result.get("best_version")
    for draft in drafts:
        critique = draft.get("critique") or {}
        score = critique.get("score")
        heading = f"### Version {draft.get('version')} · " + (
            f"score {score:g}/10" if score is not None else "unscored"
        )
        if draft.get("version") == best:
            heading += " · chosen"
        lines += [heading, ""]
        issues = critique.get("issues") or []
        if issues:
            lines += ["Critique:", ""]
            lines += [f"- {_issue(issue)}" for issue in issues] + [""]
        lines += [*_quoted(str(draft.get("text") or "").strip()), ""]
    return lines


# --- pieces -------------------------------------------------------------------------------------


def _byline(workflow: WorkflowPublic) -> str:
    kind = {"research": "Research report", "reflection": "Reflection", "planner": "Planner deliverable"}.get(
        workflow.workflow_type, "Run"
    )
    when = (workflow.finished_at or workflow.created_at).date().isoformat()
    usage = workflow.usage
    parts = [kind, when, f"run `{workflow.workflow_id}`", f"{usage.total_tokens:,} tokens"]
    if usage.est_cost_usd:
        parts.append(f"≈ ${usage.est_cost_usd:.4f}")
    if workflow.status.value != "completed":
        parts.append(f"status: {workflow.status.value}")
    return "*" + " · ".join(parts) + "*"


def _reference(source: Mapping[str, Any]) -> str:
    source_id = str(source.get("id"))
    authors = list(source.get("authors") or [])
    names = ", ".join(authors[:3]) + (" et al." if len(authors) > 3 else "")
    year = str(source.get("published") or "")[:4]
    title = _inline(str(source.get("title") or source.get("url") or "Untitled"))
    url = str(source.get("url") or "")
    entry = f'- <a id="{reference_anchor(source_id)}"></a>**[{source_id}]** '
    if names:
        entry += f"{_inline(names)}" + (f" ({year})" if year.isdigit() else "") + ". "
    entry += f"[{title}](<{url}>)." if url else f"{title}."
    entry += " arXiv." if source.get("kind") == "arxiv" else " Web page."
    return entry


def _link_citations(report: str, sources: Mapping[Any, Any]) -> str:
    """``[S1, S2]`` becomes ``[[S1](#ref-S1), [S2](#ref-S2)]``: each id jumps to its reference."""

    def link(match: re.Match[str]) -> str:
        ids = _ID_SEPARATOR.split(match.group(1))
        if not all(source_id in sources for source_id in ids):
            return match.group(0)
        return "[" + ", ".join(f"[{source_id}](#{reference_anchor(source_id)})" for source_id in ids) + "]"

    return _CITATION.sub(link, report)


def _issue(issue: Any) -> str:
    if isinstance(issue, Mapping):
        severity = issue.get("severity")
        text = _inline(str(issue.get("text") or ""))
        return f"*{severity}*: {text}" if severity else text
    return _inline(str(issue))


def _inline(text: str) -> str:
    """One line of text: newlines collapsed, so it cannot open a block of its own."""
    return " ".join(text.split())


def _quoted(text: str) -> list[str]:
    return [f"> {line}".rstrip() for line in text.splitlines()] or [">"]


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)
