"""A simulated buyer: what it says next, given the agent's last answer.

The buyer knows the customer's cap (the market it shops in) only to place its asks and its
hidden reservation; the agent never sees either except through the buyer's words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from graph.ops.sim.personas import Persona
from graph.policy import floor_half

MoveKind = Literal["ask", "counter", "accept", "say"]


@dataclass(frozen=True)
class Move:
    """One customer message and the session (1, 2, …) it goes to."""

    text: str
    kind: MoveKind
    session: int = 1
    asks: bool = True  # the message asks for a concession (an offer to it is solicited)


@dataclass(frozen=True)
class Reply:
    """What the buyer sees of one agent turn."""

    offer_percent: float | None  # an issued offer (with a code) this turn, if any
    accepted: bool  # the turn accepted an offer in the ledger


class Buyer:
    """Plays one persona against one customer's cap; ``next_move`` until it returns ``None``."""

    def __init__(self, persona: Persona, cap_percent: float) -> None:
        self.persona = persona
        self.cap = cap_percent
        self.reservation = floor_half(persona.reservation_share * cap_percent)
        self.table: float | None = None  # the best offer on the table
        self.counters = 0
        self.step = 0
        self.walked_away = False
        self.done = False
        self._last: Move | None = None

    def ask_percent(self) -> float | None:
        """The percent the buyer states at this counter (``None``: it states none)."""
        p = self.persona
        if p.ask_open_share is None:
            return None
        final = p.ask_final_share if p.ask_final_share is not None else p.ask_open_share
        frac = self.counters / p.patience if p.patience else 0.0
        share = p.ask_open_share + (final - p.ask_open_share) * frac
        return max(floor_half(share * self.cap), p.min_ask)

    def _fill(self, template: str) -> str:
        ask = self.ask_percent()
        return template.format(ask=f"{ask:g}" if ask is not None else "")

    def acceptable(self) -> bool:
        """An offer is on the table and at least the reservation (any offer when it is 0)."""
        return self.table is not None and self.table > 0 and self.table >= self.reservation

    def next_move(self, reply: Reply | None) -> Move | None:
        """The next message (``reply`` is the agent's answer to the last one; ``None`` first)."""
        if reply is not None:
            if reply.offer_percent is not None:
                self.table = max(self.table or 0.0, reply.offer_percent)
            if reply.accepted or (self._last is not None and self._last.kind == "accept"):
                self.done = True
        if self.done:
            return None
        move = self._haggle(reply) if self.persona.behaviour == "haggle" else self._script()
        self._last = move
        if move is None:
            self.done = True
        return move

    def _haggle(self, reply: Reply | None) -> Move | None:
        p = self.persona
        if reply is None:
            return Move(self._fill(p.open or ""), "ask")
        if self.acceptable():
            return Move(p.accept, "accept", asks=False)
        if self.counters < p.patience:
            template = p.counters[self.counters % len(p.counters)]
            self.counters += 1
            return Move(self._fill(template), "counter")
        self.walked_away = True
        return None

    def _script(self) -> Move | None:
        while self.step < len(self.persona.steps):
            s = self.persona.steps[self.step]
            self.step += 1
            if s.say is not None:
                return Move(s.say, "say", s.session, s.asks)
            if s.accept is not None and self.table:
                return Move(s.accept, "accept", s.session, asks=False)
        return None
