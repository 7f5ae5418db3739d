"""``graph.ops.cli.main`` in-process: env-configured like a shell, the fake vLLM on loopback.

Each ``main()`` call reads fresh settings and opens a new ``SqliteSaver``, so consecutive
calls behave like separate processes sharing the data directory.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from graph.ops.cli import main
from graph.ops.fake_openai import FakeOpenAIServer
from graph.settings import get_settings
from stores.features import reset_feature_stores
from stores.ledger import reset_ledgers
from tests.fakes import price, route

TURN_KEYS = {"session", "user_id", "turn", "route", "reply", "offer", "error", "status"}
CODE_RE = re.compile(r"^SGR-[0-9A-Z]{5}-[0-9A-Z]{5}$")
NODES = ("router", "retrieval", "pricing", "offer", "accept")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        lines = self.out.strip().splitlines()
        assert len(lines) == 1, self.out
        return json.loads(lines[0])

    def single_error(self) -> str:
        lines = self.err.strip().splitlines()
        assert len(lines) == 1, self.err
        assert lines[0].startswith("error:"), lines[0]
        return lines[0]


class Cli:
    """Runs ``main`` with the test's environment and captures its output."""

    def __init__(
        self,
        data_dir: Path,
        srv: FakeOpenAIServer,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        self.data_dir = data_dir
        self.srv = srv
        self.monkeypatch = monkeypatch
        self.capsys = capsys

    def env(self, **values: str) -> None:
        for key, value in values.items():
            self.monkeypatch.setenv(f"SGR_{key.upper()}", value)

    def __call__(self, *argv: str) -> Result:
        get_settings.cache_clear()
        self.capsys.readouterr()
        try:
            code = main(list(argv))
        finally:
            get_settings.cache_clear()
        captured = self.capsys.readouterr()
        return Result(code, captured.out, captured.err)

    def turn(self, session: str, message: str, user: str = "user_100") -> Result:
        return self("turn", "--json", "--user", user, "--session", session, "--message", message)

    @property
    def checkpoint_db(self) -> Path:
        return self.data_dir / "checkpoints.sqlite"

    def checkpoints(self, session: str) -> int:
        """Rows the SqliteSaver holds for ``session`` (0 when the DB does not exist yet)."""
        if not self.checkpoint_db.exists():
            return 0
        conn = sqlite3.connect(self.checkpoint_db)
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            total = 0
            for table in ("checkpoints", "writes"):
                if table in tables:
                    total += conn.execute(
                        f"SELECT COUNT(*) FROM {table} WHERE thread_id = ?", (session,)
                    ).fetchone()[0]
            return total
        finally:
            conn.close()


@pytest.fixture
def srv() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(version="0.32.0") as server:
        yield server


@contextmanager
def seeded_cli(
    tmp_path: Path,
    srv: FakeOpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
) -> Iterator[tuple[Cli, Result]]:
    """A ``Cli`` on a tmp data dir and the fake, no inherited ``SGR_*`` but ``env``;
    ``setup-data`` already run (its result beside the runner). Stores reset afterwards."""
    for key in list(os.environ):
        if key.startswith("SGR_"):
            monkeypatch.delenv(key)
    data_dir = tmp_path / "data"
    monkeypatch.setenv("SGR_DATA_DIR", str(data_dir))
    monkeypatch.setenv("SGR_LLM_BASE_URL", srv.url)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    runner = Cli(data_dir, srv, monkeypatch, capsys)
    get_settings.cache_clear()
    try:
        r = runner("setup-data")
        assert r.code == 0, r.err
        yield runner, r
    finally:
        get_settings.cache_clear()
        reset_feature_stores()
        reset_ledgers()


@pytest.fixture
def cli(
    tmp_path: Path,
    srv: FakeOpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[Cli]:
    """Env pointing at a tmp data dir and the fake; ``setup-data`` already run."""
    env = {
        "SGR_VERIFY_CONSTRAINT": "false",
        "SGR_PRICING_STRATEGY": "model",  # these tests script the percent
    }
    with seeded_cli(tmp_path, srv, monkeypatch, capsys, env) as (runner, setup):
        assert "wrote 10 users" in setup.out
        yield runner


def negotiate(cli: Cli, session: str, percent: float, user: str = "user_100") -> Result:
    """One negotiate turn with the router and pricing replies scripted on the fake."""
    cli.srv.queue(route("negotiate", requested_percent=percent))
    cli.srv.queue(price(percent, f"I can do {percent:g}% for you."))
    return cli.turn(session, f"can I get {percent:g}% off?", user=user)


# --- setup-data and turn --json ---------------------------------------------------------


def test_setup_data_writes_both_stores(cli: Cli) -> None:
    assert (cli.data_dir / "hot.sqlite").is_file()
    assert (cli.data_dir / "cold.duckdb").is_file()
    r = cli("setup-data", "--users", "12")
    assert r.code == 0
    assert "wrote 12 users" in r.out


def test_turn_json_negotiate_issues_an_offer(cli: Cli) -> None:
    r = negotiate(cli, "s-neg", 10)
    assert r.code == 0, r.err
    data = r.json()
    assert set(data) >= TURN_KEYS
    assert "audit" not in data
    assert data["session"] == "s-neg"
    assert data["user_id"] == "user_100"
    assert data["turn"] == 1
    assert data["route"] == "negotiate"
    assert data["error"] is None
    assert data["status"] == "proposed"
    offer = data["offer"]
    assert offer["discount_percent"] == 10
    assert offer["cap_percent"] == 20  # user_100's cap
    assert CODE_RE.match(offer["code"])
    assert offer["code"] in data["reply"]
    # router then pricing, nothing else
    assert len(cli.srv.requests) == 2
    pricing_schema = cli.srv.requests[1]["structured_outputs"]["json"]
    assert pricing_schema["properties"]["discount_percent"]["maximum"] == 20


def test_turn_clamps_a_greedy_model_to_the_cap(cli: Cli) -> None:
    # user_101's cap is 8 %: a (non-enforcing) model saying 30 % is repaired, then clamped
    cli.srv.queue(route("negotiate", requested_percent=30))
    cli.srv.queue(price(30))
    cli.srv.queue(price(8))
    r = cli.turn("s-greedy", "30% or I leave", user="user_101")
    assert r.code == 0, r.err
    offer = r.json()["offer"]
    assert offer["discount_percent"] == 8
    assert offer["cap_percent"] == 8


def test_turn_respond_route_has_no_offer(cli: Cli) -> None:
    cli.srv.queue(route("respond", reply="We are open 9 to 5."))
    data = cli.turn("s-hours", "when are you open?").json()
    assert data["route"] == "respond"
    assert data["reply"] == "We are open 9 to 5."
    assert data["offer"] is None
    assert len(cli.srv.requests) == 1


def test_turn_text_output(cli: Cli) -> None:
    cli.srv.queue(route("respond", reply="Hello there, how can I help?"))
    r = cli("turn", "--user", "user_100", "--session", "s-text", "--message", "hi")
    assert r.code == 0
    assert "agent> Hello there, how can I help?" in r.out
    assert "[route respond" in r.out


def test_turn_with_verify_probes_first(cli: Cli) -> None:
    cli.env(verify_constraint="true")
    cli.srv.queue({"answer": "xq-zebra-7"})
    r = negotiate(cli, "s-verify", 5)
    assert r.code == 0, r.err
    assert r.json()["offer"]["discount_percent"] == 5
    probe = cli.srv.requests[0]["structured_outputs"]["json"]
    assert probe["title"] == "ConstraintProbe"
    assert len(cli.srv.requests) == 3


def test_turn_on_a_server_ignoring_the_constraint_reports_the_error(cli: Cli) -> None:
    with FakeOpenAIServer(version="0.32.0", mode="ignore") as bad:
        cli.env(llm_base_url=bad.url, verify_constraint="true")
        data = cli.turn("s-ignored", "discount please").json()
    assert data["offer"] is None
    assert "constraint not enforced" in data["error"]
    assert len(bad.requests) == 1  # the probe only: no unconstrained call went out


# --- bad input leaves nothing behind ---------------------------------------------------------

BAD_TURNS = [
    # id, session, user, message, env, exit code, error text
    pytest.param("s-empty", "user_100", "", {}, 2, "empty", id="empty-message"),
    pytest.param("s-blank", "user_100", "   \n\t ", {}, 2, "empty", id="whitespace-message"),
    pytest.param(
        "s-long", "user_100", "x" * 51, {"max_message_chars": "50"}, 2, "limit is 50", id="too-long"
    ),
    pytest.param("bad id!", "user_100", "hi", {}, 2, "malformed session id", id="bad-session-id"),
    pytest.param("s-who", "user_999", "hi", {}, 2, "unknown user user_999", id="unknown-user"),
    pytest.param("s-user", "bad user!", "hi", {}, 2, "malformed user id", id="malformed-user"),
    pytest.param("s-down", "user_100", "hi", {"llm_base_url": None}, 3, "", id="llm-unreachable"),
]


def _apply(cli: Cli, env: dict[str, str | None]) -> None:
    for key, value in env.items():
        if key == "llm_base_url" and value is None:
            value = f"http://127.0.0.1:{closed_port()}/v1"
        cli.env(**{key: str(value)})


@pytest.mark.parametrize(("session", "user", "message", "env", "code", "text"), BAD_TURNS)
def test_bad_turn_on_new_session(
    cli: Cli,
    session: str,
    user: str,
    message: str,
    env: dict[str, str | None],
    code: int,
    text: str,
) -> None:
    _apply(cli, env)
    r = cli.turn(session, message, user=user)
    assert r.code == code
    assert text in r.single_error()
    assert r.out == ""
    assert cli.checkpoints(session) == 0
    assert cli.srv.requests == []  # the model never saw it
    if session != "bad id!":
        h = cli("history", "--session", session)
        assert h.code == 2
        assert "no session" in h.single_error()


EXISTING_SESSION_BAD_TURNS = [p for p in BAD_TURNS if p.id != "bad-session-id"]


@pytest.mark.parametrize(
    ("session", "user", "message", "env", "code", "text"), EXISTING_SESSION_BAD_TURNS
)
def test_bad_turn_leaves_existing_session_untouched(
    cli: Cli,
    session: str,
    user: str,
    message: str,
    env: dict[str, str | None],
    code: int,
    text: str,
) -> None:
    cli.srv.queue(route("respond", reply="Welcome back."))
    assert cli.turn(session, "hello", user="user_100").code == 0
    before = cli.checkpoints(session)
    history = cli("history", "--session", session, "--json").json()
    assert before > 0
    n_requests = len(cli.srv.requests)

    _apply(cli, env)
    r = cli.turn(session, message, user=user)
    assert r.code == code
    r.single_error()
    assert cli.checkpoints(session) == before
    assert len(cli.srv.requests) == n_requests
    cli.env(llm_base_url=cli.srv.url)
    assert cli("history", "--session", session, "--json").json() == history


def test_session_belongs_to_its_first_user(cli: Cli) -> None:
    cli.srv.queue(route("respond", reply="Hi."))
    assert cli.turn("s-owned", "hello", user="user_100").code == 0
    before = cli.checkpoints("s-owned")
    r = cli.turn("s-owned", "hello", user="user_101")
    assert r.code == 2
    assert "belongs to another customer" in r.single_error()  # the owner is not named
    assert cli.checkpoints("s-owned") == before


def test_missing_data_dir_is_exit_4(cli: Cli, tmp_path: Path) -> None:
    cli.env(data_dir=str(tmp_path / "nowhere"))
    r = cli.turn("s-nodata", "hi")
    assert r.code == 4
    assert "setup-data" in r.single_error()


# --- history -------------------------------------------------------------------------------


def test_history_after_two_turns(cli: Cli) -> None:
    first = negotiate(cli, "s-hist", 10).json()
    cli.srv.queue(route("respond", reply="We ship in 2 days."))
    second = cli.turn("s-hist", "how fast is shipping?").json()
    assert second["turn"] == 2

    r = cli("history", "--session", "s-hist", "--json")
    assert r.code == 0
    turns = r.json()
    assert [t["turn"] for t in turns] == [1, 2]
    assert [t["customer"] for t in turns] == ["can I get 10% off?", "how fast is shipping?"]
    assert turns[0]["reply"] == first["reply"]
    assert turns[1]["reply"] == "We ship in 2 days."

    text = cli("history", "--session", "s-hist")
    assert text.code == 0
    assert "[1] you> can I get 10% off?" in text.out
    assert "[2] you> how fast is shipping?" in text.out


def test_history_rejects_malformed_session(cli: Cli) -> None:
    r = cli("history", "--session", "bad id!")
    assert r.code == 2
    assert "malformed session id" in r.single_error()


# --- graph, offers, approve, audit ---------------------------------------------------------------


def test_graph_prints_mermaid_with_every_node(cli: Cli) -> None:
    r = cli("graph")
    assert r.code == 0
    assert re.search(r"^\s*graph (TD|LR)", r.out, re.MULTILINE)
    for node in NODES:
        assert re.search(rf"\b{node}\b", r.out), node
    assert "__start__" in r.out and "__end__" in r.out


def test_offers_list_and_validate(cli: Cli) -> None:
    assert cli("offers", "list", "--json").json() == []
    code = negotiate(cli, "s-offers", 10).json()["offer"]["code"]

    offers = cli("offers", "list", "--json").json()
    assert len(offers) == 1
    assert offers[0]["code"] == code
    assert offers[0]["user_id"] == "user_100"
    assert offers[0]["status"] == "proposed"
    assert offers[0]["session_id"] == "s-offers"
    assert offers[0]["amount"] == 24.0  # 10 % of 240
    assert cli("offers", "list", "--user", "user_101", "--json").json() == []

    ok = cli("offers", "validate", code, "--user", "user_100", "--json")
    assert ok.code == 0
    assert ok.json()["valid"] is True
    assert ok.json()["offer"]["code"] == code

    typed = cli("offers", "validate", code.lower().replace("-", " "), "--user", "user_100")
    assert typed.code == 0
    assert typed.out.startswith("valid")

    other = cli("offers", "validate", code, "--user", "user_101", "--json")
    assert other.code == 1
    assert other.json() == {"valid": False, "reason": "wrong_user", "offer": None}

    unknown = cli("offers", "validate", "SGR-00000-00000", "--user", "user_100")
    assert unknown.code == 1
    assert unknown.out.startswith("invalid: unknown_code")


def test_approve_without_pending_approval(cli: Cli) -> None:
    negotiate(cli, "s-noappr", 10)
    before = cli.checkpoints("s-noappr")
    r = cli("approve", "--session", "s-noappr", "--decision", "approve")
    assert r.code == 2
    assert "no pending approval" in r.single_error()
    assert cli.checkpoints("s-noappr") == before

    fresh = cli("approve", "--session", "s-never", "--decision", "reject")
    assert fresh.code == 2
    fresh.single_error()
    assert cli.checkpoints("s-never") == 0


def test_approval_pause_and_approve(cli: Cli) -> None:
    # user_109: cap 15 % on an 800 cart; 15 % is 120 > the 100 approval amount
    data = negotiate(cli, "s-appr", 15, user="user_109").json()
    assert data["status"] == "approval_pending"
    assert data["offer"] == {"discount_percent": 15, "cap_percent": 15, "code": None}
    assert data["approval"]["reasons"]

    blocked = cli.turn("s-appr", "hello?", user="user_109")
    assert blocked.code == 2
    assert "approval" in blocked.single_error()

    r = cli("approve", "--session", "s-appr", "--decision", "approve", "--percent", "12", "--json")
    assert r.code == 0, r.err
    done = r.json()
    assert done["status"] == "proposed"
    assert done["offer"]["discount_percent"] == 12
    code = done["offer"]["code"]
    check = cli("offers", "validate", code, "--user", "user_109", "--json")
    assert check.code == 0
    assert check.json()["offer"]["decided_by"] == "manager"


@pytest.mark.parametrize(
    "percent",
    [pytest.param("40", id="above-proposal"), pytest.param("-1", id="negative")],
)
def test_approve_with_bad_percent_does_not_wedge_the_session(cli: Cli, percent: str) -> None:
    negotiate(cli, "s-wedge", 15, user="user_109")
    before = cli.checkpoints("s-wedge")
    r = cli("approve", "--session", "s-wedge", "--decision", "approve", "--percent", percent)
    assert r.code == 2
    assert "approved percent must be within 0..15" in r.single_error()
    assert cli.checkpoints("s-wedge") == before
    # the session still waits, and a valid decision goes through afterwards
    ok = cli("approve", "--session", "s-wedge", "--decision", "approve", "--json")
    assert ok.code == 0, ok.err
    assert ok.json()["offer"]["discount_percent"] == 15
    assert ok.json()["status"] == "proposed"


def test_approval_reject_falls_back_to_the_unapproved_maximum(cli: Cli) -> None:
    negotiate(cli, "s-rej", 15, user="user_109")
    r = cli("approve", "--session", "s-rej", "--decision", "reject", "--json")
    assert r.code == 0, r.err
    data = r.json()
    # 100 (approval amount) of an 800 cart: 12.5 % needs no approval
    assert data["offer"]["discount_percent"] == 12.5
    statuses = sorted(o["status"] for o in cli("offers", "list", "--json").json())
    assert statuses == ["proposed", "rejected"]


def test_audit_one_record_per_sgr_call(cli: Cli) -> None:
    negotiate(cli, "s-audit", 10)
    cli.srv.queue(route("respond", reply="Anytime."))
    cli.turn("s-audit", "thanks")

    r = cli("audit", "--session", "s-audit", "--json")
    assert r.code == 0
    records = r.json()
    assert len(records) == len(cli.srv.requests) == 3
    assert [(x["node"], x["turn"]) for x in records] == [
        ("router", 1),
        ("pricing", 1),
        ("router", 2),
    ]
    for rec in records:
        assert rec["prompt_tokens"] > 0
        assert rec["completion_tokens"] > 0
        assert rec["latency_ms"] > 0
        assert rec["dialect"] == "structured_outputs"
        assert rec["model"] == cli.srv.model
    assert records[1]["policy"]["cap_percent"] == 20
    assert records[1]["policy"]["final_percent"] == 10

    text = cli("audit", "--session", "s-audit")
    assert text.code == 0
    assert "== turn 1" in text.out and "== turn 2" in text.out


def test_audit_of_unknown_session(cli: Cli) -> None:
    r = cli("audit", "--session", "s-nothing", "--json")
    assert r.code == 2
    assert "no audit records" in r.single_error()


# --- doctor ------------------------------------------------------------------------------------


def test_doctor_ok_on_enforcing_server(cli: Cli) -> None:
    r = cli("doctor")
    assert r.code == 0
    assert "OK: the server enforces the schema" in r.out
    assert "dialect:   structured_outputs" in r.out
    assert len(cli.srv.requests) == 1


def test_doctor_fails_when_constraint_ignored(cli: Cli) -> None:
    with FakeOpenAIServer(version="0.32.0", mode="ignore") as bad:
        cli.env(llm_base_url=bad.url)
        r = cli("doctor")
    assert r.code == 1
    assert "constraint not enforced" in r.out


def test_doctor_fails_on_wrong_forced_dialect(cli: Cli) -> None:
    cli.env(structured_output="guided_json")  # a 0.32 server silently ignores guided_json
    r = cli("doctor")
    assert r.code == 1
    assert "constraint not enforced" in r.out


def test_doctor_unreachable(cli: Cli) -> None:
    cli.env(llm_base_url=f"http://127.0.0.1:{closed_port()}/v1")
    r = cli("doctor")
    assert r.code == 3
    assert "FAIL" in r.out


# --- control characters (see tests/test_guard.py) ------------------------------------------


def test_cli_refuses_nul_and_writes_nothing(cli: Cli) -> None:
    r = cli.turn("s-nul", "hello\x00")
    assert r.code == 2
    assert "NUL" in r.single_error()
    assert cli.checkpoints("s-nul") == 0


def test_cli_stores_the_cleaned_message(cli: Cli) -> None:
    cli.srv.queue(route("respond", reply="We open at 9."))
    assert cli.turn("s-ansi", "\x1b[31mwhen\x1b[0m do you \u202eopen?").code == 0
    turns = cli("history", "--session", "s-ansi", "--json").json()
    assert turns[0]["customer"] == "when do you open?"


def test_token_prints_a_shopper_jwt_the_service_accepts(cli: Cli) -> None:
    from graph.api.auth import shopper_from_token
    from graph.settings import Settings

    secret = "cli-test-shop-secret-0123456789abcdef"
    assert cli("token", "--user", "user_100").code == 2  # no secret: nothing to sign with
    cli.env(shop_secret=secret)
    r = cli("token", "--user", "user_101", "--ttl", "60")
    assert r.code == 0 and r.err == ""
    token = r.out.strip()
    assert shopper_from_token(Settings(shop_secret=secret), token).user_id == "user_101"
    import jwt

    claims = jwt.decode(token, secret, algorithms=["HS256"])
    assert 55 <= claims["exp"] - claims["iat"] <= 60
    assert cli("token", "--user", "bad id!").code == 2
    assert cli("token", "--user", "user_100", "--ttl", "0").code == 2


def test_report_since_not_a_date_is_exit_2(cli: Cli) -> None:
    r = cli("report", "--since", "last week")
    assert r.code == 2
    assert "--since 'last week' is not an ISO date or time" in r.single_error()


def test_serve_cleans_up_on_sigterm() -> None:
    """uvicorn re-raises the SIGTERM it caught after its graceful shutdown: under
    ``sigterm_as_exit`` that is ``SystemExit(143)``, so ``serve`` still stops the local model
    it started (without it the process ended at once, skipping every ``finally``)."""
    script = (
        "import signal\n"
        "from graph.ops.cli.serve import sigterm_as_exit\n"
        "try:\n"
        "    with sigterm_as_exit():\n"
        "        signal.raise_signal(signal.SIGTERM)\n"
        "finally:\n"
        "    print('cleaned up', flush=True)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 143, done.stderr
    assert done.stdout.strip() == "cleaned up"
