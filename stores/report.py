"""Analyst report: what the agent gave away, to whom, and how often it fell back.

Read-only over the ledger file (``offers`` and ``audit_log``, see ``sql/sqlite/report.sql``)
or the Postgres backend's database (``sql/postgres/report.sql``: the same queries, the same
numbers, in one snapshot transaction that is rolled back). An
offer is grouped by the churn band and inventory status it was priced under (recorded on the
ledger row at issue). Rows from before those columns existed have none: only they are
grouped by the customer's *current* values, looked up in the hot and cold stores when the
report runs (customers missing from a store are ``unknown``), and counted in
``grouped_by_current_values`` (overall and per group).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from stores._time import to_text, utc_now
from stores.db import Database, Session
from stores.sql import Dialect, sql

log = logging.getLogger(__name__)

NO_DECIDED_AT = "unavailable: the ledger has no decided_at column"


def _connect(path: Path) -> sqlite3.Connection:
    """A connection that only reads (and fills a temp table); the file must exist."""
    conn = sqlite3.connect(path, timeout=5.0)
    conn.row_factory = sqlite3.Row
    return conn


class _Reader:
    """Named statements on the report's own SQLite connection (the ``Session`` interface)."""

    dialect: Dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def one(self, name: str, params: Any = ()) -> sqlite3.Row | None:
        return self.conn.execute(sql(name), params).fetchone()

    def all(self, name: str, params: Any = ()) -> list[sqlite3.Row]:
        return self.conn.execute(sql(name), params).fetchall()

    def run(self, name: str, params: Any = ()) -> int:
        return self.conn.execute(sql(name), params).rowcount


def _has(s: Session, name: str, params: tuple[str, ...]) -> bool:
    row = s.one(name, params)
    return bool(row is not None and row["n"])


def _round(value: Any, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)


def _rate(accepted: int, issued: int, superseded: int) -> float | None:
    """Accepted ÷ offers that were the customer's last word (superseded ones were bettered)."""
    final = issued - superseded
    return round(accepted / final, 4) if final > 0 else None


def _offers_view(conn: _Reader) -> None:
    """``temp.report_offers``: the offers with ``issued_churn_band`` / ``issued_inventory``.

    A ledger file not opened since those columns were added (the report never migrates: it
    only reads) gets ``NULL`` there, so every row falls back to current values.
    """
    columns = [_has(conn, "report_has_column", ("offers", c)) for c in ("churn_band", "inventory")]
    conn.run("report_offers_view" if all(columns) else "report_offers_view_legacy")


def _customers(conn: _Reader, hot_db: Path | None, cold_db: Path | None, since: str) -> None:
    """Fill ``temp.report_customer`` with the current churn and inventory of the customers
    whose offers lack a value at issue (nobody else's is looked up)."""
    users = [r["user_id"] for r in conn.all("report_offer_users", {"since": since})]
    inventory: dict[str, str] = {}
    churn: dict[str, float] = {}
    if users and hot_db is not None and Path(hot_db).is_file():
        hot = _connect(hot_db)
        try:
            rows = hot.execute(sql("report_hot_inventory"), (json.dumps(users),)).fetchall()
            inventory = {r[0]: r[1] for r in rows}
        finally:
            hot.close()
    if users and cold_db is not None and Path(cold_db).is_file():
        cold = duckdb.connect(str(cold_db), read_only=True)
        try:
            churn = dict(cold.execute(sql("report_cold_churn"), [users]).fetchall())
        finally:
            cold.close()
    conn.run("report_customer_table")
    conn.conn.executemany(
        sql("report_customer_insert"),
        [
            {"user_id": u, "churn_probability": churn.get(u), "inventory": inventory.get(u)}
            for u in users
        ],
    )


