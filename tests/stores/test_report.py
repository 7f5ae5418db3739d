"""Analyst report: SQL over a seeded ledger and audit trail, expectations computed by hand.

Seeded customers (stores/seed.py): user_100 churn 0.85 Normal, user_103 0.12 High,
user_104 0.92 Normal, user_105 0.55 Low, user_107 0.18 Normal, user_109 0.71 High. ``_seed``
records those values at issue, as the offer node does, except on user_101's old offer (a row
from before the ledger recorded them: grouped by user_101's current values, 0.70 and High).
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from graph.ops.cli.parser import build_parser
from graph.settings import Settings
from graph.validation import InputError, parse_since
from nodes.offer import priced_under
from stores.audit import AuditLog
from stores.db import open_postgres
from stores.hot import HotStore
from stores.ledger import OfferLedger
from stores.report import NO_DECIDED_AT, build_report
from stores.seed import generate
from tests.fakes import price, route, scripted_llm

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SINCE = datetime(2026, 11, 19, tzinfo=UTC)


AT_ISSUE = {
    "user_100": ("high", "Normal"),
    "user_103": ("low", "High"),
    "user_104": ("high", "Normal"),
    "user_105": ("mid", "Low"),
    "user_107": ("low", "Normal"),
    "user_109": ("high", "High"),
}


def _seed(s: Settings, target: Path | str | None = None) -> None:
    """The offers and audit rows below, in the ledger file (or ``target``: a Postgres URL)."""
    led = OfferLedger(target or s.ledger_db)
    t = NOW - timedelta(hours=3)

    def propose(session, turn, user, pct, cap, cart, *, at, status="proposed", slot="main"):
        band, inventory = AT_ISSUE.get(user, (None, None))
        return led.propose(
            churn_band=band,
            inventory=inventory,
            session_id=session,
            turn=turn,
            user_id=user,
            discount_percent=pct,
            cap_percent=cap,
            cart_value=cart,
            status=status,
            ttl_hours=48,
            slot=slot,
            now=at,
        )

    # before --since: expired by the later writes, counted only without --since
    propose("s0", 1, "user_101", 4, 8, 125, at=NOW - timedelta(days=5))
    # user_100: 8 % superseded by 12 %, accepted (28.80)
    propose("s1", 1, "user_100", 8, 20, 240, at=t)
    b = propose("s1", 2, "user_100", 12, 20, 240, at=t + timedelta(minutes=1))
    led.accept(b.code, "user_100", now=t + timedelta(minutes=2))
    # user_105: 5 % proposed, not accepted
    propose("s2", 1, "user_105", 5, 5, 220, at=t)
    # user_109: 15 % pending, approved at 12 % by a manager, accepted (96.00)
    p = propose("s3", 1, "user_109", 15, 15, 800, at=t, status="approval_pending")
    led.decide(
        p.code, approved=True, decided_by="boss", discount_percent=12, now=t + timedelta(minutes=10)
    )
    led.accept(p.code, "user_109", now=t + timedelta(minutes=5))
    # user_104: 10 % pending, rejected; the no-approval fallback 6.5 % proposed
    r = propose("s4", 1, "user_104", 10, 10, 1500, at=t, status="approval_pending")
    led.decide(r.code, approved=False, decided_by="boss", now=t + timedelta(minutes=30))
    propose("s4", 1, "user_104", 6.5, 10, 1500, at=t, slot="fallback")
    # still pending: 30 and 90 minutes old
    propose(
        "s5", 1, "user_103", 5, 5, 95, at=NOW - timedelta(minutes=30), status="approval_pending"
    )
    propose(
        "s6", 1, "user_107", 4, 4, 70, at=NOW - timedelta(minutes=90), status="approval_pending"
    )
    led.close()

    audit = AuditLog(target or s.ledger_db)
    ok = {"schema": "RouterDecision", "parsed": {"analysis": "x"}}
    cut = {
        "schema": "PricingDecision",
        "parsed": None,
        "errors": ["reply truncated at max_tokens (finish_reason=length)"],
    }
    long = {
        "schema": "RouterDecision",
        "parsed": None,
        "errors": ["decision.reply: String should have at most 300 characters"],
    }
    audit.append(
        session_id="s0",
        user_id="user_101",
        turn=1,
        node="pricing",
        record=cut,
        now=NOW - timedelta(days=5),
    )
    audit.append(session_id="s1", user_id="user_100", turn=1, node="router", record=ok, now=t)
    audit.append(session_id="s1", user_id="user_100", turn=2, node="router", record=ok, now=t)
    audit.append(session_id="s1", user_id="user_100", turn=2, node="pricing", record=cut, now=t)
    audit.append(session_id="s2", user_id="user_105", turn=1, node="router", record=long, now=t)
    audit.append(session_id="s5", user_id="user_103", turn=1, node="pricing", record=cut, now=t)
    audit.close()


def _report(s: Settings, since: datetime | None = SINCE) -> dict:
    return build_report(
        s.ledger_db,
        hot_db=s.hot_db,
        cold_db=s.cold_db,
        since=since,
        now=NOW,
        churn_high=s.churn_high,
        churn_low=s.churn_low,
    )


def test_totals_match_the_hand_computation(settings: Settings) -> None:
    _seed(settings)
    r = _report(settings)
    # issued: user_100 8 (superseded) and 12 (accepted), user_105 5, user_109 12 (accepted),
    # user_104 fallback 6.5; not issued: the rejected request and the two pending ones
    assert r["offers_issued"] == 5
    assert r["offers_accepted"] == 2
    assert r["acceptance_rate"] == 0.5  # 2 of the 4 offers that were not bettered
    assert r["avg_offered_percent"] == 8.7  # (8 + 12 + 5 + 12 + 6.5) / 5
    assert r["avg_discount_percent"] == 12.0
    assert r["avg_cap_percent"] == 17.5  # (20 + 15) / 2
    assert r["discount_to_cap"] == 0.7  # (12/20 + 12/15) / 2
    assert r["discount_given_total"] == 124.8  # 28.80 + 96.00
    assert r["avg_discount_amount"] == 62.4
    assert r["cap_amount_total"] == 168.0  # 48.00 + 120.00


def test_groups_by_churn_band_and_inventory(settings: Settings) -> None:
    _seed(settings)
    r = _report(settings)
    high = r["by_churn_band"]["high"]  # user_100 x2, user_109, user_104 fallback
    assert (high["offers_issued"], high["accepted"]) == (4, 2)
    assert high["acceptance_rate"] == round(2 / 3, 4)
    assert high["discount_given_total"] == 124.8
    mid = r["by_churn_band"]["mid"]  # user_105
    assert (mid["offers_issued"], mid["accepted"], mid["acceptance_rate"]) == (1, 0, 0.0)
    assert mid["avg_discount_percent"] is None and mid["discount_given_total"] == 0.0
    assert set(r["by_churn_band"]) == {"high", "mid"}
    inv = r["by_inventory"]
    assert set(inv) == {"Normal", "Low", "High"}
    assert (inv["Normal"]["offers_issued"], inv["Normal"]["accepted"]) == (3, 1)
    assert inv["Normal"]["acceptance_rate"] == 0.5
    assert inv["Normal"]["discount_given_total"] == 28.8
    assert (inv["High"]["offers_issued"], inv["High"]["discount_given_total"]) == (1, 96.0)
    assert inv["Low"]["accepted"] == 0
    assert r["grouped_by_current_values"] == 0  # every offer since SINCE has its values
    assert all(g["grouped_by_current_values"] == 0 for g in [*inv.values(), high, mid])


def test_approvals_and_median_pending_age(settings: Settings) -> None:
    _seed(settings)
    a = _report(settings)["approvals"]
    assert (a["pending"], a["approved"], a["rejected"], a["expired_pending"]) == (2, 1, 1, 0)
    assert a["median_pending_age_s"] == 3600.0  # median of 30 and 90 minutes
    assert a["median_wait_s"] == 1200.0  # median of 10 (approved) and 30 (rejected) minutes
    assert a["median_wait_source"] == "decided_at - created_at"


def test_median_wait_is_unavailable_on_a_ledger_without_decided_at(settings: Settings) -> None:
    _seed(settings)
    conn = sqlite3.connect(settings.ledger_db)
    conn.execute("ALTER TABLE offers DROP COLUMN decided_at")
    conn.commit()
    conn.close()
    a = _report(settings)["approvals"]
    assert a["median_wait_s"] is None and a["median_wait_source"] == NO_DECIDED_AT


def test_fallbacks_and_their_causes(settings: Settings) -> None:
    _seed(settings)
    f = _report(settings)["fallbacks"]
    # since SINCE: 5 calls over 4 turns (s1#1, s1#2, s2#1, s5#1); 3 failed, in 3 turns
    assert (f["calls"], f["failed_calls"], f["turns"], f["fallback_turns"]) == (5, 3, 4, 3)
    assert f["share_of_turns"] == 0.75
    assert f["causes"] == [
        {
            "node": "pricing",
            "cause": "reply truncated at max_tokens (finish_reason=length)",
            "count": 2,
        },
        {
            "node": "router",
            "cause": "decision.reply: String should have at most 300 characters",
            "count": 1,
        },
    ]


def test_since_filters_offers_and_audit_rows(settings: Settings) -> None:
    _seed(settings)
    everything = _report(settings, since=None)
    assert everything["offers_issued"] == 6  # plus user_101's old (now expired) offer
    assert everything["by_churn_band"]["mid"]["offers_issued"] == 2  # user_101: churn 0.70
    # user_101's old row has no values at issue: grouped by its current ones, and counted
    assert everything["grouped_by_current_values"] == 1
    assert everything["by_churn_band"]["mid"]["grouped_by_current_values"] == 1
    assert everything["by_inventory"]["High"]["grouped_by_current_values"] == 1
    assert everything["by_inventory"]["High"]["offers_issued"] == 2  # user_101 and user_109
    assert everything["fallbacks"]["failed_calls"] == 4
    assert everything["since"] is None


def test_no_ledger_is_an_empty_report(tmp_path: Path) -> None:
    r = build_report(tmp_path / "ledger.sqlite", now=NOW)
    assert r["offers_issued"] == 0 and r["acceptance_rate"] is None
    assert r["fallbacks"]["calls"] == 0
    assert not (tmp_path / "ledger.sqlite").exists()  # the report writes nothing


def test_report_cli_json_has_the_issue_keys(settings: Settings, capsys) -> None:
    _seed(settings)
    args = build_parser().parse_args(["report", "--json", "--since", "2026-11-19"])
    assert args.func(args, settings) == 0
    out = json.loads(capsys.readouterr().out)
    assert {
        "offers_issued",
        "acceptance_rate",
        "avg_discount_percent",
        "discount_given_total",
        "by_churn_band",
        "by_inventory",
        "approvals",
        "fallbacks",
    } <= set(out)
    assert out["since"].startswith("2026-11-19T00:00:00")
    args = build_parser().parse_args(["report"])
    assert args.func(args, settings) == 0
    text = capsys.readouterr().out
    assert "offers issued" in text and "fallbacks:" in text


def test_since_must_be_an_iso_date() -> None:
    assert parse_since("2026-11-19") == datetime(2026, 11, 19, tzinfo=UTC)
    assert parse_since("2026-11-19T10:00:00+02:00").utcoffset() == timedelta(hours=2)
    with pytest.raises(InputError, match="last week"):
        parse_since("last week")


def test_groups_come_in_business_order(settings: Settings) -> None:
    _seed(settings)
    r = _report(settings, since=None)
    assert list(r["by_churn_band"]) == ["high", "mid"]
    assert list(r["by_inventory"]) == ["Low", "Normal", "High"]


# -- grouping by the values at issue -----------------------------------------------------


def _customer_now(
    s: Settings, user: str, *, churn: float | None = None, inventory: str | None = None
) -> None:
    """Change the customer's current churn (cold store) and stock status (hot store)."""
    if inventory is not None:
        hot = HotStore(s.hot_db)
        row = hot.get_session(user)
        hot.put_session(user, cart_value=row.cart_value, margin=row.margin, inventory=inventory)
        hot.close()
    if churn is not None:
        cold = duckdb.connect(str(s.cold_db))
        cold.execute(
            "UPDATE user_analytics SET churn_probability = ? WHERE user_id = ?", [churn, user]
        )
        cold.close()


