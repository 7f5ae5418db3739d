"""Session leases and rate limits on both backends (the checkpoint DB, or Postgres).

Tests that take ``backend_url`` run on SQLite and on a fresh Postgres database. Leases driven
through ``graph.session`` are in ``test_session_lock``.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from stores.leases import SessionLeases
from stores.ratelimits import RateLimits


def _side_target(tmp_path: Path, backend_url: str | None) -> Path | str:
    """Where leases and rate limits live: the checkpoint DB, or the database."""
    return backend_url or tmp_path / "checkpoints.sqlite"


def _raw(target: Path | str, statement: str, params: tuple) -> None:
    """One statement on the store's tables, behind the store's back (``?`` placeholders)."""
    if isinstance(target, Path):
        with sqlite3.connect(target) as conn:
            conn.execute(statement, params)
        return
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute(statement.replace("?", "%s"), params)


# ----------------------------------------------------------------------------------- leases


def test_lease_is_exclusive_released_and_expires(tmp_path: Path, backend_url: str | None) -> None:
    leases = SessionLeases(_side_target(tmp_path, backend_url))
    try:
        a, b = leases.new_holder(), leases.new_holder()
        assert leases.acquire("s", a, 60) is None
        busy = leases.acquire("s", b, 60)
        assert busy is not None and busy.holder == a and busy.pid == os.getpid()
        assert leases.acquire("s", a, 60) is None  # own lease: taken again
        assert leases.acquire("other", b, 60) is None  # per session
        assert leases.release("s", b) is False  # not b's to release
        assert leases.release("s", a) is True
        assert leases.holder("s") is None
        assert leases.acquire("s", b, 60) is None
        assert leases.acquire("t", "old", 1.0, now=1000.0) is None
        assert leases.acquire("t", "new", 60, now=1000.5) is not None  # still held
        assert leases.acquire("t", "new", 60, now=1001.5) is None  # expired
        assert leases.holder("t").holder == "new"
    finally:
        leases.close()


def test_renew_is_a_heartbeat_of_the_holder_only(tmp_path: Path, backend_url: str | None) -> None:
    leases = SessionLeases(_side_target(tmp_path, backend_url))
    try:
        assert leases.acquire("s", "a", 10, now=1000.0) is None
        assert leases.renew("s", "a", 10, now=1008.0)  # now held until 1018
        assert leases.acquire("s", "b", 10, now=1012.0).holder == "a"  # past the first TTL
        assert not leases.renew("s", "b", 10, now=1012.0)  # not b's
        assert leases.holder("s").expires_at == 1018.0
        assert leases.acquire("s", "b", 10, now=1018.0) is None  # no heartbeat: it lapses
        assert not leases.renew("s", "a", 10, now=1019.0)  # a lost it: told so
        assert leases.release("s", "b") and not leases.renew("s", "b", 10)
    finally:
        leases.close()


def test_a_dead_holder_on_this_host_is_replaced_by_one_taker(
    tmp_path: Path, backend_url: str | None
) -> None:
    target = _side_target(tmp_path, backend_url)
    leases = SessionLeases(target)
    try:
        assert leases.acquire("s", "killed", 3600) is None
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        _raw(target, "UPDATE session_leases SET pid = ? WHERE session_id = 's'", (dead.pid,))
        barrier = threading.Barrier(8)

        def take(i: int) -> bool:
            mine = SessionLeases(target)  # own connection: a taker of another process
            try:
                barrier.wait(timeout=30)
                return mine.acquire("s", f"taker-{i}", 60) is None
            finally:
                mine.close()

        with ThreadPoolExecutor(max_workers=8) as pool:
            won = list(pool.map(take, range(8)))
        assert won.count(True) == 1
        assert leases.holder("s").holder == f"taker-{won.index(True)}"
    finally:
        leases.close()


def test_heartbeat_keeps_the_lease_until_stopped(tmp_path: Path, backend_url: str | None) -> None:
    leases = SessionLeases(_side_target(tmp_path, backend_url))
    try:
        assert leases.acquire("s", "a", 0.6) is None
        beat = leases.heartbeat("s", "a", 0.6)
        time.sleep(1.5)  # 2.5 lifetimes: renewed from its own thread meanwhile
        busy = leases.acquire("s", "b", 0.6)
        assert busy is not None and busy.holder == "a" and beat.lost is None
        beat.stop()
        assert leases.release("s", "a")
        time.sleep(0.5)  # a stopped heartbeat never takes the released lease again
        assert leases.holder("s") is None
    finally:
        leases.close()


# ------------------------------------------------------------------------------ rate limits


def test_rate_limit_counts_a_fixed_window(tmp_path: Path, backend_url: str | None) -> None:
    limits = RateLimits(_side_target(tmp_path, backend_url))
    try:
        assert [limits.hit("user:a", 60, 3, now=120.0 + i) for i in range(5)] == [
            True,
            True,
            True,
            False,
            False,
        ]
        assert limits.hit("user:b", 60, 3, now=125.0)  # per key
        assert limits.hit("user:a", 60, 3, now=180.0)  # a new window starts over
        assert limits.hit("user:a", 60, 3, now=179.0)  # a lagging clock counts into it
        assert limits.hit("user:a", 60, 3, now=181.0)
        assert not limits.hit("user:a", 60, 3, now=182.0)
        assert not limits.hit("user:c", 60, 0, now=1.0)  # limit 0: nothing passes
        assert limits.prune(now=240.0) == 3 and limits.hit("user:a", 60, 1, now=241.0)
        with pytest.raises(ValueError):
            limits.hit("user:a", 0, 3)
    finally:
        limits.close()


def test_rate_limit_is_shared_by_every_connection(tmp_path: Path, backend_url: str | None) -> None:
    target = _side_target(tmp_path, backend_url)
    RateLimits(target).close()  # the table exists before the race
    now = time.time()

    def hits(_: int) -> list[bool]:
        mine = RateLimits(target)  # own connection, as another worker's
        try:
            return [mine.hit("api", 3600, 25, now=now) for _ in range(10)]
        finally:
            mine.close()

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = [ok for batch in pool.map(hits, range(4)) for ok in batch]
    assert results.count(True) == 25 and len(results) == 40
