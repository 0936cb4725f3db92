"""Load versioned prompt files (system rules, user template, JSON schema) and render them."""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Any

from pipeline.errors import ResourceError

# Installed, prompts/ ships as the package `pipeline.prompt_files`; in a bare checkout it sits
# beside pipeline/.
_PROMPT_PACKAGE = "pipeline.prompt_files"
_CHECKOUT_DIR = Path(__file__).resolve().parents[2] / "prompts"
_FILE_NAME = re.compile(r"^(?P<name>[a-z_]+)\.v(?P<version>\d+)\.md$")
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
_SECTION = re.compile(r"^## (system|user|schema)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Prompt:
    """One released prompt: its rules, its user template and the schema its reply must meet."""

    name: str
    version: int
    system: str
    user: str
    schema: dict[str, Any]
    hash: str  # sha256 of the file: a changed prompt is a different cache key

    @property
    def id(self) -> str:
        return f"{self.name}.v{self.version}"

    def record(self) -> dict[str, str]:
        """Return the {id, hash} stamp written into every output record."""
        return {"id": self.id, "hash": self.hash[:16]}

    def messages(self, system_values: dict[str, str], user_values: dict[str, str]) -> list[dict[str, str]]:
        """Render the chat messages; values are inserted verbatim, never re-parsed as templates."""
        return [
            {"role": "system", "content": _fill(self.system, system_values)},
            {"role": "user", "content": _fill(self.user, user_values)},
        ]


def _fill(template: str, values: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise ResourceError(f"prompt placeholder {{{{{key}}}}} has no value")
        return values[key]

    return _PLACEHOLDER.sub(replace, template)


@functools.cache
def load_prompt(name: str, version: int | None = None) -> Prompt:
    """Load prompt `name` at `version`, or its highest released version."""
    files = {
        int(m.group("version")): entry
        for entry in _prompt_dir().iterdir()
        if (m := _FILE_NAME.match(entry.name)) and m.group("name") == name
    }
    if not files:
        raise ResourceError(f"no prompt file named {name}.v*.md (reinstall brief)")
    chosen = version if version is not None else max(files)
    raw = files[chosen].read_bytes()
    return parse_prompt(name, chosen, raw.decode("utf-8"), hashlib.sha256(raw).hexdigest())


def _prompt_dir() -> Traversable:
    try:
        return resources.files(_PROMPT_PACKAGE)
    except ModuleNotFoundError:  # running from a checkout that was never installed
        return _CHECKOUT_DIR


def parse_prompt(name: str, version: int, text: str, digest: str) -> Prompt:
    """Split a prompt file into its system, user and schema sections."""
    parts = _SECTION.split(text)
    sections = {parts[i]: parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}
    missing = {"system", "user", "schema"} - sections.keys()
    if missing:
        raise ResourceError(f"prompt {name}.v{version}: missing section(s) {sorted(missing)}")
    schema_text = sections["schema"].removeprefix("```json").removesuffix("```").strip()
    return Prompt(
        name=name,
        version=version,
        system=sections["system"],
        user=sections["user"],
        schema=json.loads(schema_text),
        hash=digest,
    )


# Any spelling of an opening or closing tag a reader (or a model) could take for ours: < /article>,
# <\/article>, </ ARTICLE >, &lt;/article&gt;, full-width ＜／article＞.
_TAG_LOOKALIKE = r"(?:<|&lt;|＜|&#0*60;|&#x0*3c;)\s*(\\?[/／])?\s*{tag}"


def delimit(text: str, tag: str) -> str:
    """Keep text from closing or opening our delimiter tags, whatever its spelling."""
    pattern = re.compile(_TAG_LOOKALIKE.format(tag=re.escape(tag)), re.IGNORECASE)
    return pattern.sub(lambda m: f"‹{'/' if m.group(1) else ''}{tag}", text)
