"""Tests for the fake OpenAI-compatible vLLM server in graph/ops/fake_openai.py."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

import httpx
import openai
import pytest
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field

from graph.ops.fake_openai import (
    PLAIN_TEXT,
    REJECT_BACKEND_MESSAGE,
    FakeOpenAIServer,
    schema_instance,
)

FAKE_SCRIPT = Path(__file__).resolve().parents[2] / "graph" / "ops" / "fake_openai.py"


# --------------------------------------------------------------------------------------
# Models used as schemas
# --------------------------------------------------------------------------------------


class Address(BaseModel):
    city: str = Field(min_length=5)
    zip_code: str = Field(pattern=r"^\d{5}$")


class Customer(BaseModel):
    name: str
    tier: Literal["bronze", "silver", "gold"]
    addresses: list[Address] = Field(min_length=2)
    primary: Address
    nickname: str | None = None
    tags: dict[str, int] = {}


class Accept(BaseModel):
    kind: Literal["accept"]
    price: float = Field(gt=0)


class Counter(BaseModel):
    kind: Literal["counter"]
    discount_pct: float = Field(ge=5, le=30)
    reason: str = Field(min_length=10, max_length=40)


class Reject(BaseModel):
    kind: Literal["reject"]


class Decision(BaseModel):
    thoughts: list[str] = Field(min_length=1, max_length=3)
    action: Annotated[Counter | Accept | Reject, Field(discriminator="kind")]
    confidence: float = Field(gt=0.0, lt=1.0)
    attempts: int = Field(ge=1, le=5, default=1)
    neg: int = Field(lt=-3)


class Color(StrEnum):
    red = "red"
    blue = "blue"


class Node(BaseModel):
    value: int = Field(gt=10, multiple_of=7)
    child: Node | None = None
    color: Color
    when: datetime
    day: date
    sku: str = Field(pattern=r"^SKU-[A-Z]{3}-\d{2,4}$")


class Bounded(BaseModel):
    x: float = Field(ge=0.25, le=0.75)
    y: float = Field(gt=-1.0, lt=-0.5)
    z: int = Field(gt=2, lt=4)
    w: Annotated[str, Field(max_length=1)]


OBJ_SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "integer", "minimum": 3}},
    "required": ["answer"],
}


# --------------------------------------------------------------------------------------
# schema_instance
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", [Address, Customer, Decision, Node, Bounded, Counter])
def test_schema_instance_validates_against_pydantic(model: type[BaseModel]) -> None:
    instance = schema_instance(model.model_json_schema())
    model.model_validate(instance)
    # the JSON round trip (what the fake server actually sends) validates too
    model.model_validate_json(json.dumps(instance))


def test_schema_instance_details() -> None:
    d = schema_instance(Decision.model_json_schema())
    assert d["action"]["kind"] == "counter"  # first oneOf branch
    assert 5 <= d["action"]["discount_pct"] <= 30
    assert 10 <= len(d["action"]["reason"]) <= 40
    assert 0 < d["confidence"] < 1
    assert d["neg"] < -3
    assert len(d["thoughts"]) == 1

    c = schema_instance(Customer.model_json_schema())
    assert len(c["addresses"]) == 2
    assert c["tier"] == "bronze"

    # recursion through Optional[Self] terminates
    n = schema_instance(Node.model_json_schema())
    assert n["value"] % 7 == 0 and n["value"] > 10
    assert n.get("child") is None

    # required-only mode
    minimal = schema_instance(Customer.model_json_schema(), include_optional=False)
    assert "nickname" not in minimal and "tags" not in minimal

    assert schema_instance({"const": 3}) == 3
    assert schema_instance({"enum": ["b", "a"]}) == "b"
    assert schema_instance({"type": "null"}) is None
    assert schema_instance({"type": "boolean"}) is False
    assert schema_instance({"type": "integer"}) == 0
    assert schema_instance({"type": "integer", "minimum": 7, "maximum": 9}) == 7
    assert schema_instance({"type": "integer", "maximum": -2}) == -2
    assert schema_instance({"type": "number", "exclusiveMinimum": 0}) > 0
    assert schema_instance({"type": "string", "minLength": 6}) == "okxxxx"
    assert schema_instance({"type": "string", "maxLength": 1}) == "o"
    assert schema_instance({"type": "array", "items": {"type": "string"}}) == []
    assert schema_instance({"type": ["string", "null"]}) == "ok"
    # discriminator mapping fills the tag when the branch does not pin it
    disc = {
        "oneOf": [{"$ref": "#/$defs/X"}],
        "discriminator": {"propertyName": "t", "mapping": {"x": "#/$defs/X"}},
        "$defs": {"X": {"type": "object", "properties": {}}},
    }
    assert schema_instance(disc) == {"t": "x"}


# --------------------------------------------------------------------------------------
# Plain HTTP with httpx
# --------------------------------------------------------------------------------------


def _chat(srv: FakeOpenAIServer, **extra: object) -> httpx.Response:
    body = {"model": "fake-model", "messages": [{"role": "user", "content": "hello there"}]}
    body.update(extra)
    return httpx.post(f"{srv.url}/chat/completions", json=body, timeout=10)


def _content(resp: httpx.Response) -> str:
    assert resp.status_code == 200, resp.text
    return resp.json()["choices"][0]["message"]["content"]


def test_urls_version_and_models() -> None:
    with FakeOpenAIServer(version="0.32.0", model="m1") as srv:
        assert srv.url.startswith("http://127.0.0.1:") and srv.url.endswith("/v1")
        assert srv.url == srv.root + "/v1"
        assert httpx.get(f"{srv.root}/version").json() == {"version": "0.32.0"}
        models = httpx.get(f"{srv.url}/models").json()
        assert models == {
            "object": "list",
            "data": [{"id": "m1", "object": "model", "created": 0, "owned_by": "fake"}],
        }
        assert httpx.get(f"{srv.url}/nope").status_code == 404
    with FakeOpenAIServer(version=None) as srv:
        assert httpx.get(f"{srv.root}/version").status_code == 404
        assert httpx.get(f"{srv.url}/models").status_code == 200


def test_not_started_and_bad_args() -> None:
    srv = FakeOpenAIServer()
    with pytest.raises(RuntimeError):
        _ = srv.url
    with pytest.raises(ValueError):
        FakeOpenAIServer(mode="bogus")
    srv.stop()  # stopping a never-started server is a no-op


def test_response_shape_and_usage() -> None:
    with FakeOpenAIServer() as srv:
        resp = _chat(srv)
        data = resp.json()
        assert data["object"] == "chat.completion"
        assert data["model"] == "fake-model"
        choice = data["choices"][0]
        assert choice["message"] == {"role": "assistant", "content": PLAIN_TEXT}
        assert choice["finish_reason"] == "stop"
        usage = data["usage"]
        assert usage["prompt_tokens"] == 2  # "hello there"
        assert usage["completion_tokens"] == len(PLAIN_TEXT.split())
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
        assert srv.requests == [
            {"model": "fake-model", "messages": [{"role": "user", "content": "hello there"}]}
        ]


@pytest.mark.parametrize(
    ("version", "field", "honoured"),
    [
        ("0.32.0", "structured_outputs", True),
        ("0.32.0", "guided_json", False),  # silently ignored by vLLM >= 0.12
        ("0.12.0", "structured_outputs", True),
        ("0.12.0", "guided_json", False),
        ("0.11.2", "guided_json", True),
        ("0.11.2", "structured_outputs", False),
        ("0.8.5.post1", "guided_json", True),
        (None, "guided_json", False),  # generic OpenAI server
        (None, "structured_outputs", False),
    ],
)
def test_version_behaviour(version: str | None, field: str, honoured: bool) -> None:
    extra = (
        {"structured_outputs": {"json": OBJ_SCHEMA}}
        if field == "structured_outputs"
        else {"guided_json": OBJ_SCHEMA}
    )
    with FakeOpenAIServer(version=version) as srv:
        content = _content(_chat(srv, **extra))
        assert content == (json.dumps({"answer": 3}) if honoured else PLAIN_TEXT)
        assert srv.requests[-1] == {
            "model": "fake-model",
            "messages": [{"role": "user", "content": "hello there"}],
            **extra,
        }


@pytest.mark.parametrize("version", ["0.32.0", "0.10.1", None])
def test_response_format_is_honoured_everywhere(version: str | None) -> None:
    rf = {"type": "json_schema", "json_schema": {"name": "A", "schema": OBJ_SCHEMA}}
    with FakeOpenAIServer(version=version) as srv:
        assert json.loads(_content(_chat(srv, response_format=rf))) == {"answer": 3}
        assert json.loads(_content(_chat(srv, response_format={"type": "json_object"}))) == {}
        assert _content(_chat(srv, response_format={"type": "text"})) == PLAIN_TEXT


def test_response_format_wins_over_structured_outputs() -> None:
    other = {"type": "object", "properties": {"b": {"const": "B"}}, "required": ["b"]}
    rf = {"type": "json_schema", "json_schema": {"name": "A", "schema": OBJ_SCHEMA}}
    with FakeOpenAIServer() as srv:
        content = _content(_chat(srv, response_format=rf, structured_outputs={"json": other}))
        assert json.loads(content) == {"answer": 3}


def test_schema_given_as_json_string_and_choice() -> None:
    with FakeOpenAIServer() as srv:
        so = {"json": json.dumps(OBJ_SCHEMA)}
        assert json.loads(_content(_chat(srv, structured_outputs=so))) == {"answer": 3}
        assert _content(_chat(srv, structured_outputs={"choice": ["yes", "no"]})) == "yes"
    with FakeOpenAIServer(version="0.9.0") as srv:
        assert _content(_chat(srv, guided_choice=["yes", "no"])) == "yes"


def test_mode_ignore() -> None:
    rf = {"type": "json_schema", "json_schema": {"name": "A", "schema": OBJ_SCHEMA}}
    with FakeOpenAIServer(mode="ignore") as srv:
        assert _content(_chat(srv, structured_outputs={"json": OBJ_SCHEMA})) == PLAIN_TEXT
        assert _content(_chat(srv, response_format=rf)) == PLAIN_TEXT
        srv.queue("scripted")
        assert _content(_chat(srv, response_format=rf)) == "scripted"


def test_reject_backend() -> None:
    with FakeOpenAIServer(version="0.10.1", reject_backend=True) as srv:
        resp = _chat(srv, guided_json=OBJ_SCHEMA, guided_decoding_backend="guidance")
        assert resp.status_code == 400
        assert resp.json() == {
            "error": {"message": REJECT_BACKEND_MESSAGE, "type": "BadRequestError", "code": 400}
        }
        assert srv.requests[-1]["guided_decoding_backend"] == "guidance"  # still recorded
        # without the backend field it works
        assert json.loads(_content(_chat(srv, guided_json=OBJ_SCHEMA))) == {"answer": 3}
    with FakeOpenAIServer(reject_backend=False) as srv:
        assert _chat(srv, guided_decoding_backend="guidance").status_code == 200


def test_queue_responder_and_clear() -> None:
    seen: list[dict] = []

    def responder(body: dict) -> str:
        seen.append(body)
        return "from responder"

    with FakeOpenAIServer(responder=responder) as srv:
        srv.queue("first")
        srv.queue({"a": 1}, finish_reason="length")
        r1, r2, r3 = (_chat(srv).json() for _ in range(3))
        assert r1["choices"][0]["message"]["content"] == "first"
        assert r2["choices"][0]["message"]["content"] == '{"a": 1}'
        assert r2["choices"][0]["finish_reason"] == "length"
        assert r3["choices"][0]["message"]["content"] == "from responder"
        assert len(seen) == 1 and len(srv.requests) == 3
        srv.queue("dropped")
        srv.clear()
        assert srv.requests == []
        assert _content(_chat(srv)) == "from responder"


def test_control_endpoints() -> None:
    with FakeOpenAIServer() as srv:
        assert httpx.post(f"{srv.root}/_fake/queue", json={"content": {"x": 1}}).status_code == 200
        assert _content(_chat(srv)) == '{"x": 1}'
        assert httpx.get(f"{srv.root}/_fake/requests").json()["requests"] == srv.requests
        assert httpx.post(f"{srv.root}/_fake/clear", json={}).status_code == 200
        assert srv.requests == []


def test_bad_json_body() -> None:
    with FakeOpenAIServer() as srv:
        resp = httpx.post(
            f"{srv.url}/chat/completions",
            content=b"{nope",
            headers={"Content-Type": "application/json"},
        )
        assert resp.status_code == 400
        assert "error" in resp.json()


def test_concurrent_requests_are_all_recorded() -> None:
    with FakeOpenAIServer() as srv, ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: _chat(srv, user=str(i)).status_code, range(40)))
        assert results == [200] * 40
        assert sorted(int(r["user"]) for r in srv.requests) == list(range(40))


def _sse_events(resp: httpx.Response) -> list:
    events = []
    for line in resp.iter_lines():
        if line.startswith("data: "):
            payload = line[len("data: ") :]
            events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


@pytest.mark.parametrize("include_usage", [False, True])
def test_streaming_sse(include_usage: bool) -> None:
    body = {
        "model": "fake-model",
        "messages": [{"role": "user", "content": "a b c"}],
        "stream": True,
        "structured_outputs": {"json": OBJ_SCHEMA},
    }
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    with (
        FakeOpenAIServer() as srv,
        httpx.stream("POST", f"{srv.url}/chat/completions", json=body, timeout=10) as resp,
    ):
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        events = _sse_events(resp)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert json.loads(text) == {"answer": 3}
    finals = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert len(finals) == 1 and finals[0]["choices"][0]["finish_reason"] == "stop"
    usage_chunks = [c for c in chunks if not c["choices"]]
    if include_usage:
        assert len(usage_chunks) == 1 and usage_chunks[0] is chunks[-1]
        assert usage_chunks[0]["usage"]["prompt_tokens"] == 3
    else:
        assert usage_chunks == []


# --------------------------------------------------------------------------------------
# openai SDK
# --------------------------------------------------------------------------------------


def test_openai_sdk_extra_body_and_errors() -> None:
    with FakeOpenAIServer(version="0.10.1", reject_backend=True) as srv:
        client = openai.OpenAI(base_url=srv.url, api_key="x", max_retries=0)
        out = client.chat.completions.create(
            model="fake-model",
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"guided_json": OBJ_SCHEMA},
        )
        assert json.loads(out.choices[0].message.content or "") == {"answer": 3}
        assert out.usage is not None and out.usage.total_tokens > 0
        # extra_body is merged into the top level of the JSON body
        assert srv.requests[-1]["guided_json"] == OBJ_SCHEMA
        assert "extra_body" not in srv.requests[-1]
        with pytest.raises(openai.BadRequestError) as exc:
            client.chat.completions.create(
                model="fake-model",
                messages=[{"role": "user", "content": "hi"}],
                extra_body={"guided_json": OBJ_SCHEMA, "guided_decoding_backend": "guidance"},
            )
        assert "must match engine-level backend" in str(exc.value)

        stream = client.chat.completions.create(
            model="fake-model",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == PLAIN_TEXT
        assert chunks[-1].usage is not None and chunks[-1].choices == []


# --------------------------------------------------------------------------------------
# langchain_openai.ChatOpenAI
# --------------------------------------------------------------------------------------


def _llm(srv: FakeOpenAIServer, **kw: object) -> ChatOpenAI:
    return ChatOpenAI(
        base_url=srv.url,
        api_key="x",
        model="fake-model",
        use_responses_api=False,
        max_retries=0,
        **kw,
    )


def test_langchain_extra_body_structured_outputs() -> None:
    schema = Decision.model_json_schema()
    with FakeOpenAIServer() as srv:
        llm = _llm(srv, extra_body={"structured_outputs": {"json": schema}})
        msg = llm.invoke("make a decision")
        Decision.model_validate_json(msg.content)
        body = srv.requests[-1]
        assert body["structured_outputs"] == {"json": schema}  # top level, not nested
        assert "extra_body" not in body and "response_format" not in body
        assert body["stream"] is False
        assert body["model"] == "fake-model"
        assert body["messages"] == [{"role": "user", "content": "make a decision"}]
        assert msg.usage_metadata is not None and msg.usage_metadata["input_tokens"] == 3
        assert msg.response_metadata["finish_reason"] == "stop"

        # GOTCHA: extra_body passed at call time REPLACES the constructor's extra_body
        llm.invoke("x", extra_body={"top_k": 5})
        assert srv.requests[-1]["top_k"] == 5
        assert "structured_outputs" not in srv.requests[-1]


def test_langchain_guided_json_is_ignored_by_new_vllm() -> None:
    with FakeOpenAIServer(version="0.32.0") as srv:
        llm = _llm(srv, extra_body={"guided_json": OBJ_SCHEMA})
        assert llm.invoke("hi").content == PLAIN_TEXT
        assert srv.requests[-1]["guided_json"] == OBJ_SCHEMA
    with FakeOpenAIServer(version="0.11.0") as srv:
        llm = _llm(srv, extra_body={"guided_json": OBJ_SCHEMA})
        assert json.loads(llm.invoke("hi").content) == {"answer": 3}


def test_langchain_streaming_and_stream_usage() -> None:
    with FakeOpenAIServer() as srv:
        llm = _llm(srv, extra_body={"structured_outputs": {"json": OBJ_SCHEMA}})
        chunks = list(llm.stream("hi"))
        assert json.loads("".join(str(c.content) for c in chunks)) == {"answer": 3}
        body = srv.requests[-1]
        assert body["stream"] is True and body["structured_outputs"] == {"json": OBJ_SCHEMA}
        # GOTCHA: with a custom base_url, stream_usage defaults to off -> no usage
        assert "stream_options" not in body
        assert all(c.usage_metadata is None for c in chunks)

        chunks = list(llm.stream("hi", stream_usage=True))
        assert srv.requests[-1]["stream_options"] == {"include_usage": True}
        usage = [c.usage_metadata for c in chunks if c.usage_metadata]
        assert len(usage) == 1 and usage[0]["input_tokens"] == 1

        llm_usage = _llm(srv, stream_usage=True)
        list(llm_usage.stream("hi"))
        assert srv.requests[-1]["stream_options"] == {"include_usage": True}

        # streaming=True makes invoke() go through SSE
        _llm(srv, streaming=True).invoke("hi")
        assert srv.requests[-1]["stream"] is True


# langchain_openai's streaming structured-output path model_dump()s the SDK's parsed
# chunk and pydantic warns about the `parsed` field; harmless.
@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning")
def test_langchain_with_structured_output_response_format() -> None:
    with FakeOpenAIServer() as srv:
        structured = _llm(srv).with_structured_output(Decision)  # method="json_schema"
        result = structured.invoke("decide")
        assert isinstance(result, Decision)
        rf = srv.requests[-1]["response_format"]
        assert rf["type"] == "json_schema"
        assert rf["json_schema"]["name"] == "Decision"
        assert rf["json_schema"]["strict"] is True  # openai SDK makes pydantic schemas strict
        assert srv.requests[-1]["stream"] is False

        # streaming path (beta.chat.completions.stream) also sends response_format
        results = list(structured.stream("decide"))
        assert isinstance(results[-1], Decision)
        assert srv.requests[-1]["stream"] is True
        assert "response_format" in srv.requests[-1]

        # finish_reason="length" makes the openai SDK refuse to parse
        srv.queue(schema_instance(Decision.model_json_schema()), finish_reason="length")
        with pytest.raises(openai.LengthFinishReasonError):
            structured.invoke("decide")

    with FakeOpenAIServer(version=None) as srv:  # a generic OpenAI server honours it too
        assert isinstance(_llm(srv).with_structured_output(Decision).invoke("x"), Decision)


def test_langchain_reject_backend_raises() -> None:
    with FakeOpenAIServer(version="0.9.2", reject_backend=True) as srv:
        llm = _llm(srv, extra_body={"guided_json": OBJ_SCHEMA, "guided_decoding_backend": "x"})
        with pytest.raises(openai.BadRequestError, match="engine-level backend"):
            llm.invoke("hi")


async def _ainvoke(llm: ChatOpenAI) -> str:
    return str((await llm.ainvoke("hi")).content)


def test_langchain_async() -> None:
    import asyncio

    with FakeOpenAIServer() as srv:
        llm = _llm(srv, extra_body={"structured_outputs": {"json": OBJ_SCHEMA}})
        assert json.loads(asyncio.run(_ainvoke(llm))) == {"answer": 3}


# --------------------------------------------------------------------------------------
# __main__ mode
# --------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(proc: subprocess.Popen, timeout: float = 20.0) -> str:
    """Read stdout until the READY line (in a thread so a hung child can't block us)."""
    box: list[str] = []

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("READY "):
                box.append(line.split(None, 1)[1].strip())
                return

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    t.join(timeout)
    if not box:
        proc.kill()
        _, err = proc.communicate(timeout=10)
        raise AssertionError(f"fake server did not print READY (rc={proc.poll()}): {err}")
    return box[0]


@pytest.mark.parametrize(
    "extra_args", [["--version", "0.32.0", "--mode", "enforce"], ["--version", "none"]]
)
def test_main_subprocess(extra_args: list[str]) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, str(FAKE_SCRIPT), "--port", str(port), *extra_args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = _wait_ready(proc)
        assert url == f"http://127.0.0.1:{port}/v1"
        models = httpx.get(f"{url}/models", timeout=5).json()
        assert models["data"][0]["id"] == "fake-model"
        version = httpx.get(f"http://127.0.0.1:{port}/version", timeout=5)
        if "none" in extra_args:
            assert version.status_code == 404
        else:
            assert version.json() == {"version": "0.32.0"}
            llm = ChatOpenAI(
                base_url=url,
                api_key="x",
                model="fake-model",
                use_responses_api=False,
                extra_body={"structured_outputs": {"json": OBJ_SCHEMA}},
            )
            assert json.loads(llm.invoke("hi").content) == {"answer": 3}
            recorded = httpx.get(f"http://127.0.0.1:{port}/_fake/requests").json()["requests"]
            assert recorded[-1]["structured_outputs"] == {"json": OBJ_SCHEMA}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 0  # SIGTERM is handled: clean shutdown


# --- fault modes ------------------------------------------------------------------------------


def _post_chat(srv: FakeOpenAIServer, timeout: float = 5.0) -> httpx.Response:
    body = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]}
    return httpx.post(f"{srv.url}/chat/completions", json=body, timeout=timeout)


