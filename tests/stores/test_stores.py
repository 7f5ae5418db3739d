"""Hot/cold stores, feature lookups and the synthetic data generator."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import pytest
from pydantic import ValidationError

import stores.seed as seed_module
from graph.settings import Settings
from stores.cold import ColdStore
from stores.cold import copy_path as cold_copy_path
from stores.errors import StoreNotFoundError
from stores.features import FeatureStore, get_feature_store, reset_feature_stores
from stores.files import data_files
from stores.hot import HotStore
from stores.models import CustomerFeatures, UnknownUser
from stores.seed import HAND_USERS, generate
from stores.sql import _parse, sql

HAND_IDS = [f"user_{n}" for n in range(100, 110)]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    generate(tmp_path, users=10)
    return Settings(data_dir=tmp_path)


@pytest.fixture
def store(settings: Settings):
    fs = FeatureStore.open(settings.hot_db, settings.cold_db)
    yield fs
    fs.close()


@pytest.fixture(autouse=True)
def _no_cached_stores():
    yield
    reset_feature_stores()


def _features(fs: FeatureStore, ids: list[str]) -> dict[str, CustomerFeatures]:
    out = {}
    for user_id in ids:
        result = fs.lookup(user_id)
        assert isinstance(result, CustomerFeatures), result
        out[user_id] = result
    return out


def _reference_cap(f: CustomerFeatures, s: Settings) -> tuple[float, float]:
    """The documented policy: (percent before the ceilings, percent after them)."""
    if f.churn_probability > s.churn_high:
        share = s.share_high_churn
    elif f.churn_probability >= s.churn_low:
        share = s.share_mid_churn
    else:
        share = s.share_low_churn
    if f.lifetime_value >= s.ltv_bonus_threshold:
        share += s.ltv_bonus_share
    share = min(share, s.max_share)
    factor = {"Low": s.low_inventory_factor, "Critical": s.critical_inventory_factor}
    raw = f.margin * 100 * share * factor.get(f.inventory, 1.0)
    capped = raw
    if f.churn_probability < s.churn_low:
        capped = min(capped, s.low_churn_max_percent)
    capped = min(capped, s.max_discount_amount / f.cart_value * 100)
    return raw, capped


def test_hand_users_cover_every_branch(store: FeatureStore, settings: Settings) -> None:
    s = settings
    users = _features(store, HAND_IDS)
    churn = {u: f.churn_probability for u, f in users.items()}
    ltv = {u: f.lifetime_value for u, f in users.items()}

    assert any(c > s.churn_high for c in churn.values())
    assert churn["user_101"] == s.churn_high  # boundary: mid band
    assert churn["user_102"] == s.churn_low  # boundary: mid band
    assert any(s.churn_low < c < s.churn_high for c in churn.values())
    assert any(c < s.churn_low for c in churn.values())
    assert ltv["user_102"] == s.ltv_bonus_threshold
    assert any(v > s.ltv_bonus_threshold for v in ltv.values())
    assert any(v < s.ltv_bonus_threshold for v in ltv.values())
    assert {f.inventory for f in users.values()} == {"High", "Normal", "Low", "Critical"}

    caps = {u: _reference_cap(f, s) for u, f in users.items()}
    # user_104: a large cart where the absolute amount cap binds
    raw_104, cap_104 = caps["user_104"]
    assert users["user_104"].cart_value * raw_104 / 100 > s.max_discount_amount
    assert cap_104 == pytest.approx(10.0)
    # user_103: low churn where the 5 % ceiling binds
    raw_103, cap_103 = caps["user_103"]
    assert churn["user_103"] < s.churn_low and raw_103 > s.low_churn_max_percent
    assert cap_103 == s.low_churn_max_percent
    # user_106: Critical inventory gives nothing although churn is high
    assert churn["user_106"] > s.churn_high and caps["user_106"][1] == 0
    # user_100: the share would exceed max_share without the clamp
    assert caps["user_100"][1] == pytest.approx(20.0)
    # the documented table matches the data
    expected = {
        "user_101": 8.0,
        "user_102": 14.0,
        "user_105": 5.0,
        "user_107": 4.0,
        "user_108": 3.0,
        "user_109": 15.0,
    }
    for user_id, percent in expected.items():
        assert caps[user_id][1] == pytest.approx(percent), user_id


def test_lookup_known_user(store: FeatureStore) -> None:
    f = store.lookup("user_104")
    assert isinstance(f, CustomerFeatures)
    assert (f.cart_value, f.margin, f.inventory) == (1500.0, 0.45, "Normal")
    assert (f.lifetime_value, f.churn_probability) == (6400.0, 0.92)
    assert f.updated_at.utcoffset() is not None
    with pytest.raises(ValidationError):
        f.margin = 0.1  # frozen


def test_unknown_users(store: FeatureStore) -> None:
    for user_id in ("user_999", "", "   ", "USER_100"):
        result = store.lookup(user_id)
        assert isinstance(result, UnknownUser), user_id
        assert result.user_id == user_id and result.reason

    store.hot.put_session("user_hot_only", cart_value=10, margin=0.2, inventory="Low")
    partial = store.lookup("user_hot_only")
    assert isinstance(partial, UnknownUser)
    assert "cold" in partial.reason


def test_hot_store_validates_rows(store: FeatureStore) -> None:
    with pytest.raises(ValidationError):
        store.hot.put_session("user_x", cart_value=10, margin=1.5, inventory="Normal")
    with pytest.raises(ValidationError):
        store.hot.put_session("user_x", cart_value=10, margin=0.5, inventory="Plenty")  # type: ignore[arg-type]
    assert store.hot.get_session("user_x") is None


def test_missing_files_give_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreNotFoundError, match="discount-manager setup-data"):
        ColdStore(tmp_path / "cold.duckdb")
    with pytest.raises(StoreNotFoundError, match="setup-data"):
        HotStore(tmp_path / "hot.sqlite")
    with pytest.raises(FileNotFoundError):
        FeatureStore.open(*data_files(tmp_path)[:2])
    assert not (tmp_path / "cold.duckdb").exists()


def test_seed_is_deterministic(tmp_path: Path) -> None:
    ids = [f"user_{100 + i}" for i in range(300)]
    runs = {}
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        generate(tmp_path / name, users=300, seed=seed)
        fs = FeatureStore.open(*data_files(tmp_path / name)[:2])
        try:
            runs[name] = _features(fs, ids)
        finally:
            fs.close()
    assert runs["a"] == runs["b"]
    assert runs["a"] != runs["c"]
    hand = HAND_IDS
    assert [runs["a"][u] for u in hand] == [runs["c"][u] for u in hand]  # not random
    random_rows = [runs["a"][u] for u in ids[10:]]
    assert len({f.churn_probability for f in random_rows}) > 100  # actually varied
    assert {f.inventory for f in random_rows} == {"High", "Normal", "Low", "Critical"}


def test_fewer_than_ten_users(tmp_path: Path) -> None:
    generate(tmp_path, users=3)
    fs = FeatureStore.open(*data_files(tmp_path)[:2])
    try:
        assert fs.hot.count() == fs.cold.count() == 3
        assert isinstance(fs.lookup("user_103"), UnknownUser)
    finally:
        fs.close()
    with pytest.raises(ValueError):
        generate(tmp_path, users=0)


def test_concurrent_lookups(store: FeatureStore) -> None:
    ids = [f"user_{100 + i % 14}" for i in range(3000)]  # 104 of them unknown
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(store.lookup, ids))
    for user_id, result in zip(ids, results, strict=True):
        assert result.user_id == user_id
        assert isinstance(result, CustomerFeatures) == (user_id in HAND_IDS)
    assert results[4] == results[18]


def test_cached_store_reopens_after_reseed(settings: Settings) -> None:
    first = get_feature_store(settings.hot_db, settings.cold_db)
    assert get_feature_store(settings.hot_db, settings.cold_db) is first
    assert isinstance(first.lookup("user_150"), UnknownUser)
    generate(settings.data_dir, users=60)
    second = get_feature_store(settings.hot_db, settings.cold_db)
    assert second is not first
    assert isinstance(second.lookup("user_150"), CustomerFeatures)


def test_failed_seed_leaves_stores_intact(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = {p.name: os.stat(p).st_ino for p in (settings.hot_db, settings.cold_db)}

    def boom(*args: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(seed_module, "_build_hot", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        generate(settings.data_dir, users=50)
    after = {p.name: os.stat(p).st_ino for p in (settings.hot_db, settings.cold_db)}
    assert before == after
    stores = sorted(p.name for p in settings.data_dir.iterdir() if ".lookup.sqlite" not in p.name)
    assert stores == ["cold.duckdb", "hot.sqlite"]  # (+ the cold store's lookup copy)
    fs = FeatureStore.open(settings.hot_db, settings.cold_db)
    try:
        assert fs.cold.count() == 10
    finally:
        fs.close()


def test_large_generation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    messages: list[str] = []
    report = generate(tmp_path, users=200_000, seed=3, progress=messages.append)
    assert report.users == 200_000
    assert len(messages) >= 3 and "200,000" in messages[-1]
    fs = FeatureStore.open(*data_files(tmp_path)[:2])
    try:
        assert fs.hot.count() == fs.cold.count() == 200_000
        assert isinstance(fs.lookup("user_200099"), CustomerFeatures)
        assert isinstance(fs.lookup("user_200100"), UnknownUser)
        hand = fs.lookup("user_104")
        assert isinstance(hand, CustomerFeatures) and hand.cart_value == 1500.0
    finally:
        fs.close()
    assert capsys.readouterr() == ("", "")


def test_hand_users_table_is_ten_unique_ids() -> None:
    assert [u[0] for u in HAND_USERS] == HAND_IDS


def test_sql_loader_rejects_duplicates_and_stray_sql() -> None:
    assert _parse("-- name: a\nSELECT 1;\n-- name: b\nSELECT 2;", "x") == {
        "a": "SELECT 1;",
        "b": "SELECT 2;",
    }
    with pytest.raises(ValueError, match="duplicate"):
        _parse("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;", "x")
    with pytest.raises(ValueError, match="before the first"):
        _parse("SELECT 0;\n-- name: a\nSELECT 1;", "x")


def test_reseed_keeps_the_ledger_and_open_hot_connections(settings: Settings) -> None:
    """Regression: setup-data replaced hot.sqlite (ledger inside) and deleted its -wal/-shm
    under processes that had it open."""
    from stores.ledger import OfferLedger

    ledger = OfferLedger(settings.ledger_db)
    offer = ledger.propose(
        session_id="s1",
        turn=1,
        user_id="user_100",
        discount_percent=5,
        cap_percent=20,
        cart_value=240,
        ttl_hours=1,
    )
    fs = FeatureStore.open(settings.hot_db, settings.cold_db)
    try:
        assert isinstance(fs.lookup("user_150"), UnknownUser)
        wal = settings.hot_db.with_name("hot.sqlite-wal")
        hot_inode = os.stat(settings.hot_db).st_ino
        generate(settings.data_dir, users=60)
        assert os.stat(settings.hot_db).st_ino == hot_inode
        assert wal.exists()
        # the open hot connection sees the new rows, consistently
        assert fs.hot.count() == 60
        assert fs.hot.get_session("user_150") is not None
    finally:
        fs.close()
    assert ledger.get(offer.code) == offer
    ledger.close()


# --------------------------------------------------------------------------- cold store copy


def _rewrite_cold(path: Path, ltv: float) -> None:
    """Swap in a new DuckDB file whose user_100 has lifetime value ``ltv``."""
    tmp = path.with_name("new.duckdb")
    conn = duckdb.connect(str(tmp))
    try:
        conn.execute(sql("cold_schema"))
        conn.execute(sql("cold_insert_analytics"), ["user_100", ltv, 0.8, 30.0])
        conn.execute(sql("cold_checkpoint"))
    finally:
        conn.close()
    os.replace(tmp, path)


def test_cold_lookups_follow_a_swapped_duckdb_file(settings: Settings) -> None:
    cold = ColdStore(settings.cold_db, recheck_s=0.0)
    try:
        first = cold.get_analytics("user_100")
        assert first is not None and first.lifetime_value != 1234.5
        _rewrite_cold(settings.cold_db, 1234.5)
        again = cold.get_analytics("user_100")
        assert again is not None and again.lifetime_value == 1234.5
        assert cold.get_analytics("user_101") is None  # the new version has one customer
        assert cold.count() == 1
    finally:
        cold.close()


def test_cold_copy_is_built_once_per_version(settings: Settings) -> None:
    copy = cold_copy_path(settings.cold_db)
    assert copy.is_file()  # setup-data builds it
    stamp = os.stat(copy).st_mtime_ns
    ColdStore(settings.cold_db).close()
    assert os.stat(copy).st_mtime_ns == stamp  # same version: reused, not rebuilt
    _rewrite_cold(settings.cold_db, 99.0)
    cold = ColdStore(settings.cold_db)
    try:
        found = cold.get_analytics("user_100")
        assert found is not None and found.lifetime_value == 99.0
    finally:
        cold.close()