def test_an_offer_is_reported_under_the_values_it_was_priced_under(settings, make_app) -> None:
    """Regression: the report used today's churn and stock, not those the offer was made under."""
    _customer_now(settings, "user_100", inventory="Low")  # churn 0.85 (high); stock runs low
    app = make_app(scripted_llm(route("negotiate"), price(8)))
    offer = app.turn("discount?")["offers"][-1]
    assert offer["cap_percent"] == 10  # Low stock halved the 20 % cap
    assert (offer["churn_band"], offer["inventory"]) == ("high", "Low")  # the node passed them
    app.services.ledger().accept(offer["code"], "user_100")
    # since then the customer became loyal (churn 0.10: low band) and the stock recovered
    _customer_now(settings, "user_100", churn=0.10, inventory="Normal")

    r = _report(settings, since=None)
    assert list(r["by_churn_band"]) == ["high"]
    assert list(r["by_inventory"]) == ["Low"]
    assert r["by_churn_band"]["high"]["discount_given_total"] == 19.2  # 8 % of 240
    assert r["by_inventory"]["Low"]["accepted"] == 1
    assert r["grouped_by_current_values"] == 0

    # the same row without values at issue (an older ledger) falls back to today's: low / Normal
    conn = sqlite3.connect(settings.ledger_db)
    conn.execute("UPDATE offers SET churn_band = NULL, inventory = NULL")
    conn.commit()
    conn.close()
    old = _report(settings, since=None)
    assert list(old["by_churn_band"]) == ["low"] and list(old["by_inventory"]) == ["Normal"]
    assert old["grouped_by_current_values"] == 1
    assert old["by_churn_band"]["low"]["grouped_by_current_values"] == 1


