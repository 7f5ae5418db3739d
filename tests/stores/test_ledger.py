"""Offer ledger: codes, idempotent proposals, supersession, expiry, approvals.

Tests that take ``ledger`` or ``target`` run on both backends (SQLite file, Postgres).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stores.codes import ALPHABET, CODE_RE, new_code, normalize_code
from stores.errors import OfferError, OfferRefusedError
from stores.ledger import OfferLedger

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def target(tmp_path: Path, backend_url: str | None) -> Path | str:
    """Where a ledger lives: a SQLite file, or a fresh Postgres database."""
    return backend_url or tmp_path / "hot.sqlite"


@pytest.fixture
def ledger(target: Path | str) -> Iterator[OfferLedger]:
    led = OfferLedger(target)
    yield led
    led.close()


def _propose(
    led: OfferLedger, session: str = "s1", turn: int = 1, user: str = "user_100", **kw: object
):
    args: dict = {
        "discount_percent": 10.0,
        "cap_percent": 20.0,
        "cart_value": 240.0,
        "ttl_hours": 48.0,
        "now": NOW,
    }
    args.update(kw)
    return led.propose(session_id=session, turn=turn, user_id=user, **args)


def test_code_format_and_entropy() -> None:
    assert set(ALPHABET).isdisjoint("ILOU") and len(set(ALPHABET)) == 32
    assert 10 * math.log2(len(ALPHABET)) >= 40
    codes = [new_code() for _ in range(3000)]
    assert len(set(codes)) == len(codes)
    assert all(CODE_RE.fullmatch(c) for c in codes)
    bodies = [c[4:9] + c[10:] for c in codes]
    for position in (0, 9):  # every symbol is used, in every position
        assert {b[position] for b in bodies} == set(ALPHABET)


def test_normalize_code() -> None:
    code = "SGR-AB0C1-2XYZ9"
    assert normalize_code("sgr ab0c1 2xyz9") == code
    assert normalize_code("abOc1-2xyz9") == code  # O read as 0, no prefix
    assert normalize_code("SGR-ABOCI-2XYZ9") == "SGR-AB0C1-2XYZ9"
    assert normalize_code("SGR-AB0C1-2XYZ") is None
    assert normalize_code("SGR-AB0C1-2XYZU") is None


def test_propose_is_idempotent_per_session_turn(ledger: OfferLedger) -> None:
    first = _propose(ledger)
    assert first.status == "proposed" and first.amount == 24.0
    assert first.expires_at == NOW + timedelta(hours=48)
    # a re-run returns the stored row unchanged: same code, same terms, same expiry
    again = _propose(ledger, discount_percent=12.5, now=NOW + timedelta(minutes=5))
    assert again == first
    assert len(ledger.list(now=NOW)) == 1
    assert ledger.by_session_turn("s1", 1) == first
    next_turn = _propose(ledger, turn=2, discount_percent=12.0)
    assert next_turn.code != first.code
    assert ledger.get(first.code).status == "superseded"
    assert ledger.get(first.code).superseded_by == next_turn.code


def test_same_session_turn_for_another_user_is_refused(ledger: OfferLedger) -> None:
    _propose(ledger)
    with pytest.raises(OfferRefusedError) as err:
        _propose(ledger, user="user_101")
    assert err.value.reason == "session_conflict"
    assert [o.user_id for o in ledger.list(now=NOW)] == ["user_100"]


def test_one_live_offer_per_user_across_sessions(ledger: OfferLedger) -> None:
    a = _propose(ledger, session="s1")
    other_user = _propose(ledger, session="s9", user="user_101")
    b = _propose(ledger, session="s2", discount_percent=12.0, now=NOW + timedelta(hours=1))
    c = _propose(ledger, session="s3", discount_percent=14.0, now=NOW + timedelta(hours=2))
    statuses = {o.code: o.status for o in ledger.list(now=NOW + timedelta(hours=2))}
    assert statuses == {
        a.code: "superseded",
        b.code: "superseded",
        c.code: "proposed",
        other_user.code: "proposed",
    }
    assert ledger.standing_offer("user_100", now=NOW + timedelta(hours=2)) == c
    # re-running an old, superseded turn does not resurrect it
    assert _propose(ledger, session="s1").status == "superseded"
    assert ledger.violations(now=NOW + timedelta(hours=2)) == []


def test_concurrent_proposals_leave_one_live_offer(ledger: OfferLedger) -> None:
    percents = [float((i * 7) % 20) for i in range(40)]  # racing, in no particular order

    def propose(i: int):
        try:
            return _propose(ledger, session=f"s{i}", discount_percent=percents[i])
        except OfferRefusedError as e:
            assert e.reason == "offer_stands"
            assert e.standing is not None and e.standing.discount_percent >= percents[i]
            return None

    with ThreadPoolExecutor(max_workers=8) as pool:
        issued = [o for o in pool.map(propose, range(40)) if o is not None]
    assert len({o.code for o in issued}) == len(issued) >= 1
    live = [o for o in ledger.list("user_100", now=NOW) if o.is_live]
    assert len(live) == 1 and live[0].discount_percent == max(percents)
    assert ledger.violations(now=NOW) == []


def test_expiry(ledger: OfferLedger) -> None:
    offer = _propose(ledger, ttl_hours=1)
    assert ledger.standing_offer("user_100", now=NOW + timedelta(minutes=59)) == offer
    later = NOW + timedelta(hours=1)
    assert ledger.standing_offer("user_100", now=later) is None
    assert ledger.get(offer.code).status == "expired"
    check = ledger.validate(offer.code, "user_100", now=later)
    assert (check.valid, check.reason) == (False, "expired")
    with pytest.raises(OfferError) as err:
        ledger.accept(offer.code, "user_100", now=later)
    assert err.value.reason == "expired"


def test_accepted_offer_stands_until_it_expires(ledger: OfferLedger) -> None:
    offer = _propose(ledger, ttl_hours=2)
    accepted = ledger.accept(offer.code.lower(), "user_100", now=NOW)
    assert accepted.status == "accepted" and accepted.code == offer.code
    assert ledger.accept(offer.code, "user_100", now=NOW).status == "accepted"  # idempotent
    assert ledger.standing_offer("user_100", now=NOW) == accepted
    assert ledger.validate(offer.code, "user_100", now=NOW).valid
    late = NOW + timedelta(hours=3)
    assert ledger.standing_offer("user_100", now=late) is None
    assert ledger.validate(offer.code, "user_100", now=late).reason == "expired"


def test_validate_reasons(ledger: OfferLedger) -> None:
    old = _propose(ledger, session="s1")
    new = _propose(ledger, session="s2", discount_percent=12.0)
    ok = ledger.validate(new.code, "user_100", now=NOW)
    assert (ok.valid, ok.reason, ok.offer) == (True, "ok", new)
    wrong = ledger.validate(new.code, "user_101", now=NOW)
    assert (wrong.valid, wrong.reason, wrong.offer) == (False, "wrong_user", None)
    unknown = ledger.validate("SGR-00000-00000", "user_100", now=NOW)
    assert (unknown.valid, unknown.reason) == (False, "unknown_code")
    assert ledger.validate("hello", "user_100", now=NOW).reason == "unknown_code"
    stale = ledger.validate(old.code, "user_100", now=NOW)
    assert (stale.valid, stale.reason) == (False, "superseded")


def test_accept_refusals(ledger: OfferLedger) -> None:
    pending = _propose(ledger, status="approval_pending")
    cases = [
        ("SGR-00000-00000", "user_100", "unknown_code"),
        (pending.code, "user_101", "wrong_user"),
        (pending.code, "user_100", "approval_pending"),
    ]
    for code, user, reason in cases:
        with pytest.raises(OfferError) as err:
            ledger.accept(code, user, now=NOW)
        assert err.value.reason == reason
    assert ledger.get(pending.code).status == "approval_pending"


def test_decide_approve_with_lower_percent(ledger: OfferLedger) -> None:
    pending = _propose(ledger, discount_percent=20.0, status="approval_pending")
    assert pending.amount == 48.0
    assert ledger.pending_offer("s1", now=NOW) == pending
    assert ledger.standing_offer("user_100", now=NOW) is None
    with pytest.raises(ValueError):
        ledger.decide(pending.code, approved=True, decided_by="mgr", discount_percent=25.0, now=NOW)
    approved = ledger.decide(
        pending.code, approved=True, decided_by="mgr", discount_percent=12.5, now=NOW
    )
    assert (approved.status, approved.discount_percent, approved.amount) == ("proposed", 12.5, 30.0)
    assert approved.decided_by == "mgr" and approved.code == pending.code
    assert ledger.pending_offer("s1", now=NOW) is None
    assert ledger.standing_offer("user_100", now=NOW) == approved
    # a rerun of the proposing turn does not undo the manager's decision
    assert _propose(ledger, discount_percent=20.0, status="approval_pending") == approved
    with pytest.raises(OfferError) as err:
        ledger.decide(pending.code, approved=False, decided_by="mgr", now=NOW)
    assert err.value.reason == "not_pending"


def test_decide_keep_percent_and_reject(ledger: OfferLedger) -> None:
    a = _propose(ledger, session="s1", discount_percent=18.0, status="approval_pending")
    kept = ledger.decide(a.code, approved=True, decided_by="mgr", now=NOW)
    assert (kept.status, kept.discount_percent, kept.amount) == ("proposed", 18.0, 43.2)
    b = _propose(ledger, session="s2", discount_percent=19.0, status="approval_pending")
    rejected = ledger.decide(b.code, approved=False, decided_by="boss", now=NOW)
    assert (rejected.status, rejected.decided_by) == ("rejected", "boss")
    assert ledger.validate(b.code, "user_100", now=NOW).reason == "rejected"
    with pytest.raises(OfferError) as err:
        ledger.decide("SGR-00000-00000", approved=True, decided_by="mgr", now=NOW)
    assert err.value.reason == "unknown_code"


def test_fallback_slot_after_rejection(ledger: OfferLedger) -> None:
    pending = _propose(ledger, discount_percent=20.0, status="approval_pending")
    ledger.decide(pending.code, approved=False, decided_by="mgr", now=NOW)
    fallback = _propose(ledger, slot="fallback", discount_percent=8.0)
    assert fallback.code != pending.code and fallback.slot == "fallback"
    assert _propose(ledger, slot="fallback", discount_percent=8.0).code == fallback.code
    assert ledger.by_session_turn("s1", 1).status == "rejected"
    assert ledger.by_session_turn("s1", 1, "fallback") == fallback
    assert ledger.standing_offer("user_100", now=NOW) == fallback


def test_decide_after_expiry(ledger: OfferLedger) -> None:
    pending = _propose(ledger, status="approval_pending", ttl_hours=1)
    with pytest.raises(OfferError) as err:
        ledger.decide(pending.code, approved=True, decided_by="mgr", now=NOW + timedelta(hours=2))
    assert err.value.reason == "expired"


def test_code_collision_is_retried(target: Path | str) -> None:
    codes = iter(["SGR-AAAAA-AAAAA", "SGR-AAAAA-AAAAA", "SGR-BBBBB-BBBBB"])
    led = OfferLedger(target, code_factory=lambda: next(codes))
    try:
        assert _propose(led, session="s1").code == "SGR-AAAAA-AAAAA"
        assert _propose(led, session="s2", user="user_101").code == "SGR-BBBBB-BBBBB"
    finally:
        led.close()
    stuck = OfferLedger(target, code_factory=lambda: "SGR-AAAAA-AAAAA")
    try:
        with pytest.raises(RuntimeError, match="unique offer code"):
            _propose(stuck, session="s3", user="user_102")
        assert stuck.by_session_turn("s3", 1) is None
    finally:
        stuck.close()


def test_bad_input_is_rejected(ledger: OfferLedger) -> None:
    with pytest.raises(ValueError, match="naive"):
        _propose(ledger, now=datetime(2025, 6, 1, 12))
    with pytest.raises(ValueError):
        _propose(ledger, status="accepted")
    with pytest.raises(ValueError):
        _propose(ledger, discount_percent=120.0)
    assert ledger.list(now=NOW) == []


def test_audit_log_is_append_only_and_idempotent(tmp_path: Path) -> None:
    import sqlite3

    from stores.audit import AuditLog

    log = AuditLog(tmp_path / "ledger.sqlite")
    rec = {"node": "router", "schema": "RouterDecision", "parsed": {"a": 1}, "errors": []}
    assert log.append(session_id="s1", user_id="u", turn=1, node="router", record=rec)
    assert not log.append(session_id="s1", user_id="u", turn=1, node="router", record=rec)
    bad = {"node": "pricing", "schema": "PricingDecision", "parsed": None, "errors": ["cut"]}
    assert log.append(session_id="s1", user_id="u", turn=1, node="pricing", record=bad)
    assert [r["node"] for r in log.session("s1")] == ["router", "pricing"]
    conn = sqlite3.connect(tmp_path / "ledger.sqlite")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE audit_log SET ok = 1")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM audit_log")
    row = conn.execute("SELECT ok, error FROM audit_log WHERE node = 'pricing'").fetchone()
    assert row == (0, "cut")
    conn.close()
    log.close()


def _old_ledger(path: Path, extra_columns: str, status: str, nulls: int) -> None:
    """An offers table as an older release wrote it, with one offer row."""
    import sqlite3

    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE offers (code TEXT PRIMARY KEY, user_id TEXT NOT NULL, session_id TEXT NOT"
        " NULL, turn INTEGER NOT NULL, slot TEXT NOT NULL DEFAULT 'main', discount_percent REAL"
        " NOT NULL, cap_percent REAL NOT NULL, cart_value REAL NOT NULL, amount REAL NOT NULL,"
        " status TEXT NOT NULL, created_at TEXT NOT NULL, expires_at TEXT NOT NULL, decided_by"
        f" TEXT NULL,{extra_columns} UNIQUE (session_id, turn, slot))"
    )
    old.execute(
        "INSERT INTO offers VALUES ('SGR-AAAAA-AAAAA', 'user_100', 's0', 1, 'main', 10, 20, 240,"
        f" 24, {status}, '2025-06-01T11:00:00.000000+00:00',"
        f" '2025-06-03T11:00:00.000000+00:00', {', '.join(['NULL'] * nulls)})"
    )
    old.commit()
    old.close()


def test_a_ledger_from_before_superseded_by_is_migrated(tmp_path: Path) -> None:

    path = tmp_path / "ledger.sqlite"
    _old_ledger(path, "", "'superseded'", 1)
    led = OfferLedger(path)
    try:
        assert led.get("SGR-AAAAA-AAAAA").superseded_by is None
        new = _propose(led, discount_percent=12.0)
        assert led.get(new.code).superseded_by is None and new.status == "proposed"
        assert led.violations(now=NOW) == []
    finally:
        led.close()


def test_decision_time_is_recorded(ledger: OfferLedger) -> None:
    pending = _propose(ledger, status="approval_pending")
    assert pending.decided_at is None
    later = NOW + timedelta(minutes=7)
    decided = ledger.decide(pending.code, approved=True, decided_by="ann", now=later)
    assert decided.decided_at == later


def test_an_offer_keeps_the_churn_band_and_stock_it_was_priced_under(ledger: OfferLedger) -> None:
    offer = _propose(ledger, churn_band="high", inventory="Low")
    assert (offer.churn_band, offer.inventory) == ("high", "Low")
    # a re-run of the same turn gets the stored row back, values included
    again = _propose(ledger, churn_band="low", inventory="Normal")
    assert again == offer
    assert (ledger.get(offer.code).churn_band, ledger.get(offer.code).inventory) == ("high", "Low")
    # an approval decision keeps them; so does acceptance
    pending = _propose(
        ledger,
        turn=2,
        discount_percent=15.0,
        status="approval_pending",
        churn_band="mid",
        inventory="Critical",
    )
    decided = ledger.decide(pending.code, approved=True, decided_by="ann", now=NOW)
    accepted = ledger.accept(decided.code, "user_100", now=NOW)
    assert (accepted.churn_band, accepted.inventory) == ("mid", "Critical")
    assert _propose(ledger, session="s2", user="user_101").churn_band is None  # optional


@pytest.mark.parametrize(
    "values", [{"churn_band": "HIGH"}, {"churn_band": "very high"}, {"inventory": "low"}]
)
def test_an_unknown_churn_band_or_stock_status_is_refused(ledger: OfferLedger, values) -> None:
    with pytest.raises(ValueError):
        _propose(ledger, **values)
    assert ledger.list() == []


def test_a_ledger_from_before_the_values_at_issue_is_migrated(tmp_path: Path) -> None:

    path = tmp_path / "ledger.sqlite"
    _old_ledger(path, " superseded_by TEXT NULL, decided_at TEXT NULL,", "'proposed'", 3)
    for _ in range(2):  # opening again finds the columns and adds nothing
        led = OfferLedger(path)
        led.close()
    led = OfferLedger(path)
    try:
        legacy = led.get("SGR-AAAAA-AAAAA")
        assert (legacy.churn_band, legacy.inventory) == (None, None)
        new = _propose(led, discount_percent=12.0, churn_band="high", inventory="Normal")
        assert (new.churn_band, new.inventory) == ("high", "Normal")
        assert led.get(legacy.code).status == "superseded"
        assert led.violations(now=NOW) == []
    finally:
        led.close()


def test_an_offer_is_stamped_when_it_holds_the_write_lock(target: Path | str, monkeypatch) -> None:
    # Seen in CI (4 processes racing): a proposer read the clock, waited for the write lock
    # while another committed a newer-stamped offer, then superseded it with its older stamp
    # ("never_lower: … closed by older …, not accepted"). The time is read inside the
    # transaction now, so stamps follow the commit order.
    import contextlib
    import threading

    import stores.ledger as ledger_module
    from stores.errors import OfferRefusedError

    real = ledger_module.utc_now
    first_read, other_done = threading.Event(), threading.Event()

    def slow_clock(now=None):
        moment = real(now)
        if threading.current_thread().name == "first" and not first_read.is_set():
            first_read.set()
            other_done.wait(timeout=1.0)  # with the fix this thread holds the lock: time out
        return moment

    monkeypatch.setattr(ledger_module, "utc_now", slow_clock)
    a, b = OfferLedger(target), OfferLedger(target)
    try:
        first = threading.Thread(
            target=lambda: _propose(a, "s1", discount_percent=7.0, now=None), name="first"
        )
        first.start()
        assert first_read.wait(timeout=5)
        with contextlib.suppress(OfferRefusedError):  # 7% committed first: 6% is refused
            _propose(b, "s2", discount_percent=6.0, now=None)
        other_done.set()
        first.join(timeout=10)
        assert a.violations() == []
    finally:
        a.close()
        b.close()


def test_pending_offers_lists_every_unexpired_request_newest_first(ledger: OfferLedger) -> None:
    old = _propose(ledger, session="s1", discount_percent=15.0, status="approval_pending")
    other = _propose(
        ledger,
        session="s2",
        user="user_101",
        discount_percent=12.0,
        status="approval_pending",
        ttl_hours=1,
        now=NOW + timedelta(minutes=1),
    )
    new = _propose(
        ledger,
        session="s3",
        user="user_102",
        discount_percent=9.0,
        status="approval_pending",
        now=NOW + timedelta(minutes=2),
    )
    _propose(ledger, session="s4", user="user_103", discount_percent=3.0)  # not pending
    assert ledger.pending_offers(now=NOW + timedelta(minutes=3)) == [new, other, old]
    ledger.decide(new.code, approved=False, decided_by="mgr", now=NOW + timedelta(minutes=3))
    later = NOW + timedelta(hours=2)  # user_101's request expired meanwhile
    assert [o.code for o in ledger.pending_offers(now=later)] == [old.code]
    assert ledger.get(other.code).status == "expired"
    assert ledger.pending_offers(now=NOW + timedelta(days=3)) == []


def test_one_session_key_racing_for_several_customers_goes_to_one(ledger: OfferLedger) -> None:
    """Postgres locks per customer: the key's unique constraint settles this race (a savepoint
    keeps the loser's transaction alive to read the winner and refuse)."""
    users = [f"user_{100 + i}" for i in range(8)]
    barrier = threading.Barrier(len(users))

    def propose(user: str):
        barrier.wait(timeout=30)
        try:
            return _propose(ledger, session="shared", user=user)
        except OfferRefusedError as e:
            assert e.reason == "session_conflict"
            return None

    with ThreadPoolExecutor(max_workers=len(users)) as pool:
        issued = [o for o in pool.map(propose, users) if o is not None]
    assert len(issued) == 1
    assert [o.code for o in ledger.list(now=NOW)] == [issued[0].code]
    assert ledger.violations(now=NOW) == []


