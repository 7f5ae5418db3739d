"""Scale trial: the HTTP service on Postgres, several worker processes, one killed mid-run.

    uv run python -m graph.ops.bench.scale [--quick] [--database-url URL] [--sessions 100]
        [--turns 5] [--workers 2] [--concurrency 32] [--latency 0.2] [--lease-s 5]
        [--hosts auto|own|shared]

What runs:

* ``--workers`` separate ``discount-manager serve --no-local-llm --workers 1`` processes, each
  on a port and a data dir of its own: N machines behind a load balancer, sharing nothing but
  the Postgres database (not one ``serve --workers N``: its supervisor restarts a killed
  worker behind the same port, so no request would ever need another machine). With
  ``--hosts own`` (``auto``: when ``unshare --uts`` works here, e.g. as root) each runs under a
  hostname of its own, so a killed worker's session leases are freed the way they are across
  machines: when they expire (``SGR_SESSION_LEASE_S``, ``--lease-s``); on one host
  (``shared``) the lease's dead-process check frees them at once.
* the fixed-latency fake LLM (``graph.ops.bench.perf.fake_llm``);
* this process's ``httpx.AsyncClient`` as the shop's backend, at most ``--concurrency``
  requests in flight: session ``k`` belongs to customer ``k mod 10`` (the same customers'
  sessions race in the ledger), each sends ``--turns`` messages one after the other, and at the
  middle round two at once (a double submit: one gets 409, ``SGR_SESSION_WAIT_S=0``). Each
  request goes to the next worker in turn; a refused connection or a broken response marks
  that worker down for a second. A request is retried after a connection error, a 5xx
  without a turn, or a 409 (after a short pause), with backoff, against a live worker, until
  it is answered (for 3 minutes at most);
* once 40 % of the messages are answered and the first worker has requests in flight, it is
  killed with ``kill -9`` (and stays dead). The turns it was running are finished by the next
  request on their sessions (the same codes: ledger writes are keyed by (session, turn)).

Figures (JSON): ``turns_requested`` (messages sent), ``turns_completed`` (answered with a turn:
200, or 503 with the fallback reply), and ``lost`` = ``lost_acknowledged`` + ``unanswered``:
*acknowledged* messages (answered) missing from their session's history or without a reply
there, plus messages never answered. Also: ``unfinished_turns`` (history turns without a
reply), ``redelivered`` (a message in its history twice: every message carries an
``Idempotency-Key``, so the retry of an attempt recorded before its worker died is answered
with that turn, finished with its code, instead of becoming a turn of its own), ``histories_read``,
``duplicate_codes`` (rows sharing a code or a (session, turn, slot), plus redeemable codes
beyond one per customer), ``code_mismatches`` (an answer or history turn naming a code the
ledger holds for another session or turn), the ledger's
``violations``, ``recovered_turns`` (unfinished turns finished by a worker, from their logs),
and, for information, turns/s and the latency of a message (first send to answer, retries
included) p50/p99.

``--database-url``: a database the trial may seed and write (a throwaway one). Without it, a
throwaway server is started as the tests do (``graph.ops.postgres``: a fresh database on
``SGR_TEST_DATABASE_URL``'s server, else ``initdb`` in a temp dir), dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

from graph.api.auth import shopper_token
from graph.ops.bench.reliability_checks import aledger_figures
from graph.ops.processes import child_env, fake_llm, free_port, stop, wait_healthy
from graph.services import Services
from graph.session import open_negotiator
from graph.settings import Settings
from stores.files import data_files
from stores.seed import generate

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[3]
USERS = [f"user_{100 + i}" for i in range(10)]
SECRET = "scale-trial-shop-secret-0123456789abcdef"
RECOVERED = "finishing turn left unfinished"  # graph.session's warning when it finishes one
Hosts = Literal["auto", "own", "shared"]


# --------------------------------------------------------------------------- processes


def own_hostnames_work() -> bool:
    """Whether ``unshare --uts`` can give a child a hostname of its own here."""
    if shutil.which("unshare") is None:
        return False
    probe = ["unshare", "--uts", "sh", "-c", "hostname sgr-scale-probe"]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        return subprocess.run(probe, capture_output=True, timeout=10).returncode == 0
    return False


def _serve_argv(port: int) -> list[str]:
    script = Path(sys.executable).with_name("discount-manager")
    cli = [str(script)] if script.is_file() else [sys.executable, "-m", "graph.ops.cli"]
    return [*cli, "serve", "--no-local-llm", "--host", "127.0.0.1", "--port", str(port)]


@dataclass
class Worker:
    """One ``serve`` process (one machine)."""

    index: int
    url: str
    proc: subprocess.Popen[bytes]
    log: Path
    hostname: str
    down_until: float = 0.0
    in_flight: int = 0
    killed: bool = False


def start_worker(
    index: int, root: Path, env: dict[str, str], hostname: str | None
) -> tuple[subprocess.Popen[bytes], int, Path]:
    """A ``serve`` process on a free port and a data dir of its own (seeded files: the
    customers are in Postgres, the files only tell ``serve`` not to seed)."""
    data = root / f"worker{index}"
    if not data_files(data).hot.is_file():
        generate(data, users=10, seed=42)
    port = free_port()
    argv = _serve_argv(port)
    if hostname is not None:  # exec keeps the pid: kill -9 of it kills the server
        argv = ["unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', hostname, *argv]
    logfile = root / f"worker{index}.log"
    with logfile.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            env={**env, "SGR_DATA_DIR": str(data)},
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return proc, port, logfile


def worker_env(database_url: str, llm_url: str, lease_s: float) -> dict[str, str]:
    """The environment of every worker: one database, one model, no local model."""
    return child_env(
        PYTHONPATH=str(REPO),
        LANGSMITH_TRACING="false",
        SGR_DATABASE_URL=database_url,
        SGR_LLM_BASE_URL=llm_url,
        SGR_LLM_MODEL="bench-model",
        SGR_STRUCTURED_OUTPUT="structured_outputs",
        SGR_VERIFY_CONSTRAINT="false",
        SGR_SHOP_SECRET=SECRET,
        SGR_MANAGER_TOKENS="scale:scale-manager-token",
        SGR_SESSION_LEASE_S=str(lease_s),
        SGR_SESSION_WAIT_S="0",
        SGR_SESSION_RATE_LIMIT="1000000",
        SGR_APPROVAL_AMOUNT="1000000000",
        SGR_APPROVAL_PERCENT="100",
        SGR_MAX_TURNS="1000",
        SGR_MAX_ROUNDS="1000",  # the fake LLM always negotiates: keep that action allowed
    )


# --------------------------------------------------------------------------- the client


@dataclass
class Message:
    """One message of a session and what became of it."""

    session: str
    user: str
    text: str
    answered: bool = False
    status_code: int | None = None
    turn: int | None = None
    status: str | None = None
    code: str | None = None
    latency_s: float | None = None
    attempts: int = 0
    error: str | None = None
    key: str = field(default_factory=lambda: uuid.uuid4().hex)  # its Idempotency-Key


@dataclass
class Traffic:
    """The shop's backend: shopper tokens, the worker rotation, retries and counters."""

    http: httpx.AsyncClient
    workers: list[Worker]
    concurrency: int
    deadline_s: float
    settings: Settings = field(default_factory=lambda: Settings(shop_secret=SECRET))
    counts: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    answered: int = 0
    rng: random.Random = field(default_factory=lambda: random.Random(5))

    def __post_init__(self) -> None:
        self.slots = asyncio.Semaphore(self.concurrency)
        self._tokens: dict[str, str] = {}
        self._next = 0

    def auth(self, user: str) -> dict[str, str]:
        if user not in self._tokens:
            self._tokens[user] = shopper_token(self.settings, user, 6 * 3600)
        return {"Authorization": f"Bearer {self._tokens[user]}"}

    def pick(self) -> Worker:
        """The next worker in turn that is not marked down (all down: the soonest back)."""
        self._next += 1
        now = time.monotonic()
        ring = [
            self.workers[(self._next + i) % len(self.workers)] for i in range(len(self.workers))
        ]
        up = [w for w in ring if w.down_until <= now]
        return up[0] if up else min(ring, key=lambda w: w.down_until)

    def _note(self, text: str) -> None:
        if len(self.errors) < 20:
            self.errors.append(text)

    async def deliver(self, m: Message) -> None:
        """Send ``m`` until it is answered (or its deadline passes, or a 4xx refuses it)."""
        start = time.monotonic()
        backoff = pause = 0.1
        while time.monotonic() - start < self.deadline_s:
            w = self.pick()
            m.attempts += 1
            self.counts["requests"] += 1
            r: httpx.Response | None = None
            async with self.slots:
                w.in_flight += 1
                try:
                    r = await self.http.post(
                        f"{w.url}/v1/sessions/{m.session}/turns",
                        json={"message": m.text},
                        headers={**self.auth(m.user), "Idempotency-Key": m.key},
                    )
                except httpx.TransportError as e:
                    w.down_until = time.monotonic() + 1.0
                    self.counts["connection_errors"] += 1
                    self._note(f"worker {w.index}: {type(e).__name__}: {e}")
                finally:
                    w.in_flight -= 1
            if r is not None:
                body = _json(r)
                if r.status_code == 200 or (r.status_code == 503 and "turn" in body):
                    self._answered(m, r.status_code, body, time.monotonic() - start)
                    return
                if r.status_code == 409:  # a short pause, longer while it stays busy
                    self.counts["busy_409"] += 1
                    await asyncio.sleep(pause * self.rng.uniform(0.5, 1.5))
                    pause = min(1.5 * pause, 1.0)
                    continue
                if r.status_code < 500 and r.status_code != 429:
                    m.status_code, m.error = r.status_code, str(body.get("error"))
                    self._note(f"{m.session}: {r.status_code} {m.error}")
                    return
                self.counts[f"http_{r.status_code}"] += 1
                self._note(f"worker {w.index}: {r.status_code} {body.get('error')}")
            self.counts["retries"] += 1
            await asyncio.sleep(backoff * self.rng.uniform(0.5, 1.5))
            backoff = min(2 * backoff, 2.0)
        m.error = f"unanswered after {self.deadline_s:g}s"

    def _answered(self, m: Message, code: int, body: dict[str, Any], latency: float) -> None:
        offer = body.get("offer") or {}
        m.answered, m.status_code, m.latency_s = True, code, latency
        m.turn, m.status, m.code = body.get("turn"), body.get("status"), offer.get("code")
        if code == 503:
            self.counts["fallback_replies"] += 1
            self._note(f"{m.session}: fallback reply ({body.get('error')})")
        self.answered += 1

    async def session(self, messages: list[list[Message]]) -> None:
        """A session's rounds in order; a round of two messages is sent at once."""
        for rnd in messages:
            await asyncio.gather(*(self.deliver(m) for m in rnd))

    async def history(self, session: str, user: str) -> list[dict[str, Any]] | None:
        """The session's turns from a live worker (``None``: it did not read back)."""
        for _ in range(20):
            w = self.pick()
            try:
                r = await self.http.get(f"{w.url}/v1/sessions/{session}", headers=self.auth(user))
            except httpx.TransportError:
                w.down_until = time.monotonic() + 1.0
                continue
            if r.status_code == 200:
                return r.json()
            await asyncio.sleep(0.2)
        return None


