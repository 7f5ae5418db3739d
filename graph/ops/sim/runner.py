"""Run personas x customers through the real graph and ledger, per pricing strategy.

Each (strategy, persona) gets a data dir of its own, seeded with ``stores.seed.generate``
(the ten demo customers), so one persona's offers never stand for another's. Turns go through
``graph.session.open_negotiator`` exactly as the CLI runs them. Approvals are decided by a
fixed policy, :data:`APPROVAL_POLICY`: approve the proposed percent (the simulator measures
what the agent proposes; a manager who rejects would only lower it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graph.ops.sim.buyer import Buyer, Move, Reply
from graph.ops.sim.fake_model import SchemaFiller, fake_structured_llm
from graph.ops.sim.metrics import Outcome, TurnLog, ledger_violations, summarize, summarize_persona
from graph.ops.sim.personas import Persona
from graph.policy import compute_cap
from graph.progress import Progress
from graph.services import Services
from graph.session import Negotiator, TurnResult, open_negotiator
from graph.settings import Settings
from graph.sgr import StructuredLLM
from stores.audit import reset_audit_logs
from stores.features import reset_feature_stores
from stores.ledger import reset_ledgers
from stores.models import UnknownUser
from stores.seed import HAND_USERS, generate

log = logging.getLogger(__name__)

DEMO_CUSTOMERS = tuple(u[0] for u in HAND_USERS)
APPROVAL_POLICY = {"decision": "approve", "approver": "simulator"}
MAX_TURNS = 12  # per persona and customer: a guard, no persona needs as many

LLMFactory = Callable[[Settings], StructuredLLM]


def fake_llm_factory(settings: Settings) -> StructuredLLM:
    """A fresh deterministic fake per run (the default model)."""
    return fake_structured_llm()


@dataclass
class Simulation:
    """All outcomes of one simulate run."""

    strategies: list[str]
    customers: list[str]
    model: str
    outcomes: list[Outcome]
    seconds: float

    def by(self, strategy: str, persona: str | None = None) -> list[Outcome]:
        """The outcomes of one strategy (and persona)."""
        return [
            o
            for o in self.outcomes
            if o.strategy == strategy and (persona is None or o.persona == persona)
        ]

    def as_json(self) -> dict[str, Any]:
        """``strategies.<name>``: totals plus one row per persona."""
        out: dict[str, Any] = {}
        for name in self.strategies:
            mine = self.by(name)
            personas = list(dict.fromkeys(o.persona for o in mine))
            out[name] = {
                **summarize(mine),
                "personas": [summarize_persona(self.by(name, p)) for p in personas],
            }
        return {
            "strategies": out,
            "customers": self.customers,
            "model": self.model,
            "approval_policy": APPROVAL_POLICY,
            "seconds": round(self.seconds, 2),
        }


def _fell_back(result: TurnResult) -> bool:
    if any(r.get("parsed") is None for r in result.audit):
        return True
    return bool(result.error) and not result.audit  # the LLM was unreachable


def _issued_percent(result: TurnResult) -> float | None:
    offer = result.offer
    if result.status == "proposed" and offer and offer.get("code"):
        return float(offer["discount_percent"])
    return None


class _Run:
    """One persona against one customer on one negotiator."""

    def __init__(self, neg: Negotiator, persona: Persona, user: str, strategy: str) -> None:
        self.neg = neg
        self.persona = persona
        self.user = user
        self.strategy = strategy
        self.sessions: dict[int, str] = {}

    def session(self, n: int) -> str:
        return self.sessions.setdefault(n, f"sim-{self.persona.name}-{self.user}-{n}")

    async def play(self) -> Outcome:
        services = self.neg.services
        features = services.features().lookup(self.user)
        if isinstance(features, UnknownUser):
            raise ValueError(f"unknown customer {self.user}: {features.reason}")
        cap = compute_cap(features, services.settings).cap_percent
        buyer = Buyer(self.persona, cap)
        outcome = Outcome(
            strategy=self.strategy,
            persona=self.persona.name,
            kind=self.persona.kind,
            user_id=self.user,
            cap_percent=cap,
            reservation_percent=buyer.reservation,
            cart_value=features.cart_value,
        )
        move = buyer.next_move(None)
        while move is not None and len(outcome.turns) < MAX_TURNS:
            result = await self._turn(move, outcome)
            issued = _issued_percent(result)
            outcome.turns.append(
                TurnLog(
                    session=self.session(move.session),
                    asks=move.asks,
                    route=result.route,
                    offer_percent=issued,
                    status=result.status,
                    fallback=_fell_back(result),
                )
            )
            move = buyer.next_move(Reply(issued, result.status == "accepted"))
        outcome.walked_away = buyer.walked_away
        self._settle(outcome)
        return outcome

    async def _turn(self, move: Move, outcome: Outcome) -> TurnResult:
        responder = getattr(self.neg.services.llm().chat, "responder", None)
        if isinstance(responder, SchemaFiller):
            responder.hear(move.text)
        session = self.session(move.session)
        result = await self.neg.run_turn(session, self.user, move.text)
        while result.approval:
            outcome.approvals += 1
            result = await self.neg.resume(session, dict(APPROVAL_POLICY))
        return result

    def _settle(self, outcome: Outcome) -> None:
        """Deal, rounds and violations from the ledger rows (the source of truth)."""
        mine = set(self.sessions.values())
        rows = [
            o.model_dump(mode="json")
            for o in self.neg.services.ledger().list()
            if o.user_id == self.user or o.session_id in mine
        ]
        accepted = [r for r in rows if r["status"] == "accepted" and r["user_id"] == self.user]
        if accepted:
            best = max(accepted, key=lambda r: r["discount_percent"])
            outcome.deal_percent = float(best["discount_percent"])
            outcome.deal_amount = float(best["amount"])
            statuses = [t.status for t in outcome.turns]
            outcome.rounds_to_deal = (
                statuses.index("accepted") + 1 if "accepted" in statuses else len(statuses)
            )
        outcome.violations = ledger_violations(rows, self.user, outcome.cap_percent)


async def _play_all(
    services: Services, persona: Persona, customers: Sequence[str], strategy: str
) -> list[Outcome]:
    async with open_negotiator(services) as neg:
        return [await _Run(neg, persona, u, strategy).play() for u in customers]


def run_simulation(
    base: Settings,
    workdir: Path,
    *,
    strategies: Sequence[str],
    personas: Sequence[Persona],
    customers: Sequence[str] = DEMO_CUSTOMERS,
    llm_factory: LLMFactory = fake_llm_factory,
    model_name: str = "fake-schema",
    progress: Progress | None = None,
) -> Simulation:
    """Every persona x customer under every strategy; data dirs under ``workdir``."""
    started = time.perf_counter()
    outcomes: list[Outcome] = []
    for strategy in strategies:
        settings_s = base.model_copy(update={"pricing_strategy": strategy})
        for persona in personas:
            t0 = time.perf_counter()
            data_dir = Path(workdir) / strategy / persona.name
            settings = settings_s.with_data_dir(data_dir)
            generate(data_dir, users=len(DEMO_CUSTOMERS), seed=42)
            services = Services.with_llm(llm_factory(settings), settings)
            try:
                mine = asyncio.run(_play_all(services, persona, customers, strategy))
            finally:
                reset_ledgers(data_dir)
                reset_audit_logs(data_dir)
                reset_feature_stores(data_dir)
            outcomes.extend(mine)
            if progress:
                row = summarize_persona(mine)
                progress(
                    f"{strategy} · {persona.name}: {row['deals']}/{row['runs']} deals, "
                    f"{row['turns']} turns, {time.perf_counter() - t0:.1f}s"
                )
    return Simulation(
        strategies=list(strategies),
        customers=list(customers),
        model=model_name,
        outcomes=outcomes,
        seconds=time.perf_counter() - started,
    )