@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_the_approval_path_records_the_values_at_issue(settings, make_app, decision) -> None:
    _customer_now(settings, "user_104", inventory="High")  # churn 0.92 (high); cap 10 % by $150
    app = make_app(scripted_llm(route("negotiate"), price(10)))
    out = app.turn("discount?", user="user_104")
    assert out["__interrupt__"]  # 10 % of 1500 = 150.00 needs a manager
    _customer_now(settings, "user_104", churn=0.05, inventory="Critical")  # while it waits
    out = app.resume({"decision": decision, "approver": "ann"}, user="user_104")
    rows = app.services.ledger().list("user_104")
    # approve: the approved row; reject: the rejected request and the no-approval fallback
    assert [r.slot for r in rows] == (["main"] if decision == "approve" else ["main", "fallback"])
    assert {(r.churn_band, r.inventory) for r in rows} == {("high", "High")}
    assert out["offers"][-1]["churn_band"] == "high"
    r = _report(settings, since=None)
    assert list(r["by_churn_band"]) == ["high"] and list(r["by_inventory"]) == ["High"]


OLD_OFFERS = (
    "CREATE TABLE offers (code TEXT PRIMARY KEY, user_id TEXT NOT NULL, session_id TEXT NOT"
    " NULL, turn INTEGER NOT NULL, slot TEXT NOT NULL DEFAULT 'main', discount_percent REAL"
    " NOT NULL, cap_percent REAL NOT NULL, cart_value REAL NOT NULL, amount REAL NOT NULL,"
    " status TEXT NOT NULL, created_at TEXT NOT NULL, expires_at TEXT NOT NULL, decided_by"
    " TEXT NULL, superseded_by TEXT NULL, decided_at TEXT NULL, UNIQUE (session_id, turn, slot))"
)


