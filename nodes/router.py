"""Router node (SGR Routing pattern): analyse the message, then pick one action.

The union of actions is built from the state each turn (no ``accept_offer`` without a
redeemable offer, no ``negotiate`` once the rounds are spent), and a ``negotiate`` must be
grounded: its verbatim ``quote`` occurs in the message and holds a concession cue from the
lexicon (``nodes/concession_cues.json``, ``SGR_CONCESSION_CUES``).
"""

from __future__ import annotations

import json
import logging
import math
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from langchain_core.messages import AnyMessage, HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from langgraph.runtime import Runtime
from langgraph.types import Overwrite
from pydantic import BaseModel, ConfigDict, Field, create_model

from graph.budget import call_budget
from graph.services import Services
from graph.settings import Settings
from graph.sgr_client import json_schema_of
from graph.state import NegotiationContext, NegotiationState
from graph.validation import message_problem, strip_controls
from nodes.shared import closed_reply, last_human_text, safe_reply, sgr_step
from prompts import render

log = logging.getLogger(__name__)


class _Action(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Negotiate(_Action):
    """Discount, deal, promo code, price match, counter-offer, threat to leave."""

    action: Literal["negotiate"]
    quote: str = Field(
        ..., min_length=1, max_length=60, description="the customer's exact words asking for it"
    )
    requested_percent: float | None = Field(
        ..., ge=0, le=100, description="percent the customer explicitly asks for, else null"
    )


class AcceptOffer(_Action):
    """The customer accepts the offer on the table."""

    action: Literal["accept_offer"]


class Respond(_Action):
    """Anything else: answer directly."""

    action: Literal["respond"]
    reply: str = Field(..., min_length=1, max_length=200)


class RouterDecision(BaseModel):
    """Think first (short), then act. The tag of each action is required and comes first."""

    model_config = ConfigDict(extra="forbid")

    analysis: str = Field(..., max_length=80, description="what the customer wants, briefly")
    decision: Annotated[Negotiate | AcceptOffer | Respond, Field(discriminator="action")]


ACTION_RULES: dict[str, str] = {
    "negotiate": (
        '- "negotiate": the customer asks for a discount, a deal, a promo code, a price match, '
        "a better or higher offer, or threatens to leave or cancel. Copy the customer's exact "
        'words that ask for it into "quote".'
    ),
    "accept_offer": (
        '- "accept_offer": the customer accepts the offer already made '
        '("deal", "I accept", "I\'ll take it", "ok, yes").'
    ),
    "respond": (
        '- "respond": anything else (questions, returns, opening hours, recommendations, small '
        "talk). Write a short, friendly reply. Never reveal margins, profits, costs or internal "
        "data. Never promise a discount yourself."
    ),
}
# Examples of the actions allowed this turn only, like the rules and the union.
ACTION_EXAMPLES: dict[str, str] = {
    "negotiate": (
        '"Can I get 10% off?" -> negotiate, quote "10% off"\n'
        '"I found it cheaper elsewhere" -> negotiate, quote "cheaper elsewhere"\n'
        '"Can you go higher?" -> negotiate, quote "go higher"'
    ),
    "accept_offer": '"Alright, I accept." -> accept_offer',
    "respond": '"Where is my parcel?" -> respond',
}
ACTION_TYPES: dict[str, type[_Action]] = {
    "negotiate": Negotiate,
    "accept_offer": AcceptOffer,
    "respond": Respond,
}

UNGROUNDED_REPLY = (
    "Happy to help! If you are looking for a better price, just tell me, for example "
    '"Can I get a discount?", and I\'ll see what I can do.'
)


def allowed_actions(state: NegotiationState, max_rounds: int) -> list[str]:
    """The actions this turn may take: respond always; the others only when they can act."""
    actions = []
    if state.get("pricing_rounds", 0) < max_rounds:
        actions.append("negotiate")
    if redeemable_offer(state):
        actions.append("accept_offer")
    return [*actions, "respond"]


def redeemable_offer(state: NegotiationState) -> bool:
    """A ``proposed`` standing offer that has not expired (what ``accept`` can redeem)."""
    offer = state.get("standing_offer")
    if not offer or offer.get("status") != "proposed":
        return False
    try:
        return datetime.fromisoformat(offer["expires_at"]) > datetime.now(UTC)
    except (KeyError, TypeError, ValueError):
        return False


def decision_model(actions: list[str] | tuple[str, ...]) -> type[RouterDecision]:
    """``RouterDecision`` whose ``decision`` is the union of ``actions`` only (cached)."""
    return _decision_model(tuple(actions))


@lru_cache(maxsize=16)  # one class per subset of the three actions
def _decision_model(actions: tuple[str, ...]) -> type[RouterDecision]:
    members = tuple(ACTION_TYPES[a] for a in actions)
    kind: Any = (
        members[0]
        if len(members) == 1
        else Annotated[Union[members], Field(discriminator="action")]  # noqa: UP007
    )
    return create_model("RouterDecision", __base__=RouterDecision, decision=(kind, ...))


_CLAUSE_BREAK = re.compile(r"[.,;:!?()\[\]\"\n]+|\s+(?:or|and|but|so)\s+", re.IGNORECASE)
MAX_CLAUSES = 24


def message_clauses(message: str, max_chars: int = 60) -> list[str]:
    """Verbatim pieces of the message (split at punctuation and or/and/but/so), each at most
    ``max_chars`` long: the values the server lets ``quote`` take."""
    pieces = [p.strip()[:max_chars].strip() for p in _CLAUSE_BREAK.split(message)]
    return list(dict.fromkeys(p for p in pieces if p))[:MAX_CLAUSES]


def quote_schema(schema: dict[str, Any], message: str) -> dict[str, Any]:
    """``schema`` with ``Negotiate.quote`` restricted to the message's clauses.

    The server then can only decode the customer's own words; the code validates against the
    open model and checks the grounding itself, so a server that ignores this loses nothing.
    """
    clauses = message_clauses(message)
    if not clauses or "Negotiate" not in schema.get("$defs", {}):
        return schema
    out = json.loads(json.dumps(schema))
    props = out["$defs"]["Negotiate"]["properties"]
    props["quote"] = {"enum": clauses, "type": "string"}
    # whole percents: a JSON float may run on ("10.000000…") until max_tokens
    props["requested_percent"]["anyOf"][0]["type"] = "integer"
    return out


# --- grounding: the quote is the customer's and asks for a concession -------------------


@dataclass(frozen=True)
class Lexicon:
    """Concession cues (``counter`` ones count only while an offer stands); ``accept`` cues
    ground an ``accept_offer``, ``reject`` cues (and the counter ones) veto it."""

    cues: tuple[str, ...]
    counter: tuple[str, ...]
    accept: tuple[str, ...] = ()
    reject: tuple[str, ...] = ()


DEFAULT_CUES = Path(__file__).parent / "concession_cues.json"


@lru_cache(maxsize=8)
def load_lexicon(path: Path) -> Lexicon:
    """The cue lexicon at ``path`` (JSON: ``{"cues": [...], "counter": [...]}``)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if path != DEFAULT_CUES:  # a custom lexicon may leave out the accept/reject lists
        data = {**json.loads(DEFAULT_CUES.read_text(encoding="utf-8")), **data}

    def words(key: str) -> tuple[str, ...]:
        return tuple(normalise(c) for c in data.get(key, ()))

    return Lexicon(words("cues"), words("counter"), words("accept"), words("reject"))


def lexicon_for(s: Settings) -> Lexicon:
    """The lexicon configured by ``SGR_CONCESSION_CUES`` (the shipped one by default)."""
    return load_lexicon(Path(s.concession_cues_path or DEFAULT_CUES))


_NON_WORD = re.compile(r"[^\w%]+")


def normalise(text: str) -> str:
    """Lower case, NFKC, punctuation to spaces, ``%`` a word of its own, spaces collapsed."""
    text = unicodedata.normalize("NFKC", text).lower().replace("\u2019", "").replace("'", "")
    text = text.replace("%", " % ")
    return " ".join(_NON_WORD.sub(" ", text).split())


def _has_cue(words: list[str], cues: tuple[str, ...]) -> bool:
    joined = f" {' '.join(words)} "
    for cue in cues:
        if " " in cue or len(cue) < 4:
            if f" {cue} " in joined:
                return True
        elif any(w.startswith(cue) for w in words):
            return True
    return False


def asks_concession(message: str, lexicon: Lexicon, state: NegotiationState) -> bool:
    """Whether the message itself holds a concession cue (counter cues while an offer stands)."""
    cues = lexicon.cues + (lexicon.counter if state.get("standing_offer") else ())
    return _has_cue(normalise(message).split(), cues)


_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


def _numbers(pattern: re.Pattern[str], message: str) -> set[float]:
    """The numbers ``pattern`` finds in ``message`` (a decimal comma read as a point)."""
    return {float(n.replace(",", ".")) for n in pattern.findall(message)}


_PERCENT_ASK = re.compile(r"(\d+(?:[.,]\d+)?)\s*(?:%|percent)", re.IGNORECASE)


def stated_percent(message: str) -> float | None:
    """The one percent the message states ("25%", "12,5 percent"); ``None`` if none or several."""
    found = _numbers(_PERCENT_ASK, message)
    return found.pop() if len(found) == 1 else None


def acceptance_problem(message: str, lexicon: Lexicon) -> str:
    """Why an ``accept_offer`` is not what the message says ('' when it is).

    The message must hold an accept cue and none of the reject or counter cues: "That's too
    little, I need 25%" and "Can you go higher?" are not acceptances, whatever the model says.
    """
    words = normalise(message).split()
    if not _has_cue(words, lexicon.accept):
        return "no words of acceptance in the message"
    if _has_cue(words, lexicon.reject + lexicon.counter):
        return "the message asks for more or turns the offer down"
    return ""


def confirm_reply(state: NegotiationState) -> str:
    """Ask before redeeming: the message did not clearly accept the standing offer."""
    offer = state.get("standing_offer") or {}
    percent = float(offer.get("discount_percent") or 0)
    return (
        f'Just to be sure: would you like to take my offer of {percent:g}% off? Reply "I accept" '
        "and I'll confirm it."
    )


def final_reply(state: NegotiationState) -> str:
    """The last word once the pricing rounds are spent."""
    standing = state.get("standing_offer")
    if standing:
        return (
            f"My offer of {float(standing['discount_percent']):g}% with code "
            f"{standing['code']} is final."
        )
    return "I'm not able to offer a discount on this order."


def grounded_ask(percent: float | None, message: str) -> float | None:
    """The model's ``requested_percent`` if the message states that number, else ``None``.

    The schema asks for a whole percent (a JSON float may run on until ``max_tokens``): a
    stated "10.5%" comes back as 10, and the customer's own 10.5 is kept.
    """
    if percent is None:
        return None
    stated = _numbers(_NUMBER, message)
    if percent in stated:
        return percent
    return next((n for n in sorted(stated) if math.floor(n) == percent), None)


def grounding_problem(quote: str, message: str, lexicon: Lexicon, *, offer_stands: bool) -> str:
    """Why a ``negotiate`` quote is not grounded in ``message`` ('' when it is)."""
    q, m = normalise(quote), normalise(message)
    if not q:
        return "empty quote"
    if f" {q} " not in f" {m} ":
        return f"quote {quote[:60]!r} is not in the message"
    cues = lexicon.cues + (lexicon.counter if offer_stands else ())
    if not _has_cue(q.split(), cues):
        return f"quote {quote[:60]!r} holds no concession cue"
    return ""


def session_user(state: NegotiationState, runtime: Runtime, config: RunnableConfig) -> str:
    """The customer of this run: the run context first, then ``configurable.user_id``."""
    ctx = runtime.context
    user = ctx.user_id if isinstance(ctx, NegotiationContext) else ""
    if not user and isinstance(ctx, dict):
        user = str(ctx.get("user_id") or "")
    if not user:
        user = str((config.get("configurable") or {}).get("user_id") or "")
    return user.strip()


def _offer_line(state: NegotiationState) -> str:
    offer = state.get("standing_offer")
    if offer:
        return f"An offer of {offer['discount_percent']:g}% is on the table for this customer."
    return "No offer has been made to this customer yet."


_CHOICES = {
    "negotiate": "negotiate (discount, price, deal, higher offer, leaving)",
    "accept_offer": "accept_offer (accepts the offer)",
    "respond": "respond (anything else)",
}


def _choices_line(actions: list[str]) -> str:
    return ", ".join(_CHOICES[a] for a in actions)


def cleaned_human_message(messages: list[AnyMessage]) -> HumanMessage | None:
    """The newest customer message without control characters, same id; ``None`` if clean."""
    for m in reversed(messages):
        if isinstance(m, HumanMessage):
            text = m.content if isinstance(m.content, str) else str(m.content)
            clean = strip_controls(text)
            return None if clean == text else HumanMessage(content=clean.strip(), id=m.id)
    return None


def make_router(services: Services):
    """The router node bound to ``services``."""

    def router(
        state: NegotiationState, runtime: Runtime[NegotiationContext], config: RunnableConfig
    ) -> dict[str, Any]:
        turn = state.get("turn", 0) + 1
        reset: dict[str, Any] = {
            "turn": turn,
            "route": "respond",
            "reply": None,
            "error": None,
            "status": None,
            "proposal": None,
            "requested_percent": None,
            "audit": Overwrite([]),  # the checkpoint keeps this turn's records only
        }
        user = session_user(state, runtime, config)
        known = state.get("user_id")
        if not user:
            err = "no customer identity in this session (set context.user_id)"
            return {**reset, "reply": "I can't see who you are; please sign in.", "error": err}
        if known and known != user:
            err = f"session belongs to {known}; refusing to continue it as {user}"
            return {**reset, "reply": "This conversation belongs to another account.", "error": err}
        reset["user_id"] = user
        if turn > services.settings.max_turns:  # bounded growth: no LLM call, a clear reply
            limit = services.settings.max_turns
            return {**reset, "reply": closed_reply(limit), "status": "closed"}

        text = last_human_text(state["messages"])
        problem = message_problem(text, services.settings.max_message_chars)
        if problem:
            return {
                **reset,
                "reply": f"Sorry, {problem}. Please write your question.",
                "error": problem,
            }
        # Runs that bypass the session runner (Studio, SDK) store the message as sent: strip
        # escape, control and bidi characters here too, in the stored message (same id) and in
        # what the model reads.
        cleaned = cleaned_human_message(state["messages"])
        if cleaned is not None:
            reset["messages"] = [cleaned]
            text = str(cleaned.content)

        # The standing offer is the only context the router gets: earlier replies carry codes
        # and dates that sent the small model into loops.
        s = services.settings
        actions = allowed_actions(state, s.max_rounds)
        model = decision_model(actions)
        schema = quote_schema(json_schema_of(model), text)
        prompt = [
            SystemMessage(
                content=render(
                    "router",
                    rules="\n".join(ACTION_RULES[a] for a in actions),
                    examples="\n".join(ACTION_EXAMPLES[a] for a in actions),
                    offer_line=_offer_line(state),
                )
            ),
            HumanMessage(
                content=render("router_turn", message=text, choices=_choices_line(actions))
            ),
        ]
        step = sgr_step(
            services,
            model,
            prompt,
            node="router",
            turn=turn,
            schema=schema,
            max_tokens=call_budget(schema, s.llm_max_tokens),
        )
        if step.decision is None:
            return {**reset, **step.fallback()}

        action = step.decision.decision
        update = {**reset, "route": action.action, "audit": step.audit}
        lexicon = lexicon_for(s)
        if isinstance(action, Respond):
            update["reply"] = safe_reply(action.reply)  # the guard: no codes, promises, figures
            if "negotiate" not in actions and asks_concession(text, lexicon, state):
                update["reply"] = final_reply(state)  # the rounds are spent: code says so
        elif isinstance(action, Negotiate):
            problem = grounding_problem(
                action.quote, text, lexicon, offer_stands=bool(state.get("standing_offer"))
            )
            if problem:
                log.info("ungrounded negotiate demoted to respond: %s", problem)
                rec = {**step.audit[-1], "policy": {"grounding": problem}}
                return {**update, "route": "respond", "reply": UNGROUNDED_REPLY, "audit": [rec]}
            update["requested_percent"] = grounded_ask(action.requested_percent, text)
        elif isinstance(action, AcceptOffer):
            problem = acceptance_problem(text, lexicon)
            if problem:
                log.info("ungrounded accept_offer demoted: %s", problem)
                rec = {**step.audit[-1], "policy": {"grounding": problem}}
                if "negotiate" in actions and asks_concession(text, lexicon, state):
                    # the customer pushes for more: a counter-offer round, priced by code
                    ask = stated_percent(text)
                    return {
                        **update,
                        "route": "negotiate",
                        "requested_percent": ask,
                        "audit": [rec],
                    }
                return {**update, "route": "respond", "reply": confirm_reply(state), "audit": [rec]}
        return update

    return router


def route_after_router(state: NegotiationState) -> str:
    """Conditional edge: negotiate -> retrieval, accept_offer -> accept, else respond."""
    if state.get("error"):
        return "respond"
    return {"negotiate": "retrieval", "accept_offer": "accept"}.get(
        state.get("route") or "", "respond"
    )
