"""Every SQL statement of the stores, read once at import from the ``*.sql`` files here.

One folder per engine:

* ``sqlite/``: the SQLite files (ledger, audit, hot store, leases, the cold store's lookup
  copy, the report);
* ``postgres/``: the same statements for PostgreSQL, under the **same names** (``%s`` /
  ``%(name)s`` parameters instead of ``?`` / ``:name``);
* ``duckdb/``: the DuckDB analytics file (``cold.duckdb``) and the synthetic data generator;
  engine-agnostic for the stores' backends, so both dialects find them.

Each file holds named blocks::

    -- name: get_session
    SELECT ... WHERE user_id = ?;

A block runs until the next ``-- name:`` line. Names are unique within a dialect (and the
DuckDB names unique across all three). The two backends define the same names except those in
``SQLITE_ONLY`` and ``POSTGRES_ONLY`` (pragmas, SQLite migrations, bulk loading).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Literal

Dialect = Literal["sqlite", "postgres"]
Engine = Literal["sqlite", "postgres", "duckdb"]
DIALECTS: tuple[Dialect, ...] = ("sqlite", "postgres")

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)
_ROOT = Path(__file__).parent

SQLITE_ONLY = frozenset(
    {
        # connection set-up and SQLite's explicit transaction statements
        "hot_pragmas",
        "hot_bulk_pragmas",
        "sqlite_begin",
        "sqlite_commit",
        "sqlite_rollback",
        "sqlite_savepoint",
        "sqlite_release",
        "sqlite_rollback_to",
        # migrations of ledger files written by older releases (Postgres starts complete)
        "ledger_columns",
        "ledger_add_superseded_by",
        "ledger_add_decided_at",
        "ledger_add_churn_band",
        "ledger_add_inventory",
        # seeding: the hot file is built aside and copied in through ATTACH
        "hot_insert_session",
        "hot_refill_clear",
        "hot_refill_copy",
        # the cold store's SQLite lookup copy of the DuckDB file (stores/cold.py)
        "cold_copy_build_pragmas",
        "cold_copy_read_pragmas",
        "cold_copy_schema",
        "cold_copy_insert",
        "cold_copy_set_identity",
        "cold_copy_identity",
        "cold_copy_get",
        "cold_copy_count",
        # the report over separate files: a legacy ledger file, the hot file's inventory
        "report_offers_view_legacy",
        "report_offer_users",
        "report_hot_inventory",
        "report_customer_insert",
    }
)
"""Statement names only the SQLite dialect defines."""

POSTGRES_ONLY = frozenset(
    {
        # per-key locking inside a transaction (SQLite's BEGIN IMMEDIATE locks the file)
        "pg_advisory_lock",
        # the report's snapshot transaction
        "pg_repeatable_read",
        # bulk loading with COPY (seeding, the analytics materialisation)
        "hot_truncate",
        "hot_copy",
        "analytics_truncate",
        "analytics_copy",
        # the report: current values joined in the same database
        "report_customer_fill",
    }
)
"""Statement names only the Postgres dialect defines."""


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


def _load_all() -> dict[Engine, Mapping[str, str]]:
    duck = _load(_ROOT / "duckdb")
    out: dict[Engine, Mapping[str, str]] = {"duckdb": MappingProxyType(duck)}
    for dialect in DIALECTS:
        own = _load(_ROOT / dialect)
        clash = sorted(set(own) & set(duck))
        if clash:
            raise ValueError(f"{dialect}: {clash} also defined in duckdb/")
        out[dialect] = MappingProxyType({**duck, **own})
    return out


BY_ENGINE = MappingProxyType(_load_all())
QUERIES = BY_ENGINE["sqlite"]
"""The SQLite dialect's statements (and the DuckDB ones): what ``sql(name)`` reads."""


def own_names(dialect: Engine) -> frozenset[str]:
    """The names defined in ``dialect``'s own folder (without the shared DuckDB ones)."""
    shared = set(BY_ENGINE["duckdb"]) if dialect != "duckdb" else set()
    return frozenset(set(BY_ENGINE[dialect]) - shared)


def sql(name: str, dialect: Engine = "sqlite") -> str:
    """The statement called ``name`` in ``dialect`` (``KeyError`` naming it when missing).

    The DuckDB statements are found from every dialect.
    """
    try:
        return BY_ENGINE[dialect][name]
    except KeyError:
        raise KeyError(f"no SQL statement named {name!r} in stores/sql/{dialect}") from None
