"""Wire tests: a real ``ChatOpenAI`` against the fake vLLM on loopback, bodies checked exactly."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field

from graph.ops.cli.doctor import run_doctor
from graph.ops.fake_openai import PLAIN_TEXT, FakeOpenAIServer
from graph.services import build_structured_llm
from graph.settings import Settings
from graph.sgr import (
    PROBE_PROMPT,
    ConstraintNotEnforcedError,
    ConstraintProbe,
    LLMUnavailableError,
    ProbeResult,
    StructuredLLM,
    StructuredOutputError,
    detect_dialect,
)
from nodes.pricing import PricingDecision, bounded_pricing_model
from tests.fakes import price

GUIDED_KEYS = ("guided_json", "guided_decoding_backend", "guided_choice", "guided_regex")


class Quote(BaseModel):
    """A tiny schema with a bound the server enforces and the client re-checks."""

    percent: float = Field(ge=0, le=10)
    note: str = Field(min_length=1, max_length=40)


Q_SCHEMA = Quote.model_json_schema()
MESSAGES = [SystemMessage(content="You quote discounts."), HumanMessage(content="quote me please")]


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[FakeOpenAIServer]:
    """A started fake; ``@pytest.mark.parametrize("server", [{...}], indirect=True)`` tunes it."""
    kwargs: dict[str, Any] = getattr(request, "param", {}) or {}
    with FakeOpenAIServer(**kwargs) as srv:
        yield srv


def build(srv: FakeOpenAIServer, **overrides: Any) -> StructuredLLM:
    """``build_structured_llm`` on the fake, no probe unless asked."""
    values: dict[str, Any] = {"llm_base_url": srv.url, "verify_constraint": False}
    values.update(overrides)
    return build_structured_llm(Settings(**values))


def sent_schema(body: dict[str, Any]) -> dict[str, Any]:
    """The JSON schema a request body asks the server to enforce, whatever the dialect."""
    if "structured_outputs" in body:
        return body["structured_outputs"]["json"]
    if "guided_json" in body:
        return body["guided_json"]
    return body["response_format"]["json_schema"]["schema"]


def word_tokens(body: dict[str, Any]) -> int:
    """Prompt tokens as the fake counts them (words of the message contents)."""
    return sum(len(str(m.get("content") or "").split()) for m in body["messages"])


# --- detect_dialect --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "dialect"),
    [
        pytest.param("0.32.0", "structured_outputs", id="new-vllm"),
        pytest.param("0.12.0", "structured_outputs", id="first-structured-outputs-release"),
        pytest.param("0.11.9", "guided_json", id="last-guided-release"),
        pytest.param("0.10.1", "guided_json", id="old-vllm"),
        pytest.param(None, "response_format", id="no-version-endpoint"),
    ],
)
def test_detect_dialect(version: str | None, dialect: str) -> None:
    with FakeOpenAIServer(version=version) as srv:
        assert detect_dialect(srv.root) == dialect
        assert detect_dialect(srv.root + "/") == dialect
        # auto in build_structured_llm strips /v1 to reach /version
        assert build(srv, structured_output="auto").dialect == dialect
        # the model id comes from /v1/models when not configured
        assert build(srv).model_name == srv.model


def test_detect_dialect_unreachable() -> None:
    root = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(LLMUnavailableError, match="unreachable"):
        detect_dialect(root)
    with pytest.raises(LLMUnavailableError):
        build_structured_llm(Settings(llm_base_url=f"{root}/v1"))


def test_configured_dialect_skips_detection(server: FakeOpenAIServer) -> None:
    llm = build(server, structured_output="response_format", llm_model="pinned")
    assert llm.dialect == "response_format"
    assert llm.model_name == "pinned"


# --- exact request bodies per dialect ------------------------------------------------------


@pytest.mark.parametrize("server", [{"version": "0.32.0"}], indirect=True)
async def test_body_structured_outputs(server: FakeOpenAIServer) -> None:
    llm = build(server)
    got, call = await llm.call(Quote, MESSAGES, node="t")
    body = server.requests[-1]
    assert body["structured_outputs"] == {"json": Q_SCHEMA, "disable_any_whitespace": True}
    assert not any(k in body for k in GUIDED_KEYS)
    assert "response_format" not in body
    assert body["max_completion_tokens"] == 768 or body.get("max_tokens") == 768
    assert body["model"] == server.model
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert isinstance(got, Quote)
    assert call.dialect == "structured_outputs"
    assert call.parsed == got.model_dump(mode="json")


@pytest.mark.parametrize("server", [{"version": "0.10.1"}], indirect=True)
async def test_body_guided_json(server: FakeOpenAIServer) -> None:
    llm = build(server)
    assert llm.dialect == "guided_json"
    await llm.call(Quote, MESSAGES, node="t")
    body = server.requests[-1]
    assert body["guided_json"] == Q_SCHEMA
    assert body["guided_decoding_backend"] == "xgrammar"
    assert "structured_outputs" not in body
    assert "response_format" not in body
    assert (body.get("max_completion_tokens") or body.get("max_tokens")) == 768


@pytest.mark.parametrize("server", [{"version": None}], indirect=True)
async def test_body_response_format(server: FakeOpenAIServer) -> None:
    llm = build(server, llm_max_tokens=123)
    assert llm.dialect == "response_format"
    await llm.call(Quote, MESSAGES, node="t")
    body = server.requests[-1]
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "Quote", "schema": Q_SCHEMA, "strict": True},
    }
    assert "structured_outputs" not in body
    assert not any(k in body for k in GUIDED_KEYS)
    assert (body.get("max_completion_tokens") or body.get("max_tokens")) == 123


@pytest.mark.parametrize(
    ("version", "dialect", "key"),
    [
        pytest.param("0.32.0", "structured_outputs", "structured_outputs", id="structured"),
        pytest.param("0.10.1", "guided_json", "guided_json", id="guided"),
        pytest.param(None, "response_format", "response_format", id="response-format"),
    ],
)
async def test_constructor_extra_body_is_merged_not_lost(
    version: str | None, dialect: str, key: str
):
    with FakeOpenAIServer(version=version) as srv:
        chat = ChatOpenAI(
            base_url=srv.url,
            api_key="x",  # type: ignore[arg-type]
            model=srv.model,
            use_responses_api=False,
            max_retries=0,
            extra_body={"top_k": 5, "repetition_penalty": 1.1},
        )
        llm = StructuredLLM(chat, dialect, max_tokens=77)  # type: ignore[arg-type]
        await llm.call(Quote, MESSAGES, node="t")
        await llm.call(Quote, MESSAGES, node="t")
        for body in srv.requests:
            assert body["top_k"] == 5
            assert body["repetition_penalty"] == 1.1
            assert key in body
            assert sent_schema(body) == Q_SCHEMA
            assert (body.get("max_completion_tokens") or body.get("max_tokens")) == 77
        # the model's own extra_body is not mutated by the merge
        assert chat.extra_body == {"top_k": 5, "repetition_penalty": 1.1}


# --- guided_decoding_backend rejected by an older server -----------------------------------


@pytest.mark.parametrize("server", [{"version": "0.10.1", "reject_backend": True}], indirect=True)
async def test_backend_rejection_retried_once_and_remembered(server: FakeOpenAIServer) -> None:
    llm = build(server)
    first, _ = await llm.call(Quote, MESSAGES, node="t")
    assert len(server.requests) == 2
    rejected, retried = server.requests
    assert rejected["guided_decoding_backend"] == "xgrammar"
    assert "guided_decoding_backend" not in retried
    assert retried["guided_json"] == Q_SCHEMA
    assert isinstance(first, Quote)

    await llm.call(Quote, MESSAGES, node="t")
    assert len(server.requests) == 3
    third = server.requests[2]
    assert "guided_decoding_backend" not in third
    assert third["guided_json"] == Q_SCHEMA


@pytest.mark.parametrize("server", [{"version": "0.32.0", "reject_backend": True}], indirect=True)
async def test_bad_request_outside_guided_json_is_not_retried(server: FakeOpenAIServer) -> None:
    # the backend text in a 400 only triggers the retry for the guided_json dialect
    chat = ChatOpenAI(
        base_url=server.url,
        api_key="x",  # type: ignore[arg-type]
        model=server.model,
        use_responses_api=False,
        max_retries=0,
        extra_body={"guided_decoding_backend": "guidance"},
    )
    llm = StructuredLLM(chat, "structured_outputs")
    with pytest.raises(LLMUnavailableError, match="refused"):
        await llm.call(Quote, MESSAGES, node="t")
    assert len(server.requests) == 1


async def test_connection_refused_is_llm_unavailable() -> None:
    chat = ChatOpenAI(
        base_url=f"http://127.0.0.1:{closed_port()}/v1",
        api_key="x",  # type: ignore[arg-type]
        model="m",
        use_responses_api=False,
        max_retries=0,
        timeout=5,
    )
    with pytest.raises(LLMUnavailableError, match="unreachable"):
        await StructuredLLM(chat, "structured_outputs").call(Quote, MESSAGES, node="t")


# --- the per-customer cap travels in the pricing schema ------------------------------------


@pytest.mark.parametrize(
    ("version", "dialect"),
    [
        pytest.param("0.32.0", "structured_outputs", id="structured"),
        pytest.param("0.10.1", "guided_json", id="guided"),
        pytest.param(None, "response_format", id="response-format"),
    ],
)
async def test_pricing_schema_carries_the_cap(version: str | None, dialect: str) -> None:
    model = bounded_pricing_model(7.5)
    with FakeOpenAIServer(version=version) as srv:
        llm = build(srv, structured_output=dialect)
        got, call = await llm.call(model, MESSAGES, node="pricing")
        prop = sent_schema(srv.requests[-1])["properties"]["discount_percent"]
        assert prop["maximum"] == 7.5
        assert prop["minimum"] == 0
        assert 0 <= got.discount_percent <= 7.5
        assert call.schema_name == "PricingDecision"
    # the unbounded model says 100: the bound really comes from the cap
    assert PricingDecision.model_json_schema()["properties"]["discount_percent"]["maximum"] == 100


@pytest.mark.parametrize("server", [{"version": "0.32.0"}], indirect=True)
async def test_pricing_above_cap_is_repaired(server: FakeOpenAIServer) -> None:
    # a server that let 9 % through a 7.5 % schema: the client still refuses it
    model = bounded_pricing_model(7.5)
    server.queue(price(9.0))
    server.queue(price(7.5))
    llm = build(server)
    got, call = await llm.call(model, MESSAGES, node="pricing")
    assert got.discount_percent == 7.5
    assert call.repairs == 1
    assert "discount_percent" in call.errors[0]
    assert "7.5" in server.requests[1]["messages"][-1]["content"]


# --- servers that ignore the constraint -------------------------------------------------------

IGNORING = [
    pytest.param({"version": "0.32.0"}, "guided_json", id="new-vllm-ignores-guided_json"),
    pytest.param({"version": "0.10.1"}, "structured_outputs", id="old-vllm-ignores-structured"),
    pytest.param({"version": None}, "structured_outputs", id="openai-ignores-vendor-field"),
    pytest.param({"version": "0.32.0", "mode": "ignore"}, "auto", id="mode-ignore"),
]


@pytest.mark.parametrize(("server_kwargs", "dialect"), IGNORING)
async def test_ignored_constraint_raises(server_kwargs: dict[str, Any], dialect: str) -> None:
    with FakeOpenAIServer(**server_kwargs) as srv:
        llm = build(srv, structured_output=dialect)
        with pytest.raises(ConstraintNotEnforcedError, match="constraint not enforced") as ei:
            await llm.call(Quote, MESSAGES, node="t")
        # caught on the first reply: no repair round trip against a server that ignores us
        assert len(srv.requests) == 1
        assert ei.value.call.raw == [PLAIN_TEXT]
        assert ei.value.call.repairs == 0
        assert isinstance(ei.value, StructuredOutputError)


@pytest.mark.parametrize(("server_kwargs", "dialect"), IGNORING)
async def test_ignored_constraint_caught_by_probe(
    server_kwargs: dict[str, Any], dialect: str
) -> None:
    with FakeOpenAIServer(**server_kwargs) as srv:
        llm = build(srv, structured_output=dialect, verify_constraint=True)
        assert llm.verify is True
        with pytest.raises(ConstraintNotEnforcedError, match="constraint not enforced") as ei:
            await llm.call(Quote, MESSAGES, node="t")
        assert ei.value.call.node == "probe"
        assert len(srv.requests) == 1  # only the probe went out, never the real call
        assert sent_schema(srv.requests[0]) == ConstraintProbe.model_json_schema()
        assert srv.requests[0]["messages"][-1]["content"] == PROBE_PROMPT
        # remembered: the next call fails without probing again
        with pytest.raises(ConstraintNotEnforcedError):
            await llm.call(Quote, MESSAGES, node="t")
        assert len(srv.requests) == 1


@pytest.mark.parametrize(("server_kwargs", "dialect"), IGNORING)
def test_doctor_fails_on_ignored_constraint(
    server_kwargs: dict[str, Any], dialect: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeOpenAIServer(**server_kwargs) as srv:
        s = Settings(llm_base_url=srv.url, structured_output=dialect)  # type: ignore[arg-type]
        code = run_doctor(s, print)
    out = capsys.readouterr().out
    assert code != 0
    assert "constraint not enforced" in out
    assert "OK" not in out


@pytest.mark.parametrize(
    ("server_kwargs", "key"),
    [
        pytest.param({"version": "0.32.0"}, "structured_outputs", id="structured"),
        pytest.param({"version": "0.10.1"}, "guided_json", id="guided"),
        pytest.param({"version": None}, "response_format", id="response-format"),
    ],
)
def test_doctor_ok_on_enforcing_server(
    server_kwargs: dict[str, Any], key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeOpenAIServer(**server_kwargs) as srv:
        code = run_doctor(Settings(llm_base_url=srv.url), print)
        requests = list(srv.requests)
    out = capsys.readouterr().out
    assert code == 0
    assert "OK: the server enforces the schema" in out
    assert f"dialect:   {key}" in out
    assert len(requests) == 1
    assert key in requests[0]
    assert sent_schema(requests[0]) == ConstraintProbe.model_json_schema()


def test_doctor_unreachable(capsys: pytest.CaptureFixture[str]) -> None:
    code = run_doctor(Settings(llm_base_url=f"http://127.0.0.1:{closed_port()}/v1"), print)
    assert code == 3
    assert "FAIL" in capsys.readouterr().out


@pytest.mark.parametrize("server", [{"version": "0.32.0"}], indirect=True)
async def test_probe_runs_once_per_client_on_enforcing_server(server: FakeOpenAIServer) -> None:
    llm = build(server, verify_constraint=True)
    await llm.call(Quote, MESSAGES, node="a")
    await llm.call(Quote, MESSAGES, node="b")
    assert len(server.requests) == 3
    probe, first, second = server.requests
    assert sent_schema(probe) == ConstraintProbe.model_json_schema()
    assert sent_schema(first) == sent_schema(second) == Q_SCHEMA


# --- validation and the single repair ---------------------------------------------------------


@pytest.mark.parametrize("server", [{"version": "0.32.0"}], indirect=True)
async def test_invalid_then_valid_is_one_repair(server: FakeOpenAIServer) -> None:
    bad = '{"percent": 42, "note": "too much"}'
    server.queue(bad)
    server.queue({"percent": 4.5, "note": "ok"})
    llm = build(server)
    got, call = await llm.call(Quote, MESSAGES, node="t")
    assert got == Quote(percent=4.5, note="ok")
    assert call.repairs == 1
    assert len(server.requests) == 2
    assert call.raw == [bad, '{"percent": 4.5, "note": "ok"}']
    assert call.errors == ["percent: Input should be less than or equal to 10"]
    repair = server.requests[1]
    assert repair["messages"][:2] == server.requests[0]["messages"]
    assert repair["messages"][2] == {"role": "assistant", "content": bad}
    last = repair["messages"][-1]
    assert last["role"] == "user"
    assert "percent: Input should be less than or equal to 10" in last["content"]
    assert sent_schema(repair) == Q_SCHEMA  # the repair is constrained too


@pytest.mark.parametrize("server", [{"version": "0.32.0"}], indirect=True)
async def test_two_invalid_replies_raise(server: FakeOpenAIServer) -> None:
    server.queue('{"percent": 42, "note": "x"}')
    server.queue('{"percent": 5}')
    llm = build(server)
    with pytest.raises(StructuredOutputError, match="no valid Quote after one repair") as ei:
        await llm.call(Quote, MESSAGES, node="t")
    assert type(ei.value) is StructuredOutputError
    assert ei.value.call.repairs == 1
    assert len(ei.value.call.errors) == 2
    assert "note: Field required" in ei.value.call.errors[1]
    assert ei.value.call.parsed is None
    assert len(server.requests) == 2  # no third attempt


@pytest.mark.parametrize("server", [{"version": "0.32.0"}], indirect=True)
async def test_finish_length_is_a_failed_decode(server: FakeOpenAIServer) -> None:
    # even a reply that happens to parse is refused when the decoder was cut off
    server.queue('{"percent": 1, "note": "a"}', finish_reason="length")
    server.queue('{"percent": 2, "note": "b"}')
    llm = build(server)
    got, call = await llm.call(Quote, MESSAGES, node="t")
    assert got.percent == 2
    assert call.repairs == 1
    assert call.finish_reasons == ["length", "stop"]
    assert "finish_reason=length" in call.errors[0]
    assert "finish_reason=length" in server.requests[1]["messages"][-1]["content"]


@pytest.mark.parametrize("server", [{"version": "0.32.0"}], indirect=True)
async def test_truncated_twice_raises_structured_output_error(server: FakeOpenAIServer) -> None:
    # truncated prose is a failed decode, not proof that the constraint was ignored
    server.queue('{"percent": 1, "no', finish_reason="length")
    server.queue("Sure, let me", finish_reason="length")
    llm = build(server)
    with pytest.raises(StructuredOutputError) as ei:
        await llm.call(Quote, MESSAGES, node="t")
    assert not isinstance(ei.value, ConstraintNotEnforcedError)
    assert ei.value.call.repairs == 1
    assert ei.value.call.finish_reasons == ["length", "length"]


@pytest.mark.parametrize("server", [{"version": "0.32.0"}], indirect=True)
async def test_fenced_json_is_accepted(server: FakeOpenAIServer) -> None:
    server.queue('```json\n{"percent": 3, "note": "fenced"}\n```')
    got, call = await build(server).call(Quote, MESSAGES, node="t")
    assert got == Quote(percent=3, note="fenced")
    assert call.repairs == 0


# --- usage and latency in the audit record ------------------------------------------------------


@pytest.mark.parametrize("server", [{"version": "0.32.0"}], indirect=True)
async def test_usage_tokens_recorded(server: FakeOpenAIServer) -> None:
    llm = build(server)
    _, call = await llm.call(Quote, MESSAGES, node="t")
    assert call.prompt_tokens > 0
    assert call.completion_tokens > 0
    assert call.prompt_tokens == word_tokens(server.requests[0])
    assert call.latency_ms > 0
    record = call.as_dict()
    assert record["prompt_tokens"] == call.prompt_tokens
    assert record["completion_tokens"] == call.completion_tokens
    assert record["model"] == server.model


@pytest.mark.parametrize("server", [{"version": "0.32.0"}], indirect=True)
async def test_usage_tokens_summed_over_the_repair(server: FakeOpenAIServer) -> None:
    server.queue('{"percent": 42, "note": "one two three"}')
    server.queue('{"percent": 1, "note": "four"}')
    _, call = await build(server).call(Quote, MESSAGES, node="t")
    assert call.prompt_tokens == sum(word_tokens(b) for b in server.requests)
    assert call.prompt_tokens > word_tokens(server.requests[0])
    # completion tokens are the words of both replies, as the fake counts them
    assert call.completion_tokens == sum(len(raw.split()) for raw in call.raw) == 10


# --- every failure typed: retries, Retry-After, undecodable bodies, null content -------------


class Clock:
    """A fake monotonic clock and sleep: what the client waited, without waiting."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def faulty(srv: FakeOpenAIServer, clock: Clock, **kwargs: Any) -> StructuredLLM:
    """A client on the fake with the clock injected (retry policy from ``kwargs``)."""
    llm = build(srv, llm_timeout_s=0.5, **kwargs)
    llm._sleep, llm._clock = clock.sleep, clock
    return llm


