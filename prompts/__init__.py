"""Prompt templates, one Markdown file per LLM node, loaded once at import."""

from __future__ import annotations

from pathlib import Path

_DIR = Path(__file__).parent
PROMPTS: dict[str, str] = {p.stem: p.read_text(encoding="utf-8") for p in _DIR.glob("*.md")}


def render(name: str, **values: object) -> str:
    """The prompt ``name`` with ``{placeholders}`` filled in."""
    return PROMPTS[name].format(**values)