@pytest.mark.parametrize(
    ("mode", "status", "check"),
    [
        ("500", 500, lambda r: "error" in r.json()),
        ("503", 503, lambda r: "error" in r.json()),
        ("429", 429, lambda r: r.headers["retry-after"] == "3"),
        ("html", 200, lambda r: r.headers["content-type"] == "text/html" and "<html>" in r.text),
        ("truncated", 200, lambda r: r.text.startswith('{"id"') and not _decodes(r.text)),
        ("no_choices", 200, lambda r: "choices" not in r.json()),
        ("null_content", 200, lambda r: r.json()["choices"][0]["message"]["content"] is None),
        ("ignore", 200, lambda r: r.json()["choices"][0]["message"]["content"] == PLAIN_TEXT),
    ],
)
def test_fault_modes_answer_as_described(mode: str, status: int, check) -> None:
    with FakeOpenAIServer(retry_after="3") as srv:
        srv.set_fault(mode)
        r = _post_chat(srv)
        assert r.status_code == status
        assert check(r)
        assert srv.faults_served == 1


def _decodes(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def test_fault_timeout_and_reset() -> None:
    with FakeOpenAIServer(fault_delay=1.0) as srv:
        srv.set_fault("timeout", times=1)
        with pytest.raises(httpx.ReadTimeout):
            _post_chat(srv, timeout=0.2)
        srv.set_fault("reset", times=1)
        with pytest.raises(httpx.TransportError):
            _post_chat(srv)
        assert _post_chat(srv).status_code == 200  # both faults were used up


def test_fault_times_after_and_clear() -> None:
    with FakeOpenAIServer() as srv:
        srv.set_fault("500", times=2, after=1)
        assert [_post_chat(srv).status_code for _ in range(4)] == [200, 500, 500, 200]
        srv.set_fault("503")
        assert [_post_chat(srv).status_code for _ in range(3)] == [503, 503, 503]
        srv.clear()
        assert _post_chat(srv).status_code == 200
        with pytest.raises(ValueError, match="fault must be one of"):
            srv.set_fault("explode")


def test_fault_control_endpoint() -> None:
    with FakeOpenAIServer() as srv:
        ok = httpx.post(f"{srv.root}/_fake/fault", json={"mode": "html", "times": 1})
        assert ok.status_code == 200
        assert _post_chat(srv).headers["content-type"] == "text/html"
        bad = httpx.post(f"{srv.root}/_fake/fault", json={"mode": "nope"})
        assert bad.status_code == 400
        assert _post_chat(srv).status_code == 200
