"""Check a report's citations against the sources actually retrieved: an allow-list, not a hunt.

The one kind of reference a report may keep is a canonical ``[S#]`` group (``[S3]``, ``[S1, S2]``)
of retrieved sources. So ``verify_citations`` does not look for a few known kinds of bad citation
and let the rest through: it finds everything that *refers* to something, in every spelling it
knows, and keeps only what resolves to a retrieved source, written as ``[S#]``.

* Links, URLs (any scheme or letter case, ``//host/x``, ``www.host``, ``host.org/path``), DOIs
  and arXiv ids of a retrieved source become its ``[S#]``; a link keeps its text. Any other one
  is removed, and a link keeps only its text.
* ``[S#]`` groups keep their known ids. Unknown ids, and every other spelling of an id
  (``(S4)``, ``S4``, ``[S 4]``, ``[s4]``, ``［S4］``, ``[4]``, ``[^4]``), are removed even when
  the id is known: the format is the contract, and a near miss is not guessed at.
* Author-year citations (``(Smith et al., 2020)``, ``Smith and Jones (2019)``, ``Smith et al.``)
  are removed: they can only name a source that was not handed to the model.
* A references list keeps only the entries that cite a retrieved source.

Everything removed is listed in ``removed``. A sentence of the body that lost a citation and has
no ``[S#]`` left is an unsupported claim: it is listed in ``unsupported`` and, if asked, dropped.

Ordinary prose is not a reference and is left alone: numbers and versions (``3.5``, ``v2.1``),
years without an author, abbreviations, file names without a domain (``report.pdf``). Names
written like an id are the price of the reserved ``S#`` namespace: a bare ``S3`` is removed
unless a word such as "Amazon", "Table" or "Figure" comes right before it. Pure functions, no I/O.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from agents._markdown import MARK, Block, blocks, sentences
from agents.citation_policy import UnsupportedPolicy

__all__ = ["UnsupportedPolicy", "VerifiedText", "arxiv_id_of", "source_key", "verify_citations"]

_GONE = MARK  # marks a removed reference until the whitespace around it is tidied
_NOTE = "\x01"  # marks where a footnote definition's label was, until the references are pruned
_URL_CHARS = r"[^\s<>()\[\]{}\"'`\x00]"
_URL_TRAILER = ".,;:!?"  # sentence punctuation after a URL is not part of it

# --- the one allowed form -----------------------------------------------------------------------
_CANONICAL = r"\[[ \t]*(?P<ids>S\d+(?:[ \t]*[,;][ \t]*S\d+)*)[ \t]*\]"
_ID_SEPARATOR = re.compile(r"[ \t]*[,;][ \t]*")
_KEPT = re.compile(r"\[S\d+(?:, S\d+)*\]")  # a canonical group once verified

# --- links --------------------------------------------------------------------------------------
_TARGET = r"<?(?P<target>(?:[^\s<>()\x00]|\([^\s()]*\))+)>?(?:[ \t]+(?:\"[^\"\n]*\"|'[^'\n]*'))?"
_MARKDOWN_LINK = re.compile(rf"!?\[(?P<label>[^\[\]\n]*)\]\([ \t]*{_TARGET}[ \t]*\)")
_HTML_LINK = re.compile(
    r"<a\b[^>]*?\bhref[ \t]*=[ \t]*[\"']?(?P<target>[^\"'\s>]+)[\"']?[^>]*>(?P<label>.*?)</a[ \t]*>",
    re.IGNORECASE | re.DOTALL,
)
_LINK_DEFINITION = re.compile(
    r"^ {0,3}\[(?!\^)(?P<name>[^\[\]\n]+)\]:[ \t]*<?(?P<target>\S+?)>?"
    r"(?:[ \t]+(?:\"[^\"\n]*\"|'[^'\n]*'|\([^)\n]*\)))?[ \t]*$",
    re.MULTILINE,
)
_REFERENCE_LINK = re.compile(r"!?\[(?P<label>[^\[\]\n]+)\](?:[ \t]?\[(?P<name>[^\[\]\n]*)\])?(?!\()")

# --- addresses ----------------------------------------------------------------------------------
_AUTOLINK = re.compile(r"<(?P<address>(?:[A-Za-z][A-Za-z0-9+.-]*:|//|www\.)[^\s<>]*)>", re.IGNORECASE)
_ADDRESS = re.compile(
    rf"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]{{0,31}}://{_URL_CHARS}*)"
    rf"|(?P<relative>(?<![\w:/.])//[A-Za-z0-9][\w.-]*(?::\d+)?(?:/{_URL_CHARS}*)?)"
    rf"|(?P<www>(?<![\w@./-])(?i:www)\.[\w-]+(?:\.[\w-]+)+(?::\d+)?(?:[/?#]{_URL_CHARS}*)?)"
    rf"|(?P<domain>(?<![\w@./:-])(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+(?P<tld>[a-z]{{2,63}})"
    rf"(?::\d+)?/{_URL_CHARS}*)"
)
# File extensions that look like a top-level domain before a slash ("Node.js/Deno") but are none.
_NOT_DOMAIN = re.compile(
    r"[mc]?jsx?|tsx?|txt|json|ya?ml|toml|[ct]sv|png|jpe?g|gif|svg|html?|pdf|xml|cfg|ini|log|lock|exe|dll|ipynb|pkl|npy"
    r"|t?gz|bz2"
)
_DOI = re.compile(
    r"(?:\bdoi[ \t]*:?[ \t]*)?(?<![\w./])(?P<doi>10\.\d{4,9}/(?:[^\s<>()\[\]{}\"'`\x00]|\([^\s()]*\))+)",
    re.IGNORECASE,
)
# New-style ids (YYMM.NNNNN) with or without the prefix; old-style ids (hep-th/9901001) only after it.
_ARXIV_ID = re.compile(
    r"(?:\barXiv:\s*)?(?<![\w./-])(\d{2}(?:0[1-9]|1[0-2])\.\d{4,5})(v\d+)?(?![\w.]*\d)"
    r"|\barXiv:\s*([a-z-]+(?:\.[a-z]{2})?/\d{7})(v\d+)?\b",
    re.IGNORECASE,
)
_ARXIV_URL = re.compile(
    r"^https?://(?:www\.|export\.)?arxiv\.org/(?:abs|pdf|html)/(.+?)(?:v\d+)?(?:\.pdf)?/?$", re.IGNORECASE
)

# --- author-year citations ----------------------------------------------------------------------
# Capitalised words that open prose, not author lists: "In (2020)", "March (2021)".
_NOT_AUTHOR = (
    r"(?!(?:January|February|March|April|May|June|July|August|September|October|November|December|"
    r"Spring|Summer|Autumn|Fall|Winter|In|On|At|By|Since|Until|From|Before|After|During|The|This|That|"
    r"These|Those|Our|We|Version|Release|Year)\b)"
)
_PARTICLES = r"(?:(?:van|von|de|der|den|del|della|di|da|du|dos|le|la|ten|ter)[ \t]+)*"
_NAME = rf"{_PARTICLES}[A-Z][^\W\d_]*(?:[-'’][A-Z]?[^\W\d_]+)*"  # "(WHO, 2020)" names an author too
_PERSON = rf"{_PARTICLES}[A-Z](?=[\w'’-]*[a-z])[^\W\d_]*(?:[-'’][A-Z]?[^\W\d_]+)*"  # not "BERT (2018)"


def _authors(name: str) -> str:
    return rf"{name}(?:[ \t]+et[ \t]+al\.?|(?:[ \t]*,[ \t]*{name}){{0,9}},?[ \t]+(?:and|&)[ \t]+{name})?"


_YEAR = r"(?:1[5-9]\d\d|20\d\d)[a-z]?|n\.d\."
_YEARS = rf"(?:{_YEAR})(?:[ \t]*,[ \t]*(?:{_YEAR}))*"
_LOCATOR = r"(?:[ \t]*,[ \t]*(?:pp?\.|ch\.|sec\.|§)[ \t]*\d+(?:[ \t]*[-–][ \t]*\d+)?)?"
_CITE = rf"{_NOT_AUTHOR}{_authors(_NAME)}(?:[ \t]*,[ \t]*|[ \t]+){_YEARS}{_LOCATOR}"
_LEAD = r"(?:(?:see(?:[ \t]+also)?|e\.g\.,?|cf\.|i\.e\.,?|as[ \t]+in)[ \t]+)?"
_AUTHOR_YEAR = re.compile(
    rf"(?P<group>[(\[][ \t]*{_LEAD}{_CITE}(?:[ \t]*;[ \t]*{_LEAD}{_CITE})*[ \t]*[)\]])"
    rf"|(?P<narrative>(?<![\w-]){_NOT_AUTHOR}{_authors(_PERSON)}(?:['’]s)?[ \t]+\([ \t]*{_YEARS}{_LOCATOR}[ \t]*\))"
    # "Smith et al." keeps its full stop when it also ends the sentence.
    rf"|(?P<et_al>(?<![\w-]){_NOT_AUTHOR}{_PERSON}[ \t]+et[ \t]+al\b(?:\.(?=[ \t]+[a-z(]|[ \t]*[,;:)]))?)"
)

# --- ids in brackets, or bare -------------------------------------------------------------------
_BRACKETED = re.compile(
    rf"(?P<canonical>{_CANONICAL})"
    r"|(?P<footnote>\[\^[^\[\]\s]+\]:?)"
    r"|(?P<square>\[(?P<content>[^\[\]\n]*)\])"
    r"|(?P<wide>[［【〔〖〘](?P<wide_content>[^［］【】〔〕〖〗〘〙\n]*)[］】〕〗〙])"
    r"|(?P<bare>(?<![\w/.-])[SＳ][0-9０-９]+(?![\w-]))"
)
# What a bracket holds when it is an attempt at a citation: "S 88", "s55", "3", "1-4", "Source 2".
_ID_LIKE = re.compile(
    r"(?:(?:sources?|src|refs?|references?|citations?|cite|id)\.?[ \t]*:?[ \t]*)?"
    r"(?:s[ \t]*\d+|\d{1,3})(?:[ \t]*(?:[,;&/]|and|to|[-–—])[ \t]*(?:s[ \t]*\d+|\d{1,3}))*",
    re.IGNORECASE,
)
_DIGIT = re.compile(r"\d")
_NUMBERS = re.compile(r"\d+")
# Names that own an "S<number>" of their own.
_NAMED_S = re.compile(r"(?:Amazon|AWS|Tables?|Figures?|Fig\.|Section|Appendix|Galaxy)[ \t]+$")

# --- tidying ------------------------------------------------------------------------------------
_EMPTY_BRACKETS = re.compile(
    rf"[ \t]*[(\[][ \t]*(?:(?:see(?:[ \t]+also)?|cf\.|e\.g\.,?|i\.e\.,?|sources?:?|refs?\.?:?)[ \t]*)?"
    rf"{_GONE}(?:[ \t]*(?:[,;]|and|&)?[ \t]*{_GONE})*[ \t]*[)\]]"
)
_GONE_LIST = re.compile(rf"{_GONE}(?:[ \t]*(?:[,;]|and|&)[ \t]*{_GONE})+")
_GONE_LINE = re.compile(rf"^[ \t]*(?:[-*+]|\d+\.)?[ \t]*{_GONE}[ \t]*[.,;:]?[ \t]*(?:\n|$)", re.MULTILINE)
_GONE_OPENING = re.compile(rf"^([ \t]*(?:(?:[-*+>]|\d+[.)])[ \t]+)?){_GONE}[ \t]+", re.MULTILINE)
# Blanks before a mark go with it, unless the mark sits right before more text ("x [S98][S3]").
_GONE_SPACED = re.compile(rf"[ \t]*{_GONE}(?=[\s.,;:!?)\]]|$)")


class VerifiedText(NamedTuple):
    """The outcome of ``verify_citations``; unpacks as ``(text, citations, removed, unsupported)``.

    Attributes:
        text: the report with only retrieved sources cited, as ``[S#]`` groups.
        citations: how many times each source id is cited in ``text``, ids in numeric order.
        removed: every reference taken out (unknown or malformed ids, URLs, DOIs, arXiv ids,
            author-year citations, references-list entries), as written, first seen first.
        unsupported: the body's sentences that lost a citation and cite no retrieved source;
            they are still in ``text`` under the ``"flag"`` policy and are gone under ``"drop"``.
    """

    text: str
    citations: dict[str, int]
    removed: list[str]
    unsupported: list[str]


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


def _absolute(address: str) -> str:
    """``address`` with a scheme, so that ``www.x.org/a`` and ``//x.org/a`` parse as URLs."""
    if address.startswith("//"):
        return f"http:{address}"
    return address if "://" in address else f"http://{address}"


def _split_trailer(address: str) -> tuple[str, str]:
    trailer = ""
    while address and address[-1] in _URL_TRAILER:
        address, trailer = address[:-1], address[-1] + trailer
    return address, trailer


def verify_citations(
    text: str, sources: Iterable[Mapping[str, Any]], *, unsupported: UnsupportedPolicy = "flag"
) -> VerifiedText:
    """Keep only ``[S#]`` citations of ``sources`` (dicts with ``id`` and ``url``) in Markdown ``text``.

    Args:
        text: the report as the model wrote it.
        sources: the retrieved sources the report may cite.
        unsupported: ``"flag"`` keeps sentences left without a citation (and lists them),
            ``"drop"`` removes them from the text (and lists them).
    """
    sources = list(sources)
    known_ids = {str(source["id"]) for source in sources}
    by_key = {source_key(str(source["url"])): str(source["id"]) for source in sources if source.get("url")}
    removed: list[str] = []
    counts: Counter[str] = Counter()

    def drop(token: str) -> str:
        token = token.strip()
        if token and token not in removed:
            removed.append(token)
        return _GONE

    def address(written: str) -> str:
        """A retrieved source's address becomes its id; any other address is removed."""
        written, trailer = _split_trailer(written)
        source_id = by_key.get(source_key(_absolute(written)))
        return (f"[{source_id}]" if source_id else drop(written)) + trailer

    def link(label: str, target: str) -> str:
        label = label.strip()
        if target.startswith("#"):  # a jump within the report refers to nothing outside it
            return label
        if _ID_LIKE.fullmatch(unicodedata.normalize("NFKC", label)):
            # "[S1](https://...)": a citation dressed up as a link is judged by its id alone.
            if by_key.get(source_key(_absolute(target))) is None:
                drop(target)
            return f"[{label}]"
        cited = address(target)
        if cited == _GONE:
            return f"{label}{_GONE}" if label else _GONE
        return f"{label} {cited}" if label else cited

    def doi(match: re.Match[str]) -> str:
        written, trailer = _split_trailer(match.group(0))
        source_id = by_key.get(f"doi.org/{_split_trailer(match.group('doi'))[0]}")
        return (f"[{source_id}]" if source_id else drop(written)) + trailer

    def arxiv(match: re.Match[str]) -> str:
        arxiv_id = (match.group(1) or match.group(3)).lower()
        source_id = by_key.get(f"arxiv:{arxiv_id}")
        return f"[{source_id}]" if source_id else drop(match.group(0))

    def bracketed(match: re.Match[str]) -> str:
        if match.group("canonical"):
            kept: list[str] = []
            for source_id in _ID_SEPARATOR.split(match.group("ids")):
                if source_id not in known_ids:
                    drop(source_id)
                elif source_id not in kept:
                    kept.append(source_id)
            counts.update(kept)
            return f"[{', '.join(kept)}]" if kept else _GONE
        if match.group("footnote"):
            drop(match.group(0).removesuffix(":"))
            definition = match.group(0).endswith(":") and _line_start(match.string, match.start())
            return _NOTE if definition else _GONE
        if match.group("wide"):  # "［S6］": full-width brackets are never citation brackets
            content = match.group("wide_content")
            if _ID_LIKE.fullmatch(unicodedata.normalize("NFKC", content).strip()) or _DIGIT.search(content):
                return drop(match.group(0))
            return match.group(0)[0] + _BRACKETED.sub(bracketed, content) + match.group(0)[-1]
        if match.group("bare"):
            before = match.string[max(0, match.start() - 12) : match.start()]
            return match.group(0) if _NAMED_S.search(before) else drop(match.group(0))
        content = match.group("content")
        normalized = unicodedata.normalize("NFKC", content).strip()
        if _ID_LIKE.fullmatch(normalized) and not _is_maths(match.string, match.start(), normalized):
            return drop(match.group(0))
        return f"[{_BRACKETED.sub(bracketed, content)}]"  # "[see S77]": the id inside is still an id

    text = text.replace(_GONE, "").replace(_NOTE, "")
    # Links first (their URLs must not be seen again as bare URLs), addresses before the ids they
    # may contain, bracketed ids last (so ids written by the earlier rewrites are checked too).
    text = _links(text, link)
    text = _AUTOLINK.sub(lambda match: address(match.group("address")), text)
    text = _ADDRESS.sub(lambda match: _address_or_prose(match, address), text)
    text = _DOI.sub(doi, text)
    text = _ARXIV_ID.sub(arxiv, text)
    text = _AUTHOR_YEAR.sub(lambda match: drop(match.group(0)), text)
    text = _BRACKETED.sub(bracketed, text)
    text, claims = _check_structure(text, drop, drop_unsupported=unsupported == "drop")
    citations = {source_id: counts[source_id] for source_id in sorted(counts, key=_numeric)}
    return VerifiedText(_tidy(text), citations, removed, claims)


def _links(text: str, link: Callable[[str, str], str]) -> str:
    """Rewrite inline, HTML and reference-style links through ``link(label, target)``."""
    text = _MARKDOWN_LINK.sub(lambda match: link(match.group("label"), match.group("target")), text)
    text = _HTML_LINK.sub(lambda match: link(re.sub(r"<[^>]*>", "", match.group("label")), match.group("target")), text)
    definitions = {
        found.group("name").strip().lower(): found.group("target") for found in _LINK_DEFINITION.finditer(text)
    }
    if not definitions:
        return text

    def definition(match: re.Match[str]) -> str:
        link("", match.group("target"))  # judged (and listed if not retrieved) even if never used
        return _GONE

    text = _LINK_DEFINITION.sub(definition, text)

    def reference(match: re.Match[str]) -> str:
        name = (match.group("name") or match.group("label")).strip().lower()
        target = definitions.get(name)
        return match.group(0) if target is None else link(match.group("label"), target)

    return _REFERENCE_LINK.sub(reference, text)


def _address_or_prose(match: re.Match[str], address: Callable[[str], str]) -> str:
    tld = match.group("tld")
    if tld is not None and _NOT_DOMAIN.fullmatch(tld):  # "Node.js/Deno" is prose, not a host and a path
        return match.group(0)
    return address(match.group(0))


def _check_structure(text: str, drop: Callable[[str], str], *, drop_unsupported: bool) -> tuple[str, list[str]]:
    """Prune the references list to retrieved sources; find (and maybe drop) unsupported claims."""
    lines = text.split("\n")
    gone: set[int] = set()
    rewritten: dict[int, list[str]] = {}
    claims: list[str] = []
    section: list[Block] = []  # what stands under the current heading
    heading: int | None = None

    def close_section() -> None:
        if heading is not None and section and all(block.kind == "text" and block.first in gone for block in section):
            gone.add(heading)  # a heading with nothing left under it goes too

    for block in blocks(lines):
        if block.kind == "heading":
            close_section()
            heading, section = block.first, []
            continue
        if block.kind != "blank":
            section.append(block)
        if block.kind != "text":
            continue
        body = "\n".join(lines[block.first : block.last + 1])
        entry = body[len(block.prefix) :]
        if not _tidy(entry).strip():  # nothing but removed references: the line goes
            gone.update(range(block.first, block.last + 1))
        elif block.in_references or entry.startswith(_NOTE):  # a footnote is a references entry too
            if not _KEPT.search(entry):
                drop(_tidy(entry))
                gone.update(range(block.first, block.last + 1))
        else:
            spans = sentences(body, len(block.prefix))
            bad = [span for span in spans if _unsupported(body[span.start : span.end])]
            claims += [claim for span in bad if _is_claim(claim := _tidy(body[span.start : span.end]).strip())]
            kept = [span for span in spans if not _unsupported(body[span.start : span.end])]
            if drop_unsupported and bad and not kept:
                gone.update(range(block.first, block.last + 1))
            elif drop_unsupported and bad:
                joined = "".join((span.gap if n else "") + body[span.start : span.end] for n, span in enumerate(kept))
                rewritten[block.first] = (block.prefix + joined).split("\n")
                gone.update(range(block.first + 1, block.last + 1))
    close_section()
    return _assemble(lines, gone, rewritten), list(dict.fromkeys(claims))


def _assemble(lines: list[str], gone: set[int], rewritten: Mapping[int, list[str]]) -> str:
    """The lines left, without the blank line a removed block would leave doubled."""
    result: list[str] = []
    skipped = False
    for number, line in enumerate(lines):
        if number in gone:
            skipped = True
            continue
        if skipped and not line.strip() and (not result or not result[-1].strip()):
            continue
        skipped = False
        result += rewritten.get(number, [line])
    if skipped:  # the text ended in removed lines: no blank line is left hanging at its end
        while result and not result[-1].strip():
            result.pop()
        result += [""] if result and lines[-1] == "" else []
    return "\n".join(result)


def _is_maths(text: str, index: int, content: str) -> bool:
    """Whether a bracket of numbers at ``index`` is an index or an interval ("x[1]", "= [0, 1]")."""
    if not _DIGIT.match(content):
        return False
    before = text[max(0, index - 20) : index].rstrip()
    return (
        (index > 0 and text[index - 1].isalnum())
        or before.endswith(tuple("=∈≤≥<>+*/^"))
        or "0" in _NUMBERS.findall(content)
    )


def _line_start(text: str, index: int) -> bool:
    """Whether only indentation comes before ``index`` on its line."""
    return not text[text.rfind("\n", 0, index) + 1 : index].strip()


def _unsupported(sentence: str) -> bool:
    """Whether ``sentence`` lost a citation and cites no retrieved source."""
    return _GONE in sentence and not _KEPT.search(sentence)


def _is_claim(sentence: str) -> bool:
    return any(character.isalnum() for character in sentence)


def _tidy(text: str) -> str:
    """Take out the removal marks and the blanks, brackets and bullets they leave behind."""
    text = _GONE_LIST.sub(_GONE, text)
    text = _EMPTY_BRACKETS.sub("", text)
    text = _GONE_LINE.sub("", text)
    text = _GONE_OPENING.sub(r"\1", text)
    text = _GONE_SPACED.sub("", text).replace(_GONE, "")
    return text.replace(f"{_NOTE} ", "").replace(_NOTE, "")
