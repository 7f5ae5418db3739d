"""Feature lookup latency at several store sizes, beside the seed's per-call pattern.

* ``store``: ``FeatureStore.lookup`` as the graph calls it (hot SQLite + the cold store's
  SQLite copy, long-lived connections, models validated);
* ``baseline_seed_pattern``: the seed's lookup re-created here: read the SQL files, connect to
  both files (SQLite + DuckDB read-only), one query each, close — on every call;
* ``reference_duckdb_point_query``: one long-lived read-only DuckDB connection, the cold
  query alone (what the store did before its SQLite copy).
"""

from __future__ import annotations

import random
import sqlite3
import time
from pathlib import Path
from typing import Any

import duckdb

from graph.ops.bench.perf.common import pct, say
from stores import sql as sql_package
from stores.cold import copy_path, ensure_copy
from stores.features import FeatureStore
from stores.models import CustomerFeatures
from stores.seed import FIRST_USER, generate
from stores.sql import sql

SQL_DIR = Path(sql_package.__file__).parent  # the seed read its SQL files on every call


def seed_pattern_lookup(hot_db: Path, cold_db: Path, user_id: str) -> tuple[Any, Any]:
    """The seed's lookup: read the SQL, open both files, query, close — every call."""
    (SQL_DIR / "sqlite" / "hot.sql").read_text(encoding="utf-8")
    (SQL_DIR / "duckdb" / "cold.sql").read_text(encoding="utf-8")
    hot = sqlite3.connect(hot_db)
    cold = duckdb.connect(str(cold_db), read_only=True)
    try:
        session = hot.execute(sql("hot_get_session"), (user_id,)).fetchone()
        analytics = cold.execute(sql("cold_get_analytics"), [user_id]).fetchone()
    finally:
        hot.close()
        cold.close()
    return session, analytics


def _ms(samples_ns: list[int]) -> dict[str, float]:
    ms = [n / 1e6 for n in samples_ns]
    return {"n": len(ms), "p50_ms": round(pct(ms, 0.5), 4), "p99_ms": round(pct(ms, 0.99), 4)}


def _time_calls(ids: list[str], call: Any) -> list[int]:
    out: list[int] = []
    for user in ids:
        start = time.perf_counter_ns()
        call(user)
        out.append(time.perf_counter_ns() - start)
    return out


def run_size(work: Path, users: int, lookups: int, seed_calls: int) -> dict[str, Any]:
    """Generate ``users`` customers, then time the three lookups on random known users."""
    data_dir = work / f"lookup-{users}"
    started = time.perf_counter()
    generate(data_dir, users=users, seed=42)
    generate_s = time.perf_counter() - started
    hot_db, cold_db = data_dir / "hot.sqlite", data_dir / "cold.duckdb"
    copy_path(cold_db).unlink()
    started = time.perf_counter()
    ensure_copy(cold_db)
    copy_s = time.perf_counter() - started
    rng = random.Random(7)
    ids = [f"user_{FIRST_USER + rng.randrange(users)}" for _ in range(lookups)]
    store = FeatureStore.open(hot_db, cold_db)
    try:
        assert all(isinstance(store.lookup(u), CustomerFeatures) for u in ids[:50])
        fast = _time_calls(ids, store.lookup)
    finally:
        store.close()
    conn = duckdb.connect(str(cold_db), read_only=True)
    try:
        conn.execute(sql("cold_lookup_settings"))
        query = sql("cold_get_analytics")
        duck = _time_calls(ids[: seed_calls * 4], lambda u: conn.execute(query, [u]).fetchone())
    finally:
        conn.close()
    seed = _time_calls(ids[:seed_calls], lambda u: seed_pattern_lookup(hot_db, cold_db, u))
    return {
        "users": users,
        "generate_s": round(generate_s, 2),
        "copy_build_s": round(copy_s, 3),
        "store": _ms(fast),
        "baseline_seed_pattern": _ms(seed),
        "reference_duckdb_point_query": _ms(duck),
    }


def run(work: Path, sizes: list[int], lookups: int, seed_calls: int) -> dict[str, Any]:
    """Lookup figures per store size."""
    out: dict[str, Any] = {"sizes": []}
    for users in sizes:
        say(f"lookup: {users:,} customers (generate, copy, {lookups} lookups)")
        out["sizes"].append(run_size(work, users, lookups, seed_calls))
    return out