@pytest.mark.parametrize(
    ("retry_after", "max_wait", "slept"),
    [
        pytest.param("2", 10.0, [2.0], id="honoured"),
        pytest.param("30", 3.0, [3.0], id="capped"),
        pytest.param("0.25", 10.0, [0.25], id="fractional"),
    ],
)
async def test_429_waits_for_retry_after_then_succeeds(
    retry_after: str, max_wait: float, slept: list[float]
) -> None:
    clock = Clock()
    with FakeOpenAIServer(retry_after=retry_after) as srv:
        srv.set_fault("429", times=1)
        llm = faulty(srv, clock, llm_retry_max_wait_s=max_wait)
        quote, _ = await llm.call(Quote, MESSAGES, node="t")
    assert isinstance(quote, Quote)
    assert clock.slept == slept
    assert len(srv.requests) == 2


@pytest.mark.parametrize("mode", ["500", "503", "reset", "timeout"])
async def test_transient_faults_retry_with_backoff_then_raise_typed(mode: str) -> None:
    clock = Clock()
    with FakeOpenAIServer(fault_delay=1.0) as srv:
        srv.set_fault(mode)
        llm = faulty(srv, clock, llm_max_retries=3, llm_retry_backoff_s=0.5)
        with pytest.raises(LLMUnavailableError, match="gave up after 4 attempts"):
            await llm.call(Quote, MESSAGES, node="t")
    assert clock.slept == [0.5, 1.0, 2.0]  # doubled each retry
    assert len(srv.requests) == 4


