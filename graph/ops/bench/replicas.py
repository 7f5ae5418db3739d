"""Model replicas trial: fake OpenAI servers behind ``vllm-router``, one killed mid-load.

    uv run python -m graph.ops.bench.replicas [--quick] [--replicas 2] [--sessions 8]
        [--turns 4] [--latency 0.3] [--llm-max-retries 4] [--router-retries]
        [--database-url URL]

``--replicas`` processes of the fake OpenAI server (``graph/ops/fake_openai.py`` answering
like a negotiating buyer's agent, ``reliability_fakes.http_responder``, after ``--latency``)
behind ``vllm-router --policy round_robin``; the negotiator's ``SGR_LLM_BASE_URL`` is the
router. This process runs the sessions' turns at once (one runner, asyncio; session ``k``
belongs to customer ``k mod 10``) and, once 30 % of them are answered, kills one replica with
``kill -9``. The router runs with ``--disable-retries`` (unless ``--router-retries``): the
requests the dead replica held, and those sent to it before the router's circuit breaker
(``--cb-failure-threshold 3``) or health check (every second here) takes it out of the
rotation, fail with a 5xx, and the negotiator's own retries (``SGR_LLM_MAX_RETRIES``) send
them again, to the live replica. With its retries on (its default) the router re-sends them
itself and the negotiator sees nothing.

Figures: turns / answered / fallback replies (the LLM given up on: must be 0) / our LLM retries
/ the router's failed forwards / lost (answered, missing from the session's history) / the
ledger: duplicate codes (rows sharing a code or a (session, turn, slot), redeemable codes
beyond one per customer), orphan codes, ``violations()``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from graph.ops.bench.reliability_checks import aledger_figures
from graph.ops.processes import child_env, free_port, read_ready_url, stop
from graph.services import Services
from graph.session import open_negotiator
from graph.settings import Settings
from stores.seed import generate

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[3]
USERS = [f"user_{100 + i}" for i in range(10)]
MODEL = "fake-model"


# --------------------------------------------------------------------------- processes


def serve_fake(latency_s: float, seed: int) -> int:
    """One replica (the child process): the fake server until SIGTERM; ``READY <url>``."""
    from graph.ops.bench.reliability_fakes import http_responder
    from graph.ops.fake_openai import FakeOpenAIServer

    srv = FakeOpenAIServer(model=MODEL, responder=http_responder(latency_s, seed)).start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    print(f"READY {srv.url}", flush=True)
    done.wait()
    srv.stop()
    return 0


def start_replica(latency_s: float, seed: int, logfile: Path) -> tuple[subprocess.Popen, str]:
    """A replica process in its own session; its base URL (``.../v1``)."""
    argv = [sys.executable, "-m", "graph.ops.bench.replicas", "--serve-fake"]
    argv += ["--latency", str(latency_s), "--seed", str(seed)]
    with logfile.open("wb") as err:
        proc = subprocess.Popen(
            argv,
            cwd=REPO,
            env=child_env(PYTHONPATH=str(REPO)),
            stdout=subprocess.PIPE,
            stderr=err,
            start_new_session=True,
        )
    try:
        return proc, read_ready_url(proc, logfile, 60.0)
    except BaseException:
        stop(proc)
        raise


def router_binary() -> str:
    """The ``vllm-router`` of this environment (``RuntimeError`` if it is not installed)."""
    beside = Path(sys.executable).with_name("vllm-router")
    found = str(beside) if beside.is_file() else shutil.which("vllm-router")
    if not found:
        raise RuntimeError("vllm-router is not installed (a dev dependency: uv sync)")
    return found


def router_argv(port: int, roots: list[str], metrics_port: int, retries: bool) -> list[str]:
    """``vllm-router`` over ``roots`` (servers without ``/v1``), round robin; a dead replica
    leaves the rotation after 3 failures (circuit breaker) or a failed health check."""
    argv = [router_binary(), "--host", "127.0.0.1", "--port", str(port), "--worker-urls", *roots]
    argv += ["--policy", "round_robin", "--prometheus-port", str(metrics_port)]
    argv += ["--worker-startup-check-interval", "1", "--worker-startup-timeout-secs", "60"]
    argv += ["--cb-failure-threshold", "3", "--health-check-interval-secs", "1"]
    argv += ["--health-failure-threshold", "1", "--log-level", "warning"]
    return argv if retries else [*argv, "--disable-retries"]


def wait_router(url: str, proc: subprocess.Popen, logfile: Path, timeout_s: float = 60) -> None:
    """Until ``GET /health`` answers 200 (every replica healthy)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"vllm-router exited: {logfile.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(
        f"vllm-router not healthy after {timeout_s:g}s: {logfile.read_text()[-3000:]}"
    )


