"""Approval across processes: a turn pauses in one CLI process, a manager resumes in another."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from graph.ops.fake_openai import FakeOpenAIServer
from stores.seed import generate
from tests.fakes import price, route


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "graph.ops.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def env(tmp_path: Path):
    data = tmp_path / "data"
    generate(data, users=10, seed=42)
    with FakeOpenAIServer(version="0.32.0") as srv:
        base = {k: v for k, v in os.environ.items() if not k.startswith("SGR_")}
        yield (
            srv,
            {
                **base,
                "SGR_DATA_DIR": str(data),
                "SGR_LLM_BASE_URL": srv.url,
                "SGR_VERIFY_CONSTRAINT": "false",
                "SGR_PRICING_STRATEGY": "model",  # these tests script the percent
            },
        )


def test_pending_approval_is_resumed_by_a_new_process(env) -> None:
    srv, environ = env
    srv.queue(route("negotiate"))
    srv.queue(price(19))
    first = _cli(
        environ,
        "turn",
        "--user",
        "user_100",
        "--session",
        "p1",
        "--message",
        "Discount or I leave",
        "--json",
    )
    assert first.returncode == 0, first.stderr
    paused = json.loads(first.stdout)
    assert paused["status"] == "approval_pending"
    assert paused["offer"] == {"discount_percent": 19, "cap_percent": 20, "code": None}
    assert paused["approval"]["reasons"] and paused["reply"] is None

    # while pending, the customer cannot start another turn
    blocked = _cli(
        environ, "turn", "--user", "user_100", "--session", "p1", "--message", "hello?", "--json"
    )
    assert blocked.returncode == 2 and "waits for a manager" in blocked.stderr

    pending = json.loads(_cli(environ, "offers", "list", "--json").stdout)
    assert [o["status"] for o in pending] == ["approval_pending"]

    done = _cli(
        environ,
        "approve",
        "--session",
        "p1",
        "--decision",
        "approve",
        "--percent",
        "16",
        "--approver",
        "ann",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "proposed" and result["offer"]["discount_percent"] == 16
    code = result["offer"]["code"]
    assert code in result["reply"]
    assert len(srv.requests) == 2  # resuming did not ask the model again

    valid = _cli(environ, "offers", "validate", code, "--user", "user_100")
    assert valid.returncode == 0 and valid.stdout.startswith("valid")
    other = _cli(environ, "offers", "validate", code, "--user", "user_101")
    assert other.returncode == 1 and "wrong_user" in other.stdout

    again = _cli(environ, "approve", "--session", "p1", "--decision", "reject")
    assert again.returncode == 2 and "no pending approval" in again.stderr


def test_reject_from_another_process_gives_the_unapproved_maximum(env) -> None:
    srv, environ = env
    srv.queue(route("negotiate", quote="Beat their price"))
    srv.queue(price(14))
    first = _cli(
        environ,
        "turn",
        "--user",
        "user_109",
        "--session",
        "p2",
        "--message",
        "Beat their price",
        "--json",
    )
    assert json.loads(first.stdout)["status"] == "approval_pending"  # 14% of 800 = 112 > 100
    done = _cli(environ, "approve", "--session", "p2", "--decision", "reject", "--json")
    result = json.loads(done.stdout)
    assert result["offer"]["discount_percent"] == 12.5  # 100 / 800
    audit = json.loads(_cli(environ, "audit", "--session", "p2", "--json").stdout)
    assert [r["node"] for r in audit] == ["router", "pricing"]
    assert audit[1]["policy"]["model_percent"] == 14


def test_rejected_approval_in_another_process_keeps_the_standing_code(env) -> None:
    """Defect 1 across processes: the pending proposal superseded the 15 % code at once."""
    srv, environ = env

    def turn(session: str, message: str) -> dict:
        done = _cli(
            environ, "turn", "--user", "user_100", "--session", session, "--message", message,
            "--json",
        )  # fmt: skip
        return json.loads(done.stdout)

    srv.queue(route("negotiate"))
    srv.queue(price(15))
    code = turn("q1", "discount?")["offer"]["code"]
    srv.queue(route("negotiate"))
    srv.queue(price(19))
    assert turn("q1", "a bigger discount or I leave")["status"] == "approval_pending"
    srv.queue(route("negotiate"))  # a second session while q1 waits: no pricing, no new code
    other = turn("q2", "any discount?")
    assert code in other["reply"] and "manager is reviewing" in other["reply"]
    done = _cli(environ, "approve", "--session", "q1", "--decision", "reject", "--json")
    assert done.returncode == 0, done.stderr
    assert code in json.loads(done.stdout)["reply"]
    offers = json.loads(_cli(environ, "offers", "list", "--user", "user_100", "--json").stdout)
    assert [(o["code"], o["status"]) for o in offers if o["status"] == "proposed"] == [
        (code, "proposed")
    ]
    valid = _cli(environ, "offers", "validate", code, "--user", "user_100")
    assert valid.returncode == 0 and valid.stdout.startswith("valid")
