"""The session runner: one thread per negotiation session, one graph run per turn (async).

The CLI drives it with ``asyncio.run``, the HTTP service awaits it; both take the same path.
A turn

* holds the session's lease (``stores.leases``) from its first check to its last write,
  renewed while it runs, so two turns of one session never run at once, in any process on
  any machine: the second gets ``SessionBusyError`` (or waits up to ``SGR_SESSION_WAIT_S``),
  never a lost message; a worker killed mid-turn frees the session when its lease lapses
  (at once when it was a process of this host);
* first finishes a turn that a crash left unfinished (nodes still to run, or a last step
  whose writes were stored without its checkpoint): the ledger writes are keyed, so the
  finished turn issues the same code;
* is checked before anything is written, so a turn that cannot run leaves the session as it
  was;
* writes its checkpoints with ``SGR_CHECKPOINT_DURABILITY`` (``sync`` by default: a step's
  checkpoint is stored before the next step, e.g. the ledger write, starts).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, StateSnapshot

from graph.approval import ApprovalDecisionError, parse_decision
from graph.builder import make_builder
from graph.checkpoints import FencedSaver, open_checkpointer
from graph.progress import Progress
from graph.services import Services
from graph.state import NegotiationContext
from graph.validation import (
    InputError,
    check_idempotency_key,
    check_message,
    check_session_id,
    check_user_id,
)
from stores.leases import Heartbeat, SessionLeases
from stores.models import UnknownUser

log = logging.getLogger(__name__)

NODE_LABELS = {
    "router": "reading your message",
    "retrieval": "checking your cart",
    "pricing": "working out an offer",
    "offer": "preparing your offer",
    "accept": "applying your code",
}
INTERRUPT = "__interrupt__"  # the key of a paused run's interrupts in a ``values`` chunk


class SessionBusyError(InputError):
    """Another turn of the same session is running (in this or another process)."""


class LeaseLostError(SessionBusyError):
    """The running turn's lease may have passed to another turn: it stores nothing more."""


class SessionOwnerError(InputError):
    """The session belongs to another customer."""


class UnknownSessionError(InputError):
    """No turn of this session has been stored."""


class ConflictError(InputError):
    """The session's state forbids the call: it waits for a manager, or has no decision
    left to take (another manager took it)."""


@dataclass
class TurnResult:
    """What one turn produced: the ``turn --json`` object (and the HTTP reply)."""

    session: str
    user_id: str
    turn: int
    route: str | None
    reply: str | None
    offer: dict[str, Any] | None
    error: str | None
    status: str | None = None
    approval: dict[str, Any] | None = None
    audit: list[dict[str, Any]] = field(default_factory=list)
    latency_s: float = 0.0
    replayed: bool = False  # the recorded answer to a message sent again with its key

    def as_json(self) -> dict[str, Any]:
        """The ``turn --json`` object."""
        data = asdict(self)
        data.pop("audit")
        data.pop("replayed")
        data["latency_s"] = round(self.latency_s, 3)
        return data


@dataclass(frozen=True)
class Accepted:
    """The turn passed its checks and holds the session: it will run (the first event)."""

    session: str
    user_id: str


@dataclass(frozen=True)
class NodeEvent:
    """A node of the running turn finished (what the HTTP service streams as SSE)."""

    node: str
    label: str


def _approval_of(snap: StateSnapshot) -> dict[str, Any] | None:
    """The approval request a snapshot waits on, if any."""
    for task in snap.tasks:
        for intr in task.interrupts:
            return dict(intr.value)
    return None


def _approval_in(interrupts: Any) -> dict[str, Any] | None:
    """The approval request of a streamed ``__interrupt__`` value, if any."""
    for intr in interrupts or ():
        return dict(intr.value)
    return None


def _offer_of(values: dict[str, Any], status: str | None, approval: dict[str, Any] | None):
    if approval:
        return {
            "discount_percent": approval["proposed_percent"],
            "cap_percent": approval["cap_percent"],
            "code": None,
        }
    proposal = values.get("proposal")
    if proposal and proposal.get("code"):
        return {k: proposal[k] for k in ("discount_percent", "cap_percent", "code")}
    if status == "accepted" and values.get("standing_offer"):
        so = values["standing_offer"]
        return {k: so[k] for k in ("discount_percent", "cap_percent", "code")}
    return None


