"""Reliability, faults: every way an endpoint misbehaves, through the CLI.

Each fault mode of the fake server (``graph/ops/fake_openai.py``) against ``discount-manager turn
--json``: exactly one JSON object, exit 3, no traceback, the fallback reply in the session's
history, the offers untouched — and the next turn works once the server is healthy.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from graph.ops.fake_openai import FAULT_MODES, FakeOpenAIServer
from tests.fakes import FALLBACK_REPLY, price, route
from tests.ops.test_cli import Cli, Result, seeded_cli

pytestmark = pytest.mark.reliability

REPO = Path(__file__).resolve().parents[2]
# Fast faults: a 0.5 s timeout, one retry, tiny backoff (Retry-After capped at 0.05 s).
FAST_FAULTS = {
    "SGR_LLM_TIMEOUT_S": "0.5",
    "SGR_LLM_MAX_RETRIES": "1",
    "SGR_LLM_RETRY_BACKOFF_S": "0.01",
    "SGR_LLM_RETRY_MAX_WAIT_S": "0.05",
    "SGR_VERIFY_CONSTRAINT": "false",
    "SGR_PRICING_STRATEGY": "model",  # these tests script the percent
}
TRANSIENT = {"timeout", "500", "503", "429", "reset"}


@pytest.fixture
def srv() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(version="0.32.0", fault_delay=1.5) as server:
        yield server


@pytest.fixture
def cli(
    tmp_path: Path,
    srv: FakeOpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[Cli]:
    with seeded_cli(tmp_path, srv, monkeypatch, capsys, FAST_FAULTS) as (runner, _):
        yield runner


def assert_clean_fallback(r: Result) -> dict:
    """Exit 3, one JSON object with the fallback reply, no traceback."""
    assert "Traceback" not in r.err, r.err
    assert r.code == 3, (r.code, r.out, r.err)
    data = r.json()
    assert data["status"] == "fallback"
    assert data["reply"] == FALLBACK_REPLY
    assert data["error"]
    assert data["offer"] is None
    return data


def healthy_negotiation(cli: Cli, session: str, percent: float = 5) -> Result:
    cli.srv.set_fault(None)
    cli.srv.queue(route("negotiate", requested_percent=percent))
    cli.srv.queue(price(percent, f"I can do {percent:g}% for you."))
    return cli.turn(session, f"can I get a {percent:g}% discount?")  # the quote is grounded


@pytest.mark.parametrize("mode", FAULT_MODES)
def test_fault_at_the_router_ends_cleanly_and_the_next_turn_works(cli: Cli, mode: str) -> None:
    session = f"s-{mode}"
    cli.srv.set_fault(mode)
    data = assert_clean_fallback(cli.turn(session, "any discount for me?"))
    calls = len(cli.srv.requests)
    if mode in TRANSIENT:  # retried, but bounded: 1 + SGR_LLM_MAX_RETRIES attempts
        assert calls == 2
        assert "gave up after 2 attempts" in data["error"]
    elif mode == "null_content":  # an invalid reply: one repair, then typed
        assert calls == 2
    elif mode == "ignore":  # prose: the constraint is not enforced, no repair asked
        assert calls == 1
    else:  # an undecodable body is not retried
        assert calls == 1
        assert "undecodable reply" in data["error"]
    if mode == "null_content":
        assert "constraint not enforced" not in data["error"]
        assert "empty reply" in data["error"]
    if mode == "ignore":
        assert "constraint not enforced" in data["error"]

    history = cli("history", "--session", session, "--json")
    assert history.code == 0
    turns = history.json()
    assert [t["reply"] for t in turns] == [FALLBACK_REPLY]
    assert turns[0]["customer"] == "any discount for me?"

    ok = healthy_negotiation(cli, session)
    assert ok.code == 0, ok.err
    assert ok.json()["offer"]["code"]
    assert len(cli("history", "--session", session, "--json").json()) == 2


@pytest.mark.parametrize("mode", ["500", "reset", "truncated", "html", "no_choices"])
def test_fault_at_pricing_leaves_the_standing_offer(cli: Cli, mode: str) -> None:
    first = healthy_negotiation(cli, "s-price", 5).json()["offer"]
    cli.srv.queue(route("negotiate", requested_percent=10))
    cli.srv.set_fault(mode, after=1)  # the router call answers; pricing fails
    assert_clean_fallback(cli.turn("s-price", "10% please, or I leave"))
    offers = cli("offers", "list", "--user", "user_100", "--json").json()
    assert [(o["code"], o["status"]) for o in offers] == [(first["code"], "proposed")]


def test_retry_recovers_from_one_transient_fault(cli: Cli) -> None:
    cli.srv.queue(route("respond", reply="We open at 9."))
    cli.srv.set_fault("503", times=1)
    r = cli.turn("s-retry", "when do you open?")
    assert r.code == 0, r.err
    assert r.json()["reply"] == "We open at 9."
    assert len(cli.srv.requests) == 2


def test_text_turn_on_fallback_also_exits_3(cli: Cli) -> None:
    cli.srv.set_fault("html")
    r = cli("turn", "--user", "user_100", "--session", "s-text", "--message", "hello")
    assert r.code == 3
    assert FALLBACK_REPLY in r.out
    assert "Traceback" not in r.err


@pytest.mark.parametrize("mode", ["truncated", "reset"])
def test_fault_through_the_console_script(tmp_path: Path, mode: str) -> None:
    """A real process: stdout is one JSON object, stderr has no traceback, exit 3."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SGR_")}
    env.update(FAST_FAULTS, SGR_DATA_DIR=str(tmp_path / "data"), LANGSMITH_TRACING="false")
    cmd = [sys.executable, "-m", "graph.ops.cli"]
    with FakeOpenAIServer(version="0.32.0") as srv:
        env["SGR_LLM_BASE_URL"] = srv.url
        subprocess.run([*cmd, "setup-data"], env=env, cwd=REPO, check=True, capture_output=True)
        srv.set_fault(mode)
        turn = [*cmd, "turn", "--json", "--user", "user_100", "--session", "s1", "--message", "hi"]
        p = subprocess.run(turn, env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert p.returncode == 3, p.stderr
    assert "Traceback" not in p.stderr
    lines = p.stdout.strip().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["reply"] == FALLBACK_REPLY
