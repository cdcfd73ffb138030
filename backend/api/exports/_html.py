"""The HTML export: the Markdown export rendered by markdown-it, sanitised by nh3, styled for print.

Model text is untrusted. markdown-it already refuses ``javascript:``-style link targets; nh3 is
the guarantee: an allow-list of tags and attributes, ``http``/``https``/``mailto`` links only,
and ``script``/``style`` removed with their content. The page loads nothing: its stylesheet is
inline and images are not kept (a remote image would be a tracking pixel).
"""

from __future__ import annotations

import html
from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from markdown_it import MarkdownIt

__all__ = ["sanitize", "to_html"]

_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "details", "div", "dl",
    "dt", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "kbd", "li", "mark", "ol", "p", "pre", "q",
    "s", "small", "span", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th", "thead",
    "tr", "u", "ul",
}  # fmt: skip
_ATTRIBUTES = {
    "a": {"href", "title", "id"},
    "abbr": {"title"},
    "code": {"class"},
    "ol": {"start"},
    "td": {"style"},
    "th": {"style"},
}


@cache
def _markdown() -> MarkdownIt:
    # Imported on the first HTML export, not at start-up (markdown-it and its plugins are ~40 ms).
    from markdown_it import MarkdownIt

    # Raw HTML is parsed (the references list carries <a id> anchors) and then sanitised below.
    return MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


@cache
def _stylesheet() -> str:
    return files("backend.api.exports").joinpath("print.css").read_text(encoding="utf-8")


def sanitize(fragment: str) -> str:
    """Keep only inert HTML: allow-listed tags and attributes, web and mail links."""
    import nh3  # with the first export, as markdown-it

    return nh3.clean(
        fragment,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        filter_style_properties={"text-align"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def to_html(markdown: str, *, title: str) -> str:
    """A self-contained HTML page for ``markdown``; print it (or "Save as PDF") for a clean paper."""
    body = sanitize(_markdown().render(markdown))
    return (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="generator" content="agentflow">\n'
        f"<title>{html.escape(title)}</title>\n"
        f"<style>\n{_stylesheet()}</style>\n"
        f'</head>\n<body>\n<main class="report">\n{body}</main>\n</body>\n</html>\n'
    )
