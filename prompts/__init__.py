"""Prompt files: one Markdown file per LLM prompt, TOML for the router's actions and the
shop's replies. Loaded once at import."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

DIR = Path(__file__).parent
PROMPTS: dict[str, str] = {p.stem: p.read_text(encoding="utf-8") for p in DIR.glob("*.md")}


def render(name: str, **values: object) -> str:
    """The prompt ``name`` with ``{placeholders}`` filled in."""
    return PROMPTS[name].format(**values)


def load_toml(name: str) -> dict[str, Any]:
    """``prompts/<name>.toml`` as a dict."""
    return tomllib.loads((DIR / f"{name}.toml").read_text(encoding="utf-8"))