@contextmanager
def replicas_behind_router(
    n: int, latency_s: float, root: Path, retries: bool
) -> Iterator[tuple[str, list[subprocess.Popen], list[str]]]:
    """``n`` replicas and the router: its base URL (``.../v1``), the replica processes and
    their roots."""
    procs: list[subprocess.Popen] = []
    router: subprocess.Popen | None = None
    try:
        roots = []
        for i in range(n):
            proc, url = start_replica(latency_s, i, root / f"replica{i}.log")
            procs.append(proc)
            roots.append(url.removesuffix("/v1"))
        port = free_port()
        logfile = root / "router.log"
        with logfile.open("wb") as out:
            router = subprocess.Popen(
                router_argv(port, roots, free_port(), retries),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        url = f"http://127.0.0.1:{port}"
        wait_router(url, router, logfile)
        yield f"{url}/v1", procs, roots
    finally:
        for proc in [*procs, *([router] if router else [])]:
            stop(proc)


# --------------------------------------------------------------------------- the trial


class _Retries(logging.Handler):
    """Counts the negotiator's LLM retries (``graph.sgr.client``: "...; retry N in Xs")."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "; retry " in record.getMessage():
            self.count += 1


def _settings(data_dir: Path, llm_url: str, retries: int, database_url: str | None) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        llm_base_url=llm_url,
        llm_model="",  # the first model of /v1/models, and the dialect from /version: both
        structured_output="auto",  # answered through the router
        verify_constraint=False,  # the scripted replies do not honour the probe's schema
        llm_max_retries=retries,
        llm_retry_backoff_s=0.2,
        llm_timeout_s=30.0,
        approval_amount=1e9,
        approval_percent=100,
        max_turns=1000,
        session_wait_s=120.0,
    )


async def _load(
    settings: Settings, sessions: int, turns: int, victim: subprocess.Popen, kill_at: float
) -> dict[str, Any]:
    total = sessions * turns
    answered: list[tuple[str, str, Any]] = []
    failed: list[str] = []
    killed: dict[str, Any] = {}
    async with open_negotiator(Services(settings=settings)) as neg:

        async def session(k: int) -> None:
            sid, user = f"rep-s{k}", USERS[k % len(USERS)]
            for t in range(turns):
                text = f"{sid} turn {t}: any discount for me?"
                try:
                    answered.append((sid, text, await neg.run_turn(sid, user, text)))
                except Exception as e:  # counted: a turn that did not go on
                    failed.append(f"{sid}: {type(e).__name__}: {e}")
                if not killed and len(answered) >= kill_at * total:
                    os.kill(victim.pid, signal.SIGKILL)
                    killed.update(after_answers=len(answered), pid=victim.pid)

        start = time.monotonic()
        await asyncio.gather(*(session(k) for k in range(sessions)))
        elapsed = time.monotonic() - start
        lost = 0
        for sid in {s for s, _, _ in answered}:
            replied = {h["customer"] for h in await neg.history(sid) if h["reply"]}
            lost += sum(1 for s, text, _ in answered if s == sid and text not in replied)
        ledger = await aledger_figures(neg)
        per_key = {(r.session, r.turn) for _, _, r in answered}
    return {
        "turns": total,
        "answered": len(answered),
        "fallback_replies": sum(r.status == "fallback" for _, _, r in answered),
        "answered_turn_keys": len(per_key),
        "failed": len(failed),
        "lost": lost,
        "killed": killed,
        "seconds": round(elapsed, 1),
        "ledger": ledger,
        "failure_samples": failed[:5]
        + [f"{r.session}: {r.error}" for _, _, r in answered if r.error][:5],
    }


def run(
    quick: bool = False,
    replicas: int = 2,
    sessions: int | None = None,
    turns: int | None = None,
    latency_s: float = 0.3,
    llm_max_retries: int = 4,
    router_retries: bool = False,
    database_url: str | None = None,
    kill_at: float = 0.3,
) -> dict[str, Any]:
    """The trial (on SQLite files, or the throwaway Postgres database of ``database_url``)."""
    sessions = sessions or (8 if quick else 20)
    turns = turns or (4 if quick else 6)
    if replicas < 2:
        raise ValueError("the trial kills one replica: it needs at least 2")
    counter = _Retries()
    client_log = logging.getLogger("graph.sgr.client")
    level = client_log.level
    client_log.addHandler(counter)
    client_log.setLevel(logging.WARNING)  # counted even when the root logger is quieter
    try:
        with tempfile.TemporaryDirectory(prefix="sgr-replicas-") as tmp:
            root = Path(tmp)
            generate(root / "data", users=10, seed=42, database_url=database_url)
            with replicas_behind_router(replicas, latency_s, root, router_retries) as (
                url,
                procs,
                roots,
            ):
                settings = _settings(root / "data", url, llm_max_retries, database_url)
                figures = asyncio.run(_load(settings, sessions, turns, procs[0], kill_at))
                router_log = (root / "router.log").read_text(errors="replace")
            from stores.backend import reset_backends
            from stores.features import reset_feature_stores
            from stores.ledger import reset_ledgers

            reset_backends()
            reset_ledgers(root / "data")
            reset_feature_stores(root / "data")
    finally:
        client_log.removeHandler(counter)
        client_log.setLevel(level)
    ledger = figures.pop("ledger")
    return {
        "backend": "postgres" if database_url else "sqlite",
        "replicas": replicas,
        "router": "round_robin, " + ("its own retries" if router_retries else "--disable-retries"),
        "sessions": sessions,
        **figures,
        "llm_retries": counter.count,
        "router_failed_forwards": router_log.count(f"worker_url={roots[0]}"),
        "duplicate_codes": ledger["duplicate_keys"] + ledger["extra_redeemable"],
        "orphan_codes": ledger["orphan_codes"],
        "offers_redeemable": ledger["redeemable"],
        "ledger_violations": ledger["violations"],
    }


def main(argv: list[str] | None = None) -> int:
    """Run the trial and print its figures (or, with ``--serve-fake``, be one replica)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="8 sessions x 4 turns")
    ap.add_argument("--replicas", type=int, default=2)
    ap.add_argument("--sessions", type=int, default=None, help="default 20 (quick: 8)")
    ap.add_argument("--turns", type=int, default=None, help="default 6 (quick: 4)")
    ap.add_argument("--latency", type=float, default=0.3, help="each replica's, seconds")
    ap.add_argument("--llm-max-retries", type=int, default=4, help="SGR_LLM_MAX_RETRIES")
    ap.add_argument("--router-retries", action="store_true", help="keep the router's retries")
    ap.add_argument("--database-url", default=None, help="a throwaway postgresql:// database")
    ap.add_argument("--serve-fake", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve_fake:
        return serve_fake(args.latency, args.seed)
    logging.basicConfig(level=logging.ERROR)
    figures = run(
        args.quick,
        args.replicas,
        args.sessions,
        args.turns,
        args.latency,
        args.llm_max_retries,
        args.router_retries,
        args.database_url,
    )
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