class Negotiator:
    """A compiled graph on a checkpointer, plus the checks a turn needs before it runs."""

    def __init__(
        self, services: Services, checkpointer: BaseCheckpointSaver, leases: SessionLeases
    ) -> None:
        self.services = services
        self.leases = leases
        self._held: dict[str, Heartbeat] = {}  # the leases of the turns this runner runs
        fenced = FencedSaver(checkpointer, self._fence)
        self.app: CompiledStateGraph = make_builder(services).compile(checkpointer=fenced)

    def holding(self, session: str) -> Heartbeat | None:
        """The lease of the turn of ``session`` this runner is running, if any."""
        return self._held.get(session)

    def _fence(self, config: RunnableConfig) -> None:
        """Refuse a checkpoint write of a turn whose lease may be another's now (lost on
        renewal, or not renewed within its TTL: this process was frozen or cut off)."""
        beat = self._held.get(str(config.get("configurable", {}).get("thread_id", "")))
        if beat is not None and not beat.held():
            raise LeaseLostError(
                f"session {beat.session_id}: this turn's lease lapsed; another turn may run "
                "it now (retry with the same Idempotency-Key)"
            )

    # -- one turn per session ------------------------------------------------------------

    @asynccontextmanager
    async def turn_lock(self, session: str) -> AsyncIterator[None]:
        """Hold the session's lease for the block, renewed every third of its life from a
        thread of its own (``stores.leases.LeaseKeeper``: never late behind a busy event loop);
        ``SessionBusyError`` if another turn holds it after ``SGR_SESSION_WAIT_S``."""
        s = self.services.settings
        holder = self.leases.new_holder()
        deadline = time.monotonic() + s.session_wait_s
        while True:
            busy = await asyncio.to_thread(self.leases.acquire, session, holder, s.session_lease_s)
            if busy is None:
                break
            if time.monotonic() >= deadline:
                raise SessionBusyError(
                    f"session {session} is busy: another turn is running "
                    f"(pid {busy.pid} on {busy.host}); retry when it has answered"
                )
            await asyncio.sleep(0.05)
        beat = self.leases.heartbeat(session, holder, s.session_lease_s)  # the keeper thread
        self._held[session] = beat
        try:
            yield
        finally:
            if self._held.get(session) is beat:
                del self._held[session]
            await asyncio.to_thread(self._end_lease, beat)

    def _end_lease(self, beat: Heartbeat) -> None:
        beat.stop()  # first: no renewal may take the lease again once it is released
        self.leases.release(beat.session_id, beat.holder)

    # -- reads -----------------------------------------------------------------------------

    @staticmethod
    def _config(session: str) -> dict[str, Any]:
        return {"configurable": {"thread_id": session}}

    async def _snapshot(self, session: str) -> StateSnapshot:
        return await self.app.aget_state(self._config(session))

    async def state(self, session: str) -> dict[str, Any]:
        """The session's latest state values ({} for a new session)."""
        return dict((await self._snapshot(session)).values or {})

    async def owner(self, session: str) -> str | None:
        """The customer the session belongs to (``None``: no turn stored yet)."""
        return (await self.state(session)).get("user_id") or None

    async def pending_approval(self, session: str) -> dict[str, Any] | None:
        """The approval request the session waits on, if any."""
        return _approval_of(await self._snapshot(session))

    async def audit(self, session: str) -> list[dict[str, Any]]:
        """The session's audit records, oldest first, from the append-only audit table."""
        return await asyncio.to_thread(lambda: self.services.audit_log().session(session))

    async def history(self, session: str) -> list[dict[str, Any]]:
        """The session's turns read back from the checkpoints.

        Each turn: the customer's text, the reply, and the route, status and offer as the
        turn's last checkpoint recorded them.
        """
        ends = await self._turn_ends(session)
        turns: list[dict[str, Any]] = []
        for m in (await self.state(session)).get("messages", []):
            if isinstance(m, HumanMessage):
                n = len(turns) + 1
                end = ends.get(n, {})
                proposal = end.get("proposal") or {}
                turns.append(
                    {
                        "turn": n,
                        "customer": m.content,
                        "reply": None,
                        "route": end.get("route"),
                        "status": end.get("status"),
                        "offer_code": proposal.get("code"),
                        "error": end.get("error"),
                    }
                )
            elif isinstance(m, AIMessage) and turns:
                turns[-1]["reply"] = m.content
        return turns

    async def _turn_ends(self, session: str) -> dict[int, dict[str, Any]]:
        """Each turn's state values as its last checkpoint stored them, by turn number."""
        ends: dict[int, dict[str, Any]] = {}
        # Raw checkpoints, newest first: their per-turn fields are stored whole, and reading
        # them does not rebuild the (delta-stored) messages of every step.
        async for tup in self.app.checkpointer.alist(self._config(session)):  # type: ignore[union-attr]
            values = tup.checkpoint.get("channel_values") or {}
            turn = int(values.get("turn", 0) or 0)
            if turn and turn not in ends:
                ends[turn] = values
        return ends

    # -- checks ----------------------------------------------------------------------------

    async def check_turn(
        self, session: str, user_id: str, message: str, snap: StateSnapshot | None = None
    ) -> str:
        """Validate everything a turn needs; ``InputError`` before anything is written."""
        check_session_id(session)
        check_user_id(user_id)
        text = check_message(message, self.services.settings.max_message_chars)
        snap = snap or await self._snapshot(session)
        check_owner((snap.values or {}).get("user_id"), session, user_id)
        if _approval_of(snap):
            raise ConflictError(
                f"session {session} waits for a manager's approval: "
                f"discount-manager approve --session {session} --decision approve|reject"
            )
        found = await asyncio.to_thread(lambda: self.services.features().lookup(user_id))
        if isinstance(found, UnknownUser):
            raise InputError(f"unknown user {user_id}: {found.reason}")
        return text

    # -- runs ------------------------------------------------------------------------------

    async def run_turn(
        self,
        session: str,
        user_id: str,
        message: str,
        progress: Progress | None = None,
        key: str | None = None,
    ) -> TurnResult:
        """Check, then run one turn (the customer's message in, the reply out)."""
        return await _result(self.stream_turn(session, user_id, message, key), progress)

    async def stream_turn(
        self, session: str, user_id: str, message: str, key: str | None = None
    ) -> AsyncIterator[Accepted | NodeEvent | TurnResult]:
        """The turn as it runs: ``Accepted`` once its checks passed, a ``NodeEvent`` per
        finished node, then the ``TurnResult``.

        Under the session's lease; an unfinished turn is finished first. ``key``: the
        client's idempotency key; a message sent again with its key gets the answer its turn
        recorded (``replayed``), not a second turn.
        """
        check_session_id(session)
        if key is not None:
            check_idempotency_key(key)
        async with self.turn_lock(session):
            snap = await self._snapshot(session)
            if await self._finish(snap, session, user_id):
                snap = await self._snapshot(session)
            done = None if key is None else await self._replay(snap, session, user_id, message, key)
            if done is not None:
                yield Accepted(session, user_id)
                yield done
                return
            text = await self.check_turn(session, user_id, message, snap)
            yield Accepted(session, user_id)
            payload = {"messages": [HumanMessage(content=text, id=idempotent_message_id(key))]}
            async for event in self._run(payload, session, user_id, dict(snap.values or {})):
                yield event

    async def _replay(
        self, snap: StateSnapshot, session: str, user_id: str, message: str, key: str
    ) -> TurnResult | None:
        """The recorded answer to the message stored under ``key``, or ``None`` when no turn
        of the session holds it (run it). The owner is checked first; the key sent with
        another message is refused."""
        values = dict(snap.values or {})
        check_owner(values.get("user_id"), session, user_id)
        messages = values.get("messages", [])
        humans = [i for i, m in enumerate(messages) if isinstance(m, HumanMessage)]
        found = [i for i in humans if messages[i].id == idempotent_message_id(key)]
        if not found:
            return None
        text = check_message(message, self.services.settings.max_message_chars)
        if messages[found[0]].content != text:
            raise InputError(f"idempotency key {key} was sent with another message")
        start = found[0]
        later = [i for i in humans if i > start]
        window = messages[start : later[0] if later else len(messages)]
        if later:  # an earlier turn (a retry overtaken by the next message): as recorded
            n = humans.index(start) + 1
            end, approval = dict((await self._turn_ends(session)).get(n) or {"turn": n}), None
        else:
            end, approval = values, _approval_of(snap)
        audit = list(end.get("audit") or [])
        result = self._result(session, user_id, {**end, "messages": window}, approval, 0, audit, 0)
        result.replayed = True
        return result

    async def resume(
        self, session: str, decision: dict[str, Any], progress: Progress | None = None
    ) -> TurnResult:
        """Resume a session paused for approval with a manager's decision (under its lease)."""
        return await _result(self.stream_resume(session, decision), progress)

    async def stream_resume(
        self, session: str, decision: dict[str, Any]
    ) -> AsyncIterator[Accepted | NodeEvent | TurnResult]:
        """:meth:`resume` as it runs (``Accepted``, ``NodeEvent``s, then the ``TurnResult``)."""
        check_session_id(session)
        async with self.turn_lock(session):
            snap = await self._snapshot(session)
            pending = _approval_of(snap)
            if not pending:
                raise ConflictError(
                    f"session {session} has no pending approval (decided already, or never asked)"
                )
            # A value the offer node refuses would be replayed on every later resume and
            # wedge the session: check it before resuming.
            try:
                parse_decision(decision, float(pending["proposed_percent"]))
            except ApprovalDecisionError as e:
                raise InputError(str(e)) from e
            user_id = (snap.values or {}).get("user_id", "")
            before = dict(snap.values or {})
            yield Accepted(session, user_id)
            async for event in self._run(Command(resume=decision), session, user_id, before):
                yield event

    async def recover(self, session: str, user_id: str = "") -> bool:
        """Finish a turn a crash left half-done (nodes still to run, no approval awaited).

        Safe to re-run: nodes write the ledger idempotently per (session, turn) and the
        audit table per (session, turn, node, seq). ``True`` if a turn was finished.
        """
        async with self.turn_lock(session):
            return await self._finish(await self._snapshot(session), session, user_id)

    async def _finish(self, snap: StateSnapshot, session: str, user_id: str) -> bool:
        # Unfinished: nodes still to run, or a step whose nodes all stored their writes but
        # whose checkpoint was never written (cut right after the last node: ``next`` is
        # empty, the writes wait as the snapshot's tasks). A new input would drop them.
        if not (snap.next or snap.tasks) or _approval_of(snap):
            return False
        user = (snap.values or {}).get("user_id") or user_id
        pending = snap.next or tuple(t.name for t in snap.tasks)
        log.warning("session %s: finishing turn left unfinished (%s)", session, pending)
        async for _ in self._run(None, session, user, dict(snap.values or {})):
            pass
        return True

    async def _run(
        self, payload: Any, session: str, user_id: str, before: dict[str, Any]
    ) -> AsyncIterator[NodeEvent | TurnResult]:
        n_msgs = len(before.get("messages", []))
        start = time.perf_counter()
        last: dict[str, Any] | None = None
        paused: Any = None
        async for mode, chunk in self.app.astream(
            payload,
            self._config(session),
            context=NegotiationContext(user_id=user_id),
            stream_mode=["tasks", "values"],
            durability=self.services.settings.checkpoint_durability,
        ):
            if mode == "values":
                last = chunk
                paused = chunk.get(INTERRUPT, paused)
            elif mode == "tasks" and "result" in chunk:
                name = chunk["name"]
                yield NodeEvent(name, NODE_LABELS.get(name, name))
        elapsed = time.perf_counter() - start
        if last is None:  # nothing streamed: read what the checkpoints hold
            snap = await self._snapshot(session)
            values, approval = dict(snap.values or {}), _approval_of(snap)
        else:  # the run's own final state: no second read of the checkpoints
            values = {k: v for k, v in last.items() if k != INTERRUPT}
            approval = _approval_in(paused)
        audit = list(values.get("audit") or [])  # this turn's SGR calls (the state keeps them)
        yield self._result(session, user_id, values, approval, n_msgs, audit, elapsed)

    @staticmethod
    def _result(
        session: str,
        user_id: str,
        values: dict[str, Any],
        approval: dict[str, Any] | None,
        n_msgs: int,
        audit: list[dict[str, Any]],
        elapsed: float,
    ) -> TurnResult:
        new = values.get("messages", [])[n_msgs:]
        replies = [m.content for m in new if isinstance(m, AIMessage)]
        status = "approval_pending" if approval else values.get("status")
        return TurnResult(
            session=session,
            user_id=user_id,
            turn=int(values.get("turn", 0)),
            route=values.get("route"),
            reply=str(replies[-1]) if replies else None,
            offer=_offer_of(values, status, approval),
            error=values.get("error"),
            status=status,
            approval=approval,
            audit=audit,
            latency_s=elapsed,
        )


