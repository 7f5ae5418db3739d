"""Every SQL statement of the stores, read once at import from the ``*.sql`` files here.

Each file holds named blocks::

    -- name: get_session
    SELECT ... WHERE user_id = ?;

A block runs until the next ``-- name:`` line. Names are unique across files.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import MappingProxyType

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


def _parse(text: str, source: str) -> dict[str, str]:
    """Split one file into ``{name: statement}``."""
    parts = _NAME.split(text)
    if parts[0].strip() and not all(
        line.strip().startswith("--") or not line.strip() for line in parts[0].splitlines()
    ):
        raise ValueError(f"{source}: SQL before the first '-- name:' line")
    blocks: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        statement = body.strip()
        if not statement:
            raise ValueError(f"{source}: empty statement {name!r}")
        if name in blocks:
            raise ValueError(f"{source}: duplicate statement {name!r}")
        blocks[name] = statement
    return blocks


def _load(directory: Path) -> dict[str, str]:
    queries: dict[str, str] = {}
    for path in sorted(directory.glob("*.sql")):
        for name, statement in _parse(path.read_text(encoding="utf-8"), path.name).items():
            if name in queries:
                raise ValueError(f"{path.name}: statement {name!r} is defined twice")
            queries[name] = statement
    return queries


QUERIES = MappingProxyType(_load(Path(__file__).parent))


def sql(name: str) -> str:
    """The statement called ``name`` (``KeyError`` naming it when it does not exist)."""
    try:
        return QUERIES[name]
    except KeyError:
        raise KeyError(f"no SQL statement named {name!r} in stores/sql") from None
