"""The BibTeX export of a research run: one entry per cited source.

arXiv papers become ``@misc`` entries with ``eprint`` and ``archivePrefix = {arXiv}`` (the form
arXiv itself recommends); web pages become ``@misc`` with ``url`` and ``urldate`` (the day the
run retrieved them). Each entry's ``note`` names the ``[S#]`` id the report cites it by.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from agents.citations import arxiv_id_of
from backend.api.exports._markdown import cited_sources
from backend.api.schemas import WorkflowPublic

__all__ = ["to_bibtex"]

_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
_STOP_WORDS = {"a", "an", "the", "on", "of", "for", "and", "in", "to", "towards", "toward", "with", "is"}


def to_bibtex(workflow: WorkflowPublic) -> str:
    """BibTeX for the sources the report cites (an empty file, with a comment, if none)."""
    result = workflow.result or {}
    retrieved = (workflow.started_at or workflow.created_at).date().isoformat()
    # Text outside entries is a comment to BibTeX, but an "@" there would open an entry.
    topic = _one_line(workflow.input.get("topic")).replace("@", "(at)")
    header = f"% agentflow research run {workflow.workflow_id}: {topic}\n"
    sources = cited_sources(result)
    if not sources:
        return header + "% The report cites no sources.\n"
    keys: set[str] = set()
    entries = [_entry(source, _unique(_key(source), keys), retrieved) for source in sources]
    return header + "\n" + "\n".join(entries)


def _entry(source: Mapping[str, Any], key: str, retrieved: str) -> str:
    fields: list[tuple[str, str]] = [("title", _field(_one_line(source.get("title")) or str(source.get("url"))))]
    authors = [_one_line(name) for name in source.get("authors") or [] if _one_line(name)]
    if authors:
        fields.append(("author", " and ".join(_field(name) for name in authors)))
    year = str(source.get("published") or "")[:4]
    if year.isdigit():
        fields.append(("year", year))
    url = _url(str(source.get("url") or ""))
    eprint = arxiv_id_of(url) if source.get("kind") == "arxiv" else None
    if eprint:
        fields += [("eprint", eprint), ("archivePrefix", "arXiv")]
    if url:
        fields.append(("url", url))
    if not eprint:
        fields.append(("urldate", retrieved))
    fields.append(("note", f"Cited as [{source.get('id')}]"))
    body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields)
    return f"@misc{{{key},\n{body}\n}}\n"


def _key(source: Mapping[str, Any]) -> str:
    """``lastname2024firstword``, ASCII only; falls back to the source id."""
    authors = source.get("authors") or []
    surname = _ascii(str(authors[0]).split()[-1]) if authors and str(authors[0]).split() else ""
    year = str(source.get("published") or "")[:4]
    words = [_ascii(word) for word in str(source.get("title") or "").split()]
    word = next((w for w in words if w and w not in _STOP_WORDS), "")
    key = surname + (year if year.isdigit() else "") + word
    return key or str(source.get("id") or "source").lower()


def _unique(key: str, taken: set[str]) -> str:
    candidate, suffix = key, ord("a")
    while candidate in taken:
        candidate, suffix = f"{key}{chr(suffix)}", suffix + 1
    taken.add(candidate)
    return candidate


def _ascii(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", plain.lower())


def _one_line(value: Any) -> str:
    return " ".join(str(value or "").split())


def _field(text: str) -> str:
    """Text safe inside a braced BibTeX field: LaTeX specials escaped, so braces always balance."""
    return "".join(_LATEX_SPECIALS.get(char, char) for char in text)


def _url(url: str) -> str:
    # url fields are verbatim in biblatex, but a brace or space would still end the field.
    return re.sub(r"[{}\s\\]", lambda m: f"%{ord(m.group(0)):02X}", url.strip())
