"""Invariants the reliability benchmarks check after crashes and races (read-only), on either
backend: everything is read through the ledger and the session runner, never from the files.

* ``extra_redeemable``: a customer holds at most one redeemable code (``proposed`` or
  ``accepted``, not expired); each further one counts (``stacked_on_accepted``: how many
  customers hold one next to an accepted code, the ledger's defect 3 of issue 8).
* ``orphan_codes``: every redeemable code is known to a session: its ledger row names a
  session whose checkpoints reach the row's turn.
* ``duplicate_keys``: one code per (session, turn, slot), one row per code.
* ``violations``: the ledger's own invariant check (``OfferLedger.violations``).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable
from typing import Any

from graph.services import Services
from graph.session import Negotiator, open_negotiator

REDEEMABLE = ("proposed", "accepted")


def redeemable_offers(offers: Iterable[Any]) -> list[Any]:
    """The redeemable ones of ``offers`` (as the ledger lists them, expiry applied)."""
    return [o for o in offers if o.status in REDEEMABLE]


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


async def session_turns(neg: Negotiator, sessions: Iterable[str]) -> dict[str, int]:
    """The turn each session's latest checkpoint reached (the counter only grows), read
    through the runner's checkpointer: SQLite or Postgres alike."""
    return {s: int((await neg.state(s)).get("turn", 0) or 0) for s in sorted(set(sessions))}


def orphan_codes(offers: Iterable[Any], turns: dict[str, int]) -> int:
    """Redeemable codes whose session never checkpointed the turn that issued them."""
    return sum(1 for o in offers if turns.get(o.session_id, 0) < o.turn)


def duplicate_keys(offers: Iterable[Any]) -> int:
    """Rows sharing a code, plus keys (session, turn, slot) held by more than one row."""
    rows = list(offers)
    by_code = len(rows) - len({o.code for o in rows})
    keys = Counter((o.session_id, o.turn, o.slot) for o in rows)
    return by_code + sum(1 for n in keys.values() if n > 1)


async def aledger_figures(neg: Negotiator) -> dict[str, Any]:
    """``redeemable`` / ``extra_redeemable`` / ``stacked_on_accepted`` / ``orphan_codes`` /
    ``duplicate_keys`` (counts) and ``violations`` (the ledger's own check: a list) now."""
    ledger = neg.services.ledger()
    every = await asyncio.to_thread(ledger.list)
    offers = redeemable_offers(every)
    turns = await session_turns(neg, (o.session_id for o in offers))
    return {
        "redeemable": len(offers),
        "extra_redeemable": extra_redeemable(offers),
        "stacked_on_accepted": stacked_on_accepted(offers),
        "orphan_codes": orphan_codes(offers, turns),
        "duplicate_keys": duplicate_keys(every),
        "violations": await asyncio.to_thread(ledger.violations),
    }


def ledger_figures(services: Services) -> dict[str, Any]:
    """:func:`aledger_figures` from synchronous code (a runner of its own, then closed)."""

    async def figures() -> dict[str, Any]:
        async with open_negotiator(services) as neg:
            return await aledger_figures(neg)

    return asyncio.run(figures())
