"""Buyer personas, shipped as data (``personas.json`` beside this module)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

PERSONAS_FILE = Path(__file__).with_name("personas.json")

PersonaKind = Literal["buyer", "shopper", "attacker"]


class Step(BaseModel):
    """One scripted move: say something, or accept the offer on the table (if there is one)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    say: str | None = None
    accept: str | None = None
    session: int = Field(default=1, ge=1)
    asks: bool = True  # does this message ask for a concession?

    @model_validator(mode="after")
    def _one_move(self) -> Step:
        if (self.say is None) == (self.accept is None):
            raise ValueError("a step has exactly one of 'say' and 'accept'")
        return self


class Persona(BaseModel):
    """A buyer: a hidden reservation (share of the cap) and a behaviour.

    ``haggle``: open, then accept an offer at or above the reservation, counter while
    ``patience`` lasts, else walk away. ``script``: the ``steps`` in order, whatever happens.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: PersonaKind
    description: str
    behaviour: Literal["haggle", "script"]
    reservation_share: float = Field(default=0.0, ge=0)
    ask_open_share: float | None = Field(default=None, ge=0)
    ask_final_share: float | None = Field(default=None, ge=0)
    min_ask: float = Field(default=5.0, ge=0)
    patience: int = Field(default=0, ge=0)
    open: str | None = None
    counters: list[str] = Field(default_factory=list)
    accept: str = "Great, I'll take it."
    leave: str | None = None
    steps: list[Step] = Field(default_factory=list)

    @model_validator(mode="after")
    def _complete(self) -> Persona:
        if self.behaviour == "haggle" and not self.open:
            raise ValueError(f"{self.name}: a haggler needs an 'open' message")
        if self.behaviour == "haggle" and self.patience and not self.counters:
            raise ValueError(f"{self.name}: patience without 'counters' messages")
        if self.behaviour == "script" and not self.steps:
            raise ValueError(f"{self.name}: a script needs 'steps'")
        return self

    @property
    def counts_for_deals(self) -> bool:
        """Honest buyers are the population of the deal metrics."""
        return self.kind == "buyer"


def load_personas(path: Path = PERSONAS_FILE) -> list[Persona]:
    """The personas of ``path`` (default: the shipped set), names unique."""
    data = json.loads(path.read_text(encoding="utf-8"))
    personas = [Persona.model_validate(p) for p in data["personas"]]
    names = [p.name for p in personas]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate persona names in {path}")
    return personas


def select(personas: list[Persona], names: list[str] | None) -> list[Persona]:
    """The personas called ``names`` (all when ``None``); ``ValueError`` for an unknown one."""
    if not names:
        return personas
    by_name = {p.name: p for p in personas}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ValueError(f"unknown persona(s) {', '.join(unknown)}; known: {', '.join(by_name)}")
    return [by_name[n] for n in names]