def check_owner(owner: str | None, session: str, user_id: str) -> None:
    """``SessionOwnerError`` if ``session`` belongs to a customer other than ``user_id``
    (the owner is never named)."""
    if owner and owner != user_id:
        raise SessionOwnerError(f"session {session} belongs to another customer")


def idempotent_message_id(key: str | None) -> str | None:
    """The id of the customer's message sent with idempotency ``key`` (``None``: a new id)."""
    return None if key is None else f"idem:{key}"


async def _result(
    events: AsyncIterator[Accepted | NodeEvent | TurnResult], progress: Progress | None
) -> TurnResult:
    """The ``TurnResult`` of a turn's events, each finished node told to ``progress``."""
    result: TurnResult | None = None
    async for event in events:
        if isinstance(event, TurnResult):
            result = event
        elif progress is not None and isinstance(event, NodeEvent):
            progress(event.label + "…")
    assert result is not None
    return result


@asynccontextmanager
async def open_negotiator(services: Services) -> AsyncIterator[Negotiator]:
    """A ``Negotiator`` on the deployment's checkpoints and leases (data dir created)."""
    s = services.settings
    await asyncio.to_thread(s.data_dir.mkdir, parents=True, exist_ok=True)
    async with open_checkpointer(s) as saver:
        leases = await asyncio.to_thread(services.leases)
        try:
            yield Negotiator(services, saver, leases)
        finally:
            await services.aclose()
