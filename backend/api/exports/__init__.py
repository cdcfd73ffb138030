"""Exports of a finished run: Markdown, sanitised HTML (print-ready), JSON and BibTeX.

Pure functions over the public record (``WorkflowPublic``), so the route, the CLI and tests see
the same bytes. ``render_export`` raises ``Conflict`` when the run has nothing to export yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from agents.errors import Conflict
from backend.api.exports._html import to_html
from backend.api.exports._markdown import title_of, to_markdown
from backend.api.schemas import WorkflowPublic

__all__ = ["FORMATS", "MEDIA_TYPES", "Export", "ExportFormat", "negotiate", "render_export"]

ExportFormat = Literal["md", "html", "json", "bib"]
FORMATS: tuple[ExportFormat, ...] = get_args(ExportFormat)
MEDIA_TYPES: dict[ExportFormat, str] = {
    "md": "text/markdown",
    "html": "text/html",
    "json": "application/json",
    "bib": "application/x-bibtex",
}
_BY_MEDIA_TYPE: dict[str, ExportFormat] = {media: fmt for fmt, media in MEDIA_TYPES.items()}
_DEFAULT: ExportFormat = "md"


@dataclass(frozen=True, slots=True)
class Export:
    """One rendered export: its text, media type (with charset) and a download file name."""

    body: str
    media_type: str
    filename: str


def render_export(workflow: WorkflowPublic, fmt: ExportFormat) -> Export:
    """Render ``workflow`` as ``fmt``.

    Raises:
        Conflict: the run has no result yet (still running, or failed before it had one), or
            BibTeX was asked of a run that retrieves no sources.
    """
    if workflow.result is None:
        raise Conflict(
            f"The workflow is {workflow.status.value} and has no result to export yet.",
            current_status=workflow.status.value,
        )
    if fmt == "bib" and workflow.workflow_type != "research":
        raise Conflict(f"A {workflow.workflow_type} run cites no sources; BibTeX is exported for research runs.")
    if fmt == "json":
        body = workflow.model_dump_json(indent=2) + "\n"
    elif fmt == "bib":
        # On first use: it reads arXiv ids with agents.citations, whose regular expressions
        # compile at import (~10 ms that a server's start-up does not need).
        from backend.api.exports._bibtex import to_bibtex

        body = to_bibtex(workflow)
    elif fmt == "html":
        body = to_html(to_markdown(workflow), title=title_of(workflow))
    else:
        body = to_markdown(workflow)
    filename = f"agentflow-{workflow.workflow_type}-{workflow.workflow_id[:8]}.{fmt}"
    return Export(body=body, media_type=f"{MEDIA_TYPES[fmt]}; charset=utf-8", filename=filename)


def negotiate(accept: str | None) -> ExportFormat:
    """The format an ``Accept`` header prefers (highest q, then first listed); Markdown otherwise.

    Wildcards (``*/*``, ``text/*``) and unsupported types fall back to Markdown: a client that
    does not say what it wants gets the report.
    """
    best: tuple[float, int, ExportFormat] | None = None
    for order, part in enumerate((accept or "").split(",")):
        media, _, params = part.partition(";")
        fmt = _BY_MEDIA_TYPE.get(media.strip().lower())
        if fmt is None:
            continue
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0 and (best is None or (-quality, order) < (-best[0], best[1])):
            best = (quality, order, fmt)
    return best[2] if best is not None else _DEFAULT
