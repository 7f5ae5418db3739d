"""Whole-graph paths and multi-turn sessions on SQLite checkpoints reopened by a new saver."""

from __future__ import annotations

import asyncio

from graph.services import Services
from graph.session import open_negotiator
from tests.fakes import price, route, scripted_llm


def test_every_path_visits_the_expected_nodes(make_app) -> None:
    app = make_app(
        scripted_llm(
            route("respond"),
            route("negotiate"),
            price(5),
            route("accept_offer"),
            route("negotiate"),
        )
    )
    cfg = {"configurable": {"thread_id": "paths"}}
    from langchain_core.messages import HumanMessage

    from graph.state import NegotiationContext

    def nodes_of(text: str, user: str = "user_101") -> list[str]:
        async def run() -> list[str]:
            ctx = NegotiationContext(user_id=user)
            stream = app.graph.astream(
                {"messages": [HumanMessage(content=text)]}, cfg, context=ctx, stream_mode="updates"
            )
            return [next(iter(chunk)) async for chunk in stream]

        return asyncio.run(run())

    assert nodes_of("hours?") == ["router"]
    assert nodes_of("discount?") == ["router", "retrieval", "pricing", "offer"]
    assert nodes_of("deal") == ["router", "accept"]
    # unknown user: routed to negotiate, retrieval fails over to respond
    cfg = {"configurable": {"thread_id": "paths-unknown"}}
    assert nodes_of("discount?", user="user_404") == ["router", "retrieval"]


async def test_multiturn_session_survives_reopening_the_checkpointer(any_settings) -> None:
    settings = any_settings
    turns = [
        ("Give me a discount please.", [route("negotiate"), price(4)]),
        ("That's too little, I need 25%.", [route("negotiate", requested_percent=25), price(7)]),
        ("Alright, I accept.", [route("accept_offer")]),
    ]
    results = []
    for text, replies in turns:  # a new saver (a new process) per turn
        async with open_negotiator(Services.with_llm(scripted_llm(*replies), settings)) as neg:
            results.append(await neg.run_turn("multi", "user_101", text))
    assert [r.route for r in results] == ["negotiate", "negotiate", "accept_offer"]
    assert [r.turn for r in results] == [1, 2, 3]
    assert results[1].offer["discount_percent"] == 7
    assert results[2].status == "accepted" and results[2].offer["code"] == results[1].offer["code"]
    async with open_negotiator(Services.with_llm(scripted_llm(), settings)) as neg:
        history = await neg.history("multi")
        state = await neg.state("multi")
        trail = await neg.audit("multi")
    assert [h["customer"] for h in history] == [t for t, _ in turns]
    assert [h["route"] for h in history] == ["negotiate", "negotiate", "accept_offer"]
    assert [h["status"] for h in history] == ["proposed", "proposed", "accepted"]
    assert history[1]["offer_code"] == results[1].offer["code"]
    assert all(h["reply"] for h in history)
    assert [o["discount_percent"] for o in state["offers"]] == [4, 7]
    assert state["pricing_rounds"] == 2
    # one record per SGR call in the append-only table; the checkpoint keeps the last turn's
    assert [(r["turn"], r["node"]) for r in trail] == [
        (1, "router"),
        (1, "pricing"),
        (2, "router"),
        (2, "pricing"),
        (3, "router"),
    ]
    assert [(r["turn"], r["node"]) for r in state["audit"]] == [(3, "router")]


def test_new_session_starts_from_the_standing_offer(make_app) -> None:
    app = make_app(scripted_llm(route("negotiate"), price(6), route("negotiate"), price(3)))
    app.turn("discount?", user="user_101", session="a")
    out = app.turn("discount?", user="user_101", session="b")
    assert "6%" in app.chat.calls[3]["messages"][0].content  # pricing knows the standing offer
    assert "can't go beyond 6%" in out["messages"][-1].content
    live = [o for o in app.services.ledger().list("user_101") if o.status == "proposed"]
    assert len(live) == 1 and live[0].discount_percent == 6


def test_accepting_an_expired_offer_is_refused(make_app) -> None:
    # an expired offer is not redeemable: the router is offered no accept_offer branch
    replies = [route("negotiate"), price(6), route("accept_offer"), route("respond", reply="ok")]
    app = make_app(scripted_llm(*replies), offer_ttl_hours=1e-9)
    app.turn("discount?", user="user_101")
    out = app.turn("deal", user="user_101")
    assert out["route"] == "respond" and out.get("status") != "accepted"
    assert "accept_offer" in out["audit"][-1]["errors"][0]  # the branch was not in the schema
    assert app.services.ledger().list("user_101")[0].status == "expired"
