"""Just enough Markdown structure for the citation verifier: blocks, sentences, a references list.

Not a Markdown parser. A report is cut into blocks by lines: headings, fenced code, tables, blank
lines, and text blocks (a paragraph, or one list item with its continuation lines). Text blocks
are cut into sentences by terminal punctuation followed by a capital letter, without cutting
after common abbreviations ("e.g.", "et al.", "Fig.") or initials, or inside numbers ("3.5").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["MARK", "Block", "Sentence", "blocks", "sentences"]

MARK = "\x00"  # written by the citation verifier where it removed a reference

BlockKind = Literal["heading", "code", "table", "blank", "text"]

_HEADING = re.compile(r"^ {0,3}#{1,6}(?:[ \t]|$)")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_TABLE = re.compile(r"^[ \t]*\|")
_ITEM = re.compile(r"^[ \t]*(?:[-*+]|\d{1,9}[.)])[ \t]+")
_QUOTE = re.compile(r"^[ \t]*>[ \t]?")
# A heading (or a line standing alone as one, like "**References:**") that opens a list of sources.
_REFERENCES_TITLE = re.compile(
    r"^ {0,3}(?:#{1,6}[ \t]+)?[*_]*[ \t]*(?:\d+\.?[ \t]*)?"
    r"(?:references?|sources?(?:[ \t]+cited)?|bibliography|works[ \t]+cited|citations|reference[ \t]+list|"
    r"further[ \t]+reading|literature)"
    r"[ \t]*:?[ \t]*[*_]*[ \t]*:?[ \t]*$",
    re.IGNORECASE,
)
_TERMINATOR = re.compile(r"[.!?]+[\"'”’)*_]*")
_OPENERS = "\"'“‘(*_"
# Citations written after a sentence's full stop: canonical groups and removal marks.
_TRAILING = re.compile(rf"(?:[ \t]*(?:\[S\d+(?:, S\d+)*\]|{MARK}))*")
# Words after which a full stop does not end a sentence (matched without the stop).
_ABBREVIATION = re.compile(
    r"e\.g|i\.e|cf|etc|vs|al|figs?|eqs?|nos?|dr|mrs?|ms|prof|approx|ca|inc|ltd|jr|sr|st|vol|pp|ch|sec", re.IGNORECASE
)
_WORD_BEFORE = re.compile(r"([^\W\d_](?:[\w.]*[^\W_])?)$")
_DOTTED = re.compile(r"(?:[^\W\d_]\.)+[^\W\d_]")  # "U.S", "e.g": letters between stops


@dataclass(frozen=True, slots=True)
class Block:
    """Lines ``first`` to ``last`` (inclusive) of a report, of one ``kind``.

    ``in_references`` marks text under a references heading; ``prefix`` is the list bullet or
    quote marker of the block's first line, which belongs to no sentence.
    """

    kind: BlockKind
    first: int
    last: int
    in_references: bool = False
    prefix: str = ""


@dataclass(frozen=True, slots=True)
class Sentence:
    """A sentence at ``start:end`` of a text, and the blanks before it (``gap``)."""

    start: int
    end: int
    gap: str


def _is_references_title(line: str) -> bool:
    """Whether ``line`` heads a list of sources ("## References", "**Sources:**")."""
    return bool(_REFERENCES_TITLE.match(line))


def blocks(lines: list[str]) -> list[Block]:
    """Cut a report's lines into blocks; a references section runs to the next heading."""
    found: list[Block] = []
    in_references = False
    index = 0
    while index < len(lines):
        line = lines[index]
        if fence := _FENCE.match(line):
            close = next(
                (n for n in range(index + 1, len(lines)) if lines[n].strip().startswith(fence.group(1))), len(lines) - 1
            )
            found.append(Block("code", index, close))
            index = close + 1
            continue
        if _HEADING.match(line) or _is_references_title(line):
            in_references = _is_references_title(line)
            found.append(Block("heading", index, index))
        elif not line.strip():
            found.append(Block("blank", index, index))
        elif _TABLE.match(line):
            found.append(Block("table", index, index))
        else:
            last = index
            while last + 1 < len(lines) and _continues(lines[last + 1]):
                last += 1
            prefix = _ITEM.match(line) or _QUOTE.match(line)
            found.append(Block("text", index, last, in_references, prefix.group(0) if prefix else ""))
            index = last + 1
            continue
        index += 1
    return found


def _continues(line: str) -> bool:
    """Whether ``line`` carries on the paragraph or list item above it."""
    return bool(
        line.strip()
        and not (_HEADING.match(line) or _FENCE.match(line) or _TABLE.match(line) or _ITEM.match(line))
        and not _is_references_title(line)
    )


def sentences(text: str, start: int = 0) -> list[Sentence]:
    """The sentences of ``text[start:]``; a trailing citation like ``[S1]`` stays with its sentence.

    A removal ``MARK`` counts as a citation too; one followed by a lowercase word, as where a
    narrative citation was removed ("… [S1]. <mark> shows that …"), opens the next sentence instead.
    """
    found: list[Sentence] = []
    begin = _skip_blanks(text, start)
    gap = text[start:begin]
    for match in _TERMINATOR.finditer(text, begin):
        if match.start() < begin or _is_abbreviation(text, match.start()):
            continue
        trailed = _TRAILING.match(text, match.end())
        assert trailed is not None
        if _opens_sentence(text, trailed.end()):
            stop = trailed.end()
        elif trailed.end() > match.end() and _opens_sentence(text, match.end()):
            stop = match.end()
        else:
            continue
        found.append(Sentence(begin, stop, gap))
        begin = _skip_blanks(text, stop)
        gap = text[stop:begin]
    if text[begin:].strip():
        found.append(Sentence(begin, len(text.rstrip()), gap))
    return found


def _skip_blanks(text: str, index: int) -> int:
    while index < len(text) and text[index].isspace():
        index += 1
    return index


def _opens_sentence(text: str, index: int) -> bool:
    """Whether a new sentence starts after the blanks at ``index`` (or the text ends there)."""
    after = _skip_blanks(text, index)
    if after == len(text):
        return True
    if after == index:  # "3.5", "e.g.," — no blank, no new sentence
        return False
    while after < len(text) and text[after] in _OPENERS:
        after += 1
    return after < len(text) and (text[after].isupper() or text[after].isdigit() or text[after] == MARK)


def _is_abbreviation(text: str, index: int) -> bool:
    """Whether the full stop at ``index`` ends an abbreviation or an initial rather than a sentence."""
    if text[index] != ".":
        return False
    word = _WORD_BEFORE.search(text[max(0, index - 40) : index])
    if word is None:
        return False
    token = word.group(1)
    return bool(_ABBREVIATION.fullmatch(token) or _DOTTED.fullmatch(token)) or (len(token) == 1 and token.isupper())