def _json(r: httpx.Response) -> dict[str, Any]:
    try:
        body = r.json()
    except ValueError:
        return {"error": r.text[:200]}
    return body if isinstance(body, dict) else {"error": str(body)[:200]}


def plan(run_id: str, sessions: int, turns: int) -> list[list[list[Message]]]:
    """Per session, its rounds; the middle round holds two messages (a double submit)."""
    out = []
    for k in range(sessions):
        sid, user = f"{run_id}-s{k}", USERS[k % len(USERS)]
        rounds = []
        for r in range(turns):
            texts = [f"{sid} turn {r}: any discount for me?"]
            if r == turns // 2:
                texts = [f"{sid} turn {r}a: any discount?", f"{sid} turn {r}b: a better one?"]
            rounds.append([Message(sid, user, t) for t in texts])
        out.append(rounds)
    return out


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)], 3)


# --------------------------------------------------------------------------- the checks


def check_histories(
    messages: list[Message], histories: dict[str, list[dict[str, Any]] | None]
) -> dict[str, int]:
    """``lost_acknowledged`` / ``unanswered`` / ``unfinished_turns`` / ``redelivered`` /
    ``histories_read`` from what the client was told and what the sessions hold."""
    figures = Counter(histories_read=sum(h is not None for h in histories.values()))
    for m in messages:
        history = histories.get(m.session) or []
        replied = {h["customer"] for h in history if h.get("reply")}
        if not m.answered:
            figures["unanswered"] += 1
        elif m.text not in replied:
            figures["lost_acknowledged"] += 1
    for history in histories.values():
        for h in history or []:
            figures["unfinished_turns"] += not h.get("reply")
        seen = Counter(h["customer"] for h in history or [])
        figures["redelivered"] += sum(n - 1 for n in seen.values())
    keys = ("lost_acknowledged", "unanswered", "unfinished_turns", "redelivered")
    return {k: int(figures[k]) for k in ("histories_read", *keys)}


