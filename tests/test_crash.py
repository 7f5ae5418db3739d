"""Crash trials (reliability): kill -9 mid-turn and os._exit after a ledger write, then check.

The full run (24 trials) is ``uv run python -m graph.bench.reliability_crash``; this runs a
few so CI stays quick, and asserts the same invariants.
"""

from __future__ import annotations

import pytest

from graph.bench.reliability_crash import run

pytestmark = pytest.mark.reliability


def test_crashed_turns_lose_nothing_and_leave_no_stray_code() -> None:
    figures = run(trials=4, latency_s=0.3)
    assert figures["trials"] == 4
    assert figures["exit_after_ledger_write"] + figures["killed_mid_turn"] >= 2, figures
    assert figures["history_failures"] == 0
    assert figures["next_turn_failures"] == 0
    assert figures["turns_lost"] == 0
    assert figures["duplicate_codes"] == 0
    assert figures["orphan_codes"] == 0
