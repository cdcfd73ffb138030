"""Deterministic text helpers: keywords, slugs, hashes and the default chat answer."""

from __future__ import annotations

import hashlib
import re

__all__ = [
    "cited_sources",
    "count_revised",
    "default_chat_text",
    "keywords",
    "review_score",
    "slugify",
    "stable_hash",
    "title_case",
    "topic_phrase",
]

# Function words never worth repeating back.
_STOPWORDS = frozenset(
    (
        "a",
        "about",
        "above",
        "across",
        "after",
        "again",
        "against",
        "all",
        "also",
        "am",
        "among",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "e.g",
        "each",
        "etc",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "i.e",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "may",
        "me",
        "might",
        "more",
        "most",
        "must",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "one",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "out",
        "over",
        "own",
        "per",
        "same",
        "shall",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "three",
        "through",
        "to",
        "too",
        "two",
        "under",
        "until",
        "up",
        "very",
        "via",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "within",
        "without",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
    )
)
# Words of instructions to a model, skipped when reading a prompt (kept in search queries).
_PROMPT_WORDS = frozenset(
    (
        "analyse",
        "analyze",
        "answer",
        "assistant",
        "based",
        "critique",
        "describe",
        "discuss",
        "draft",
        "evaluate",
        "explain",
        "find",
        "following",
        "format",
        "give",
        "given",
        "help",
        "identify",
        "json",
        "like",
        "list",
        "make",
        "message",
        "need",
        "note",
        "notes",
        "output",
        "please",
        "provide",
        "question",
        "report",
        "response",
        "return",
        "review",
        "revise",
        "revised",
        "revision",
        "schema",
        "show",
        "source",
        "sources",
        "summarise",
        "summarize",
        "system",
        "task",
        "tell",
        "text",
        "topic",
        "use",
        "used",
        "user",
        "using",
        "want",
        "write",
    )
)
_WORD_RE = re.compile(r"[A-Za-z][A-Za-z0-9\-]{2,}")
_SOURCE_RE = re.compile(r"\[(S\d+)\]")
_REVISION_RE = re.compile(r"\brevis(?:e|ed|ing|ion|ions)\b", re.IGNORECASE)


def stable_hash(text: str) -> int:
    """A process-independent 64-bit hash of ``text``."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def keywords(text: str, limit: int = 6, *, prompt: bool = True) -> list[str]:
    """Distinct lower-case content words of ``text`` in order of first appearance.

    With ``prompt`` (the default) instruction words such as "write" or "summarize" are skipped
    too; pass ``prompt=False`` for search queries.
    """
    skip = _STOPWORDS | _PROMPT_WORDS if prompt else _STOPWORDS
    seen: list[str] = []
    for match in _WORD_RE.finditer(text):
        word = match.group(0).lower().strip("-")
        if len(word) < 3 or word in skip or word in seen:
            continue
        seen.append(word)
        if len(seen) >= limit:
            break
    return seen


def title_case(words: list[str]) -> str:
    """Join words with each capitalised."""
    return " ".join(w[:1].upper() + w[1:] for w in words)


def topic_phrase(text: str, limit: int = 4, fallback: str = "the requested topic") -> str:
    """A short phrase naming what ``text`` is about."""
    words = keywords(text, limit)
    return " ".join(words) if words else fallback


def slugify(text: str, max_len: int = 60) -> str:
    """A URL path segment derived from ``text`` ('topic' if nothing usable)."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:max_len].rstrip("-") or "topic"


def cited_sources(text: str) -> list[str]:
    """Source ids such as ``S1`` that appear as ``[S1]`` in ``text``, first occurrence order."""
    ids: list[str] = []
    for sid in _SOURCE_RE.findall(text):
        if sid not in ids:
            ids.append(sid)
    return ids


def count_revised(text: str) -> int:
    """How many times "revised" occurs in ``text`` (case-insensitive)."""
    return text.lower().count("revised")


def review_score(text: str) -> int:
    """The default review score of ``text``: 6, plus 2 per "revised", at most 10."""
    return min(10, 6 + 2 * count_revised(text))


_OPENERS = (
    "The evidence points to a small number of recurring themes.",
    "Several complementary perspectives emerge from the material.",
    "The picture is consistent, with a few open questions remaining.",
    "Practitioners and researchers broadly agree on the main trade-offs.",
)


def default_chat_text(last_user_message: str) -> str:
    """The stand-in's plain-text answer: short markdown about the message's topic.

    Cites up to two ``[S<n>]`` source ids found in the message, and marks the answer as
    revised one more time than the message mentions "revised" when it asks for a revision.
    """
    words = keywords(last_user_message, 6) or ["the", "requested", "topic"]
    topic = " ".join(words[:4])
    title = title_case(words[:4])
    opener = _OPENERS[stable_hash(last_user_message) % len(_OPENERS)]
    lines: list[str] = []
    if _REVISION_RE.search(last_user_message):
        passes = count_revised(last_user_message)
        lines.append(f"## Revised draft: {title}")
        lines.append("")
        if passes:
            lines.append("Changes: " + "; ".join(f"Revised section {i + 1}" for i in range(passes)))
            lines.append("")
    else:
        lines += [f"## {title}", ""]
    lines.append(f"Stand-in analysis of {topic}. {opener}")
    lines.append("")
    for word in words[:3]:
        lines.append(f"- **{word.capitalize()}**: how {word} shapes outcomes for {topic}.")
    sources = cited_sources(last_user_message)
    if sources:
        cited = " and ".join(f"[{sid}]" for sid in sources[:2])
        lines.append("")
        lines.append(f"These conclusions about {topic} are supported by the sources, as shown in {cited}.")
    return "\n".join(lines)
