"""``discount-manager bench``: every performance figure in one run, each beside its baseline.

Stages (a progress line each on stderr): per-turn overhead per checkpoint durability, feature
lookup per store size, concurrency in-process and through ``langgraph dev``, prompt tokens,
and (with ``--endpoint``) a real model. Prints a table (figure, value, baseline, target) and
writes JSON (``--out PATH`` and/or ``--json`` on stdout).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graph.ops.bench.perf import concurrency, endpoint, lookup, overhead, servers, tokens
from graph.ops.bench.perf.common import priceable_users, say, seeded
from graph.ops.bench.perf.options import add_arguments


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
    extra_servers: int  # API: also the top level over this many servers (0: no)


FULL = Plan(200, (10, 100_000, 1_000_000), 5000, 100, (1, 50, 200), 1.0, 2, 2, 2)
QUICK = Plan(20, (10, 5_000), 1000, 10, (1, 10, 40), 0.2, 2, 0, 0)
STAGES = ("overhead", "lookup", "concurrency", "tokens", "endpoint")
TINY = Plan(6, (10,), 50, 3, (1, 3), 0.05, 1, 0, 0)


class ApiServers:
    """The fake LLM and ``langgraph dev`` server(s), started in a thread (``start``).

    ``--quick`` starts them before the first stage so that their ~30 s start-up overlaps the
    other stages (those figures then share the CPU with it: the JSON says so); the full run
    starts them when the API stage begins.
    """

    def __init__(self, work: Path, plan: Plan, jobs: int, *, early: bool) -> None:
        self.work, self.plan, self.jobs, self.early = work, plan, jobs, early
        self._stack = ExitStack()
        self._urls: list[str] = []
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._start, daemon=True)
        self.startup_s = 0.0

    def _start(self) -> None:
        started = time.perf_counter()
        try:
            data_dir = self.work / "concurrency"
            llm = self._stack.enter_context(
                servers.fake_llm(self.plan.latency, self.work / "fake_llm.log")
            )
            for i in range(max(1, self.plan.extra_servers)):
                ckpt = data_dir / f"api-{i}.sqlite"
                self._urls.append(
                    self._stack.enter_context(
                        servers.langgraph_dev(
                            self.work / f"server-{i}", llm, data_dir, ckpt, self.jobs
                        )
                    )
                )
        except BaseException as e:  # re-raised by wait()
            self._error = e
        self.startup_s = round(time.perf_counter() - started, 1)

    def start(self) -> ApiServers:
        say(
            "API: starting the fake LLM and langgraph dev"
            + (" (in the background)" if self.early else "")
        )
        self._thread.start()
        return self

    def wait(self) -> list[str]:
        """The server URLs once they answer (starts them if not started)."""
        if not self._thread.is_alive() and not self._urls and self._error is None:
            self.start()
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._urls

    def __enter__(self) -> ApiServers:
        return self

    def __exit__(self, *exc: object) -> None:
        self._thread.join()
        self._stack.close()


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_1m_at_start": round(load[0], 2),
    }


def _concurrency(
    work: Path, plan: Plan, api_servers: ApiServers | None, jobs: int
) -> dict[str, Any]:
    data_dir = work / "concurrency"
    need = sum(plan.levels) * 2 + max(plan.levels) * 2
    settings = seeded(data_dir, users=max(200, 2 * need))
    pool = priceable_users(settings, need)
    out: dict[str, Any] = {
        "latency_s": plan.latency,
        "turns_per_session": plan.turns_per_session,
        "in_process": [],
        "api_server": [],
    }

    def take(n: int) -> list[str]:
        batch, pool[:] = pool[:n], pool[n:]
        return batch

    for level in plan.levels:
        say(f"concurrency in-process: {level} sessions x {plan.turns_per_session} turns")
        r = concurrency.run_inprocess(
            data_dir, take(level), plan.turns_per_session, plan.latency, 1
        )
        say("  " + concurrency.describe(r))
        out["in_process"].append(r)
    top = max(plan.levels)
    durability = concurrency.fresh_settings_dir(data_dir).checkpoint_durability
    say(f"concurrency baseline: bare 4-node LangGraph graph, {top} sessions, {durability}")
    r = concurrency.run_bare(data_dir, top, plan.turns_per_session, plan.latency, durability)
    say("  " + concurrency.describe(r))
    out["bare_graph"] = r
    if plan.extra_procs:
        say(f"concurrency in-process: {top} sessions in {plan.extra_procs} processes")
        r = concurrency.run_inprocess(
            data_dir, take(top), plan.turns_per_session, plan.latency, plan.extra_procs
        )
        say("  " + concurrency.describe(r))
        out["in_process"].append(r)
        say(f"concurrency baseline: bare graph, {top} sessions in {plan.extra_procs} processes")
        r = concurrency.run_bare(
            data_dir, top, plan.turns_per_session, plan.latency, durability, plan.extra_procs
        )
        say("  " + concurrency.describe(r))
        out["bare_graph_processes"] = r
    # LangGraph's best case here: the bare graph with the lightest durability over every
    # process the in-process levels use (what no durability choice of ours can beat).
    procs = max(1, plan.extra_procs)
    say(f"concurrency ceiling: bare graph, {top} sessions, exit, {procs} processes")
    r = concurrency.run_bare(data_dir, top, plan.turns_per_session, plan.latency, "exit", procs)
    say("  " + concurrency.describe(r))
    out["bare_graph_best"] = r
    if api_servers is None:
        out["api_server"] = {"skipped": "--no-api"}
        return out
    urls = api_servers.wait()
    out["api_startup_s"] = api_servers.startup_s
    out["api_started_during_earlier_stages"] = api_servers.early
    out["api_jobs_per_worker"] = jobs
    for level in plan.levels:
        say(f"concurrency API: {level} sessions x {plan.turns_per_session} turns")
        r = concurrency.run_api(urls[:1], take(level), plan.turns_per_session, plan.latency)
        say("  " + concurrency.describe(r))
        out["api_server"].append(r)
    say(f"concurrency API baseline: bare 4-node LangGraph graph, {top} sessions, 1 server")
    r = concurrency.run_api_bare(urls[0], top, plan.turns_per_session, plan.latency)
    say("  " + concurrency.describe(r))
    out["api_bare_graph"] = r
    if plan.extra_servers:
        say(f"concurrency API: {top} sessions over {len(urls)} servers")
        r = concurrency.run_api(urls, take(top), plan.turns_per_session, plan.latency)
        say("  " + concurrency.describe(r))
        out["api_server"].append(r)
    return out


def run_bench(
    plan: Plan,
    *,
    work: Path,
    endpoint_url: str | None = None,
    api: bool = True,
    jobs: int = 250,
    quick: bool = False,
    stages: tuple[str, ...] = STAGES,
) -> dict[str, Any]:
    """Every stage; the figures as one JSON-ready dict."""
    started = time.perf_counter()
    result: dict[str, Any] = {"quick": quick, "machine": machine(), "plan": plan.__dict__}
    api = api and "concurrency" in stages
    with ApiServers(work, plan, jobs, early=quick) if api else ExitStack() as api_servers:
        if api and quick:
            api_servers.start()
        if "overhead" in stages:
            say(f"overhead: {plan.overhead_turns} turns per durability mode")
            result["overhead"] = overhead.run(work, plan.overhead_turns)
        if "lookup" in stages:
            sizes = list(plan.lookup_sizes)
            result["lookup"] = lookup.run(work, sizes, plan.lookups, plan.seed_calls)
        if "concurrency" in stages:
            result["concurrency"] = _concurrency(work, plan, api_servers if api else None, jobs)
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


def rows(r: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(figure, value, baseline, target) lines of the result."""
    out: list[tuple[str, str, str, str]] = []
    oh = r.get("overhead", {"modes": {}})
    for mode, e in oh["modes"].items():
        g, b = e["graph"], e["baseline_bare_3_nodes"]
        out.append(
            (
                f"overhead graph, durability={mode} p50/p99",
                f"{g['p50_ms']:.1f} / {g['p99_ms']:.1f} ms",
                f"bare 3-node graph {b['p50_ms']:.1f} / {b['p99_ms']:.1f} ms",
                "p50 <= 5 ms",
            )
        )
        if "runner" in e:
            ru = e["runner"]
            out.append(
                (
                    f"overhead runner, durability={mode} p50/p99",
                    f"{ru['p50_ms']:.1f} / {ru['p99_ms']:.1f} ms",
                    f"bare 3-node graph {b['p50_ms']:.1f} ms",
                    "p50 <= 5 ms",
                )
            )
    if "runner_default" in oh:
        ru = oh["runner_default"]
        b = oh["modes"]["async"]["baseline_bare_3_nodes"]
        out.append(
            (
                "overhead runner (its default durability) p50/p99",
                f"{ru['p50_ms']:.1f} / {ru['p99_ms']:.1f} ms",
                f"bare 3-node graph (async) {b['p50_ms']:.1f} ms",
                "p50 <= 5 ms",
            )
        )
    for s in r.get("lookup", {}).get("sizes", []):
        out.append(
            (
                f"lookup p50, {s['users']:,} customers",
                f"{s['store']['p50_ms']:.3f} ms",
                f"seed pattern {s['baseline_seed_pattern']['p50_ms']:.2f} ms; "
                f"DuckDB point query {s['reference_duckdb_point_query']['p50_ms']:.3f} ms",
                "<= 0.15 ms, flat",
            )
        )
    c = r.get("concurrency", {})
    for where in ("in_process", "api_server"):
        levels = c.get(where)
        if not isinstance(levels, list):
            continue
        bares = (
            [c.get("bare_graph"), c.get("bare_graph_processes")]
            if where == "in_process"
            else [c.get("api_bare_graph")]
        )
        for lv in levels:
            extra = lv.get("processes", lv.get("servers", 1))
            unit = "procs" if where == "in_process" else "servers"
            baseline = f"ideal {lv['ideal_turns_per_s']:.1f}; {lv['ideal_turn_s']:.2f} s"
            for bare in bares:
                if bare and bare["sessions"] == lv["sessions"]:
                    n = bare.get("processes", 1)
                    if where == "in_process" and n != extra:
                        continue
                    baseline += (
                        f"; bare LangGraph graph, {n} {unit}: {bare['turns_per_s']:.1f}; "
                        f"p50 {bare['turn_p50_s']:.2f} s"
                    )
                    break
            out.append(
                (
                    f"{where} {lv['sessions']} sessions ({extra} {unit}), "
                    f"LLM {c['latency_s']:g} s: turns/s, p50/p99, errors",
                    f"{lv['turns_per_s']:.1f}; {lv['turn_p50_s']:.2f} / {lv['turn_p99_s']:.2f} s;"
                    f" {lv['errors']}",
                    baseline,
                    ">= 90 % of ideal; p50 <= 1.15 x ideal",
                )
            )
    best = c.get("bare_graph_best")
    if best:
        out.append(
            (
                f"ceiling: bare LangGraph graph, {best['sessions']} sessions, "
                f"{best['durability']}, {best['processes']} procs: turns/s, p50",
                f"{best['turns_per_s']:.1f}; {best['turn_p50_s']:.2f} s",
                f"ideal {best['ideal_turns_per_s']:.1f}; {best['ideal_turn_s']:.2f} s",
                "LangGraph's best case on this machine (no work, lightest durability)",
            )
        )
    t = r.get("tokens")
    if t:
        for node, v in t["nodes"].items():
            out.append(
                (f"prompt tokens, {node}", str(v["tokens"]), f"seed {v['seed_tokens']}", "no worse")
            )
        out.append(
            (
                "prompt tokens, first negotiate turn",
                str(t["total"]),
                f"seed {t['seed_total']}",
                "no worse",
            )
        )
    e = r.get("endpoint")
    if not e:
        pass
    elif "skipped" in e:
        out.append(("real endpoint", "skipped", e["skipped"], "-"))
    else:
        out.append(
            (
                f"real endpoint {e['model']}: turn p50/p95, output tok/s",
                f"{e['turn_p50_s']:.2f} / {e['turn_p95_s']:.2f} s; {e['output_tokens_per_s']:.1f}",
                "-",
                "-",
            )
        )
    return out


def table(r: dict[str, Any]) -> str:
    """The result as a Markdown table."""
    lines = ["| figure | value | baseline (same run) | target |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows(r)]
    lines.append(
        f"\nmachine: {r['machine']['cpus']} CPUs, Python {r['machine']['python']}, "
        f"load {r['machine']['loadavg_1m_at_start']} at start; "
        f"tokens: {r.get('tokens', {}).get('tokenizer', '-')};"
        f" {r['seconds']} s"
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
            api=not args.no_api,
            jobs=args.api_jobs,
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