def code_mismatches(
    messages: list[Message], histories: dict[str, list[dict[str, Any]] | None], offers: list[Any]
) -> int:
    """Answers and history turns naming a code the ledger does not hold for that session and
    turn (an accepted code may be an earlier turn's)."""
    by_code = {o.code: o for o in offers}

    def wrong(session: str, turn: int | None, code: str | None, status: str | None) -> bool:
        if not code:
            return False
        row = by_code.get(code)
        if row is None or row.session_id != session:
            return True
        return status != "accepted" and row.turn != turn

    bad = sum(wrong(m.session, m.turn, m.code, m.status) for m in messages if m.answered)
    for session, history in histories.items():
        for h in history or []:
            bad += wrong(session, h["turn"], h.get("offer_code"), h.get("status"))
    return bad


async def ledger_check(database_url: str, data_dir: Path) -> tuple[dict[str, Any], list[Any]]:
    """The ledger figures and every offer, read in this process from the database."""
    settings = Settings(database_url=database_url, data_dir=data_dir)
    async with open_negotiator(Services(settings=settings)) as neg:
        figures = await aledger_figures(neg)
        offers = await asyncio.to_thread(neg.services.ledger().list)
    return figures, offers


# --------------------------------------------------------------------------- the trial


async def _traffic(
    workers: list[Worker], rounds: list[list[list[Message]]], concurrency: int, kill_at: float
) -> tuple[Traffic, dict[str, Any], dict[str, list[dict[str, Any]] | None], float]:
    messages = [m for session in rounds for rnd in session for m in rnd]
    limits = httpx.Limits(max_connections=concurrency + 16, max_keepalive_connections=concurrency)
    timeout = httpx.Timeout(120.0, connect=5.0)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as http:
        traffic = Traffic(http, workers, concurrency, deadline_s=180.0)
        killed: dict[str, Any] = {}
        done = asyncio.Event()
        start = time.monotonic()

        async def killer() -> None:
            victim = workers[0]
            target = math.ceil(kill_at * len(messages))
            while not done.is_set() and (traffic.answered < target or victim.in_flight == 0):
                await asyncio.sleep(0.005)
            if done.is_set():
                return
            killed.update(
                worker=victim.index,
                after_answers=traffic.answered,
                in_flight=victim.in_flight,
                at_s=round(time.monotonic() - start, 2),
            )
            os.kill(victim.proc.pid, signal.SIGKILL)
            victim.killed = True
            victim.down_until = math.inf

        kill = asyncio.create_task(killer())
        await asyncio.gather(*(traffic.session(s) for s in rounds))
        elapsed = time.monotonic() - start
        done.set()
        await kill
        sessions = {s[0][0].session: s[0][0].user for s in rounds}
        reads = await asyncio.gather(*(traffic.history(sid, u) for sid, u in sessions.items()))
        histories = dict(zip(sessions, reads, strict=True))
    return traffic, killed, histories, elapsed