async def test_backoff_is_capped() -> None:
    clock = Clock()
    with FakeOpenAIServer() as srv:
        srv.set_fault("503")
        llm = faulty(srv, clock, llm_max_retries=4, llm_retry_backoff_s=1, llm_retry_max_wait_s=3)
        with pytest.raises(LLMUnavailableError):
            await llm.call(Quote, MESSAGES, node="t")
    assert clock.slept == [1, 2, 3, 3]


@pytest.mark.parametrize("mode", ["truncated", "html", "no_choices"])
async def test_undecodable_bodies_are_llm_unavailable_not_retried(mode: str) -> None:
    clock = Clock()
    with FakeOpenAIServer() as srv:
        srv.set_fault(mode)
        with pytest.raises(LLMUnavailableError, match="undecodable reply"):
            await faulty(srv, clock).call(Quote, MESSAGES, node="t")
    assert len(srv.requests) == 1
    assert clock.slept == []


async def test_null_content_is_an_invalid_reply_not_an_ignored_constraint() -> None:
    with FakeOpenAIServer() as srv:
        srv.set_fault("null_content")
        with pytest.raises(StructuredOutputError) as info:
            await build(srv).call(Quote, MESSAGES, node="t")
    assert not isinstance(info.value, ConstraintNotEnforcedError)
    assert "empty reply" in str(info.value)
    assert info.value.call.repairs == 1
    assert len(srv.requests) == 2


