"""Export route: a run's result as Markdown, HTML, JSON or BibTeX (``?format=`` or ``Accept``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response

from backend.api.deps import ValidWorkflowDep
from backend.api.exports import MEDIA_TYPES, ExportFormat, negotiate, render_export
from backend.api.schemas import WorkflowPublic

__all__ = ["router"]

#: The HTML export runs nothing and loads nothing but its own inline stylesheet.
HTML_POLICY = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

router = APIRouter(prefix="/workflows", tags=["workflows"])


@router.get(
    "/{workflow_id}/export",
    summary="Export a run's result (Markdown, HTML, JSON or BibTeX)",
    response_class=Response,
    responses={
        200: {"content": {media: {} for media in MEDIA_TYPES.values()}, "description": "The export"},
        409: {"description": "The run has no result yet, or BibTeX was asked of a run without sources"},
    },
)
async def export_workflow(
    record: ValidWorkflowDep,
    format: Annotated[
        ExportFormat | None, Query(description="md, html, json or bib; without it, the Accept header decides.")
    ] = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    """The report (research) or final draft with its history (reflection) as a document.

    HTML is sanitised (model text never runs script) and prints cleanly ("Save as PDF").
    BibTeX lists one entry per source the research report cites.
    """
    export = render_export(WorkflowPublic.from_record(record), format or negotiate(accept))
    headers = {"Content-Disposition": f'inline; filename="{export.filename}"', "Vary": "Accept"}
    if export.media_type.startswith("text/html"):
        headers["Content-Security-Policy"] = HTML_POLICY
    return Response(export.body, media_type=export.media_type, headers=headers)
