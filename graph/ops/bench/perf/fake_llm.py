"""Fake LLMs for the benchmark: schema-valid negotiate/price replies after a fixed latency.

* :func:`fixed_latency_llm`, the shared in-process fake chat model (a sleep, then a reply).
* :func:`serve`, the same replies from an OpenAI-compatible HTTP server on asyncio (so 200
  concurrent requests each wait ``latency`` without 200 threads):
  ``python -m graph.ops.bench.perf.fake_llm --latency 1.0`` prints ``READY <base_url>``.

Replies follow the requested schema: the router always negotiates; pricing proposes half the
cap (0.5 grid, at most 5 %), so a fresh customer gets an offer and no approval is needed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import time
from typing import Any

from langchain_core.messages import BaseMessage

from graph.ops.bench.reliability_fakes import quote_for
from graph.ops.fakes import choices, fake_llm, schema_of
from graph.sgr import StructuredLLM

ROUTE_REPLY = {
    "analysis": "asks for a discount",
    "decision": {"action": "negotiate", "quote": "discount", "requested_percent": None},
}
PROBE_REPLY = {"answer": "xq-zebra-7"}


def reply_for(schema: dict[str, Any]) -> dict[str, Any]:
    """A schema-valid reply for the router, pricing or probe schema."""
    title = schema.get("title", "")
    if title == "PricingDecision":
        field = schema["properties"]["discount_percent"]
        cap = float(field.get("maximum", 0))
        percent = min(5.0, math.floor(cap) / 2) if cap >= 1 else 0.0
        grid = choices(field)  # the concession schedule sends the round's 0.5 grid
        if grid:
            percent = max([v for v in grid if v <= percent] or [min(grid)])
        return {
            "churn_analysis": "likely to leave",
            "financial_analysis": "valuable",
            "margin_math": "room",
            "negotiation_position": "first offer",
            "discount_percent": percent,
            "customer_message": "Here is a special offer for you.",
        }
    if title == "ConstraintProbe":
        return PROBE_REPLY
    return {**ROUTE_REPLY, "decision": {**ROUTE_REPLY["decision"], "quote": quote_for(schema)}}


def _fixed_reply(schema: dict[str, Any], messages: list[BaseMessage]) -> dict[str, Any]:
    return reply_for(schema)


def fixed_latency_llm(latency: float = 0.0) -> StructuredLLM:
    """The shared fake chat model answering :func:`reply_for` after ``latency`` seconds."""
    return fake_llm(_fixed_reply, latency_s=latency, model_name="bench-fixed-latency")


# --------------------------------------------------------------------------- HTTP server


def _completion(body: dict[str, Any]) -> dict[str, Any]:
    content = json.dumps(reply_for(schema_of(body)))
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "bench-model"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 300, "completion_tokens": 60, "total_tokens": 360},
    }


async def _handle(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, latency: float
) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {
                k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)
            }
            raw = await reader.readexactly(int(headers.get("content-length", "0") or 0))
            status, payload = 200, {}
            if path.endswith("/version"):
                payload = {"version": "0.32.0"}
            elif path.endswith("/models"):
                payload = {"object": "list", "data": [{"id": "bench-model", "object": "model"}]}
            elif method == "POST" and path.endswith("/chat/completions"):
                await asyncio.sleep(latency)
                payload = _completion(json.loads(raw or b"{}"))
            else:
                status, payload = 404, {"error": "not found"}
            data = json.dumps(payload).encode()
            reason = "OK" if status == 200 else "Not Found"
            writer.write(
                f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
                f"content-length: {len(data)}\r\n\r\n".encode()
                + data
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


async def serve(host: str, port: int, latency: float) -> None:
    """Serve until cancelled; print ``READY <base_url>`` once listening."""
    server = await asyncio.start_server(
        lambda r, w: _handle(r, w, latency), host, port, backlog=1024
    )
    bound = server.sockets[0].getsockname()[1]
    print(f"READY http://{host}:{bound}/v1", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    """``python -m graph.ops.bench.perf.fake_llm --latency 1.0 [--port 0]``."""
    ap = argparse.ArgumentParser(description="fixed-latency fake OpenAI server for benchmarks")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--latency", type=float, default=1.0)
    args = ap.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port, args.latency))


if __name__ == "__main__":
    main()