async def test_null_content_then_valid_is_repaired() -> None:
    with FakeOpenAIServer() as srv:
        srv.set_fault("null_content", times=1)
        quote, rec = await build(srv).call(Quote, MESSAGES, node="t")
    assert isinstance(quote, Quote)
    assert rec.repairs == 1


async def test_null_content_probe_is_not_cached_as_not_enforced() -> None:
    with FakeOpenAIServer() as srv:
        srv.set_fault("null_content", times=1)
        llm = build(srv, verify_constraint=True)
        with pytest.raises(StructuredOutputError) as info:
            await llm.call(Quote, MESSAGES, node="t")
        assert not isinstance(info.value, ConstraintNotEnforcedError)
        quote, _ = await llm.call(Quote, MESSAGES, node="t")  # probes again: healthy now
    assert isinstance(quote, Quote)
    assert sent_schema(srv.requests[1]) == ConstraintProbe.model_json_schema()


async def test_failed_probe_is_asked_again_after_probe_retry_s() -> None:
    """Defect 8: one bad probe reply must not disable a long-running process."""
    clock = Clock()
    with FakeOpenAIServer() as srv:
        srv.set_fault("ignore", times=1)  # the probe gets prose
        llm = faulty(srv, clock, verify_constraint=True, probe_retry_s=60)
        with pytest.raises(ConstraintNotEnforcedError):
            await llm.call(Quote, MESSAGES, node="t")
        clock.now += 30  # within the negative cache: refused without asking the server
        with pytest.raises(ConstraintNotEnforcedError):
            await llm.call(Quote, MESSAGES, node="t")
        assert len(srv.requests) == 1
        clock.now += 31  # past it: probed again, enforced, the call goes out
        quote, _ = await llm.call(Quote, MESSAGES, node="t")
        assert isinstance(quote, Quote)
        assert len(srv.requests) == 3
        await llm.call(Quote, MESSAGES, node="t")  # a pass is remembered
        assert len(srv.requests) == 4


