"""Invariants the reliability benchmarks check after crashes and races (read-only).

* ``extra_redeemable``: a customer holds at most one redeemable code (``proposed`` or
  ``accepted``, not expired); each further one counts (``stacked_on_accepted``: how many
  customers hold one next to an accepted code, the ledger's defect 3 of issue 8).
* ``orphan_codes``: every redeemable code is known to a session: its ledger row names a
  session whose checkpoints reach the row's turn.
* ``duplicate_keys``: one code per (session, turn, slot), one row per code.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from graph.services import Services

REDEEMABLE = ("proposed", "accepted")


def redeemable_offers(services: Services) -> list[Any]:
    """The ledger's redeemable offers now (expiry applied by the ledger)."""
    return [o for o in services.ledger().list() if o.status in REDEEMABLE]


def extra_redeemable(offers: Iterable[Any]) -> int:
    """Redeemable codes beyond one per customer."""
    per_user = Counter(o.user_id for o in offers)
    return sum(n - 1 for n in per_user.values() if n > 1)


def stacked_on_accepted(offers: Iterable[Any]) -> int:
    """Customers holding an accepted code and another redeemable one (issue 8, defect 3)."""
    offers = list(offers)
    accepted = {o.user_id for o in offers if o.status == "accepted"}
    per_user = Counter(o.user_id for o in offers)
    return sum(1 for u in accepted if per_user[u] > 1)


def session_turns(checkpoint_db: Path) -> dict[str, int]:
    """The highest turn each session's checkpoints recorded (raw SQL over the saver)."""
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    serde = JsonPlusSerializer()
    turns: dict[str, int] = {}
    conn = sqlite3.connect(checkpoint_db, timeout=30)
    try:
        rows = conn.execute("SELECT thread_id, type, checkpoint FROM checkpoints").fetchall()
    finally:
        conn.close()
    for thread, typ, blob in rows:
        values = serde.loads_typed((typ, blob)).get("channel_values") or {}
        turns[thread] = max(turns.get(thread, 0), int(values.get("turn", 0) or 0))
    return turns


def orphan_codes(offers: Iterable[Any], turns: dict[str, int]) -> int:
    """Redeemable codes whose session never checkpointed the turn that issued them."""
    return sum(1 for o in offers if turns.get(o.session_id, 0) < o.turn)


def duplicate_keys(ledger_db: Path) -> int:
    """Rows sharing a code, or codes sharing a (session, turn, slot)."""
    conn = sqlite3.connect(ledger_db, timeout=30)
    try:
        by_code = conn.execute("SELECT COUNT(*) - COUNT(DISTINCT code) FROM offers").fetchone()[0]
        by_key = conn.execute(
            "SELECT COUNT(*) FROM (SELECT session_id, turn, slot FROM offers "
            "GROUP BY session_id, turn, slot HAVING COUNT(*) > 1)"
        ).fetchone()[0]
    finally:
        conn.close()
    return int(by_code) + int(by_key)


def ledger_figures(services: Services) -> dict[str, int]:
    """``redeemable`` / ``extra_redeemable`` / ``orphan_codes`` / ``duplicate_keys`` now."""
    s = services.settings
    offers = redeemable_offers(services)
    return {
        "redeemable": len(offers),
        "extra_redeemable": extra_redeemable(offers),
        "stacked_on_accepted": stacked_on_accepted(offers),
        "orphan_codes": orphan_codes(offers, session_turns(Path(str(s.checkpoint_db)))),
        "duplicate_keys": duplicate_keys(s.ledger_db),
    }
