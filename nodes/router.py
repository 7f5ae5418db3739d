"""Router node (SGR Routing): analyse the customer's message, then pick one action.

The union of actions is built from the state each turn (``allowed_actions``) and a
``negotiate`` can only quote the customer's own words (``nodes.schemas``); the code then
checks that the decision is what the message says (``nodes.grounding``): an ungrounded
``negotiate`` or ``accept_offer`` is demoted. Every route is in the return type.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, Literal

from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from langgraph.runtime import Runtime
from langgraph.types import Command, Overwrite

from graph.budget import model_budget
from graph.services import Services
from graph.settings import Settings
from graph.state import NegotiationContext, NegotiationState, OfferData
from graph.validation import message_problem
from nodes.grounding import (
    Lexicon,
    acceptance_problem,
    asks_concession,
    asks_to_close,
    counter_number,
    cue_clause,
    greets,
    grounded_ask,
    grounding_problem,
    heard_intent,
    lexicon_for,
    message_clauses,
    quotes_a_discount,
    stated_percent,
)
from nodes.guard import guarded_reply
from nodes.identity import run_identity
from nodes.messages import cleaned_human_message, end_turn, last_human_text
from nodes.replies import Replies
from nodes.schemas import AcceptOffer, Negotiate, Respond, decision_model
from nodes.sgr_step import sgr_step
from prompts import load_toml, render

log = logging.getLogger(__name__)

Route = Literal["retrieval", "accept", "__end__"]
ACTION_PROMPTS: dict[str, dict[str, str]] = load_toml("router_actions")


def redeemable_offer(standing: OfferData | None) -> bool:
    """A ``proposed`` standing offer that has not expired (what ``accept`` can redeem)."""
    if not standing or standing.get("status") != "proposed":
        return False
    try:
        return datetime.fromisoformat(standing["expires_at"]) > datetime.now(UTC)
    except (KeyError, TypeError, ValueError):
        return False


def allowed_actions(state: NegotiationState, max_rounds: int) -> list[str]:
    """The actions this turn may take: respond always; the others only when they can act."""
    actions = []
    if state.get("pricing_rounds", 0) < max_rounds:
        actions.append("negotiate")
    if redeemable_offer(state.get("standing_offer")):
        actions.append("accept_offer")
    return [*actions, "respond"]


def router_prompt(state: NegotiationState, actions: list[str], text: str) -> list[Any]:
    """The system rules and examples of the allowed actions, then the customer's message.

    The standing offer is the only context the router gets: earlier replies carry codes and
    dates that sent the small model into loops.
    """
    standing = state.get("standing_offer")
    offer_line = (
        f"An offer of {standing['discount_percent']:g}% is on the table for this customer."
        if standing
        else "No offer has been made to this customer yet."
    )
    system = render(
        "router",
        rules="\n".join(ACTION_PROMPTS[a]["rule"] for a in actions),
        examples="\n".join(ACTION_PROMPTS[a]["examples"] for a in actions),
        offer_line=offer_line,
    )
    choices = ", ".join(ACTION_PROMPTS[a]["choice"] for a in actions)
    return [
        SystemMessage(content=system),
        HumanMessage(content=render("router_turn", message=text, choices=choices)),
    ]


def turn_reset(state: NegotiationState) -> dict[str, Any]:
    """The per-turn fields, reset at the start of every turn."""
    return {
        "turn": state.get("turn", 0) + 1,
        "route": None,
        "error": None,
        "status": None,
        "proposal": None,
        "requested_percent": None,
        "audit": Overwrite([]),  # the checkpoint keeps this turn's records only
    }


def _respond(update: dict[str, Any], reply: str, **more: Any) -> Command[Route]:
    return end_turn(reply, **{**update, "route": "respond", **more})


def _answer(text: str, reply: str | None, replies: Replies, lexicon: Lexicon) -> str:
    """The router's own reply if the guard lets it through, else a template that hands the
    customer on (or closes politely) — never an invitation to ask for a discount."""
    if reply is not None:
        return reply
    if asks_to_close(text, lexicon):
        return replies.say("closing")
    return replies.say("greeting" if greets(text, lexicon) else "question")


def make_router(services: Services):
    """The router node bound to ``services``."""
    replies = Replies.of(services.settings)  # read the templates once, off the event loop
    s: Settings = services.settings
    lexicon = lexicon_for(s)

    async def router(
        state: NegotiationState, runtime: Runtime[NegotiationContext], config: RunnableConfig
    ) -> Command[Route]:
        update = turn_reset(state)
        turn = update["turn"]
        who = run_identity(runtime, config)
        known = state.get("user_id")
        if not who.user_id:
            err = "no customer identity in this session (set context.user_id)"
            return _respond(update, replies.say("no_identity"), error=err)
        if known and known != who.user_id:
            err = f"session belongs to {known}; refusing to continue it as {who.user_id}"
            return _respond(update, replies.say("session_conflict"), error=err)
        update["user_id"] = who.user_id
        if turn > s.max_turns:  # bounded growth: no LLM call, a clear reply
            return _respond(update, replies.say("closed", max_turns=s.max_turns), status="closed")

        text = last_human_text(state["messages"])
        problem = message_problem(text, s.max_message_chars)
        if problem:
            return _respond(update, replies.say("bad_message", problem=problem), error=problem)
        cleaned = cleaned_human_message(state["messages"])
        if cleaned is not None:
            update["messages"] = [cleaned]
            text = str(cleaned.content)

        standing = state.get("standing_offer")
        actions = allowed_actions(state, s.max_rounds)
        clauses = tuple(message_clauses(text))
        if not clauses:  # nothing the customer wrote could be quoted
            actions = [a for a in actions if a != "negotiate"]
        model = decision_model(actions, clauses)
        step = await sgr_step(
            services,
            who,
            model,
            router_prompt(state, actions, text),
            node="router",
            turn=turn,
            max_tokens=model_budget(model, s.llm_max_tokens),
        )
        if step.decision is None:
            return _respond(
                update,
                replies.say("fallback"),
                error=step.error,
                status="fallback",
                audit=step.audit,
            )

        action = step.decision.decision
        update["audit"] = step.audit
        offer_stands = bool(standing)
        heard = heard_intent(text, lexicon, offer_stands=offer_stands)

        def heard_instead(route: str) -> dict[str, Any]:
            """The record of a decision the code took over from the model's."""
            policy = {"heard": heard, "model_action": action.action}
            return {**update, "route": route, "audit": [{**step.record, "policy": policy}]}

        def negotiate(ask: float | None, base: dict[str, Any]) -> Command[Route]:
            if ask is None and offer_stands:
                ask = stated_percent(text) or counter_number(text)
            return Command(goto="retrieval", update={**base, "requested_percent": ask})

        if heard == "accept" and "accept_offer" in actions and action.action != "accept_offer":
            return Command(goto="accept", update=heard_instead("accept_offer"))
        if isinstance(action, Respond):
            if heard == "negotiate" and "negotiate" in actions:
                log.info("the model answered an ask: priced as a negotiation")
                return negotiate(stated_percent(text), heard_instead("negotiate"))
            if "negotiate" not in actions and asks_concession(
                text, lexicon, offer_stands=offer_stands
            ):
                return _respond(update, replies.final(standing))  # rounds spent: code says so
            reply = _answer(
                text,
                guarded_reply(action.reply, text, shop_language=s.shop_language),
                replies,
                lexicon,
            )
            return _respond(update, reply)
        if isinstance(action, Negotiate):
            problem = grounding_problem(action.quote, text, lexicon, offer_stands=offer_stands)
            if not problem and quotes_a_discount(text, lexicon):
                problem = "the message only quotes a discount (translation, story, example)"
            if problem and heard == "negotiate":  # a plain ask, badly quoted: quote it right
                quote = cue_clause(text, lexicon, offer_stands=offer_stands)
                rec = {**step.record, "policy": {"grounding": problem, "quote": quote}}
                base = {**update, "route": "negotiate", "audit": [rec]}
                return negotiate(grounded_ask(action.requested_percent, text), base)
            if problem:
                log.info("ungrounded negotiate demoted to respond: %s", problem)
                rec = {**step.record, "policy": {"grounding": problem}}
                reply = _answer(text, None, replies, lexicon)
                return _respond(update, reply, audit=[rec])
            ask = grounded_ask(action.requested_percent, text)
            return negotiate(ask, {**update, "route": "negotiate"})
        assert isinstance(action, AcceptOffer)
        problem = acceptance_problem(text, lexicon)
        if not problem:
            return Command(goto="accept", update={**update, "route": "accept_offer"})
        log.info("ungrounded accept_offer demoted: %s", problem)
        rec = {**step.record, "policy": {"grounding": problem}}
        if asks_concession(text, lexicon, offer_stands=offer_stands):
            if "negotiate" not in actions:  # pushes for more, rounds spent: the final word
                return _respond(update, replies.final(standing), audit=[rec])
            # the customer pushes for more: a counter-offer round, priced by code
            base = {**update, "route": "negotiate", "audit": [rec]}
            return negotiate(stated_percent(text), base)
        return _respond(update, replies.confirm_accept(standing), audit=[rec])

    return router