async def test_probe_that_cannot_reach_the_server_is_not_cached() -> None:
    clock = Clock()
    with FakeOpenAIServer() as srv:
        srv.set_fault("500", times=1)
        llm = faulty(srv, clock, verify_constraint=True, llm_max_retries=0)
        with pytest.raises(LLMUnavailableError):
            await llm.call(Quote, MESSAGES, node="t")
        quote, _ = await llm.call(Quote, MESSAGES, node="t")
    assert isinstance(quote, Quote)
    assert len(srv.requests) == 3  # failed probe, probe, call


async def test_a_passed_probe_is_remembered_across_clients_a_failed_one_never(
    tmp_path, server: FakeOpenAIServer
) -> None:
    """One ``turn`` process each: the second asks the server for no probe of its own."""
    from graph.sgr.probe_cache import ProbeCache

    cache = ProbeCache(tmp_path / "probe.json", ttl_s=600)
    key = ProbeCache.key(server.url, "fake-model", "structured_outputs")

    def client() -> StructuredLLM:
        chat = ChatOpenAI(
            base_url=server.url,
            api_key="x",
            model="fake-model",
            use_responses_api=False,
            max_retries=0,
        )  # type: ignore[arg-type]
        return StructuredLLM(chat, "structured_outputs", verify=True, probe_cache=cache,
                             probe_key=key)  # fmt: skip

    await client().call(Quote, MESSAGES, node="t")
    probes = [r for r in server.requests if "ConstraintProbe" in str(r)]
    assert len(probes) == 1 and cache.get(key) is not None
    await client().call(Quote, MESSAGES, node="t")
    assert len([r for r in server.requests if "ConstraintProbe" in str(r)]) == 1
    assert cache.get(key, now=time.time() + 601) is None  # past the TTL: probed again
    failed = ProbeCache(tmp_path / "other.json", ttl_s=600)
    failed.put("k", ProbeResult(False, "guided_json", "hello", 1.0))
    assert failed.get("k") is None
