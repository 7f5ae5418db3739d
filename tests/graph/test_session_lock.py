"""One turn per session at a time (defect 4): threads, processes, dead holders."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from graph.ops.bench.reliability_fakes import http_responder, schema_llm
from graph.ops.fake_openai import FakeOpenAIServer
from graph.services import Services
from graph.session import SessionBusyError, TurnResult, open_negotiator
from graph.settings import Settings
from stores.leases import SessionLeases


def _wait_for_lease(db: Path, session: str, timeout: float = 30.0) -> None:
    leases = SessionLeases(db)
    try:
        deadline = time.monotonic() + timeout
        while leases.holder(session) is None:
            assert time.monotonic() < deadline, "the first turn never took the lease"
            time.sleep(0.02)
    finally:
        leases.close()


def _turn_in_thread(
    settings: Settings, session: str, text: str, out: dict[str, Any], latency: float
) -> threading.Thread:
    def run() -> None:
        services = Services.with_llm(schema_llm(settings, latency_s=latency), settings)

        async def turn() -> TurnResult:
            async with open_negotiator(services) as neg:
                return await neg.run_turn(session, "user_101", text)

        try:
            out[text] = asyncio.run(turn())
        except Exception as e:  # collected and asserted by the test
            out[text] = e

    t = threading.Thread(target=run)
    t.start()
    return t


def _history(settings: Settings, session: str) -> list[dict[str, Any]]:
    services = Services.with_llm(schema_llm(settings), settings)

    async def read() -> list[dict[str, Any]]:
        async with open_negotiator(services) as neg:
            return await neg.history(session)

    return asyncio.run(read())


def test_lease_is_exclusive_and_released(tmp_path: Path) -> None:
    leases = SessionLeases(tmp_path / "c.sqlite")
    a, b = leases.new_holder(), leases.new_holder()
    assert leases.acquire("s", a, 60) is None
    busy = leases.acquire("s", b, 60)
    assert busy is not None and busy.holder == a and busy.pid == os.getpid()
    assert leases.acquire("other", b, 60) is None  # per session
    assert leases.release("s", b) is False  # not b's to release
    assert leases.release("s", a) is True
    assert leases.acquire("s", b, 60) is None


def test_expired_or_dead_holder_does_not_block(tmp_path: Path) -> None:
    leases = SessionLeases(tmp_path / "c.sqlite")
    assert leases.acquire("s", "old", 1.0, now=1000.0) is None
    assert leases.acquire("s", "new", 60, now=1000.5) is not None  # still held
    assert leases.acquire("s", "new", 60, now=1001.5) is None  # expired
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with sqlite3.connect(tmp_path / "c.sqlite") as conn:  # a holder killed mid-turn
        conn.execute(
            "UPDATE session_leases SET holder = 'killed', pid = ?, expires_at = ? "
            "WHERE session_id = 's'",
            (dead.pid, time.time() + 3600),
        )
    assert leases.acquire("s", "next", 60) is None


def test_second_turn_of_a_busy_session_is_refused_not_lost(settings: Settings) -> None:
    out: dict[str, Any] = {}
    # the first turn holds the session for one 5 s model call ("first message" asks for no
    # concession: router only), long enough for the second to start on a loaded machine
    first = _turn_in_thread(settings, "busy", "first message", out, latency=5.0)
    _wait_for_lease(Path(str(settings.checkpoint_db)), "busy")
    second = _turn_in_thread(settings, "busy", "second message", out, latency=0.0)
    second.join(30)
    first.join(30)
    assert isinstance(out["second message"], SessionBusyError)
    assert "busy" in str(out["second message"])
    assert isinstance(out["first message"], TurnResult) and out["first message"].turn == 1
    history = _history(settings, "busy")
    assert [h["customer"] for h in history] == ["first message"]
    assert all(h["reply"] for h in history)


def test_waiting_turns_run_one_after_the_other(settings: Settings) -> None:
    s = settings.model_copy(update={"session_wait_s": 30.0})
    out: dict[str, Any] = {}
    threads = [_turn_in_thread(s, "queue", f"message {i}", out, latency=0.3) for i in range(3)]
    for t in threads:
        t.join(60)
    results = [out[f"message {i}"] for i in range(3)]
    assert all(isinstance(r, TurnResult) for r in results), results
    assert sorted(r.turn for r in results) == [1, 2, 3]  # never two turns numbered N+1
    history = _history(s, "queue")
    assert sorted(h["customer"] for h in history) == [f"message {i}" for i in range(3)]
    assert all(h["reply"] for h in history)


@pytest.fixture
def slow_cli(tmp_path: Path):
    from stores.seed import generate

    data = tmp_path / "data"
    generate(data, users=10, seed=42)
    gate = threading.Event()  # the model answers only once the test opens it
    answer = http_responder(0.0)

    def gated(body: dict[str, Any]) -> dict[str, Any]:
        gate.wait(60)
        return answer(body)

    with FakeOpenAIServer(version="0.32.0", responder=gated) as srv:
        base = {k: v for k, v in os.environ.items() if not k.startswith("SGR_")}
        env = {
            **base,
            "SGR_DATA_DIR": str(data),
            "SGR_LLM_BASE_URL": srv.url,
            "SGR_VERIFY_CONSTRAINT": "false",
            "SGR_APPROVAL_AMOUNT": "100000",
        }
        yield env, data, gate
        gate.set()


def _cli_args(*args: str) -> list[str]:
    return [sys.executable, "-m", "graph.ops.cli", *args]


def test_second_process_gets_session_busy_exit_2(slow_cli) -> None:
    env, data, gate = slow_cli
    turn = ("turn", "--user", "user_101", "--session", "p1", "--json", "--message")
    first = subprocess.Popen(
        _cli_args(*turn, "first"), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        _wait_for_lease(data / "checkpoints.sqlite", "p1")
        second = subprocess.run(
            _cli_args(*turn, "second"), env=env, capture_output=True, text=True, timeout=120
        )
        gate.set()
        out, err = first.communicate(timeout=120)
    finally:
        first.kill()
    assert second.returncode == 2
    assert second.stdout == ""
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and "busy" in lines[0], second.stderr
    assert first.returncode == 0, err
    assert json.loads(out)["turn"] == 1
    hist = subprocess.run(
        _cli_args("history", "--session", "p1", "--json"),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    turns = json.loads(hist.stdout)
    assert [t["customer"] for t in turns] == ["first"] and turns[0]["reply"]


async def test_the_lease_outlives_a_blocked_event_loop(settings: Settings) -> None:
    """Renewals come from a thread: a loop busy for longer than the lease does not let another
    turn of the session in (the scale trial saw renewals over a second late under load)."""
    s = settings.model_copy(update={"session_lease_s": 0.6})
    async with open_negotiator(Services.with_llm(schema_llm(s), s)) as neg:
        async with neg.turn_lock("busy-loop"):
            time.sleep(1.5)  # the event loop blocked for 2.5 lifetimes of the lease
            other = neg.leases.new_holder()
            assert neg.leases.acquire("busy-loop", other, 0.6) is not None  # still held
        assert neg.leases.holder("busy-loop") is None  # released at the end of the block


@pytest.mark.parametrize("how", ["lapsed", "lost"])
def test_a_turn_whose_lease_lapsed_stores_nothing_more(any_settings: Settings, how: str) -> None:
    """A worker frozen past its lease (or whose renewal found another holder) must not write
    on: another worker may be finishing the same turn. The next turn finishes it, once."""
    from graph.session import LeaseLostError
    from stores.leases import LeaseHolder
    from tests.fakes import price, route, scripted_llm

    box: dict[str, Any] = {}

    def freeze(schema: dict[str, Any], messages: list[Any]) -> Any:
        beat = box["neg"].holding("s-fenced")
        assert beat is not None and beat.held()
        if how == "lapsed":
            beat.renewed -= 10 * beat.ttl_s  # as if this process had been frozen
        else:
            beat.lost = LeaseHolder("other", "elsewhere", 1, time.time() + 30)
        return price(12)

    # the cut turn's pricing is asked again when the next turn finishes it first
    llm = scripted_llm(route("negotiate"), freeze, price(12), route("respond", reply="Sure."))
    services = Services.with_llm(llm, any_settings)

    async def run() -> tuple[list[dict[str, Any]], Any]:
        async with open_negotiator(services) as neg:
            box["neg"] = neg
            with pytest.raises(LeaseLostError, match="lease lapsed"):
                await neg.run_turn("s-fenced", "user_100", "Any discount?")
            assert neg.holding("s-fenced") is None  # released
            # nothing after the router was stored: no offer, the turn still unfinished
            assert services.ledger().list("user_100") == []
            assert (await neg.app.aget_state({"configurable": {"thread_id": "s-fenced"}})).next
            await neg.run_turn("s-fenced", "user_100", "And now?")
            return await neg.history("s-fenced"), services.ledger().list("user_100")

    history, offers = asyncio.run(run())
    assert [h["customer"] for h in history] == ["Any discount?", "And now?"]
    assert all(h["reply"] for h in history)
    assert len(offers) == 1 and offers[0].turn == 1  # the cut turn's offer, issued once
