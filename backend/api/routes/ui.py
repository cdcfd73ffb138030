"""The researcher web page at ``/``: static files shipped in the package, nothing from elsewhere."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from fastapi import APIRouter, Response
from fastapi.responses import RedirectResponse

from agents.errors import NotFound

__all__ = ["router"]

#: Every file the page is made of, with its media type; nothing else under /ui/ is served.
ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
#: Same-origin only. Inline styles are allowed for the HTML export opened from the page.
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)

router = APIRouter(include_in_schema=False)


@cache
def _asset(name: str) -> bytes:
    return files("backend.api").joinpath("ui").joinpath(name).read_bytes()


def _serve(name: str) -> Response:
    headers = {"Content-Security-Policy": PAGE_POLICY, "X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}
    return Response(_asset(name), media_type=ASSETS[name], headers=headers)


@router.get("/")
async def index() -> Response:
    return _serve("index.html")


@router.get("/ui")
async def ui_root() -> RedirectResponse:
    return RedirectResponse("/", status_code=308)


@router.get("/ui/{name}")
async def asset(name: str) -> Response:
    if name not in ASSETS:
        raise NotFound(f"No page asset {name!r}.")
    return _serve(name)