def _groups(conn: Session, name: str, params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for r in conn.all(name, params):
        out[r["grp"]] = {
            "offers_issued": r["offers_issued"],
            "grouped_by_current_values": r["by_current"],
            "accepted": r["accepted"],
            "acceptance_rate": _rate(r["accepted"], r["offers_issued"], r["superseded"]),
            "avg_discount_percent": _round(r["avg_discount_percent"]),
            "avg_cap_percent": _round(r["avg_cap_percent"]),
            "discount_given_total": round(float(r["discount_given_total"]), 2),
        }
    return out


def _approvals(conn: Session, params: dict[str, Any]) -> dict[str, Any]:
    r = conn.one("report_approvals", params)
    assert r is not None
    has_decided_at = _has(conn, "report_has_column", ("offers", "decided_at"))
    median = None
    if has_decided_at:
        median = _median(conn, "report_decided_median_wait", params)
    age = _median(conn, "report_pending_median_age", params)
    return {
        "pending": r["pending"],
        "approved": r["approved"],
        "rejected": r["rejected"],
        "expired_pending": r["expired_pending"],
        "median_wait_s": _round(median, 1),
        "median_wait_source": "decided_at - created_at" if has_decided_at else NO_DECIDED_AT,
        "median_pending_age_s": _round(age, 1),
    }


def _median(conn: Session, name: str, params: dict[str, Any]) -> Any:
    row = conn.one(name, params)
    return None if row is None else row["median"]


def _fallbacks(conn: Session, params: dict[str, Any]) -> dict[str, Any]:
    empty = {"calls": 0, "failed_calls": 0, "turns": 0, "fallback_turns": 0}
    if not _has(conn, "report_has_table", ("audit_log",)):
        return {**empty, "share_of_turns": None, "causes": []}
    r = conn.one("report_fallback_totals", params)
    assert r is not None
    causes = [
        {"node": c["node"], "cause": c["cause"], "count": int(c["count"])}
        for c in conn.all("report_fallback_causes", params)
    ]
    totals = {k: int(r[k] or 0) for k in empty}
    share = round(totals["fallback_turns"] / totals["turns"], 4) if totals["turns"] else None
    return {**totals, "share_of_turns": share, "causes": causes}


def build_report(
    ledger_db: Path | Database,
    *,
    hot_db: Path | None = None,
    cold_db: Path | None = None,
    since: datetime | None = None,
    churn_high: float = 0.7,
    churn_low: float = 0.3,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The report as plain data (the ``report --json`` object).

    ``ledger_db``: the ledger file (``hot_db`` / ``cold_db``: the files of the customers'
    current values), or a ``Database``: on Postgres the backend's database, which holds those
    values too (its tables are created if missing). ``since``: only offers and audit rows
    created at or after it. ``churn_high`` / ``churn_low``: the band boundaries (the policy's:
    > high, [low, high], < low).
    """
    moment = utc_now(now)
    params = {
        "since": to_text(since) if since is not None else "",
        "now": to_text(moment),
        "churn_high": churn_high,
        "churn_low": churn_low,
    }
    head = {"since": params["since"] or None, "generated_at": params["now"]}
    if not isinstance(ledger_db, Path | str):
        if ledger_db.dialect == "postgres":
            return {**head, **_postgres_report(ledger_db, params)}
        ledger_db = ledger_db.path  # type: ignore[attr-defined]  # a SqliteDatabase
    ledger_db = Path(ledger_db)
    if not ledger_db.is_file():
        log.info("no ledger at %s: empty report", ledger_db)
        return {**head, **_empty()}
    raw = _connect(ledger_db)
    conn = _Reader(raw)
    try:
        if not _has(conn, "report_has_table", ("offers",)):
            return {**head, **_empty(), "fallbacks": _fallbacks(conn, params)}
        _offers_view(conn)
        _customers(conn, hot_db, cold_db, params["since"])
        return {**head, **_body(conn, params)}
    finally:
        raw.close()


def _postgres_report(db: Database, params: dict[str, Any]) -> dict[str, Any]:
    """The report's body on the Postgres backend: one REPEATABLE READ snapshot, rolled back."""
    for name in ("ledger_schema", "audit_schema", "hot_schema", "analytics_schema"):
        db.script(name)
    with db.snapshot() as conn:  # type: ignore[attr-defined]  # a PostgresDatabase
        conn.run("report_offers_view")
        conn.run("report_customer_table")
        conn.run("report_customer_fill", params)
        return _body(conn, params)


def _body(conn: Session, params: dict[str, Any]) -> dict[str, Any]:
    """Totals, groups, approvals and fallbacks (``report_offers`` / ``report_customer`` made)."""
    t = conn.one("report_offer_totals", params)
    assert t is not None
    return {
        "offers_issued": t["offers_issued"],
        "grouped_by_current_values": t["by_current"],
        "offers_accepted": t["accepted"],
        "acceptance_rate": _rate(t["accepted"], t["offers_issued"], t["superseded"]),
        "avg_offered_percent": _round(t["avg_offered_percent"]),
        "avg_discount_percent": _round(t["avg_discount_percent"]),
        "avg_discount_amount": _round(t["avg_discount_amount"], 2),
        "avg_cap_percent": _round(t["avg_cap_percent"]),
        "discount_to_cap": _round(t["discount_to_cap"]),
        "discount_given_total": round(float(t["discount_given_total"]), 2),
        "cap_amount_total": round(float(t["cap_amount_total"]), 2),
        "by_churn_band": _groups(conn, "report_by_churn_band", params),
        "by_inventory": _groups(conn, "report_by_inventory", params),
        "approvals": _approvals(conn, params),
        "fallbacks": _fallbacks(conn, params),
    }


def _empty() -> dict[str, Any]:
    return {
        "offers_issued": 0,
        "grouped_by_current_values": 0,
        "offers_accepted": 0,
        "acceptance_rate": None,
        "avg_offered_percent": None,
        "avg_discount_percent": None,
        "avg_discount_amount": None,
        "avg_cap_percent": None,
        "discount_to_cap": None,
        "discount_given_total": 0.0,
        "cap_amount_total": 0.0,
        "by_churn_band": {},
        "by_inventory": {},
        "approvals": {
            "pending": 0,
            "approved": 0,
            "rejected": 0,
            "expired_pending": 0,
            "median_wait_s": None,
            "median_wait_source": NO_DECIDED_AT,
            "median_pending_age_s": None,
        },
        "fallbacks": {
            "calls": 0,
            "failed_calls": 0,
            "turns": 0,
            "fallback_turns": 0,
            "share_of_turns": None,
            "causes": [],
        },
    }
