"""Concurrency trial (reliability): 4 processes racing on the same files, or on the same
Postgres database, small size.

The full run (4 x 25 sessions x 5 turns) is ``uv run python -m
graph.ops.bench.reliability_concurrency [--database-url URL]``; this asserts the same
invariants on 4 x 4 x 3, on each backend.
"""

from __future__ import annotations

import pytest

from graph.ops.bench.reliability_concurrency import run

pytestmark = pytest.mark.reliability


def test_racing_processes_lose_no_turn_and_keep_the_ledger_sound(backend_url) -> None:
    f = run(quick=True, database_url=backend_url)
    assert f["backend"] == ("postgres" if backend_url else "sqlite")
    assert f["turns"] == 4 * 4 * (3 + 1)  # every session gets one double submit
    assert f["acknowledged"] == f["turns"], f["error_samples"]
    assert f["lost"] == 0
    assert f["lock_errors"] == 0 and f["other_errors"] == 0, f["error_samples"]
    ledger = f["ledger"]
    assert ledger["misnumbered_sessions"] == 0  # never two turns numbered N+1
    assert ledger["orphan_codes"] == 0
    assert ledger["duplicate_keys"] == 0
    # at most one redeemable code per customer (no code stacked on an accepted one), and every
    # rule of the ledger's own invariant check
    assert ledger["extra_redeemable"] == 0
    assert ledger["stacked_on_accepted"] == 0
    assert f["ledger_invariant_check"] == []
    assert f["invariant_violations"] == 0