def _old_ledger(path: Path) -> None:
    """A ledger file written before the at-issue columns: user_105 (now mid, Low) accepted 5 %."""
    old = sqlite3.connect(path)
    old.execute(OLD_OFFERS)
    old.execute(
        "INSERT INTO offers VALUES ('SGR-AAAAA-AAAAA', 'user_105', 's0', 1, 'main', 5, 5, 220,"
        " 11, 'accepted', '2026-11-20T09:00:00.000000+00:00',"
        " '2026-11-22T09:00:00.000000+00:00', NULL, NULL, NULL)"
    )
    old.commit()
    old.close()


def test_an_old_ledger_file_is_reported_by_current_values_without_migrating_it(
    settings: Settings, capsys
) -> None:
    _old_ledger(settings.ledger_db)
    r = _report(settings, since=None)
    assert r["offers_issued"] == 1 and r["grouped_by_current_values"] == 1
    assert r["by_churn_band"]["mid"]["grouped_by_current_values"] == 1
    assert r["by_inventory"]["Low"]["discount_given_total"] == 11.0
    conn = sqlite3.connect(settings.ledger_db)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(offers)")}
    conn.close()
    assert "churn_band" not in columns  # the report only reads
    args = build_parser().parse_args(["report"])
    assert args.func(args, settings) == 0
    text = capsys.readouterr().out
    assert "1 older offer(s) without them by the customer's current values" in text
    assert "(1 by current values)" in text


