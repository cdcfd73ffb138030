"""Deterministic generator of JSON values that are valid against a (pydantic-style) JSON Schema."""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from .text_gen import cited_sources, keywords, review_score, slugify, stable_hash, title_case

__all__ = ["GenContext", "generate"]

_TAPER_DEPTH = 4  # below this depth arrays get 2 items, then 1, then none (unless minItems)
_MAX_DEPTH = 8  # beyond this depth optional values are null and optional properties omitted
_HARD_DEPTH = 64  # a schema that still recurses here has no finite instance we can find
_QUERY_NAME_RE = re.compile(r"(^|_)queries$")
_NEEDS_BOOL_RE = re.compile(r"^(needs?|requires?)_")
_NEGATIVE_BOOL_RE = re.compile(r"more|revis|retry|gap|missing|continue")
_POSITIVE_BOOL_RE = re.compile(r"approv|complete|sufficient|done|pass|accept|valid|satisf|ready")
_URL_NAME_RE = re.compile(r"(^|_)(url|uri|link|href)s?$")
_SOURCE_ID_NAME_RE = re.compile(r"(^|_)(source|citation)s?(_ids?)?$")
_TITLE_NAME_RE = re.compile(r"(^|_)(title|name|heading|label)$")
_QUERY_ITEM_SUFFIXES = ("overview", "benchmarks", "limitations", "recent advances", "case studies")


@dataclass
class GenContext:
    """What generated values are derived from: usually the last user message."""

    text: str = ""
    words: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.words:
            self.words = keywords(self.text, 8)
        if not self.sources:
            self.sources = cited_sources(self.text)

    @property
    def score(self) -> int:
        """Raw review score on a 0-10 scale (see ``text_gen.review_score``)."""
        return review_score(self.text)

    @property
    def approved(self) -> bool:
        """Whether the raw score reaches the approval bar of 8."""
        return self.score >= 8

    @property
    def topic(self) -> str:
        """A short topic phrase."""
        return " ".join(self.words[:4]) if self.words else "the requested topic"

    def queries(self, n: int) -> list[str]:
        """``n`` short, distinct search queries built from the context's words."""
        words = self.words or ["agent", "workflow", "orchestration"]
        base = [" ".join(words[:3]), " ".join(words[2:5]) if len(words) > 3 else ""]
        out: list[str] = []
        for candidate in base:
            if candidate and candidate not in out:
                out.append(candidate)
        i = 0
        while len(out) < n:
            candidate = f"{' '.join(words[:2])} {_QUERY_ITEM_SUFFIXES[i % 5]}"
            if i >= 5:
                candidate += f" {i}"
            if candidate not in out:
                out.append(candidate)
            i += 1
        return out[:n]


def generate(schema: dict[str, Any], context: GenContext | str = "") -> Any:
    """Return a deterministic value valid against ``schema``.

    Supports object/properties/required, array/items/prefixItems/minItems/maxItems/uniqueItems,
    enum, const, string (format, minLength, maxLength), integer/number (minimum, maximum,
    exclusive bounds, multipleOf), boolean, null, anyOf/oneOf/allOf, type lists and
    ``$ref`` into ``$defs``/``definitions``. Property names steer values: ``score`` (and
    ``*_score``) follows the review score, ``approved`` is true iff that score is >= 8, and
    ``queries``/``*_queries`` string arrays get two short search queries.
    """
    ctx = context if isinstance(context, GenContext) else GenContext(text=context)
    return _Generator(schema, ctx).value(schema, name="", depth=0, index=0)


