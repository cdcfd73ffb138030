"""Every HTML page the server serves loads only same-origin resources (the docs work offline)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx
from fastapi.routing import iter_route_contexts

ORIGIN = "http://testserver"
#: Attributes that make a browser fetch or navigate.
URL_ATTRIBUTES = {"src", "href", "action", "formaction", "poster", "data", "srcset", "spec-url", "content"}
#: Absolute URLs anywhere in the page text, inline scripts and styles included.
ABSOLUTE_URL = re.compile(r"\b(?:https?|wss?|ftp)://[^\s\"'<>)]+", re.IGNORECASE)
#: XML namespace names are identifiers, never fetched.
NAMESPACES = ("http://www.w3.org/",)


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in URL_ATTRIBUTES and value:
                if name == "content" and "url=" not in value.lower():
                    continue  # only <meta http-equiv="refresh" content="0; url=...">
                candidates = value.split(",") if name == "srcset" else [value]
                self.urls += [c.strip().split(" ")[0].split("url=")[-1] for c in candidates]


def references(html: str) -> list[str]:
    parser = _References()
    parser.feed(html)
    return parser.urls


def same_origin(url: str, page: str) -> bool:
    if url.startswith(("#", "data:")):
        return True
    parts = urlsplit(urljoin(ORIGIN + page, url))
    return f"{parts.scheme}://{parts.netloc}" == ORIGIN


async def test_every_html_page_references_only_same_origin_urls(client: httpx.AsyncClient) -> None:
    app = client.app  # type: ignore[attr-defined]
    queue = [
        str(route.path)
        for route in iter_route_contexts(app.routes)  # included routers' routes too
        if "GET" in (route.methods or ()) and route.path and "{" not in route.path
    ]
    seen: set[str] = set()
    pages: list[str] = []
    while queue:
        path = queue.pop()
        if path in seen:
            continue
        seen.add(path)
        response = await client.get(path, follow_redirects=True)
        if response.status_code != 200 or not response.headers["content-type"].startswith("text/html"):
            continue
        pages.append(path)
        foreign = [url for url in ABSOLUTE_URL.findall(response.text) if not url.startswith((ORIGIN, *NAMESPACES))]
        assert not foreign, f"{path} names other origins: {foreign}"
        for url in references(response.text):
            assert same_origin(url, path), f"{path} references {url!r}"
            target = urlsplit(urljoin(ORIGIN + path, url)).path
            if target.endswith((".html", "/")) or "." not in target.rsplit("/", 1)[-1]:
                queue.append(target)  # follow links to further pages
    assert {"/docs", "/redoc", "/docs/oauth2-redirect", "/"} <= set(pages)
    docs = (await client.get("/docs")).text
    assert "/docs/static/swagger-ui-bundle.js" in docs
    assert "validatorUrl" in docs and "null" in docs  # no badge fetched from validator.swagger.io
    assert "/docs/static/redoc.standalone.js" in (await client.get("/redoc")).text
