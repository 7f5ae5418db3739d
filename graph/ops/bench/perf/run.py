"""``discount-manager bench``: every performance figure in one run, each beside its baseline.

Stages (a progress line each on stderr): per-turn overhead per checkpoint durability, feature
lookup per store size, concurrency in-process (beside the bare LangGraph graph of the same
shape), the HTTP service (1 and 2 workers, SQLite and Postgres), prompt tokens, and (with
``--endpoint``) a real model. Prints a table (figure, value, baseline, target) and writes
JSON (``--out PATH`` and/or ``--json`` on stdout).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graph.ops.bench.perf import concurrency, endpoint, http, lookup, overhead, tokens
from graph.ops.bench.perf.common import priceable_users, say, seeded
from graph.ops.bench.perf.options import add_arguments

HttpLevel = tuple[int, int, str]  # sessions, workers, backend


@dataclass(frozen=True)
class Plan:
    """How big each stage is (``--quick`` or full)."""

    overhead_turns: int
    lookup_sizes: tuple[int, ...]
    lookups: int
    seed_calls: int
    levels: tuple[int, ...]
    latency: float
    turns_per_session: int
    extra_procs: int  # in-process: also the top level in this many processes (0: no)
    http_levels: tuple[HttpLevel, ...]


FULL = Plan(
    200, (10, 100_000, 1_000_000), 5000, 100, (1, 50, 200), 1.0, 2, 2,
    ((200, 1, "sqlite"), (200, 2, "sqlite"), (200, 1, "postgres"), (200, 2, "postgres")),
)  # fmt: skip
QUICK = Plan(
    20, (10, 5_000), 1000, 10, (1, 10, 40), 0.2, 2, 0,
    ((40, 1, "sqlite"), (40, 2, "postgres")),
)  # fmt: skip
TINY = Plan(6, (10,), 50, 3, (1, 3), 0.05, 1, 0, ((3, 1, "sqlite"),))
STAGES = ("overhead", "lookup", "concurrency", "http", "tokens", "endpoint")


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_1m_at_start": round(load[0], 2),
    }


class Pool:
    """Priceable customers of the concurrency data dir, each used by one session only."""

    def __init__(self, work: Path, plan: Plan) -> None:
        self.data_dir = work / "concurrency"
        top = max(plan.levels)
        need = (
            sum(plan.levels)
            + top * max(1, plan.extra_procs)
            + sum(s for s, _, _ in plan.http_levels)
        )
        self.users_seeded = max(200, 2 * need)
        self.settings = seeded(self.data_dir, users=self.users_seeded)
        self._users = priceable_users(self.settings, need)

    def take(self, n: int) -> list[str]:
        batch, self._users = self._users[:n], self._users[n:]
        return batch


def _concurrency(plan: Plan, pool: Pool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "latency_s": plan.latency,
        "turns_per_session": plan.turns_per_session,
        "in_process": [],
    }
    data_dir, turns, latency = pool.data_dir, plan.turns_per_session, plan.latency
    for level in plan.levels:
        say(f"concurrency in-process: {level} sessions x {turns} turns")
        r = concurrency.run_inprocess(data_dir, pool.take(level), turns, latency, 1)
        say("  " + concurrency.describe(r))
        out["in_process"].append(r)
    top = max(plan.levels)
    durability = pool.settings.checkpoint_durability
    say(f"concurrency baseline: bare LangGraph graph of the same shape, {top} sessions")
    r = concurrency.run_bare(data_dir, top, turns, latency, durability)
    say("  " + concurrency.describe(r))
    out["bare_graph"] = r
    if plan.extra_procs:
        say(f"concurrency in-process: {top} sessions in {plan.extra_procs} processes")
        r = concurrency.run_inprocess(data_dir, pool.take(top), turns, latency, plan.extra_procs)
        say("  " + concurrency.describe(r))
        out["in_process"].append(r)
        say(f"concurrency baseline: bare graph, {top} sessions in {plan.extra_procs} processes")
        r = concurrency.run_bare(data_dir, top, turns, latency, durability, plan.extra_procs)
        say("  " + concurrency.describe(r))
        out["bare_graph_processes"] = r
    return out


def _http(work: Path, plan: Plan, pool: Pool) -> list[dict[str, Any]]:
    from graph.ops.postgres import PostgresServer, PostgresUnavailable
    from graph.ops.processes import fake_llm

    rows: list[dict[str, Any]] = []
    with ExitStack() as stack:
        llm_url = stack.enter_context(fake_llm(plan.latency, work / "fake_llm_http.log"))
        server: PostgresServer | None = None
        pg_error = ""
        for sessions, workers, backend in plan.http_levels:
            say(
                f"HTTP service: {sessions} sessions x {plan.turns_per_session} turns, "
                f"{workers} worker(s), {backend}"
            )
            url = None
            if backend == "postgres":
                if server is None and not pg_error:
                    try:
                        server = PostgresServer().start()
                        stack.callback(server.stop)
                    except PostgresUnavailable as e:
                        pg_error = str(e)
                if server is None:
                    rows.append(
                        {
                            "sessions": sessions,
                            "workers": workers,
                            "backend": backend,
                            "skipped": f"no PostgreSQL: {pg_error}",
                        }
                    )
                    say(f"  skipped: {pg_error}")
                    continue
                url = server.create_database()
                http.prepare_postgres(pool.data_dir, pool.users_seeded, url)
            row = http.run_http(
                work,
                llm_url,
                pool.data_dir,
                pool.take(sessions),
                plan.turns_per_session,
                plan.latency,
                workers,
                url,
            )
            http.say_row(row)
            rows.append(row)
    return rows


def run_bench(
    plan: Plan,
    *,
    work: Path,
    endpoint_url: str | None = None,
    quick: bool = False,
    stages: tuple[str, ...] = STAGES,
) -> dict[str, Any]:
    """Every stage; the figures as one JSON-ready dict."""
    started = time.perf_counter()
    result: dict[str, Any] = {"quick": quick, "machine": machine(), "plan": plan.__dict__}
    if "overhead" in stages:
        say(f"overhead: {plan.overhead_turns} turns per durability mode")
        result["overhead"] = overhead.run(work, plan.overhead_turns)
    if "lookup" in stages:
        result["lookup"] = lookup.run(work, list(plan.lookup_sizes), plan.lookups, plan.seed_calls)
    if "concurrency" in stages or "http" in stages:
        pool = Pool(work, plan)
        c: dict[str, Any] = {"latency_s": plan.latency, "turns_per_session": plan.turns_per_session}
        if "concurrency" in stages:
            c = _concurrency(plan, pool)
        c["http"] = _http(work, plan, pool) if "http" in stages else {"skipped": "stage off"}
        result["concurrency"] = c
    if "tokens" in stages:
        result["tokens"] = _tokens(work, endpoint_url)
    if "endpoint" in stages:
        say("endpoint: " + (endpoint_url or "skipped (no --endpoint)"))
        result["endpoint"] = endpoint.run(work, endpoint_url)
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def _tokens(work: Path, endpoint_url: str | None) -> dict[str, Any]:
    say("tokens: prompts of a first negotiate turn")
    model = None
    if endpoint_url:
        from graph.services import first_model
        from graph.sgr import LLMUnavailableError

        try:
            model = first_model(endpoint_url)
        except LLMUnavailableError:
            model = None
    return tokens.run(work, endpoint_url if model else None, model)


# --------------------------------------------------------------------------- table


def _overhead_rows(oh: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    out = []
    for mode, e in oh.get("modes", {}).items():
        ru, g, b = e["runner"], e["graph"], e["baseline_bare_3_nodes"]
        target = "p50 <= 1.5 x bare" if mode == "sync" else "-"
        out.append((
            f"overhead runner, durability={mode}: p50/p99 (graph alone p50)",
            f"{ru['p50_ms']:.1f} / {ru['p99_ms']:.1f} ms ({g['p50_ms']:.1f} ms); "
            f"{e['runner_to_bare_p50']:.2f} x bare",
            f"bare 3-node graph {b['p50_ms']:.1f} / {b['p99_ms']:.1f} ms",
            target,
        ))  # fmt: skip
    return out


def _level_row(where: str, lv: dict[str, Any], c: dict[str, Any], bare: Any, target: str):
    baseline = f"ideal {lv['ideal_turns_per_s']:.1f}; {lv['ideal_turn_s']:.2f} s"
    if bare:
        baseline += (
            f"; bare LangGraph graph, {bare['processes']} procs: {bare['turns_per_s']:.1f}, "
            f"p50 {bare['turn_p50_s']:.2f} s ({lv['turns_per_s'] / bare['turns_per_s']:.2f} x)"
        )
    return (
        f"{where}, LLM {c['latency_s']:g} s: turns/s; p50/p99; errors",
        f"{lv['turns_per_s']:.1f}; {lv['turn_p50_s']:.2f} / {lv['turn_p99_s']:.2f} s; "
        f"{lv['errors']}",
        baseline,
        target,
    )


def rows(r: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(figure, value, baseline, target) lines of the result."""
    out = _overhead_rows(r.get("overhead", {}))
    for s in r.get("lookup", {}).get("sizes", []):
        out.append((
            f"lookup p50, {s['users']:,} customers",
            f"{s['store']['p50_ms']:.3f} ms",
            f"seed pattern {s['baseline_seed_pattern']['p50_ms']:.2f} ms; "
            f"DuckDB point query {s['reference_duckdb_point_query']['p50_ms']:.3f} ms",
            "<= 0.15 ms, flat",
        ))  # fmt: skip
    c = r.get("concurrency", {})
    top = max((lv["sessions"] for lv in c.get("in_process", [])), default=0)
    for lv in c.get("in_process", []):
        procs = lv["processes"]
        bare = None
        if lv["sessions"] == top:
            bare = c.get("bare_graph") if procs == 1 else c.get("bare_graph_processes")
        target = ">= 0.9 x bare" if bare and procs == 1 else "-"
        where = f"in-process {lv['sessions']} sessions ({procs} procs)"
        out.append(_level_row(where, lv, c, bare, target))
    http_rows = c.get("http")
    if isinstance(http_rows, list):
        one = {(x["sessions"], x["backend"]): x for x in http_rows if x.get("workers") == 1}
        for x in http_rows:
            where = f"HTTP {x['sessions']} sessions, {x['workers']} workers, {x['backend']}"
            if "skipped" in x:
                out.append((where, "skipped", x["skipped"], "-"))
                continue
            baseline = f"ideal {x['ideal_turns_per_s']:.1f}; {x['ideal_turn_s']:.2f} s"
            single = one.get((x["sessions"], x["backend"]))
            if x["workers"] > 1 and single and "turns_per_s" in single and single["turns_per_s"]:
                baseline += f"; 1 worker {single['turns_per_s']:.1f} " + (
                    f"({x['turns_per_s'] / single['turns_per_s']:.2f} x)"
                )
            target = "-"
            if x["workers"] == 2 and x["backend"] == "postgres":
                target = ">= 75 turns/s, p50 <= 2.6 s, >= 1.6 x 1 worker"
            out.append((
                f"{where}, LLM {c['latency_s']:g} s: turns/s; p50/p99; errors",
                f"{x['turns_per_s']:.1f}; {x['turn_p50_s']:.2f} / {x['turn_p99_s']:.2f} s; "
                f"{x['errors']}",
                baseline,
                target,
            ))  # fmt: skip
    t = r.get("tokens")
    if t:
        for node, v in t["nodes"].items():
            out.append((f"prompt tokens, {node}", str(v["tokens"]), f"seed {v['seed_tokens']}",
                        "no worse"))  # fmt: skip
        out.append(("prompt tokens, first negotiate turn", str(t["total"]),
                    f"seed {t['seed_total']}", "no worse"))  # fmt: skip
    e = r.get("endpoint")
    if e and "skipped" in e:
        out.append(("real endpoint", "skipped", e["skipped"], "-"))
    elif e:
        out.append((
            f"real endpoint {e['model']}: turn p50/p95, output tok/s",
            f"{e['turn_p50_s']:.2f} / {e['turn_p95_s']:.2f} s; {e['output_tokens_per_s']:.1f}",
            "-",
            "-",
        ))  # fmt: skip
    return out