class _Generator:
    def __init__(self, root: dict[str, Any], ctx: GenContext) -> None:
        self.root = root
        self.ctx = ctx

    # -- schema plumbing -------------------------------------------------------------------
    def resolve(self, schema: Any, seen: frozenset[str] = frozenset()) -> dict[str, Any]:
        if schema is True or schema is None:
            return {}
        if schema is False:
            raise ValueError("cannot generate a value for the `false` schema")
        ref = schema.get("$ref")
        if ref is None:
            return schema  # type: ignore[no-any-return]
        if ref in seen:
            raise ValueError(f"circular $ref without a base case: {ref}")
        target = self.pointer(ref)
        siblings = {k: v for k, v in schema.items() if k != "$ref"}
        return {**self.resolve(target, seen | {ref}), **siblings}

    def pointer(self, ref: str) -> Any:
        if not ref.startswith("#"):
            raise ValueError(f"only local $ref are supported, got {ref!r}")
        node: Any = self.root
        for raw in ref.lstrip("#").split("/"):
            if raw:
                node = node[raw.replace("~1", "/").replace("~0", "~")]
        return node

    def merge_all_of(self, schema: dict[str, Any]) -> dict[str, Any]:
        merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            part = self.resolve(part)
            if "allOf" in part:
                part = self.merge_all_of(part)
            for key, value in part.items():
                if key == "properties":
                    merged["properties"] = {**merged.get("properties", {}), **value}
                elif key == "required":
                    merged["required"] = sorted(set(merged.get("required", [])) | set(value))
                else:
                    merged.setdefault(key, value)
        return merged

    # -- values ----------------------------------------------------------------------------
    def value(self, schema: Any, name: str, depth: int, index: int) -> Any:
        if depth > _HARD_DEPTH:
            raise ValueError("schema recursion too deep: no finite value found")
        s = self.resolve(schema)
        if "allOf" in s:
            s = self.merge_all_of(s)
        if "const" in s:
            return s["const"]
        if "enum" in s:
            return s["enum"][0]
        for key in ("anyOf", "oneOf"):
            if key in s:
                return self.choice(s, s[key], name, depth, index)
        kind = s.get("type")
        if isinstance(kind, list):
            non_null = [t for t in kind if t != "null"]
            if not non_null or (depth > _MAX_DEPTH and "null" in kind):
                return None
            kind = non_null[0]
        if kind is None:
            if "properties" in s:
                kind = "object"
            elif "items" in s or "prefixItems" in s:
                kind = "array"
            else:
                kind = "string"
        maker = getattr(self, f"make_{kind}", None)
        if maker is None:
            raise ValueError(f"unsupported JSON Schema type {kind!r}")
        return maker(s, name, depth, index)

    def choice(self, s: dict[str, Any], options: list[Any], name: str, depth: int, index: int) -> Any:
        resolved = [self.resolve(o) for o in options]
        non_null = [o for o in resolved if o.get("type") != "null"]
        if not non_null or (depth > _MAX_DEPTH and len(non_null) < len(resolved)):
            return None
        base = {k: v for k, v in s.items() if k not in ("anyOf", "oneOf")}
        return self.value({**base, **non_null[0]}, name, depth, index)

    def make_null(self, s: dict[str, Any], name: str, depth: int, index: int) -> None:
        return None

    def make_object(self, s: dict[str, Any], name: str, depth: int, index: int) -> dict[str, Any]:
        props: dict[str, Any] = s.get("properties", {})
        required = set(s.get("required", []))
        keep_optional = depth < _MAX_DEPTH
        return {
            key: self.value(sub, key, depth + 1, index)
            for key, sub in props.items()
            if key in required or keep_optional
        }

    def make_array(self, s: dict[str, Any], name: str, depth: int, index: int) -> list[Any]:
        prefix = s.get("prefixItems") or []
        lo = int(s.get("minItems", 0))
        hi = s.get("maxItems")
        default = 2 if depth < _TAPER_DEPTH else 1 if depth < _MAX_DEPTH else 0
        n = max(lo, len(prefix), default)
        if hi is not None:
            n = min(n, int(hi))
        items = s.get("items", {})
        item_schema = self.resolve(items) if isinstance(items, dict) else {}
        if _QUERY_NAME_RE.search(name.lower()) and item_schema.get("type", "string") == "string":
            return self.ctx.queries(n)
        if name.lower() == "steps" and {"id", "kind", "depends_on"} <= set(item_schema.get("properties", {})):
            return self.plan_steps(item_schema, lo, hi)
        out: list[Any] = []
        for i in range(n):
            sub = prefix[i] if i < len(prefix) else items
            out.append(self.value(sub, name, depth + 1, i))
        if s.get("uniqueItems"):
            out = [f"{v} {i + 1}" if isinstance(v, str) and out.count(v) > 1 else v for i, v in enumerate(out)]
        return out

    def plan_steps(self, item_schema: dict[str, Any], lo: int, hi: Any) -> list[dict[str, Any]]:
        """A plan with dependencies: two independent research steps, a write step that needs
        both, and a critique of the write step (cut to ``maxItems``; dependencies kept valid)."""
        kinds = self.resolve(item_schema["properties"]["kind"]).get("enum") or ["research", "write", "critique"]
        topic = self.ctx.topic
        wanted = [
            ("s1", "research", f"Research the background of {topic}.", []),
            ("s2", "research", f"Research recent evidence on {topic}.", []),
            ("s3", "write", f"Write a draft about {topic} from the research.", ["s1", "s2"]),
            ("s4", "critique", f"Review the draft about {topic}.", ["s3"]),
        ]
        count = max(lo, min(len(wanted), int(hi))) if hi is not None else max(lo, len(wanted))
        steps = []
        for step_id, kind, instruction, depends_on in wanted[:count]:
            steps.append(
                {
                    "id": step_id,
                    "kind": kind if kind in kinds else kinds[0],
                    "instruction": instruction,
                    "depends_on": depends_on,
                }
            )
        return steps

    def make_string(self, s: dict[str, Any], name: str, depth: int, index: int) -> str:
        text = self.string_for(s.get("format"), name.lower(), index)
        lo = int(s.get("minLength", 0))
        hi = s.get("maxLength")
        while len(text) < lo:
            text += " lorem ipsum"
        if hi is not None:
            text = text[: int(hi)]
        return text

    def string_for(self, fmt: str | None, name: str, index: int) -> str:
        words = self.ctx.words or ["topic"]
        slug = slugify(" ".join(words[:3]))
        n = index + 1
        if fmt == "date-time":
            return f"2024-05-{n:02d}T12:00:00Z"
        if fmt == "date":
            return f"2024-05-{n:02d}"
        if fmt == "time":
            return "12:00:00"
        if fmt == "email":
            return f"author{n}@example.org"
        if fmt == "uuid":
            return str(uuid.UUID(int=stable_hash(f"{self.ctx.text}:{name}:{n}") << 64))
        if fmt in ("uri", "url", "iri") or _URL_NAME_RE.search(name):
            return f"https://example.org/{slug}/{n}"
        if _SOURCE_ID_NAME_RE.search(name):
            sources = self.ctx.sources or [f"S{i + 1}" for i in range(index + 1)]
            return sources[index % len(sources)]
        if name == "id" or name.endswith("_id"):
            return f"{name or 'id'}-{n}"
        if name.endswith(("query", "question")):
            return self.ctx.queries(index + 1)[index]
        if _TITLE_NAME_RE.search(name):
            base = title_case(words[:3])
            return base if index == 0 else f"{base} ({n})"
        label = name.replace("_", " ").strip() or "answer"
        suffix = f" (item {n})" if index else ""
        return f"Stand-in {label} about {self.ctx.topic}{suffix}."

    def make_integer(self, s: dict[str, Any], name: str, depth: int, index: int) -> int:
        return int(self.number(s, name, integer=True))

    def make_number(self, s: dict[str, Any], name: str, depth: int, index: int) -> float:
        return float(self.number(s, name, integer=False))

    def number(self, s: dict[str, Any], name: str, integer: bool) -> float:
        lo = s.get("minimum")
        hi = s.get("maximum")
        step = 1 if integer else 1e-6
        if "exclusiveMinimum" in s and not isinstance(s["exclusiveMinimum"], bool):
            lo = s["exclusiveMinimum"] + step if lo is None else max(lo, s["exclusiveMinimum"] + step)
        if "exclusiveMaximum" in s and not isinstance(s["exclusiveMaximum"], bool):
            hi = s["exclusiveMaximum"] - step if hi is None else min(hi, s["exclusiveMaximum"] - step)
        lname = name.lower()
        if lname == "score" or lname.endswith("_score"):
            value: float = self.ctx.score
            if hi is not None and hi < 10:
                value = value * hi / 10
        elif lname in ("year", "published_year"):
            value = 2024
        else:
            value = 3
        if lo is not None:
            value = max(value, lo)
        if hi is not None:
            value = min(value, hi)
        if integer:
            value = math.ceil(value) if lo is not None and value < lo else math.floor(value)
            if hi is not None and value > hi:
                value = math.floor(hi)
        multiple = s.get("multipleOf")
        if multiple:
            value = math.ceil(value / multiple) * multiple
            if hi is not None and value > hi:
                value -= multiple
        return value

    def make_boolean(self, s: dict[str, Any], name: str, depth: int, index: int) -> bool:
        lname = name.lower()
        if _NEEDS_BOOL_RE.search(lname):
            return not self.ctx.approved
        if _POSITIVE_BOOL_RE.search(lname):
            return self.ctx.approved
        if _NEGATIVE_BOOL_RE.search(lname):
            return not self.ctx.approved
        return True
