"""The HTTP service under load: ``discount-manager serve --workers N`` on either backend.

A fixed-latency fake LLM server, a seeded data dir (and, for ``postgres``, a throwaway
database loaded with the same customers), the service in a process group of its own, and an
async client running ``sessions`` concurrent sessions of ``turns`` turns each over loopback,
every turn a ``POST /v1/sessions/{id}/turns`` with the customer's shopper token. Rows:
``sessions``, ``workers``, ``backend``, ``turns_per_s``, ``turn_p50_s``, ``turn_p99_s``,
``errors`` (plus the ideal, as in the in-process levels).
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from graph.api.auth import shopper_token
from graph.ops.bench.perf.common import MESSAGE, bench_settings, say
from graph.ops.bench.perf.concurrency import Sample, summarise
from graph.ops.processes import child_env, free_port, stop, wait_healthy
from stores.seed import generate

SECRET = "bench-shop-secret-0123456789abcdef0123"
START_TIMEOUT_S = 90.0


@contextlib.contextmanager
def service(
    work: Path, llm_url: str, data_dir: Path, workers: int, database_url: str | None
) -> Iterator[str]:
    """``discount-manager serve --no-local-llm --workers N`` on a free port; its URL."""
    port = free_port()
    log = work / f"serve-{workers}-{'pg' if database_url else 'sqlite'}-{port}.log"
    env = child_env(
        SGR_DATA_DIR=str(data_dir),
        SGR_CHECKPOINT_DB=str(data_dir / f"ckpt-http-{port}.sqlite"),
        SGR_LLM_BASE_URL=llm_url,
        SGR_LLM_MODEL="bench-model",
        SGR_STRUCTURED_OUTPUT="structured_outputs",
        SGR_VERIFY_CONSTRAINT="false",
        SGR_SHOP_SECRET=SECRET,
        SGR_MANAGER_TOKENS="bench:bench-manager-token",
        SGR_SESSION_RATE_LIMIT="100000",
        SGR_APPROVAL_PERCENT="100",
        SGR_APPROVAL_AMOUNT="1000000000",
        **({"SGR_DATABASE_URL": database_url} if database_url else {}),
    )
    cmd = [sys.executable, "-m", "graph.ops.cli", "serve", "--no-local-llm"]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, log, START_TIMEOUT_S)
        yield url
    finally:
        stop(proc)


async def _drive(url: str, users: list[str], turns: int) -> list[Sample]:
    settings = bench_settings(Path("."), shop_secret=SECRET)
    samples: list[Sample] = []
    limits = httpx.Limits(max_connections=len(users) + 8, max_keepalive_connections=len(users))
    async with httpx.AsyncClient(base_url=url, timeout=120.0, limits=limits) as client:

        async def session(user: str) -> None:
            sid = f"h-{uuid.uuid4().hex[:12]}"
            headers = {"Authorization": f"Bearer {shopper_token(settings, user, 3600)}"}
            for _ in range(turns):
                start = time.time()
                try:
                    r = await client.post(
                        f"/v1/sessions/{sid}/turns", json={"message": MESSAGE}, headers=headers
                    )
                    ok = r.status_code == 200 and r.json().get("error") is None
                except httpx.HTTPError:
                    ok = False
                samples.append((start, time.time(), ok))

        await asyncio.gather(*(session(u) for u in users))
    return samples


def prepare_postgres(data_dir: Path, users: int, database_url: str) -> None:
    """Seed the data dir again with the same ``users`` (seed 42), loading the database too."""
    generate(data_dir, users=users, seed=42, database_url=database_url)


def run_http(
    work: Path,
    llm_url: str,
    data_dir: Path,
    users: list[str],
    turns: int,
    latency: float,
    workers: int,
    database_url: str | None,
) -> dict[str, Any]:
    """One level through the HTTP service; the row."""
    backend = "postgres" if database_url else "sqlite"
    with service(work, llm_url, data_dir, workers, database_url) as url:
        samples = asyncio.run(_drive(url, users, turns))
    return {**summarise(samples, len(users), latency), "workers": workers, "backend": backend}


def level_label(row: dict[str, Any]) -> str:
    """``200 sessions, 2 workers, postgres``."""
    return f"{row['sessions']} sessions, {row['workers']} workers, {row['backend']}"


def say_row(row: dict[str, Any]) -> None:
    """The progress line of a finished row."""
    say(
        f"  {level_label(row)}: {row['turns_per_s']:.1f} turns/s, p50 {row['turn_p50_s']:.2f} s,"
        f" p99 {row['turn_p99_s']:.2f} s, {row['errors']} errors"
    )