@pytest.mark.postgres
def test_audit_log_on_postgres_is_append_only_and_idempotent(pg_url: str) -> None:
    import psycopg

    from stores.audit import AuditLog

    log = AuditLog(pg_url)
    rec = {"node": "router", "schema": "RouterDecision", "parsed": {"a": 1}, "errors": []}
    assert log.append(session_id="s1", user_id="u", turn=1, node="router", record=rec)
    assert not log.append(session_id="s1", user_id="u", turn=1, node="router", record=rec)
    bad = {"node": "pricing", "schema": "PricingDecision", "parsed": None, "errors": ["cut"]}
    assert log.append(session_id="s1", user_id="u", turn=1, node="pricing", record=bad)
    assert [r["node"] for r in log.session("s1")] == ["router", "pricing"]
    mark = log.last_id("s1")
    assert log.append(session_id="s1", user_id="u", turn=2, node="router", record=rec)
    assert [r["node"] for r in log.session("s1", after=mark)] == ["router"]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for statement in (
            "UPDATE audit_log SET ok = 1",
            "DELETE FROM audit_log",
            "TRUNCATE audit_log",
        ):
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                conn.execute(statement)
        row = conn.execute("SELECT ok, error FROM audit_log WHERE node = 'pricing'").fetchone()
        assert row == (0, "cut")
    log.close()
    AuditLog(pg_url).close()  # opening again (triggers exist) changes nothing
