"""Deterministic synthetic data for both stores (``discount-manager setup-data``).

The first ten users are hand-designed so that every policy branch occurs (defaults of
the negotiator's settings: churn_high 0.7, churn_low 0.3, ltv_bonus_threshold 2000,
max_share 0.5, Low inventory x0.5, Critical x0, low-churn ceiling 5 %, amount cap 150;
"cap" below = margin x share x inventory factor, then the ceilings):

========  =====  =======  ========  ======  =======  ==========================================
user      churn  LTV      inventory margin  cart     branch exercised (expected cap)
========  =====  =======  ========  ======  =======  ==========================================
user_100  0.85   3500.00  Normal    0.40     240.00  high churn + LTV bonus; max_share binds: 20%
user_101  0.70   1200.00  High      0.32     125.00  churn == 0.7 is mid band; High stock: 8%
user_102  0.30   2000.00  Normal    0.40     180.00  churn == 0.3 is mid; LTV == 2000 bonus: 14%
user_103  0.12    900.00  High      0.65      95.00  low churn: 6.5% -> the 5.0% ceiling binds
user_104  0.92   6400.00  Normal    0.45    1500.00  22.5% = $337.50 -> the $150 cap binds: 10%
user_105  0.55   1500.00  Low       0.40     220.00  mid churn inside the band; Low halves: 5%
user_106  0.81    700.00  Critical  0.50     310.00  Critical stock: 0% (no discount)
user_107  0.18   2600.00  Normal    0.20      70.00  low churn + bonus: 4%, ceiling not binding
user_108  0.29   1999.99  Low       0.60     160.00  just below 0.3 and 2000 (no bonus); Low: 3%
user_109  0.71   2400.00  High      0.30     800.00  just above 0.7: 15% = $120 (approval by $)
========  =====  =======  ========  ======  =======  ==========================================

Users beyond the tenth (``user_110`` ...) are random but deterministic: DuckDB SQL over
``range()`` with an integer hash of (row, salt), salts drawn from ``random.Random(seed)``.
Both files are built under temporary names, so a failure never leaves a half-written store.
The cold file is renamed into place; an existing hot file is refilled in one transaction
(see ``_install_hot``). The offer ledger has a file of its own and is never touched.

With a ``database_url`` (the Postgres backend) the same rows are also loaded into that
database, in one transaction with ``COPY`` (``_load_postgres``): ``live_sessions`` from the
same generator, ``user_analytics`` from the DuckDB file just written (which stays the source
of the analytics). Its offers, audit trail and leases are never touched either.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import random
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
from pydantic import BaseModel, ConfigDict

from stores._time import to_text
from stores.cold import analytics_csv, ensure_copy, export_csv
from stores.db.base import iter_chunks
from stores.features import reset_feature_stores
from stores.files import data_files
from stores.models import Inventory
from stores.sql import sql

log = logging.getLogger(__name__)

Progress = Callable[[str], None]

SEED_TIME = datetime(2025, 1, 1, tzinfo=UTC)  # updated_at of every seeded session
FIRST_USER = 100
BATCH = 100_000

# user_id, churn, lifetime_value, avg_days_between_orders, inventory, margin, cart_value
HAND_USERS: tuple[tuple[str, float, float, float, Inventory, float, float], ...] = (
    ("user_100", 0.85, 3500.00, 21.0, "Normal", 0.40, 240.00),
    ("user_101", 0.70, 1200.00, 35.0, "High", 0.32, 125.00),
    ("user_102", 0.30, 2000.00, 18.5, "Normal", 0.40, 180.00),
    ("user_103", 0.12, 900.00, 12.0, "High", 0.65, 95.00),
    ("user_104", 0.92, 6400.00, 60.0, "Normal", 0.45, 1500.00),
    ("user_105", 0.55, 1500.00, 28.0, "Low", 0.40, 220.00),
    ("user_106", 0.81, 700.00, 75.0, "Critical", 0.50, 310.00),
    ("user_107", 0.18, 2600.00, 9.5, "Normal", 0.20, 70.00),
    ("user_108", 0.29, 1999.99, 14.0, "Low", 0.60, 160.00),
    ("user_109", 0.71, 2400.00, 45.0, "High", 0.30, 800.00),
)


class SeedReport(BaseModel):
    """What ``generate`` wrote."""

    model_config = ConfigDict(frozen=True)

    data_dir: Path
    hot_db: Path
    cold_db: Path
    users: int
    seed: int
    seconds: float
    database_url: str | None = None


def generate(
    data_dir: Path,
    users: int = 10,
    seed: int = 42,
    progress: Progress | None = None,
    database_url: str | None = None,
) -> SeedReport:
    """Recreate both stores with ``users`` customers ``user_100`` ... (same seed, same rows).

    ``database_url``: a Postgres database to load the hot sessions and the analytics into as
    well (the DuckDB file is still written to ``data_dir``: it is the analytics' source).
    """
    if users < 1:
        raise ValueError("users must be at least 1")
    started = time.perf_counter()
    say = _reporter(progress)
    data_dir = Path(data_dir)
    files = data_files(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    tag = f"{os.getpid()}.tmp"
    tmp_hot = data_dir / f".{files.hot.name}.{tag}"
    tmp_cold = data_dir / f".{files.cold.name}.{tag}"
    salts = _salts(seed)
    try:
        _remove(tmp_hot, tmp_cold, *_sidecars(tmp_hot, tmp_cold))
        _build_cold(tmp_cold, users, salts)
        say(f"cold store: {users:,} users")
        _build_hot(tmp_hot, users, salts, say)
        _install_hot(tmp_hot, files.hot)
        reset_feature_stores(data_dir)
        _remove(files.cold.with_name(files.cold.name + ".wal"))
        os.replace(tmp_cold, files.cold)
        ensure_copy(files.cold)  # the SQLite copy lookups read (stores/cold.py)
    finally:
        _remove(tmp_hot, tmp_cold, *_sidecars(tmp_hot, tmp_cold))
    if database_url is not None:
        _load_postgres(database_url, files.cold, users, salts, say)
    seconds = time.perf_counter() - started
    say(f"wrote {users:,} users to {data_dir} in {seconds:.2f}s")
    return SeedReport(
        data_dir=data_dir,
        hot_db=files.hot,
        cold_db=files.cold,
        users=users,
        seed=seed,
        seconds=seconds,
        database_url=database_url,
    )


def _build_cold(path: Path, users: int, salts: dict[str, int]) -> None:
    """``user_analytics`` in a new DuckDB file."""
    conn = duckdb.connect(str(path))
    try:
        conn.execute(sql("seed_settings"))
        conn.execute(sql("cold_schema"))
        conn.executemany(
            sql("cold_insert_analytics"),
            [[u[0], u[2], u[1], u[3]] for u in HAND_USERS[:users]],
        )
        if users > len(HAND_USERS):
            _macros(conn)
            conn.execute(
                sql("seed_cold_random"),
                {
                    "start": len(HAND_USERS),
                    "stop": users,
                    "salt_ltv": salts["ltv"],
                    "salt_churn": salts["churn"],
                    "salt_days": salts["days"],
                },
            )
        conn.execute(sql("cold_checkpoint"))
    finally:
        conn.close()


def _build_hot(path: Path, users: int, salts: dict[str, int], say: Progress) -> None:
    """``live_sessions`` in a new SQLite file."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.executescript(sql("hot_bulk_pragmas"))
        conn.executescript(sql("hot_schema"))
        conn.execute(sql("sqlite_begin"))
        updated_at = to_text(SEED_TIME)
        conn.executemany(
            sql("hot_insert_session"),
            [(u[0], u[6], u[5], u[4], updated_at) for u in HAND_USERS[:users]],
        )
        if users > len(HAND_USERS):
            _copy_random_sessions(conn, users, salts, updated_at, say)
        conn.execute(sql("sqlite_commit"))
    finally:
        conn.close()
    say(f"hot store: {users:,} sessions")


def _copy_random_sessions(
    conn: sqlite3.Connection, users: int, salts: dict[str, int], updated_at: str, say: Progress
) -> None:
    """Stream DuckDB-generated sessions into SQLite in batches."""
    gen = duckdb.connect()
    try:
        _macros(gen)
        result = gen.execute(sql("seed_hot_random"), _hot_params(users, salts, updated_at))
        done = len(HAND_USERS)
        while batch := result.fetchmany(BATCH):
            conn.executemany(sql("hot_insert_session"), batch)
            done += len(batch)
            say(f"hot store: {done:,}/{users:,} sessions")
    finally:
        gen.close()


def _hot_params(users: int, salts: dict[str, int], updated_at: str) -> dict[str, object]:
    return {
        "start": len(HAND_USERS),
        "stop": users,
        "salt_cart": salts["cart"],
        "salt_margin": salts["margin"],
        "salt_inventory": salts["inventory"],
        "updated_at": updated_at,
    }


def _load_postgres(
    database_url: str, cold: Path, users: int, salts: dict[str, int], say: Progress
) -> None:
    """Replace ``live_sessions`` and ``user_analytics`` of the database in one transaction.

    The rows go through headerless CSV files written by DuckDB and streamed into ``COPY``
    (1M users: a few seconds). Readers of those tables wait for the commit, then see the new
    rows; the ledger, audit and lease tables are not touched.
    """
    from stores.db import open_postgres  # psycopg only when a database is used

    updated_at = to_text(SEED_TIME)
    hand = io.StringIO()
    csv.writer(hand, lineterminator="\n").writerows(
        (u[0], repr(u[6]), repr(u[5]), u[4], updated_at) for u in HAND_USERS[:users]
    )
    db = open_postgres(database_url, schema=("hot_schema", "analytics_schema"))
    try:
        with tempfile.TemporaryDirectory(prefix="sgr-seed-") as tmp:
            sessions, analytics = Path(tmp) / "live_sessions.csv", Path(tmp) / "analytics.csv"
            if users > len(HAND_USERS):
                gen = duckdb.connect()
                try:
                    _macros(gen)
                    export_csv(
                        gen, sql("seed_hot_random"), sessions, _hot_params(users, salts, updated_at)
                    )
                finally:
                    gen.close()
            analytics_csv(cold, analytics)

            def hot_chunks() -> Iterator[bytes]:
                yield hand.getvalue().encode()
                if sessions.exists():
                    with sessions.open("rb") as fh:
                        yield from iter_chunks(fh)

            with db.transaction() as session, analytics.open("rb") as fh:
                session.run("hot_truncate")
                session.copy_in("hot_copy", hot_chunks())
                session.run("analytics_truncate")
                session.copy_in("analytics_copy", iter_chunks(fh))
    finally:
        db.close()
    say(f"postgres: {users:,} sessions and analytics loaded")


def _macros(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(sql("seed_settings"))
    conn.execute(sql("seed_macro_mix"))
    conn.execute(sql("seed_macro_unit"))


def _salts(seed: int) -> dict[str, int]:
    """One 32-bit salt per random column, from the seed."""
    rng = random.Random(seed)
    names = ("ltv", "churn", "days", "cart", "margin", "inventory")
    return {name: rng.getrandbits(32) for name in names}


def _install_hot(built: Path, live: Path) -> None:
    """Make ``live`` hold the sessions of ``built``.

    A new file is renamed into place. An existing one is refilled in one transaction on its
    own connection instead: processes that have it open keep a consistent database and its
    ``-wal``/``-shm`` are never deleted under them.
    """
    if not live.exists():
        os.replace(built, live)
        return
    conn = sqlite3.connect(live, isolation_level=None, timeout=30.0)
    try:
        conn.executescript(sql("hot_pragmas"))
        conn.executescript(sql("hot_schema"))
        conn.execute("ATTACH DATABASE ? AS built", (str(built),))
        conn.execute(sql("sqlite_begin"))
        try:
            conn.execute(sql("hot_refill_clear"))
            conn.execute(sql("hot_refill_copy"))
        except BaseException:
            conn.execute(sql("sqlite_rollback"))
            raise
        conn.execute(sql("sqlite_commit"))
        conn.execute("DETACH DATABASE built")
    finally:
        conn.close()


def _sidecars(hot: Path, cold: Path) -> tuple[Path, ...]:
    """Journal files that must not outlive (or survive the replacement of) their database."""
    return (
        hot.with_name(hot.name + "-wal"),
        hot.with_name(hot.name + "-shm"),
        hot.with_name(hot.name + "-journal"),
        cold.with_name(cold.name + ".wal"),
    )


def _remove(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def _reporter(progress: Progress | None) -> Progress:
    def say(message: str) -> None:
        log.info("%s", message)
        if progress is not None:
            progress(message)

    return say
