"""Load and render prompt templates from the ``prompts`` package.

A template is a Markdown file with ``${name}`` placeholders; an optional line ``---user---``
separates the system message from the user message. Rendering fails on a missing variable
(and on an unexpected one), so a prompt can never go out half-filled.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from string import Template

__all__ = ["Prompt", "PromptError", "load_prompt", "prompt_set_version"]

_USER_MARKER = "\n---user---\n"
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class PromptError(ValueError):
    """A prompt was rendered with missing or unknown variables."""


@dataclass(frozen=True, slots=True)
class Prompt:
    name: str
    system: str
    user: str

    @property
    def variables(self) -> frozenset[str]:
        return frozenset(_PLACEHOLDER.findall(self.system + self.user))

    def render(self, **values: object) -> tuple[str, str]:
        """The (system, user) messages with every placeholder filled."""
        missing = self.variables - values.keys()
        unknown = values.keys() - self.variables
        if missing or unknown:
            raise PromptError(f"prompt {self.name}: missing {sorted(missing)}, unknown {sorted(unknown)}")
        strings = {key: str(value) for key, value in values.items()}
        return Template(self.system).substitute(strings), Template(self.user).substitute(strings)


@cache
def load_prompt(name: str) -> Prompt:
    """Load ``prompts/<name>.md``, e.g. ``load_prompt("reflection/critique")``."""
    package, _, stem = name.rpartition("/")
    root = resources.files("prompts")
    for part in package.split("/") if package else []:
        root = root / part
    text = (root / f"{stem}.md").read_text(encoding="utf-8")
    system, _, user = text.partition(_USER_MARKER)
    return Prompt(name=name, system=system.strip(), user=user.strip())


def all_prompt_names() -> list[str]:
    """Every prompt shipped in the package (for the render-every-prompt test)."""
    names: list[str] = []
    root = resources.files("prompts")
    for folder in root.iterdir():
        if folder.is_dir() and not folder.name.startswith("_"):
            names += [f"{folder.name}/{item.name[:-3]}" for item in folder.iterdir() if item.name.endswith(".md")]
    return sorted(names)


@cache
def prompt_set_version() -> str:
    """A hash of every prompt file shipped: editing any prompt changes it (and so the result cache key)."""
    digest = hashlib.sha256()
    root = resources.files("prompts")
    for name in all_prompt_names():
        package, _, stem = name.rpartition("/")
        digest.update(name.encode() + b"\0" + (root / package / f"{stem}.md").read_bytes() + b"\0")
    return digest.hexdigest()[:16]
