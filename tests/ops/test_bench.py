"""``discount-manager bench`` in a tiny mode: the JSON has every figure, and figures are sane.

No timing assertions: speed goals live in the benchmark's output, not in tests.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from graph.ops.bench.perf.fake_llm import reply_for
from graph.ops.bench.perf.lookup import seed_pattern_lookup
from graph.ops.bench.perf.run import rows
from graph.ops.cli import main
from stores.seed import generate


def _positive_ms(summary: dict[str, Any]) -> None:
    assert summary["n"] > 0
    assert 0 < summary["p50_ms"] <= summary["p99_ms"]


def _check_levels(levels: list[dict[str, Any]], latency: float) -> None:
    assert levels
    for lv in levels:
        assert lv["errors"] == 0
        assert lv["turns"] >= lv["sessions"] > 0
        assert lv["turns_per_s"] > 0 and lv["ideal_turns_per_s"] == lv["sessions"] / (2 * latency)
        # a turn makes two LLM calls of `latency` each: it cannot be faster than that
        assert lv["turn_p99_s"] >= lv["turn_p50_s"] >= 2 * latency


def _bench(tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, Any]:
    out = tmp_path / "bench.json"
    code = main(
        ["bench", "--tiny", "--json", "--out", str(out), "--work-dir", str(tmp_path / "w"), *extra]
    )
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text())
    return printed


def test_bench_tiny_json_shape_and_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    r = _bench(tmp_path, capsys)
    assert r["quick"] is True and r["machine"]["cpus"] >= 1

    modes = r["overhead"]["modes"]
    assert set(modes) == {"exit", "async", "sync"}
    for entry in modes.values():
        for key in ("runner", "graph", "baseline_bare_3_nodes"):
            _positive_ms(entry[key])
        assert entry["runner_offers"] > 0  # the measured turns really issued offers
        assert entry["runner_to_bare_p50"] > 0

    (size,) = r["lookup"]["sizes"]
    assert size["users"] == 10
    for key in ("store", "baseline_seed_pattern", "reference_duckdb_point_query"):
        _positive_ms(size[key])

    conc = r["concurrency"]
    _check_levels(conc["in_process"], conc["latency_s"])
    assert [lv["sessions"] for lv in conc["in_process"]] == [1, 3]
    # the baseline: a bare graph of the runner's shape, same sessions, turns and durability
    _check_levels([conc["bare_graph"]], conc["latency_s"])
    assert conc["bare_graph"]["sessions"] == 3 and conc["bare_graph"]["durability"] == "sync"
    assert conc["bare_graph"]["shape"] == ["router", "retrieval", "pricing", "offer"]
    # the HTTP service: rows named as the issue asks
    (row,) = conc["http"]
    assert {"sessions", "workers", "backend", "turns_per_s", "turn_p50_s", "turn_p99_s",
            "errors"} <= set(row)  # fmt: skip
    assert (row["sessions"], row["workers"], row["backend"]) == (3, 1, "sqlite")
    _check_levels([row], conc["latency_s"])

    tok = r["tokens"]
    assert set(tok["nodes"]) == {"router", "pricing"}
    assert tok["total"] == sum(v["tokens"] for v in tok["nodes"].values()) > 0
    assert tok["seed_total"] > 0 and "estimate" in tok["tokenizer"]
    assert r["endpoint"] == {"skipped": "no --endpoint given"}

    table = rows(r)
    figures = [row[0] for row in table]
    assert any(f.startswith("lookup p50") for f in figures)
    top = next(row for row in table if row[0].startswith("in-process 3 sessions"))
    assert "bare LangGraph graph" in top[2]
    assert any(f.startswith("overhead runner, durability=sync") for f in figures)
    assert any(f.startswith("HTTP 3 sessions, 1 workers, sqlite") for f in figures)


def test_bench_without_the_http_stage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    r = _bench(tmp_path, capsys, "--no-http", "--stages", "concurrency,http")
    assert r["concurrency"]["http"] == {"skipped": "stage off"}
    assert "overhead" not in r and "lookup" not in r


def test_bare_baseline_over_processes(tmp_path: Path) -> None:
    """The ceiling beside the 2-process level: sessions sharded over spawned processes."""
    from graph.ops.bench.perf.concurrency import run_bare

    r = run_bare(tmp_path, 4, 2, 0.02, "sync", procs=2)
    assert r["processes"] == 2 and r["sessions"] == 4
    _check_levels([r], 0.02)
    assert r["turns"] == 8  # every session of every shard ran all its turns
    assert sorted(p.name.rsplit("-", 1)[1] for p in tmp_path.glob("bare-*.sqlite")) == [
        "0.sqlite",
        "1.sqlite",
    ]  # one checkpoint file per process


def test_seed_pattern_lookup_reads_both_stores(tmp_path: Path) -> None:
    generate(tmp_path, users=10)
    session, analytics = seed_pattern_lookup(
        tmp_path / "hot.sqlite", tmp_path / "cold.duckdb", "user_100"
    )
    assert session[0] == analytics[0] == "user_100"
    assert seed_pattern_lookup(tmp_path / "hot.sqlite", tmp_path / "cold.duckdb", "nobody") == (
        None,
        None,
    )


def test_fake_llm_prices_within_the_cap() -> None:
    from nodes.schemas import bounded_pricing_model, grid_pricing_model

    for cap in (0.0, 0.5, 1.0, 7.5, 20.0):
        model = bounded_pricing_model(cap)
        reply = model.model_validate(reply_for(model.model_json_schema()))
        assert 0 <= reply.discount_percent <= min(cap, 5.0)
        grid = grid_pricing_model(0.0, cap)  # the schedule's enum (a const for one value)
        assert grid.model_validate(reply_for(grid.model_json_schema())).discount_percent >= 0
