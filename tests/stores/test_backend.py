"""The storage backends: one interface (``stores.db``), SQLite files or PostgreSQL.

Tests that take ``backend_url`` run on both (``tests/pg.py``): the backend entry point, the
dialects' statements, feature lookups and seeding (leases and rate limits: ``test_leases``).
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from stores.backend import Backend, open_backend, reset_backends
from stores.cold import AnalyticsTable, materialise_analytics
from stores.db import open_postgres
from stores.errors import StoreNotFoundError
from stores.features import FeatureStore
from stores.files import data_files
from stores.models import CustomerFeatures, UnknownUser
from stores.seed import generate
from stores.sql import BY_ENGINE, POSTGRES_ONLY, SQLITE_ONLY, own_names, sql

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_cached_backends():
    yield
    reset_backends()


# ------------------------------------------------------------------------------- statements


def test_both_dialects_define_the_same_statements() -> None:
    sqlite, postgres = own_names("sqlite"), own_names("postgres")
    assert sqlite - SQLITE_ONLY == postgres - POSTGRES_ONLY
    assert sqlite >= SQLITE_ONLY and postgres >= POSTGRES_ONLY  # the lists name real ones
    assert not (SQLITE_ONLY & postgres) and not (POSTGRES_ONLY & sqlite)
    assert len(sqlite - SQLITE_ONLY) > 40
    # the DuckDB statements are shared: both dialects find them, under one text
    assert (
        sql("cold_schema", "postgres") == sql("cold_schema") == BY_ENGINE["duckdb"]["cold_schema"]
    )
    with pytest.raises(KeyError, match="stores/sql/postgres"):
        sql("hot_pragmas", "postgres")


def test_postgres_statements_use_postgres_placeholders() -> None:
    for name in own_names("postgres"):
        text = re.sub(r"'[^']*'", "''", sql(name, "postgres"))  # string literals out
        text = re.sub(r"--[^\n]*", "", text)  # comments out
        assert "?" not in text, name
        assert not re.search(r"(?<![:\w]):[a-z_]+", text), name  # :name (not a :: cast)
        assert "%" not in re.sub(r"%(\([a-z_]+\))?s", "", text), name  # only %s / %(name)s


# ---------------------------------------------------------------------- features and seeding


@pytest.mark.postgres
def test_postgres_lookups_match_the_sqlite_files(tmp_path: Path, pg_url: str) -> None:
    report = generate(tmp_path, users=400, seed=7, database_url=pg_url)
    assert report.database_url == pg_url
    files = FeatureStore.open(*data_files(tmp_path)[:2])
    db = open_postgres(pg_url)
    pg = FeatureStore.on_database(db)
    try:
        assert pg.hot.count() == pg.cold.count() == 400
        ids = [f"user_{100 + i}" for i in range(410)] + ["", "USER_100"]
        for user_id in ids:
            assert pg.lookup(user_id) == files.lookup(user_id), user_id
        hand = pg.lookup("user_104")
        assert isinstance(hand, CustomerFeatures) and hand.cart_value == 1500.0
        assert isinstance(pg.lookup("user_510"), UnknownUser)
        pg.hot.put_session("user_hot_only", cart_value=10, margin=0.2, inventory="Low")
        partial = pg.lookup("user_hot_only")
        assert isinstance(partial, UnknownUser) and "cold" in partial.reason
        with ThreadPoolExecutor(max_workers=4) as pool:  # the pool serves threads
            assert all(isinstance(r, CustomerFeatures) for r in pool.map(pg.lookup, ids[:300]))
    finally:
        pg.close()
        db.close()
        files.close()


@pytest.mark.postgres
def test_reseeding_postgres_replaces_hot_and_analytics_only(tmp_path: Path, pg_url: str) -> None:
    generate(tmp_path, users=10, database_url=pg_url)
    backend = open_backend(pg_url, tmp_path, tmp_path / "checkpoints.sqlite")
    offer = backend.ledger.propose(
        session_id="s1",
        turn=1,
        user_id="user_100",
        discount_percent=5,
        cap_percent=20,
        cart_value=240,
        ttl_hours=1,
    )
    assert isinstance(backend.features.lookup("user_150"), UnknownUser)
    generate(tmp_path, users=60, database_url=pg_url)
    assert isinstance(backend.features.lookup("user_150"), CustomerFeatures)  # same backend
    assert backend.features.hot.count() == 60
    assert backend.ledger.get(offer.code) == offer  # seeding never touches the ledger
    # a new DuckDB file (an analytics job) is materialised into the database with COPY
    tmp = tmp_path / "new.duckdb"
    conn = duckdb.connect(str(tmp))
    conn.execute(sql("cold_schema"))
    conn.execute(sql("cold_insert_analytics"), ["user_100", 1234.5, 0.8, 30.0])
    conn.execute(sql("cold_checkpoint"))
    conn.close()
    assert materialise_analytics(backend._databases[0], tmp) == 1
    assert backend.features.cold.get_analytics("user_100").lifetime_value == 1234.5
    assert isinstance(backend.features.cold, AnalyticsTable)
    with pytest.raises(ValueError, match="Postgres"):
        materialise_analytics(open_backend(None, tmp_path, tmp_path / "c.sqlite").leases._db, tmp)


# ------------------------------------------------------------------------------ the backend


def test_open_backend_serves_every_store(tmp_path: Path, backend_url: str | None) -> None:
    data = tmp_path / "data"
    generate(data, users=10, database_url=backend_url)
    b = open_backend(backend_url, data, data / "checkpoints.sqlite")
    assert isinstance(b, Backend) and b.dialect == ("postgres" if backend_url else "sqlite")
    assert open_backend(backend_url, data, data / "checkpoints.sqlite") is b  # cached
    assert isinstance(b.features.lookup("user_104"), CustomerFeatures)
    offer = b.ledger.propose(
        session_id="s1",
        turn=1,
        user_id="user_109",
        discount_percent=15,
        cap_percent=15,
        cart_value=800,
        status="approval_pending",
        ttl_hours=1,
        churn_band="high",
        inventory="High",
        now=NOW,
    )
    assert b.ledger.pending_offers(now=NOW) == [offer]
    record = {"schema": "RouterDecision", "parsed": None, "errors": ["cut"]}
    assert b.audit.append(session_id="s1", user_id="user_109", turn=1, node="router", record=record)
    assert b.audit.session("s1") == [record]
    holder = b.leases.new_holder()
    assert b.leases.acquire("s1", holder, 30) is None and b.leases.renew("s1", holder, 30)
    assert b.rate_limits.hit("s1", 60, 1) and not b.rate_limits.hit("s1", 60, 1)
    r = b.report(now=NOW)
    assert r["approvals"]["pending"] == 1 and r["fallbacks"]["failed_calls"] == 1
    if backend_url is None:  # today's files
        files = data_files(data)
        assert b.ledger.path == files.ledger and b.audit.path == files.ledger
        assert b.leases.path is None and (data / "checkpoints.sqlite").is_file()
    reset_backends()
    assert open_backend(backend_url, data, data / "checkpoints.sqlite") is not b
    reset_backends()


def test_a_sqlite_backend_opens_before_setup_data(tmp_path: Path) -> None:
    b = open_backend(None, tmp_path / "data", tmp_path / "c.sqlite")
    try:
        assert b.ledger.list() == []
        with pytest.raises(StoreNotFoundError):
            _ = b.features
        generate(tmp_path / "data", users=3)
        assert b.features.hot.count() == 3  # found once written
    finally:
        reset_backends()
    with pytest.raises(ValueError, match="postgresql://"):
        open_backend("mysql://x", tmp_path, tmp_path / "c.sqlite")