def table(r: dict[str, Any]) -> str:
    """The result as a Markdown table."""
    lines = ["| figure | value | baseline (same run) | target |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows(r)]
    lines.append(
        f"\nmachine: {r['machine']['cpus']} CPUs, Python {r['machine']['python']}, "
        f"load {r['machine']['loadavg_1m_at_start']} at start; "
        f"tokens: {r.get('tokens', {}).get('tokenizer', '-')}; {r['seconds']} s"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point (also ``discount-manager bench``)."""
    ap = argparse.ArgumentParser(prog="bench", description=__doc__.splitlines()[0])
    add_arguments(ap)
    return run_from_args(ap.parse_args(argv))


def run_from_args(args: argparse.Namespace) -> int:
    """Run the bench as the parsed options say; 0."""
    stages = tuple(x.strip() for x in args.stages.split(",") if x.strip())
    if args.no_http:
        stages = tuple(s for s in stages if s != "http")
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        print(
            f"error: unknown stage(s) {', '.join(unknown)}; choose from {', '.join(STAGES)}",
            file=sys.stderr,
        )
        return 2
    plan = TINY if args.tiny else QUICK if args.quick else FULL
    if args.latency is not None:
        plan = Plan(**{**plan.__dict__, "latency": args.latency})
    with ExitStack() as stack:
        work = args.work_dir or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="sgr-perf-"))
        )
        work.mkdir(parents=True, exist_ok=True)
        result = run_bench(
            plan,
            work=work,
            endpoint_url=args.endpoint,
            quick=args.quick or args.tiny,
            stages=stages,
        )
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    if args.json:
        print(table(result), file=sys.stderr)
        print(text)
    else:
        print(table(result))
    return 0
