"""Schema-valid replies for scripted models (``graph.ops.fakes.scripted_llm``)."""

from __future__ import annotations

from typing import Any

from graph.ops.fakes import FakeChat, Script, fake_llm, scripted_llm

__all__ = ["FakeChat", "Script", "fake_llm", "price", "route", "scripted_llm"]


def schema_quote(schema: dict[str, Any], ask: float | None = None) -> str:
    """The clause a model would quote: the first of the schema's quote values stating the
    ask, else holding a concession word (the server only lets ``quote`` take the customer's
    own clauses)."""
    quote = ((schema.get("$defs") or {}).get("Negotiate") or {}).get("properties", {})
    field = quote.get("quote") or {}
    clauses = field.get("enum") or ([field["const"]] if "const" in field else ["discount"])
    if ask is not None:
        stated = [c for c in clauses if f"{ask:g}%" in c.replace(" %", "%")]
        if stated:
            return stated[0]
    cues = ("discount", "deal", "%", "price", "cheaper", "more", "better", "off", "higher")
    return next((c for c in clauses if any(k in c.lower() for k in cues)), clauses[0])


def route(action: str, **extra: Any) -> Any:
    """A schema-valid router reply. A ``negotiate`` without ``quote`` quotes the customer's
    clause from the request's schema, as a constrained model must."""
    decision: dict[str, Any] = {"action": action}
    if action == "negotiate":
        ask = extra.get("requested_percent")
        decision["requested_percent"] = ask
        if "quote" not in extra:
            analysis = extra.get("analysis", "customer intent")

            def reply(schema: dict[str, Any], messages: list[Any]) -> dict[str, Any]:
                quoted = {**decision, "quote": schema_quote(schema, ask)}
                return {"analysis": analysis, "decision": quoted}

            return reply
        decision["quote"] = extra["quote"]
    if action == "respond":
        decision["reply"] = extra.get("reply", "We are open from 9 to 5 on weekdays.")
    return {"analysis": extra.get("analysis", "customer intent"), "decision": decision}


def price(percent: float, message: str = "Here is a special offer for you.") -> dict[str, Any]:
    """A schema-valid pricing reply."""
    return {
        "churn_analysis": "likely to leave",
        "financial_analysis": "valuable customer",
        "margin_math": "margin allows some room",
        "negotiation_position": "first offer",
        "discount_percent": percent,
        "customer_message": message,
    }


def say(name: str, **values: Any) -> str:
    """The shop's template ``name`` with the default settings (``nodes.replies``)."""
    from graph.settings import Settings
    from nodes.replies import Replies

    return Replies.of(Settings()).say(name, **values)


FALLBACK_REPLY = say("fallback")