def run(
    database_url: str,
    quick: bool = False,
    sessions: int | None = None,
    turns: int | None = None,
    workers: int = 2,
    concurrency: int = 32,
    latency_s: float = 0.2,
    lease_s: float = 5.0,
    hosts: Hosts = "auto",
    kill_at: float = 0.4,
) -> dict[str, Any]:
    """The trial on the (throwaway) database of ``database_url``; the figures."""
    sessions = sessions or (12 if quick else 100)
    turns = turns or (3 if quick else 5)
    if workers < 2:
        raise ValueError("the trial kills one worker: it needs at least 2")
    own = own_hostnames_work() if hosts == "auto" else hosts == "own"
    run_id = f"scale-{uuid.uuid4().hex[:6]}"
    rounds = plan(run_id, sessions, turns)
    messages = [m for session in rounds for rnd in session for m in rnd]
    with tempfile.TemporaryDirectory(prefix="sgr-scale-") as tmp:
        root = Path(tmp)
        generate(root / "check", users=10, seed=42, database_url=database_url)
        asyncio.run(_create_tables(database_url, root / "check"))
        started: list[Worker] = []
        with fake_llm(latency_s, root / "fake_llm.log") as llm_url:
            env = worker_env(database_url, llm_url, lease_s)
            try:
                for i in range(workers):
                    name = f"sgr-worker-{i}" if own else None
                    proc, port, logfile = start_worker(i, root, env, name)
                    url = f"http://127.0.0.1:{port}"
                    started.append(Worker(i, url, proc, logfile, name or os.uname().nodename))
                for w in started:
                    wait_healthy(w.url, w.proc, w.log, 120.0)
                traffic, killed, histories, elapsed = asyncio.run(
                    _traffic(started, rounds, concurrency, kill_at)
                )
            finally:
                for w in started:
                    stop(w.proc)
            logs = [w.log.read_text(errors="replace") for w in started]
        figures, offers = asyncio.run(ledger_check(database_url, root / "check"))
        from stores.backend import reset_backends

        reset_backends()
    seen = check_histories(messages, histories)
    latencies = [m.latency_s for m in messages if m.latency_s is not None]
    answered = sum(m.answered for m in messages)
    return {
        "backend": "postgres",
        "workers": workers,
        "worker_hosts": "own hostnames (unshare --uts)" if own else "one host",
        "sessions": sessions,
        "turns_per_session": turns + 1,
        "concurrency": concurrency,
        "llm_latency_s": latency_s,
        "session_lease_s": lease_s,
        "turns_requested": len(messages),
        "turns_completed": answered,
        "lost": seen["lost_acknowledged"] + seen["unanswered"],
        **seen,
        "killed": killed,
        "recovered_turns": sum(text.count(RECOVERED) for text in logs),
        "requests": traffic.counts["requests"],
        "busy_409": traffic.counts["busy_409"],
        "connection_errors": traffic.counts["connection_errors"],
        "server_errors": sum(n for k, n in traffic.counts.items() if k.startswith("http_5")),
        "fallback_replies": traffic.counts["fallback_replies"],
        "duplicate_codes": figures["duplicate_keys"] + figures["extra_redeemable"],
        "code_mismatches": code_mismatches(messages, histories, offers),
        "orphan_codes": figures["orphan_codes"],
        "offers": len(offers),
        "ledger_violations": figures["violations"],
        "seconds": round(elapsed, 1),
        "turns_per_s": round(answered / elapsed, 1) if elapsed else 0.0,
        "latency_s": {
            "p50": _quantile(latencies, 0.5),
            "p99": _quantile(latencies, 0.99),
            "max": _quantile(latencies, 1.0),
        },
        "error_samples": traffic.errors[:8],
    }


