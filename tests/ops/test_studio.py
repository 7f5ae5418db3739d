"""End to end through ``langgraph dev`` (the Studio server) against the fake vLLM.

Starts ``graph/ops/fake_openai.py`` and ``langgraph dev`` as subprocesses on loopback, then
drives the ``negotiator`` graph of ``langgraph.json`` with ``langgraph_sdk``: a two-turn
negotiation, and an approval interrupt resumed through the API. Checks that the custom
checkpointer of ``langgraph.json`` (``graph/studio.py``) wrote the SQLite checkpoint file.

The dev server runs in a scratch directory that links to this repo's ``langgraph.json`` and
``graph/`` (the paths in ``langgraph.json`` are relative to the working directory). The
in-memory runtime keeps its thread and run records in ``./.langgraph_api/``; running from
the repo root would mix the test's threads into a developer's Studio data and race with a
``langgraph dev`` they have running.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph_sdk import get_sync_client
from langgraph_sdk.client import SyncLangGraphClient

from graph.checkpoints import ThreadedSaver
from graph.ops.processes import (
    child_env,
    free_port,
    read_ready_url,
    start_langgraph_dev,
    stop,
    wait_until_up,
)
from graph.studio import checkpointer
from stores.seed import generate
from tests.fakes import price, route

pytestmark = pytest.mark.studio

REPO = Path(__file__).resolve().parents[2]
GRAPH_ID = "negotiator"  # the key in langgraph.json's "graphs"
USER = "user_100"  # cap 20%; approval above 15% or above 100.00
FAKE_START_TIMEOUT_S = 20.0
SERVER_START_TIMEOUT_S = 90.0
RUN_TIMEOUT_S = 60.0  # HTTP timeout of every SDK call (runs.wait included)
LOG_TAIL_CHARS = 20_000

# --------------------------------------------------------------------------- processes


def _tail(path: Path) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        return f"<cannot read {path}: {e}>"
    return text[-LOG_TAIL_CHARS:]


@dataclass
class FakeLLM:
    """Handle on the out-of-process fake vLLM server."""

    url: str  # OpenAI base URL (…/v1)
    log: Path

    @property
    def root(self) -> str:
        return self.url.removesuffix("/v1")

    def queue(self, *replies: dict[str, Any]) -> None:
        for content in replies:
            r = httpx.post(f"{self.root}/_fake/queue", json={"content": content}, timeout=10)
            r.raise_for_status()

    def clear(self) -> None:
        httpx.post(f"{self.root}/_fake/clear", timeout=10).raise_for_status()

    def requests(self) -> list[dict[str, Any]]:
        r = httpx.get(f"{self.root}/_fake/requests", timeout=10)
        r.raise_for_status()
        return list(r.json()["requests"])


@pytest.fixture(scope="module")
def fake_llm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeLLM]:
    """``graph/ops/fake_openai.py`` in a subprocess; it picks a free loopback port itself."""
    log = tmp_path_factory.mktemp("fake_llm") / "fake_openai.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [
                sys.executable,
                str(REPO / "graph" / "ops" / "fake_openai.py"),
                *("--host", "127.0.0.1", "--port", "0", "--version", "0.32.0"),
            ],
            cwd=REPO,
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=err,
            start_new_session=True,
        )
    try:
        try:
            url = read_ready_url(proc, log, FAKE_START_TIMEOUT_S)
        except RuntimeError as e:
            pytest.fail(f"{e}\n{_tail(log)}")
        yield FakeLLM(url=url, log=log)
    finally:
        stop(proc)


@dataclass
class Studio:
    """A running ``langgraph dev`` and what the test needs to check its effects."""

    url: str
    client: SyncLangGraphClient
    data_dir: Path
    log: Path

    @property
    def checkpoint_db(self) -> Path:
        return self.data_dir / "checkpoints.sqlite"  # Settings' default for SGR_DATA_DIR


@pytest.fixture
def studio(fake_llm: FakeLLM, tmp_path: Path) -> Iterator[Studio]:
    """``langgraph dev`` on a free port over freshly seeded stores (one server per test)."""
    data_dir = tmp_path / "data"
    generate(data_dir, users=10)
    log = tmp_path / "langgraph_dev.log"
    port = free_port()
    env = {
        "SGR_LLM_BASE_URL": fake_llm.url,
        "SGR_DATA_DIR": str(data_dir),
        "SGR_VERIFY_CONSTRAINT": "false",
        "SGR_PRICING_STRATEGY": "model",  # these tests script the percent
    }
    proc = start_langgraph_dev(tmp_path / "server", log, port, env)
    try:
        try:
            url = wait_until_up(proc, log, port, SERVER_START_TIMEOUT_S)
        except RuntimeError as e:
            pytest.fail(f"{e}\n{_tail(log)}")
        client = get_sync_client(url=url, api_key=None, timeout=RUN_TIMEOUT_S)
        yield Studio(url=url, client=client, data_dir=data_dir, log=log)
    finally:
        stop(proc)
        # pytest shows this only for a failing test ("Captured stdout teardown").
        print(f"---- langgraph dev log ({log}) ----\n{_tail(log)}")
        print(f"---- fake LLM log ({fake_llm.log}) ----\n{_tail(fake_llm.log)}")


# --------------------------------------------------------------------------- helpers


def _say(studio: Studio, thread_id: str, text: str) -> dict[str, Any]:
    """One customer turn; the identity travels in the run context (never in the message)."""
    out = studio.client.runs.wait(
        thread_id,
        GRAPH_ID,
        input={"messages": [{"role": "user", "content": text}]},
        context={"user_id": USER},
    )
    assert isinstance(out, dict), out
    return out


def _humans(values: dict[str, Any]) -> list[str]:
    return [m["content"] for m in values.get("messages", []) if m["type"] == "human"]


def _chat_calls(fake: FakeLLM) -> list[dict[str, Any]]:
    return [r for r in fake.requests() if "messages" in r]


def _latest_in_db(db: Path, thread_id: str) -> dict[str, Any]:
    """The thread's newest checkpoint as the CLI's ``SqliteSaver`` reads it from the file."""
    conn = sqlite3.connect(db, timeout=10, check_same_thread=False)
    try:
        saver = SqliteSaver(conn)
        tup = saver.get_tuple({"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}})
        assert tup is not None, f"no checkpoint of {thread_id} in {db}"
        return {"id": tup.checkpoint["id"], **tup.checkpoint["channel_values"]}
    finally:
        conn.close()


def _checkpoints_in_db(db: Path, thread_id: str) -> int:
    conn = sqlite3.connect(db, timeout=10)
    try:
        row = conn.execute(
            "SELECT count(*) FROM checkpoints WHERE thread_id = ?", (thread_id,)
        ).fetchone()
        return int(row[0])
    finally:
        conn.close()


# --------------------------------------------------------------------------- tests


def test_langgraph_json_registers_graph_and_checkpointer() -> None:
    config = json.loads((REPO / "langgraph.json").read_text())
    assert config["graphs"] == {GRAPH_ID: "./graph/builder.py:graph"}
    assert config["dependencies"] == ["."]
    path = config["checkpointer"]["path"]
    file, name = path.split(":")
    assert (REPO / file).is_file() and file == "./graph/studio.py"
    assert name == checkpointer.__name__


def test_studio_checkpointer_creates_the_db_under_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SGR_DATA_DIR", str(tmp_path / "nested" / "data"))
    config = {"configurable": {"thread_id": "t1", "checkpoint_ns": ""}}

    async def roundtrip() -> Any:
        async with checkpointer() as saver:
            assert isinstance(saver, ThreadedSaver)
            saved = await saver.aput(config, empty_checkpoint(), {"source": "input"}, {})
            return await saver.aget_tuple(saved)

    tup = asyncio.run(roundtrip())
    assert tup is not None and tup.metadata["source"] == "input"
    assert (tmp_path / "nested" / "data" / "checkpoints.sqlite").is_file()


def test_two_turn_negotiation_through_langgraph_dev(fake_llm: FakeLLM, studio: Studio) -> None:
    fake_llm.clear()
    client = studio.client
    thread_id = client.threads.create()["thread_id"]

    # turn 1: a threat to leave -> a 10% offer with a code
    fake_llm.queue(route("negotiate", quote="I want a discount"), price(10))
    out = _say(studio, thread_id, "I want a discount or I'm leaving!")
    offer = out["standing_offer"]
    reply = out["messages"][-1]
    assert reply["type"] == "ai"
    assert (out["route"], out["status"], out["user_id"]) == ("negotiate", "proposed", USER)
    assert offer["discount_percent"] == 10 and offer["status"] == "proposed"
    assert offer["session_id"] == thread_id
    assert "10% off" in reply["content"] and offer["code"] in reply["content"]

    # turn 2: acceptance of the offer on the table
    fake_llm.queue(route("accept_offer"))
    out = _say(studio, thread_id, "Alright, I accept.")
    reply = out["messages"][-1]["content"]
    assert out["route"] == "accept_offer" and out["status"] == "accepted"
    assert reply.startswith("Done! 10% off") and offer["code"] in reply
    assert out["standing_offer"]["code"] == offer["code"]
    assert out["standing_offer"]["status"] == "accepted"

    # the thread's state, read back through the API (from the SQLite checkpointer)
    state = client.threads.get_state(thread_id)
    values = state["values"]
    assert state["next"] == [] and not state["tasks"]
    assert _humans(values) == ["I want a discount or I'm leaving!", "Alright, I accept."]
    assert len(values["messages"]) == 4
    assert values["route"] == "accept_offer" and values["turn"] == 2
    assert [o["code"] for o in values["offers"]] == [offer["code"]]
    assert values["standing_offer"]["status"] == "accepted"
    # the checkpoint keeps the current turn's audit records (the trail is in audit_log)
    assert [(a["turn"], a["node"]) for a in values["audit"]] == [(2, "router")]

    # ... and its history, newest first
    history = client.threads.get_history(thread_id, limit=100)
    assert history[0]["checkpoint"]["checkpoint_id"] == state["checkpoint"]["checkpoint_id"]
    assert history[0]["values"]["route"] == "accept_offer"
    assert _humans(history[0]["values"]) == _humans(values)
    assert history[-1]["metadata"]["source"] == "input"  # the first turn's input
    end_of_turn_1 = [
        h
        for h in history
        if h["next"] == [] and len(_humans(h["values"])) == 1 and h["values"].get("status")
    ]
    assert [h["values"]["route"] for h in end_of_turn_1] == ["negotiate"]
    assert end_of_turn_1[0]["values"]["standing_offer"]["code"] == offer["code"]

    # three LLM calls (router, pricing, router), all scripted replies used
    calls = _chat_calls(fake_llm)
    assert len(calls) == 3
    assert all("structured_outputs" in c for c in calls)

    # persisted by graph/studio.py's AsyncSqliteSaver, not the dev server's pickles
    assert studio.checkpoint_db.is_file()
    assert _checkpoints_in_db(studio.checkpoint_db, thread_id) == len(history)
    saved = _latest_in_db(studio.checkpoint_db, thread_id)
    assert saved["id"] == state["checkpoint"]["checkpoint_id"]
    # messages are a DeltaChannel: a checkpoint stores the step's writes, not the whole list
    # (read back whole through the API above)
    assert "messages" not in saved
    assert saved["route"] == "accept_offer" and saved["standing_offer"]["status"] == "accepted"


def test_approval_interrupt_resumed_through_the_api(fake_llm: FakeLLM, studio: Studio) -> None:
    fake_llm.clear()
    client = studio.client
    thread_id = client.threads.create()["thread_id"]

    # 19% is above the 15% threshold: the offer node pauses for a manager
    fake_llm.queue(route("negotiate", quote="I want a discount"), price(19))
    out = _say(studio, thread_id, "I want a discount or I'm leaving!")
    assert [i["value"]["type"] for i in out["__interrupt__"]] == ["approval"]

    state = client.threads.get_state(thread_id)
    assert state["next"] == ["offer"]
    [task] = state["tasks"]
    assert task["name"] == "offer"
    [pending] = task["interrupts"]
    payload = pending["value"]
    assert payload["type"] == "approval"
    assert (payload["user_id"], payload["session"]) == (USER, thread_id)
    assert payload["proposed_percent"] == 19 and payload["cap_percent"] == 20
    assert payload["no_approval_percent"] == 15
    assert any("15%" in r for r in payload["reasons"])
    assert [i["id"] for i in state["interrupts"]] == [pending["id"]]
    assert state["values"]["messages"][-1]["type"] == "human"  # no reply yet
    thread = client.threads.get(thread_id)
    assert thread["status"] == "interrupted"

    # the manager approves 15% (of the 19% asked) through the SDK
    out = client.runs.wait(
        thread_id,
        GRAPH_ID,
        command={"resume": {"decision": "approve", "percent": 15, "approver": "studio"}},
        context={"user_id": USER},
    )
    assert isinstance(out, dict) and "__interrupt__" not in out
    reply = out["messages"][-1]["content"]
    offer = out["standing_offer"]
    assert "15% off" in reply and payload["code"] in reply
    assert offer["code"] == payload["code"]
    assert offer["discount_percent"] == 15 and offer["decided_by"] == "studio"
    assert out["proposal"]["approval"] == "approved by studio"

    state = client.threads.get_state(thread_id)
    assert state["next"] == [] and not state["tasks"] and not state["interrupts"]
    assert client.threads.get(thread_id)["status"] == "idle"
    assert len(_chat_calls(fake_llm)) == 2  # resuming re-runs the offer node only

    assert studio.checkpoint_db.is_file()
    history = client.threads.get_history(thread_id, limit=100)
    assert _checkpoints_in_db(studio.checkpoint_db, thread_id) == len(history)
    saved = _latest_in_db(studio.checkpoint_db, thread_id)
    assert saved["id"] == state["checkpoint"]["checkpoint_id"]
    assert saved["standing_offer"]["discount_percent"] == 15
