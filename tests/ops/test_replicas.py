"""Model replicas (reliability): two fake OpenAI servers behind ``vllm-router`` (round robin,
its own retries off), one killed with ``kill -9`` while turns run through the router.

The negotiator's retries (``SGR_LLM_MAX_RETRIES``) send the failed calls again, to the live
replica: every turn is answered, none with the fallback reply, and no money effect happens
twice. The full run is ``uv run python -m graph.ops.bench.replicas``.
"""

from __future__ import annotations

import pytest

from graph.ops.bench.replicas import run

pytestmark = pytest.mark.reliability


def test_a_replica_killed_behind_the_router_costs_no_turn_and_no_second_code() -> None:
    f = run(quick=True)
    samples = f["failure_samples"]
    assert f["killed"], f  # killed mid-load
    assert f["llm_retries"] >= 1, f  # the router passed the dead replica's failures on: ours
    assert f["answered"] == f["turns"] == 8 * 4 and f["failed"] == 0, samples
    assert f["fallback_replies"] == 0, samples  # no turn gave up on the LLM
    assert f["lost"] == 0
    assert f["answered_turn_keys"] == f["turns"]  # one answer per (session, turn)
    assert f["duplicate_codes"] == 0  # one code per (session, turn, slot), one per customer
    assert f["orphan_codes"] == 0
    assert f["ledger_violations"] == []
