"""Concurrency trial: processes x sessions x turns on the same files, races included.

    uv run python -m graph.ops.bench.reliability_concurrency [--quick] [--processes 4]
        [--sessions 25] [--turns 5] [--database-url postgresql://...]

Each worker process runs its sessions' turns, four at a time (asyncio), against one data dir
(hot store, ledger, checkpoints, leases, audit log shared by all) or, with ``--database-url``,
one Postgres database (seeded by the trial: give it a throwaway one), with an in-process
scripted model. Session ``k`` of every worker belongs to customer ``k mod 10``, so the same
customer's sessions race in every process; in the middle round every session gets two
messages at once (a double submit), which the session lease serialises (workers wait for a
busy session, ``SGR_SESSION_WAIT_S``). Afterwards: every acknowledged message must be in its
session's history with a reply (else *lost*), each session's turn counter must equal its
number of messages, no "database is locked" may have surfaced, and the ledger must hold at
most one redeemable code per customer, no orphan and no duplicate code.
Figures: turns / lost / lock errors / invariant violations.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from graph.ops.bench.reliability_checks import aledger_figures
from graph.ops.bench.reliability_fakes import schema_llm
from graph.services import Services
from graph.session import SessionBusyError, open_negotiator
from graph.settings import Settings
from stores.seed import generate

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[3]
USERS = [f"user_{100 + i}" for i in range(10)]
CONCURRENT = 4  # turns in flight per worker process


def _settings(data_dir: Path, database_url: str | None = None) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        verify_constraint=False,
        approval_amount=1e9,
        approval_percent=100,
        session_wait_s=120.0,
    )


def _plan(worker: int, sessions: int, turns: int) -> list[tuple[str, str, str]]:
    """(session, customer, message) in submission order; the middle round twice."""
    tasks: list[tuple[str, str, str]] = []
    for rnd in range(turns):
        for k in range(sessions):
            session, user = f"w{worker}-s{k}", USERS[k % len(USERS)]
            tasks.append((session, user, f"{session} round {rnd}: a discount?"))
            if rnd == turns // 2:  # double submit: the same session, at once
                tasks.append((session, user, f"{session} round {rnd} again: a discount?"))
    return tasks


def _worker(
    data_dir: Path, worker: int, sessions: int, turns: int, go: Path, database_url: str | None
) -> dict[str, Any]:
    """One process: run the plan, four turns at a time; what was acknowledged and what failed."""
    s = _settings(data_dir, database_url)
    services = Services(settings=s, llm_factory=lambda st: schema_llm(st, seed=worker))
    tasks = _plan(worker, sessions, turns)
    print("READY", flush=True)
    while not go.exists():
        time.sleep(0.01)
    out: dict[str, Any] = {"submitted": len(tasks), "ok": [], "busy": 0, "lock_errors": 0}
    out["errors"] = []

    async def play() -> None:
        slots = asyncio.Semaphore(CONCURRENT)
        async with open_negotiator(services) as neg:

            async def one(task: tuple[str, str, str]) -> None:
                session, user, text = task
                async with slots:
                    try:
                        await neg.run_turn(session, user, text)
                        out["ok"].append([session, text])
                    except SessionBusyError:
                        out["busy"] += 1
                    except Exception as e:
                        if "database is locked" in str(e):
                            out["lock_errors"] += 1
                        where = traceback.extract_tb(e.__traceback__)[-3:]
                        at = " <- ".join(
                            f"{Path(f.filename).name}:{f.lineno}" for f in reversed(where)
                        )
                        out["errors"].append(f"{type(e).__name__}: {e} (at {at})")

            await asyncio.gather(*(one(t) for t in tasks))

    asyncio.run(play())
    return out


def _check(
    data_dir: Path, acknowledged: list[list[str]], database_url: str | None
) -> dict[str, Any]:
    services = Services(settings=_settings(data_dir, database_url), llm_factory=schema_llm)
    by_session: dict[str, set[str]] = {}
    for session, text in acknowledged:
        by_session.setdefault(session, set()).add(text)

    async def read() -> dict[str, Any]:
        lost = misnumbered = 0
        async with open_negotiator(services) as neg:
            for session, texts in by_session.items():
                history = await neg.history(session)
                answered = {h["customer"] for h in history if h["reply"]}
                lost += len(texts - answered)
                if int((await neg.state(session)).get("turn", 0)) != len(history):
                    misnumbered += 1
            figures = await aledger_figures(neg)
        figures["misnumbered_sessions"] = misnumbered
        figures["lost"] = lost
        return figures

    return asyncio.run(read())


async def _create_tables(data: Path, database_url: str | None) -> None:
    settings = _settings(data, database_url)
    async with open_negotiator(Services(settings=settings, llm_factory=schema_llm)):
        pass


def run(
    quick: bool = False,
    processes: int = 4,
    sessions: int | None = None,
    turns: int | None = None,
    database_url: str | None = None,
) -> dict[str, Any]:
    """Run the trial in worker processes (on SQLite files, or the Postgres database of
    ``database_url``, which it seeds); the figures."""
    sessions = sessions or (4 if quick else 25)
    turns = turns or (3 if quick else 5)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        generate(data, users=10, seed=42, database_url=database_url)
        asyncio.run(_create_tables(data, database_url))  # checkpoint + lease tables, first
        go = Path(tmp) / "go"
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "graph.ops.bench.reliability_concurrency",
                    "--worker",
                    str(w),
                    "--data",
                    str(data),
                    "--sessions",
                    str(sessions),
                    "--turns",
                    str(turns),
                    "--go",
                    str(go),
                    *(["--database-url", database_url] if database_url else []),
                ],
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
            for w in range(processes)
        ]
        for p in procs:
            assert p.stdout is not None
            line = p.stdout.readline().strip()
            if line != "READY":
                raise RuntimeError(f"worker failed to start: {line!r}")
        start = time.perf_counter()
        go.touch()
        results = []
        for p in procs:
            stdout, _ = p.communicate(timeout=3600)
            results.append(json.loads(stdout.strip().splitlines()[-1]))
        elapsed = time.perf_counter() - start
        acknowledged = [pair for r in results for pair in r["ok"]]
        checked = _check(data, acknowledged, database_url)
        ledger_check = checked.pop("violations")
        from stores.audit import reset_audit_logs
        from stores.backend import reset_backends
        from stores.features import reset_feature_stores
        from stores.ledger import reset_ledgers

        reset_backends()
        reset_ledgers(data)
        reset_audit_logs(data)
        reset_feature_stores(data)
    errors = [e for r in results for e in r["errors"]]
    violations = (
        checked["extra_redeemable"]
        + checked["orphan_codes"]
        + checked["duplicate_keys"]
        + checked["misnumbered_sessions"]
        + len(ledger_check)
    )
    return {
        "backend": "postgres" if database_url else "sqlite",
        "processes": processes,
        "sessions": processes * sessions,
        "turns": sum(r["submitted"] for r in results),
        "acknowledged": len(acknowledged),
        "lost": checked["lost"],
        "busy_refusals": sum(r["busy"] for r in results),
        "lock_errors": sum(r["lock_errors"] for r in results),
        "other_errors": len(errors) - sum(r["lock_errors"] for r in results),
        "invariant_violations": violations,
        "ledger": {k: v for k, v in checked.items() if k != "lost"},
        "ledger_invariant_check": ledger_check,
        "seconds": round(elapsed, 1),
        "turns_per_s": round(len(acknowledged) / elapsed, 1) if elapsed else 0.0,
        "error_samples": errors[:5],
    }


def main(argv: list[str] | None = None) -> int:
    """Run (or, with ``--worker``, be one worker process) and print JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--processes", type=int, default=4)
    ap.add_argument("--sessions", type=int, default=None)
    ap.add_argument("--turns", type=int, default=None)
    ap.add_argument("--database-url", default=None, help="a throwaway postgresql:// database")
    ap.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--go", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    if args.worker is not None:
        out = _worker(args.data, args.worker, args.sessions, args.turns, args.go, args.database_url)
        print(json.dumps(out), flush=True)
        return 0
    figures = run(args.quick, args.processes, args.sessions, args.turns, args.database_url)
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
