"""Bounded growth (defect 10): SGR_MAX_TURNS, audit in its table, linear checkpoint storage."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from graph.services import Services
from graph.session import open_negotiator
from graph.settings import Settings
from tests.fakes import price, route, scripted_llm


def _db_bytes(path: Path) -> int:
    """Size of the checkpoint DB with its WAL folded in."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return path.stat().st_size


def _replies(turns: int) -> list[dict]:
    out: list[dict] = []
    for i in range(turns):
        if i % 2:
            out.append(route("respond", reply="We are open nine to five, every day of the week."))
        else:
            out += [route("negotiate"), price(3)]
    return out


async def test_checkpoints_grow_linearly_and_stay_small(settings: Settings) -> None:
    s = settings.model_copy(update={"max_turns": 100, "max_rounds": 100})
    services = Services.with_llm(scripted_llm(*_replies(40)), s)
    sizes: dict[int, int] = {}
    async with open_negotiator(services) as neg:
        for i in range(40):
            text = (
                f"Message {i}: what about a better discount today?"
                if i % 2 == 0
                else f"Message {i}: when do you open on Sunday?"
            )
            await neg.run_turn("long", "user_101", text)
            if i + 1 in (10, 20, 40):
                sizes[i + 1] = _db_bytes(Path(str(s.checkpoint_db)))
        state = await neg.state("long")
        trail = await neg.audit("long")
        history = await neg.history("long")
    assert sizes[40] < 2_000_000, sizes
    # linear: 4x the turns, about 4x the bytes (quadratic growth gave 14x: 0.46 -> 6.5 MB)
    assert sizes[40] / sizes[10] < 6, sizes
    assert (sizes[40] - sizes[20]) / (sizes[20] - sizes[10]) < 3, sizes
    assert len(history) == 40 and all(h["reply"] for h in history)
    assert len(state["messages"]) == 80  # the conversation is whole in the state
    assert {r["turn"] for r in state["audit"]} == {40}  # only the current turn's records
    assert len(trail) == 60 and [r["turn"] for r in trail[-1:]] == [40]


async def test_a_session_is_closed_politely_after_max_turns(settings: Settings) -> None:
    s = settings.model_copy(update={"max_turns": 2})
    llm = scripted_llm(route("respond"), route("respond"))
    async with open_negotiator(Services.with_llm(llm, s)) as neg:
        first = await neg.run_turn("short", "user_101", "hi")
        second = await neg.run_turn("short", "user_101", "hi again")
        closed = await neg.run_turn("short", "user_101", "and again?")
        history = await neg.history("short")
    assert [first.turn, second.turn] == [1, 2]
    assert closed.status == "closed" and "limit of 2" in (closed.reply or "")
    assert len(llm.chat.calls) == 2  # no LLM call once closed
    assert [h["status"] for h in history] == [None, None, "closed"]


def test_graph_itself_closes_a_session_past_max_turns(make_app) -> None:
    """Studio / SDK runs do not pass through the session runner: the router closes too."""
    app = make_app(scripted_llm(route("respond")), max_turns=1)
    app.turn("hi")
    out = app.turn("still there?")
    assert out["status"] == "closed" and out["turn"] == 2
    assert "limit of 1" in out["messages"][-1].content
    assert len(app.chat.calls) == 1


def test_cli_audit_reads_the_append_only_table(settings: Settings) -> None:
    from graph.ops.cli import main

    llm = scripted_llm(route("negotiate"), price(4), route("respond"))

    async def run() -> tuple:
        async with open_negotiator(Services.with_llm(llm, settings)) as neg:
            r1 = await neg.run_turn("aud", "user_101", "discount?")
            return r1, await neg.run_turn("aud", "user_101", "opening hours?")

    r1, r2 = asyncio.run(run())
    assert [x["node"] for x in r1.audit] == ["router", "pricing"]
    assert r1.audit[1]["policy"]["final_percent"] == 4
    assert [x["node"] for x in r2.audit] == ["router"]
    with sqlite3.connect(settings.ledger_db) as conn:
        rows = conn.execute(
            "SELECT turn, node FROM audit_log WHERE session_id = 'aud' ORDER BY id"
        ).fetchall()
    assert rows == [(1, "router"), (1, "pricing"), (2, "router")]
    import os

    os.environ["SGR_DATA_DIR"] = str(settings.data_dir)
    try:
        from graph.settings import get_settings

        get_settings.cache_clear()
        assert main(["audit", "--session", "aud", "--json"]) == 0
    finally:
        del os.environ["SGR_DATA_DIR"]
        get_settings.cache_clear()
