"""Check a report's citations against the sources actually retrieved, and strip everything else.

A model may cite only the ``[S#]`` ids it was given. ``verify_citations`` keeps known ids, rewrites
links, bare URLs and arXiv ids of retrieved sources to their ``[S#]``, and removes unknown ids,
URLs and arXiv ids that were never retrieved (a link keeps its text). Pure functions, no I/O.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple
from urllib.parse import urlsplit

__all__ = ["VerifiedText", "arxiv_id_of", "source_key", "verify_citations"]

_GONE = "\x00"  # marks a removed token until the whitespace around it is tidied
_IDS = r"S\d+(?:\s*[,;]\s*S\d+)*"
_CITATION_GROUP = re.compile(rf"\[\s*({_IDS})\s*\]")
_CITATION_ONLY = re.compile(rf"\s*{_IDS}\s*")
_ID_SEPARATOR = re.compile(r"\s*[,;]\s*")
_MARKDOWN_LINK = re.compile(r"!?\[([^\]\n]*)\]\(\s*<?(https?://[^\s)>]+)>?(?:\s+\"[^\"\n]*\")?\s*\)")
_AUTOLINK = re.compile(r"<(https?://[^\s>]+)>")
_BARE_URL = re.compile(r"https?://[^\s<>()\[\]{}\"'`]+")
_URL_TRAILER = ".,;:!?"  # sentence punctuation after a URL is not part of it
# New-style ids (YYMM.NNNNN) with or without the prefix; old-style ids (hep-th/9901001) only after it.
_ARXIV_ID = re.compile(
    r"(?:\barXiv:\s*)?(?<![\w./-])(\d{2}(?:0[1-9]|1[0-2])\.\d{4,5})(v\d+)?(?![\w.]*\d)"
    r"|\barXiv:\s*([a-z-]+(?:\.[a-z]{2})?/\d{7})(v\d+)?\b",
    re.IGNORECASE,
)
_ARXIV_URL = re.compile(
    r"^https?://(?:www\.|export\.)?arxiv\.org/(?:abs|pdf|html)/(.+?)(?:v\d+)?(?:\.pdf)?/?$", re.IGNORECASE
)
_EMPTY_PARENS = re.compile(rf"[ \t]*\(\s*{_GONE}(?:[\s,;]*{_GONE})*\s*\)")
_GONE_LIST = re.compile(rf"{_GONE}(?:[ \t]*[,;][ \t]*{_GONE})+")
_GONE_LINE = re.compile(rf"^[ \t]*(?:[-*+]|\d+\.)?[ \t]*{_GONE}[ \t]*[.,;]?[ \t]*(?:\n|$)", re.MULTILINE)
# Blanks before a mark go with it, unless the mark sits right before more text ("x [S98][S3]").
_GONE_SPACED = re.compile(rf"[ \t]*{_GONE}(?=[\s.,;:!?)\]]|$)")


class VerifiedText(NamedTuple):
    """The outcome of ``verify_citations``; unpacks as ``(text, citations, removed)``.

    Attributes:
        text: the report with only retrieved sources cited.
        citations: how many times each source id is cited in ``text``, ids in numeric order.
        removed: what was taken out (unknown ``S#`` ids, URLs, arXiv ids), first seen first.
    """

    text: str
    citations: dict[str, int]
    removed: list[str]


def arxiv_id_of(url: str) -> str | None:
    """The versionless arXiv id of an arxiv.org abs/pdf/html URL, else None."""
    match = _ARXIV_URL.match(url.strip())
    return match.group(1).lower() if match else None


def source_key(url: str) -> str:
    """A key under which two addresses of the same document are equal.

    arXiv URLs become ``arxiv:<id>`` (any version, abs or pdf); other URLs ignore the scheme,
    ``www.``, letter case of the host, a trailing slash and the fragment.
    """
    arxiv_id = arxiv_id_of(url)
    if arxiv_id is not None:
        return f"arxiv:{arxiv_id}"
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower().removeprefix("www.")
    port = f":{parts.port}" if parts.port else ""
    query = f"?{parts.query}" if parts.query else ""
    return f"{host}{port}{parts.path.rstrip('/')}{query}"


def _numeric(source_id: str) -> int:
    return int(source_id[1:])


def verify_citations(text: str, sources: Iterable[Mapping[str, Any]]) -> VerifiedText:
    """Keep only citations of ``sources`` (dicts with ``id`` and ``url``) in Markdown ``text``."""
    sources = list(sources)
    known_ids = {str(source["id"]) for source in sources}
    by_key = {source_key(str(source["url"])): str(source["id"]) for source in sources if source.get("url")}
    removed: list[str] = []
    counts: Counter[str] = Counter()

    def drop(token: str) -> str:
        if token not in removed:
            removed.append(token)
        return _GONE

    def cited(url: str) -> str | None:
        return by_key.get(source_key(url))

    def link(match: re.Match[str]) -> str:
        label, url = match.group(1).strip(), match.group(2)
        source_id = cited(url)
        if source_id is None:
            drop(url)
        if _CITATION_ONLY.fullmatch(label):  # "[S1](https://...)": a citation dressed up as a link
            return f"[{label}]"
        if not label:
            return f"[{source_id}]" if source_id else _GONE
        return f"{label} [{source_id}]" if source_id else label

    def url(address: str) -> str:
        trailer = ""
        while address and address[-1] in _URL_TRAILER:
            address, trailer = address[:-1], address[-1] + trailer
        source_id = cited(address)
        return (f"[{source_id}]" if source_id else drop(address)) + trailer

    def arxiv(match: re.Match[str]) -> str:
        arxiv_id = (match.group(1) or match.group(3)).lower()
        source_id = by_key.get(f"arxiv:{arxiv_id}")
        return f"[{source_id}]" if source_id else drop(match.group(0).strip())

    def group(match: re.Match[str]) -> str:
        kept: list[str] = []
        for source_id in _ID_SEPARATOR.split(match.group(1)):
            if source_id not in known_ids:
                drop(source_id)
            elif source_id not in kept:
                kept.append(source_id)
        counts.update(kept)
        return f"[{', '.join(kept)}]" if kept else _GONE

    text = text.replace(_GONE, "")
    # Links first (their URLs must not be seen again as bare URLs), citation groups last (so
    # ids written by the earlier rewrites are validated and counted too).
    text = _MARKDOWN_LINK.sub(link, text)
    text = _AUTOLINK.sub(lambda match: url(match.group(1)), text)
    text = _BARE_URL.sub(lambda match: url(match.group(0)), text)
    text = _ARXIV_ID.sub(arxiv, text)
    text = _CITATION_GROUP.sub(group, text)
    text = _tidy(text)
    citations = {source_id: counts[source_id] for source_id in sorted(counts, key=_numeric)}
    return VerifiedText(text, citations, removed)


def _tidy(text: str) -> str:
    """Take out the removal marks and the blanks, brackets and bullets they leave behind."""
    text = _GONE_LIST.sub(_GONE, text)
    text = _EMPTY_PARENS.sub("", text)
    text = _GONE_LINE.sub("", text)
    return _GONE_SPACED.sub("", text).replace(_GONE, "")
