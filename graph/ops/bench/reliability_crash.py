"""Crash trials: ``kill -9`` at random moments of a CLI turn, ``os._exit`` after ledger writes.

    uv run python -m graph.ops.bench.reliability_crash [--quick] [--trials N] [--latency S]
        [--database-url postgresql://...]

Each trial starts ``discount-manager turn`` as a subprocess against the fake OpenAI server
(``graph/ops/fake_openai.py``, every reply delayed by ``--latency``), waits until the turn holds
its session's lease, then kills it at a random moment of the turn (``kill -9``); every
fourth trial instead lets the process ``os._exit`` right after its first ledger write. After
each trial, in this process: the session's history must read back, the next turn must run
(it finishes the interrupted turn first), and the ledger must hold no duplicate and no orphan
code. With ``--database-url`` every store, checkpoint and lease is in that Postgres database
(seeded by the trial: give it a throwaway one). Figures: trials / turns lost / duplicate codes /
orphan codes / ledger violations, plus what the killed turns became (finished on recovery,
never started) and the cost per turn of each checkpoint durability mode.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from graph.ops.bench.reliability_checks import ledger_figures
from graph.ops.bench.reliability_fakes import http_responder, schema_llm
from graph.services import Services
from graph.session import open_negotiator
from graph.settings import Durability, Settings
from stores.seed import generate

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[3]
USERS = ["user_100", "user_101", "user_103", "user_105", "user_107"]
EXIT_AFTER_LEDGER = 86


def _fake_server(latency_s: float, seed: int) -> Any:
    """The fake OpenAI server of the test suite (imported from the repo's ``tests``)."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from graph.ops.fake_openai import FakeOpenAIServer

    return FakeOpenAIServer(responder=http_responder(latency_s, seed, accept_share=0.0))


def _child_env(settings: Settings, url: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SGR_")}
    env = {
        **base,
        "SGR_DATA_DIR": str(settings.data_dir),
        "SGR_LLM_BASE_URL": url,
        "SGR_VERIFY_CONSTRAINT": "false",
        "SGR_APPROVAL_AMOUNT": str(settings.approval_amount),
        "SGR_APPROVAL_PERCENT": str(settings.approval_percent),
        "SGR_MAX_TURNS": str(settings.max_turns),
        "PYTHONPATH": str(REPO),
    }
    if settings.database_url:
        env["SGR_DATABASE_URL"] = settings.database_url
    return env


def _lease_pid(services: Services, session: str) -> int | None:
    """The pid of the session's lease holder (stale or not), through the backend's leases."""
    row = services.leases().holder(session)
    return row.pid if row else None


def _start_turn(env: dict[str, str], session: str, user: str, text: str, exit_after: bool):
    args = ["turn", "--user", user, "--session", session, "--message", text, "--json"]
    if exit_after:
        cmd = [sys.executable, "-m", "graph.ops.bench.reliability_crash", "--child-exit", *args]
    else:
        cmd = [sys.executable, "-m", "graph.ops.cli", *args]
    return subprocess.Popen(
        cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _kill_mid_turn(
    proc: subprocess.Popen, services: Services, session: str, window_s: float, rng
) -> str:
    """Wait until the turn holds the lease, then ``kill -9`` after a random delay."""
    deadline = time.monotonic() + 300
    while _lease_pid(services, session) != proc.pid:
        if proc.poll() is not None:
            return "exited before the turn started"
        if time.monotonic() > deadline:
            break
        time.sleep(0.01)
    time.sleep(rng.uniform(0.0, window_s))
    if proc.poll() is not None:
        return "finished before the kill"
    proc.kill()
    proc.wait()
    return "killed"


def _trial(
    i: int,
    settings: Settings,
    env: dict[str, str],
    window_s: float,
    rng: random.Random,
    exit_after: bool,
) -> dict[str, Any]:
    session, user = f"crash-{i % len(USERS)}", USERS[i % len(USERS)]
    text = f"trial {i}: any discount for me?"
    services = Services(settings=settings)
    before = [(h["customer"], h["reply"]) for h in asyncio.run(_history(services, session))]
    before = [pair for pair in before if pair[1]]
    proc = _start_turn(env, session, user, text, exit_after)
    if exit_after:
        proc.wait()
        how = "exit after ledger write" if proc.returncode == EXIT_AFTER_LEDGER else "finished"
    else:
        how = _kill_mid_turn(proc, services, session, window_s, rng)
    out: dict[str, Any] = {"trial": i, "session": session, "how": how, "lost": 0}
    history = asyncio.run(_after_crash(services, session, user, i, before, out))
    killed = [h for h in history if h["customer"] == text]
    if not killed:
        out["killed_turn"] = "never started"
    elif killed[0]["reply"]:
        out["killed_turn"] = "completed"
    else:
        out["killed_turn"] = "no reply"
        out["lost"] += 1
    out.update(ledger_figures(services))
    return out


async def _history(services: Services, session: str) -> list[dict[str, Any]]:
    async with open_negotiator(services) as neg:
        return await neg.history(session)


async def _after_crash(
    services: Services,
    session: str,
    user: str,
    i: int,
    before: list[tuple[str, str]],
    out: dict[str, Any],
) -> list[dict[str, Any]]:
    """History reads back, nothing acknowledged is lost, the next turn works."""
    async with open_negotiator(services) as neg:
        try:
            after_crash = await neg.history(session)
            out["history_ok"] = True
        except Exception as e:
            log.error("trial %d: history failed: %s", i, e)
            after_crash, out["history_ok"] = [], False
        kept = {(h["customer"], h["reply"]) for h in after_crash}
        out["lost"] += sum(1 for pair in before if pair not in kept)
        try:
            await neg.run_turn(session, user, f"after trial {i}: and now?")
            out["next_turn_ok"] = True
        except Exception as e:
            log.error("trial %d: next turn failed: %s", i, e)
            out["next_turn_ok"] = False
        return await neg.history(session)


async def _mean_turn_ms(services: Services, mode: str, turns: int) -> float:
    async with open_negotiator(services) as neg:
        await neg.run_turn(f"warm-{mode}", "user_101", "hello")
        start = time.perf_counter()
        for n in range(turns):
            await neg.run_turn(f"d-{mode}", "user_102", f"discount please ({n})")
        return round(1000 * (time.perf_counter() - start) / turns, 1)


def durability_cost(turns: int = 15, database_url: str | None = None) -> dict[str, float]:
    """Mean wall time per turn (ms) of each checkpoint durability, scripted model, one file
    (or the database of ``database_url``)."""
    costs: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = Settings(
            data_dir=Path(tmp) / "data",
            database_url=database_url,
            approval_amount=1e9,
            approval_percent=100,
        )
        generate(base.data_dir, users=10, seed=42, database_url=database_url)
        for mode in ("exit", "async", "sync"):
            mode_d: Durability = mode  # type: ignore[assignment]
            s = base.model_copy(update={"checkpoint_durability": mode_d})
            services = Services(settings=s, llm_factory=schema_llm)
            costs[mode] = asyncio.run(_mean_turn_ms(services, mode, turns))
    return costs


def run(
    quick: bool = False,
    trials: int | None = None,
    latency_s: float = 0.4,
    seed: int = 7,
    progress: Callable[[str], None] | None = None,
    database_url: str | None = None,
) -> dict[str, Any]:
    """Run the crash trials (on SQLite files, or the Postgres database of ``database_url``,
    which it seeds); the figures (and one line per trial in ``details``)."""
    n = trials if trials is not None else (4 if quick else 24)
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp) / "data",
            database_url=database_url,
            verify_constraint=False,
            approval_amount=1e9,
            approval_percent=100,
            max_turns=1000,
        )
        generate(settings.data_dir, users=10, seed=42, database_url=database_url)
        with _fake_server(latency_s, seed) as srv:
            settings = settings.model_copy(update={"llm_base_url": srv.url})
            env = _child_env(settings, srv.url)
            details = []
            for i in range(n):
                exit_after = i % 4 == 3
                d = _trial(i, settings, env, 3 * latency_s + 0.3, rng, exit_after)
                details.append(d)
                if progress:
                    progress(json.dumps(d))
        from stores.audit import reset_audit_logs
        from stores.backend import reset_backends
        from stores.features import reset_feature_stores
        from stores.ledger import reset_ledgers

        reset_backends()
        reset_ledgers(settings.data_dir)
        reset_audit_logs(settings.data_dir)
        reset_feature_stores(settings.data_dir)
    kills = [d for d in details if d["how"] == "killed"]
    exits = [d for d in details if d["how"] == "exit after ledger write"]
    return {
        "backend": "postgres" if database_url else "sqlite",
        "trials": len(details),
        "killed_mid_turn": len(kills),
        "exit_after_ledger_write": len(exits),
        "turns_lost": sum(d["lost"] for d in details),
        "history_failures": sum(not d["history_ok"] for d in details),
        "next_turn_failures": sum(not d["next_turn_ok"] for d in details),
        "duplicate_codes": max(d["extra_redeemable"] + d["duplicate_keys"] for d in details),
        "orphan_codes": max(d["orphan_codes"] for d in details),
        "ledger_violations": sorted({v for d in details for v in d["violations"]}),
        "killed_turns_completed_on_recovery": sum(
            d["killed_turn"] == "completed" for d in kills + exits
        ),
        "killed_turns_never_started": sum(
            d["killed_turn"] == "never started" for d in kills + exits
        ),
        "details": details,
    }


def _child_exit_after_ledger(argv: list[str]) -> int:
    """The CLI, with ``os._exit`` right after the first ledger write of the turn."""
    from stores.ledger import OfferLedger

    def exit_after(method: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            method(*args, **kwargs)
            os._exit(EXIT_AFTER_LEDGER)

        return wrapper

    for name in ("propose", "accept", "decide"):
        if hasattr(OfferLedger, name):
            setattr(OfferLedger, name, exit_after(getattr(OfferLedger, name)))
    import runpy

    sys.argv = ["discount-manager", *argv]
    runpy.run_module("graph.ops.cli", run_name="__main__")  # exits with the CLI's code
    return 0


def main(argv: list[str] | None = None) -> int:
    """Print the figures (JSON), then the durability costs."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child-exit"]:
        return _child_exit_after_ledger(argv[1:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--trials", type=int, default=None)
    ap.add_argument("--latency", type=float, default=0.4)
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--database-url", default=None, help="a throwaway postgresql:// database")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    figures = run(
        args.quick,
        args.trials,
        args.latency,
        progress=print if args.verbose else None,
        database_url=args.database_url,
    )
    figures.pop("details")
    figures["durability_ms_per_turn"] = durability_cost(database_url=args.database_url)
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
