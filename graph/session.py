"""Run negotiation turns against SQLite checkpoints: one thread per session, one run per turn.

Used by the CLI, the demo, the benchmarks and the real-model tests. A turn

* holds the session's lease (``stores.leases``) from its first check to its last write, so
  two turns of one session never run at once, in threads or processes: the second gets a
  ``SessionBusyError`` (or waits up to ``SGR_SESSION_WAIT_S``), never a lost message;
* first finishes a turn that a crash left unfinished (its checkpoint still has nodes to run);
* is checked before anything is written, so a turn that cannot run leaves the session as it was;
* writes its checkpoints with ``SGR_CHECKPOINT_DURABILITY`` (``sync`` by default: a step's
  checkpoint is on disk before the next step, e.g. the ledger write, starts);
* is refused politely, without running the graph, once the session has ``SGR_MAX_TURNS`` turns.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, StateSnapshot

from graph.approval import ApprovalDecisionError, parse_decision
from graph.builder import make_builder
from graph.inline_executor import INLINE_KEY, install
from graph.progress import Progress
from graph.services import Services
from graph.state import NegotiationContext
from graph.validation import InputError, check_message, check_session_id, check_user_id
from nodes.shared import closed_reply
from stores._sqlite import with_wal_retry
from stores.leases import SessionLeases
from stores.models import UnknownUser

log = logging.getLogger(__name__)

NODE_LABELS = {
    "router": "routing",
    "retrieval": "retrieving",
    "pricing": "pricing",
    "offer": "issuing offer",
    "respond": "responding",
    "accept": "accepting",
}


class SessionBusyError(InputError):
    """Another turn of the same session is running (in this or another process)."""


@dataclass
class TurnResult:
    """What one turn produced, as the CLI prints it."""

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

    def as_json(self) -> dict[str, Any]:
        """The ``turn --json`` object."""
        data = asdict(self)
        data.pop("audit")
        data["latency_s"] = round(self.latency_s, 3)
        return data


BUSY_TIMEOUT_S = 30.0
INTERRUPT = "__interrupt__"  # the key of a paused run's interrupts in a ``values`` chunk


@contextmanager
def open_checkpointer(path: str) -> Iterator[SqliteSaver]:
    """A ``SqliteSaver`` on ``path`` (created if missing, WAL), closed on exit.

    The busy timeout lets writers of several processes queue instead of failing with
    "database is locked".
    """
    conn = sqlite3.connect(path, check_same_thread=False, timeout=BUSY_TIMEOUT_S)
    try:
        # WAL + NORMAL: a commit survives a process crash without an fsync per checkpoint
        # (the ledger's pragmas too); FULL made every turn wait on ~10 fsyncs under one lock.
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        saver = SqliteSaver(conn)

        def setup() -> None:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            saver.setup()

        with_wal_retry(setup)
        yield saver
    finally:
        conn.close()


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


class Negotiator:
    """A compiled graph on a checkpointer, plus the checks a turn needs before it runs."""

    def __init__(
        self,
        services: Services,
        checkpointer: SqliteSaver,
        leases: SessionLeases | None = None,
    ) -> None:
        self.services = services
        db = services.settings.checkpoint_db
        assert db is not None  # derived from data_dir by Settings
        self.leases = leases or SessionLeases(Path(db))
        self.app: CompiledStateGraph = make_builder(services).compile(checkpointer=checkpointer)
        self.inline_saves = install()

    @contextmanager
    def turn_lock(self, session: str) -> Iterator[None]:
        """Hold the session's lease for the block; ``SessionBusyError`` if another turn does.

        Waits up to ``SGR_SESSION_WAIT_S`` (0: fail at once). The lease expires after
        ``SGR_SESSION_LEASE_S`` should its holder die without releasing it; a dead holder on
        this host is recognised at once.
        """
        s = self.services.settings
        holder = self.leases.new_holder()
        deadline = time.monotonic() + s.session_wait_s
        while (busy := self.leases.acquire(session, holder, s.session_lease_s)) is not None:
            if time.monotonic() >= deadline:
                raise SessionBusyError(
                    f"session {session} is busy: another turn is running "
                    f"(pid {busy.pid} on {busy.host}); retry when it has answered"
                )
            time.sleep(0.05)
        try:
            yield
        finally:
            self.leases.release(session, holder)

    @staticmethod
    def _config(session: str) -> dict[str, Any]:
        return {"configurable": {"thread_id": session}}

    @staticmethod
    def _run_config(session: str) -> dict[str, Any]:
        # checkpoint saves in this thread: no pool per run (graph/inline_executor.py)
        return {"configurable": {"thread_id": session, INLINE_KEY: True}}

    def _snapshot(self, session: str) -> StateSnapshot:
        return self.app.get_state(self._config(session))

    def state(self, session: str) -> dict[str, Any]:
        """The session's latest state values ({} for a new session)."""
        return dict(self._snapshot(session).values or {})

    def pending_approval(self, session: str) -> dict[str, Any] | None:
        """The approval request the session waits on, if any."""
        return _approval_of(self._snapshot(session))

    def check_turn(
        self, session: str, user_id: str, message: str, snap: StateSnapshot | None = None
    ) -> str:
        """Validate everything a turn needs; ``InputError`` before anything is written."""
        check_session_id(session)
        check_user_id(user_id)
        text = check_message(message, self.services.settings.max_message_chars)
        snap = snap or self._snapshot(session)
        owner = (snap.values or {}).get("user_id")
        if owner and owner != user_id:
            raise InputError(f"session {session} belongs to {owner}, not {user_id}")
        if _approval_of(snap):
            raise InputError(
                f"session {session} waits for a manager's approval: "
                f"discount-manager approve --session {session} --decision approve|reject"
            )
        found = self.services.features().lookup(user_id)
        if isinstance(found, UnknownUser):
            raise InputError(f"unknown user {user_id}: {found.reason}")
        return text

    def run_turn(
        self, session: str, user_id: str, message: str, progress: Progress | None = None
    ) -> TurnResult:
        """Check, then run one turn (the customer's message in, the reply out).

        Under the session's lease: an unfinished turn is finished first, a closed session
        (``SGR_MAX_TURNS`` reached) is answered without running the graph.
        """
        check_session_id(session)
        with self.turn_lock(session):
            snap = self._snapshot(session)
            if self._finish(snap, session, user_id):
                snap = self._snapshot(session)
            text = self.check_turn(session, user_id, message, snap)
            turns = int((snap.values or {}).get("turn", 0))
            if turns >= self.services.settings.max_turns:
                return self._closed(session, user_id, turns)
            payload = {"messages": [HumanMessage(content=text)]}
            return self._run(payload, session, user_id, progress, dict(snap.values or {}))

    def _closed(self, session: str, user_id: str, turns: int) -> TurnResult:
        log.info("session %s is closed after %d turns", session, turns)
        return TurnResult(
            session=session,
            user_id=user_id,
            turn=turns,
            route="respond",
            reply=closed_reply(self.services.settings.max_turns),
            offer=None,
            error=None,
            status="closed",
        )

    def recover(self, session: str, user_id: str = "") -> bool:
        """Finish a turn a crash left half-done (nodes still to run, no approval awaited).

        Safe to re-run: nodes write the ledger idempotently per (session, turn) and the
        audit table per (session, turn, node, seq). ``True`` if a turn was finished.
        """
        with self.turn_lock(session):
            return self._finish(self._snapshot(session), session, user_id)

    def _finish(self, snap: StateSnapshot, session: str, user_id: str) -> bool:
        if not snap.next or _approval_of(snap):
            return False
        user = (snap.values or {}).get("user_id") or user_id
        log.warning("session %s: finishing turn left unfinished (%s)", session, snap.next)
        self._stream(None, session, user, None)
        return True

    def resume(
        self, session: str, decision: dict[str, Any], progress: Progress | None = None
    ) -> TurnResult:
        """Resume a session paused for approval with a manager's decision (under its lease)."""
        check_session_id(session)
        with self.turn_lock(session):
            return self._resume(session, decision, progress)

    def _resume(
        self, session: str, decision: dict[str, Any], progress: Progress | None
    ) -> TurnResult:
        snap = self._snapshot(session)
        pending = _approval_of(snap)
        if not pending:
            raise InputError(f"session {session} has no pending approval")
        # A value the offer node refuses would be replayed on every later resume and wedge
        # the session: check it before resuming.
        try:
            parse_decision(decision, float(pending["proposed_percent"]))
        except ApprovalDecisionError as e:
            raise InputError(str(e)) from e
        user_id = (snap.values or {}).get("user_id", "")
        return self._run(Command(resume=decision), session, user_id, progress)

    def audit(self, session: str) -> list[dict[str, Any]]:
        """The session's audit records, oldest first, from the append-only audit table."""
        return self.services.audit_log().session(session)

    def _stream(
        self, payload: Any, session: str, user_id: str, progress: Progress | None
    ) -> dict[str, Any] | None:
        """Run the graph; the last ``values`` chunk (the state the run ended with), with the
        run's ``__interrupt__`` when it paused; ``None`` if the run emitted none."""
        last: dict[str, Any] | None = None
        paused: Any = None
        for mode, chunk in self.app.stream(
            payload,
            self._run_config(session),
            context=NegotiationContext(user_id=user_id),
            stream_mode=["tasks", "values"],
            durability=self.services.settings.checkpoint_durability,
        ):
            if mode == "values":
                last = chunk
                paused = chunk.get(INTERRUPT, paused)
            elif progress and mode == "tasks" and "input" in chunk:
                progress(NODE_LABELS.get(chunk["name"], chunk["name"]) + "…")
        if last is not None and paused is not None:
            last = {**last, INTERRUPT: paused}
        return last

    def _run(
        self,
        payload: Any,
        session: str,
        user_id: str,
        progress: Progress | None,
        before: dict[str, Any] | None = None,
    ) -> TurnResult:
        before = self.state(session) if before is None else before
        n_msgs = len(before.get("messages", []))
        mark = self.services.audit_log().last_id(session)
        start = time.perf_counter()
        last = self._stream(payload, session, user_id, progress)
        elapsed = time.perf_counter() - start
        if last is None:  # nothing streamed: read what the checkpoints hold
            snap = self._snapshot(session)
            values, approval = dict(snap.values or {}), _approval_of(snap)
        else:  # the run's own final state: no second read of the checkpoints
            values = dict(last)
            approval = _approval_in(values.pop(INTERRUPT, ()))
        audit = self.services.audit_log().session(session, after=mark)  # this run's records
        return self._result(session, user_id, values, approval, n_msgs, audit, elapsed)

    def _result(
        self,
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
        offer = None
        proposal = values.get("proposal")
        if approval:
            offer = {
                "discount_percent": approval["proposed_percent"],
                "cap_percent": approval["cap_percent"],
                "code": None,
            }
        elif proposal and proposal.get("code"):
            offer = {k: proposal[k] for k in ("discount_percent", "cap_percent", "code")}
        elif status == "accepted" and values.get("standing_offer"):
            so = values["standing_offer"]
            offer = {k: so[k] for k in ("discount_percent", "cap_percent", "code")}
        return TurnResult(
            session=session,
            user_id=user_id,
            turn=int(values.get("turn", 0)),
            route=values.get("route"),
            reply=str(replies[-1]) if replies else None,
            offer=offer,
            error=values.get("error"),
            status=status,
            approval=approval,
            audit=audit,
            latency_s=elapsed,
        )

    def history(self, session: str) -> list[dict[str, Any]]:
        """The session's turns read back from the checkpoints.

        Each turn: the customer's text, the reply, and the route, status and offer as the
        turn's last checkpoint recorded them.
        """
        config = self._config(session)
        ends: dict[int, dict[str, Any]] = {}
        # Raw checkpoints, newest first: their per-turn fields are stored whole, and reading
        # them does not rebuild the (delta-stored) messages of every step.
        for tup in self.app.checkpointer.list(config):  # type: ignore[union-attr]
            values = tup.checkpoint.get("channel_values") or {}
            turn = int(values.get("turn", 0) or 0)
            if turn and turn not in ends:
                ends[turn] = values
        latest = self.state(session)
        turns: list[dict[str, Any]] = []
        for m in latest.get("messages", []):
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


@contextmanager
def open_negotiator(services: Services) -> Iterator[Negotiator]:
    """A ``Negotiator`` on the checkpoint DB of ``services.settings`` (data dir created)."""
    s = services.settings
    s.data_dir.mkdir(parents=True, exist_ok=True)
    with open_checkpointer(str(s.checkpoint_db)) as saver:
        leases = SessionLeases(Path(str(s.checkpoint_db)))
        try:
            yield Negotiator(services, saver, leases)
        finally:
            leases.close()