async def _create_tables(database_url: str, data_dir: Path) -> None:
    """Checkpoint and store tables before the workers start (they would race to make them)."""
    settings = Settings(database_url=database_url, data_dir=data_dir)
    async with open_negotiator(Services(settings=settings)):
        pass


@contextlib.contextmanager
def throwaway_database() -> Iterator[str]:
    """A fresh database on a throwaway server (``graph.ops.postgres``: ``SGR_TEST_DATABASE_URL``'s
    server, else ``initdb`` in a temp dir), dropped afterwards with the server."""
    from graph.ops.postgres import PostgresServer

    server = PostgresServer().start()
    try:
        url = server.create_database()
        try:
            yield url
        finally:
            from stores.backend import reset_backends

            reset_backends()
            server.drop_database(url)
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    """Run the trial; print its figures (JSON)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="12 sessions x 3 turns")
    ap.add_argument("--database-url", default=None, help="a throwaway postgresql:// database")
    ap.add_argument("--sessions", type=int, default=None, help="default 100 (quick: 12)")
    ap.add_argument("--turns", type=int, default=None, help="default 5 (quick: 3), +1 double")
    ap.add_argument("--workers", type=int, default=2, help="serve processes (machines)")
    ap.add_argument("--concurrency", type=int, default=32, help="requests in flight at most")
    ap.add_argument("--latency", type=float, default=0.2, help="the fake LLM's, seconds")
    ap.add_argument("--lease-s", type=float, default=5.0, help="SGR_SESSION_LEASE_S of workers")
    ap.add_argument("--hosts", choices=["auto", "own", "shared"], default="auto")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    kwargs: dict[str, Any] = {
        "quick": args.quick,
        "sessions": args.sessions,
        "turns": args.turns,
        "workers": args.workers,
        "concurrency": args.concurrency,
        "latency_s": args.latency,
        "lease_s": args.lease_s,
        "hosts": args.hosts,
    }
    if args.database_url:
        figures = run(args.database_url, **kwargs)
    else:
        with throwaway_database() as url:
            figures = run(url, **kwargs)
    print(json.dumps(figures, indent=2))
    return 0 if figures["lost"] == 0 and not figures["ledger_violations"] else 1


if __name__ == "__main__":
    sys.exit(main())
