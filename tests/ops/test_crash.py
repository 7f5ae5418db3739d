"""Crash trials (reliability): kill -9 mid-turn and os._exit after a ledger write, then check.

The full run (24 trials) is ``uv run python -m graph.ops.bench.reliability_crash
[--database-url URL]``; this runs a few on each backend so CI stays quick, and asserts the same
invariants.
"""

from __future__ import annotations

import pytest

from graph.ops.bench.reliability_crash import run

pytestmark = pytest.mark.reliability


def test_crashed_turns_lose_nothing_and_leave_no_stray_code(backend_url) -> None:
    figures = run(trials=4, latency_s=0.3, database_url=backend_url)
    assert figures["backend"] == ("postgres" if backend_url else "sqlite")
    assert figures["trials"] == 4
    assert figures["exit_after_ledger_write"] + figures["killed_mid_turn"] >= 2, figures
    assert figures["history_failures"] == 0
    assert figures["next_turn_failures"] == 0
    assert figures["turns_lost"] == 0
    assert figures["duplicate_codes"] == 0
    assert figures["orphan_codes"] == 0
    assert figures["ledger_violations"] == []


class _Crash(BaseException):
    """Stands for the process dying (not an ``Exception``: nothing may handle it)."""


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_turn_cut_after_its_ledger_write_is_finished_by_the_next_turn(
    settings, monkeypatch
) -> None:
    """Defect 6: the ledger committed, the process died before the turn's checkpoint."""
    from graph.services import Services
    from graph.session import open_negotiator
    from stores.ledger import OfferLedger
    from tests.fakes import price, route, scripted_llm

    propose = OfferLedger.propose

    def propose_then_die(self, *args, **kwargs):
        propose(self, *args, **kwargs)
        raise _Crash

    monkeypatch.setattr(OfferLedger, "propose", propose_then_die)
    llm = scripted_llm(route("negotiate"), price(6))
    async with open_negotiator(Services.with_llm(llm, settings)) as neg:
        with pytest.raises(_Crash):
            await neg.run_turn("cut", "user_101", "a discount?")
    monkeypatch.undo()

    services = Services.with_llm(scripted_llm(route("respond")), settings)
    async with open_negotiator(services) as neg:
        nxt = await neg.run_turn("cut", "user_101", "opening hours?")
        history = await neg.history("cut")
        ledger = neg.services.ledger()
        offers = ledger.list("user_101")
    assert nxt.turn == 2 and nxt.reply
    assert [h["customer"] for h in history] == ["a discount?", "opening hours?"]
    first = history[0]
    assert first["reply"] and first["offer_code"] and first["offer_code"] in first["reply"]
    assert [(o.code, o.session_id, o.turn, o.status) for o in offers] == [
        (first["offer_code"], "cut", 1, "proposed")
    ]  # the code the customer now reads is the one the ledger wrote, issued once


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_turn_cut_after_its_last_node_before_the_checkpoint_is_finished(
    any_settings,
) -> None:
    """The scale trial's kill -9: the turn's last node (here ``offer``, which ends the turn
    with the reply) stored its writes, the process died before the step's checkpoint. ``next``
    is empty then (the writes wait as the snapshot's tasks): the next turn must apply them, not
    start from the checkpoint and drop the reply."""
    from langchain_core.messages import AIMessage

    from graph.services import Services
    from graph.session import open_negotiator
    from tests.fakes import price, route, scripted_llm

    llm = scripted_llm(route("negotiate"), price(6))
    async with open_negotiator(Services.with_llm(llm, any_settings)) as neg:
        saver = neg.app.checkpointer
        put_writes, put = saver.aput_writes, saver.aput
        replied = False

        async def writes_then_note(config, writes, task_id, task_path=""):
            nonlocal replied
            await put_writes(config, writes, task_id, task_path)
            values = [v for ch, v in writes if ch == "messages"]
            flat = [m for v in values for m in (v if isinstance(v, list) else [v])]
            replied = replied or any(isinstance(m, AIMessage) for m in flat)

        async def die_after_the_reply(config, checkpoint, metadata, new_versions):
            if replied:
                raise _Crash
            return await put(config, checkpoint, metadata, new_versions)

        saver.aput_writes, saver.aput = writes_then_note, die_after_the_reply
        with pytest.raises(_Crash):
            await neg.run_turn("cut2", "user_101", "a discount?")
        saver.aput_writes, saver.aput = put_writes, put
        snap = await neg.app.aget_state({"configurable": {"thread_id": "cut2"}})
        assert snap.next == () and [t.name for t in snap.tasks] == ["offer"]  # the cut

    services = Services.with_llm(scripted_llm(route("respond")), any_settings)
    async with open_negotiator(services) as neg:
        nxt = await neg.run_turn("cut2", "user_101", "opening hours?")
        history = await neg.history("cut2")
        offers = neg.services.ledger().list("user_101")
    assert nxt.turn == 2 and nxt.reply
    assert [h["customer"] for h in history] == ["a discount?", "opening hours?"]
    first = history[0]
    assert first["reply"] and first["offer_code"] and first["offer_code"] in first["reply"]
    assert [(o.code, o.session_id, o.turn) for o in offers] == [(first["offer_code"], "cut2", 1)]
