"""Model replicas (reliability): two fake OpenAI servers behind ``vllm-router`` (round robin),
one killed with ``kill -9`` while turns run through the router.

With the router's retries off, the calls the dead replica held (and those sent to it before
the circuit breaker opens) come back as 5xx and the negotiator's retries
(``SGR_LLM_MAX_RETRIES``) send them again, to the live replica; with them on (the router's
default) the router re-sends them itself. Either way every turn is answered, none with the
fallback reply, and no money effect happens twice. The full run is ``uv run python -m
graph.ops.bench.replicas``.
"""

from __future__ import annotations

import pytest

from graph.ops.bench.replicas import run

pytestmark = pytest.mark.reliability


@pytest.mark.parametrize("router_retries", [False, True], ids=["our-retries", "router-retries"])
def test_a_replica_killed_behind_the_router_costs_no_turn_and_no_second_code(
    router_retries: bool,
) -> None:
    f = run(quick=True, router_retries=router_retries)
    samples = f["failure_samples"]
    assert f["killed"], f  # killed mid-load
    assert f["router_failed_forwards"] >= 1, f  # the router saw it die
    if not router_retries:
        assert f["llm_retries"] >= 1, f  # passed on to us: our retries carried the calls
    assert f["answered"] == f["turns"] == 8 * 4 and f["failed"] == 0, samples
    assert f["fallback_replies"] == 0, samples  # no turn gave up on the LLM
    assert f["lost"] == 0
    assert f["answered_turn_keys"] == f["turns"]  # one answer per (session, turn)
    assert f["duplicate_codes"] == 0  # one code per (session, turn, slot), one per customer
    assert f["orphan_codes"] == 0
    assert f["ledger_violations"] == []