def test_a_migrated_ledger_mixes_old_rows_by_current_values_and_new_ones_at_issue(
    settings: Settings,
) -> None:
    _old_ledger(settings.ledger_db)
    led = OfferLedger(settings.ledger_db)  # adds the columns; the old row keeps NULL
    led.propose(
        session_id="s1",
        turn=1,
        user_id="user_100",
        discount_percent=8,
        cap_percent=10,
        cart_value=240,
        ttl_hours=48,
        churn_band="high",
        inventory="Low",
        now=NOW,
    )
    led.close()
    _customer_now(settings, "user_100", inventory="Critical")  # today: no discount at all
    _customer_now(settings, "user_105", churn=0.95, inventory="High")
    r = _report(settings, since=None)
    assert r["offers_issued"] == 2 and r["grouped_by_current_values"] == 1
    bands, stock = r["by_churn_band"], r["by_inventory"]
    assert set(bands) == {"high"}  # user_100 at issue, user_105 by today's 0.95
    assert (bands["high"]["offers_issued"], bands["high"]["grouped_by_current_values"]) == (2, 1)
    assert set(stock) == {"Low", "High"}
    assert (stock["Low"]["offers_issued"], stock["Low"]["grouped_by_current_values"]) == (1, 0)
    assert (stock["High"]["offers_issued"], stock["High"]["grouped_by_current_values"]) == (1, 1)


def test_a_value_the_ledger_does_not_know_is_not_recorded_and_blocks_no_offer(caplog) -> None:
    state = {"cap": {"churn_band": "extreme"}, "features": {"inventory": "Low"}}
    assert priced_under(state) == {"churn_band": None, "inventory": "Low"}
    assert "not recording churn_band 'extreme'" in caplog.text
    assert priced_under({"cap": None, "features": None}) == {"churn_band": None, "inventory": None}


def test_the_report_is_the_same_on_postgres(settings: Settings, pg_url: str) -> None:
    """The same rows give the same JSON report on both backends (user_101's old row without
    values at issue included: grouped by its current values, read from the database)."""
    generate(settings.data_dir, users=10, seed=42, database_url=pg_url)
    _seed(settings)
    _seed(settings, pg_url)
    db = open_postgres(pg_url)
    try:
        for since in (SINCE, None):
            expected = _report(settings, since=since)
            got = build_report(
                db,
                since=since,
                now=NOW,
                churn_high=settings.churn_high,
                churn_low=settings.churn_low,
            )
            assert json.dumps(got) == json.dumps(expected)
        assert _report(settings, since=None)["grouped_by_current_values"] == 1
    finally:
        db.close()
