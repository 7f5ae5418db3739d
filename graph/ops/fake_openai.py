"""An OpenAI-compatible fake vLLM server on loopback, for tests (stdlib only).

In-process use (pytest)::

    with FakeOpenAIServer(version="0.32.0") as srv:
        llm = ChatOpenAI(base_url=srv.url, api_key="x", model="fake-model",
                         use_responses_api=False,
                         extra_body={"structured_outputs": {"json": schema}})
        llm.invoke("hi")
        assert srv.requests[-1]["structured_outputs"]["json"] == schema

Out-of-process use (e.g. behind ``langgraph dev``)::

    python graph/ops/fake_openai.py --port 8765 --version 0.32.0 --mode enforce
    # prints "READY http://127.0.0.1:8765/v1" on stdout, serves until killed

What it models:

* ``GET /version`` -> ``{"version": ...}`` (404 when ``version=None``: a generic OpenAI server).
* ``GET /v1/models`` -> one model.
* ``POST /v1/chat/completions`` -> records the JSON body, then answers with the next
  queued reply, else ``responder(body)``, else a minimal JSON instance of the
  constraint schema *that the given server version honours*, else plain chat text.

  - vLLM >= 0.12 honours ``structured_outputs.json`` and ``response_format``;
    ``guided_json`` is silently ignored (as the real server does).
  - vLLM < 0.12 honours ``guided_json`` and ``response_format``;
    ``structured_outputs`` is ignored.
  - ``version=None`` (generic OpenAI server) honours only ``response_format``.
  - a ``json_schema``/``json_object`` ``response_format`` wins over the vendor field
    when both are sent (vLLM rewrites its structured-output params from it).

  ``"stream": true`` is answered as SSE chunks (plus a usage chunk when
  ``stream_options.include_usage`` is set).

Test-control endpoints (handy when the server runs in another process):

* ``GET /_fake/requests`` -> ``{"requests": [...recorded bodies...]}``
* ``POST /_fake/queue`` with ``{"content": str | dict, "finish_reason": "stop"}``
* ``POST /_fake/clear`` (also clears the fault)
* ``POST /_fake/fault`` with ``{"mode": FAULT | null, "times": int | null, "after": int}``

Faults (``set_fault(mode, times=None)``; ``times=None`` keeps failing until cleared) make
``POST /v1/chat/completions`` misbehave the way real endpoints do:

``timeout`` (answers after ``fault_delay`` s), ``500``, ``503``, ``429`` (with ``Retry-After:
<retry_after>``), ``reset`` (TCP RST, no response), ``truncated`` (a 200 whose JSON body is cut
in half), ``html`` (a 200 ``text/html`` page), ``no_choices`` (a 200 without ``choices``),
``null_content`` (``message.content: null``), ``ignore`` (plain prose: the constraint ignored).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import signal
import socket
import struct
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

try:  # Python 3.11+: the regex parser lives in re._parser (sre_parse is deprecated).
    from re import _parser as _sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import sre_parse as _sre_parse  # type: ignore[no-redef]

__all__ = [
    "FAULT_MODES",
    "PLAIN_TEXT",
    "REJECT_BACKEND_MESSAGE",
    "FakeOpenAIServer",
    "schema_instance",
]

PLAIN_TEXT = "Sure! I'd be happy to help with that."
REJECT_BACKEND_MESSAGE = (
    "Request-level structured output backend must match engine-level backend. xgrammar != guidance"
)
_MODES = ("enforce", "ignore")
FAULT_MODES = (
    "timeout",
    "500",
    "503",
    "429",
    "reset",
    "truncated",
    "html",
    "no_choices",
    "null_content",
    "ignore",
)
HTML_PAGE = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"


# --------------------------------------------------------------------------------------
# schema_instance: a minimal valid instance of a (pydantic v2 style) JSON schema
# --------------------------------------------------------------------------------------


def schema_instance(schema: dict | bool, *, include_optional: bool = True) -> Any:
    """Build a small instance that validates against ``schema``.

    Understands what pydantic v2 emits: ``$ref``/``$defs``, ``anyOf``/``oneOf`` (first
    branch, skipping branches that would recurse forever), ``allOf``, ``discriminator``,
    ``const``, ``enum`` (first), ``object`` (required properties, plus the optional ones
    when ``include_optional``), ``array`` (``minItems`` items, ``prefixItems``),
    ``string`` (``minLength``/``maxLength``/``pattern``/``format``, loosely),
    ``integer``/``number`` (``minimum``/``maximum``/exclusive bounds/``multipleOf``),
    ``boolean`` and ``null``.
    """
    return _Gen(schema if isinstance(schema, dict) else {}, include_optional).gen(schema, ())


class _Gen:
    def __init__(self, root: dict, include_optional: bool) -> None:
        self.root = root
        self.include_optional = include_optional

    # -- helpers -----------------------------------------------------------------------
    def resolve(self, ref: str) -> dict:
        if not ref.startswith("#"):
            raise ValueError(f"only local $ref are supported, got {ref!r}")
        node: Any = self.root
        for part in ref.lstrip("#").split("/"):
            if not part:
                continue
            part = part.replace("~1", "/").replace("~0", "~")
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node

    def _recurses(self, branch: Any, stack: tuple[str, ...]) -> bool:
        return isinstance(branch, dict) and branch.get("$ref") in stack

    def _pick_branch(self, branches: list, stack: tuple[str, ...]) -> Any:
        for branch in branches:
            if not self._recurses(branch, stack):
                return branch
        return branches[0]

    # -- generator -----------------------------------------------------------------------
    def gen(self, schema: Any, stack: tuple[str, ...]) -> Any:
        if schema is True or schema is None:
            return None
        if schema is False:
            raise ValueError("schema `false` has no valid instance")
        if not isinstance(schema, dict):
            raise TypeError(f"not a JSON schema: {schema!r}")

        if "const" in schema:
            return schema["const"]
        if schema.get("enum"):
            return schema["enum"][0]

        if "$ref" in schema:
            ref = schema["$ref"]
            target = self.resolve(ref)
            extra = {k: v for k, v in schema.items() if k not in ("$ref", "$defs", "definitions")}
            if extra:  # JSON-schema 2020-12 allows siblings next to $ref
                target = {**target, **extra}
            return self.gen(target, (*stack, ref))

        if "allOf" in schema:
            parts = [self.gen(s, stack) for s in schema["allOf"]]
            rest = {k: v for k, v in schema.items() if k != "allOf"}
            if rest.get("type") or rest.get("properties"):
                parts.append(self.gen(rest, stack))
            if all(isinstance(p, dict) for p in parts):
                merged: dict = {}
                for p in parts:
                    merged.update(p)
                return merged
            return parts[0]

        for key in ("oneOf", "anyOf"):
            if schema.get(key):
                branches = schema[key]
                branch = self._pick_branch(branches, stack)
                value = self.gen(branch, stack)
                disc = schema.get("discriminator")
                if isinstance(disc, dict) and isinstance(value, dict):
                    prop = disc.get("propertyName")
                    mapping = disc.get("mapping") or {}
                    if prop and prop not in value:
                        ref = branch.get("$ref") if isinstance(branch, dict) else None
                        tag = next((k for k, v in mapping.items() if v == ref), None)
                        if tag is None and mapping:
                            tag = next(iter(mapping))
                        if tag is not None:
                            value[prop] = tag
                return value

        typ = schema.get("type")
        if isinstance(typ, list):
            non_null = [t for t in typ if t != "null"]
            typ = non_null[0] if non_null else "null"
        if typ is None:
            if "properties" in schema or "additionalProperties" in schema:
                typ = "object"
            elif "items" in schema or "prefixItems" in schema:
                typ = "array"
            else:
                return None  # `{}` / Any: null is a valid instance

        if typ == "object":
            return self._object(schema, stack)
        if typ == "array":
            return self._array(schema, stack)
        if typ == "string":
            return _string(schema)
        if typ == "integer":
            return _number(schema, integer=True)
        if typ == "number":
            return _number(schema, integer=False)
        if typ == "boolean":
            return False
        if typ == "null":
            return None
        raise ValueError(f"unsupported schema type: {typ!r}")

    def _object(self, schema: dict, stack: tuple[str, ...]) -> dict:
        props: dict = schema.get("properties") or {}
        required = list(schema.get("required") or [])
        out: dict = {}
        for name, sub in props.items():
            if name in required or (
                self.include_optional and not (isinstance(sub, dict) and self._recurses(sub, stack))
            ):
                out[name] = self.gen(sub, stack)
        for name in required:  # required but not described: anything goes
            out.setdefault(name, None)
        min_props = int(schema.get("minProperties") or 0)
        extra = schema.get("additionalProperties", True)
        i = 0
        while len(out) < min_props and extra is not False:
            out[f"key{i}"] = self.gen(extra if isinstance(extra, dict) else {}, stack)
            i += 1
        return out

    def _array(self, schema: dict, stack: tuple[str, ...]) -> list:
        prefix = schema.get("prefixItems") or []
        out = [self.gen(s, stack) for s in prefix]
        items = schema.get("items", {})
        n = int(schema.get("minItems") or 0)
        if isinstance(items, dict) or items is True:
            while len(out) < n:
                out.append(self.gen(items, stack))
        if schema.get("uniqueItems") and len(out) > 1:
            out = [_vary(v, i) for i, v in enumerate(out)]
        return out


def _vary(value: Any, i: int) -> Any:
    if i == 0:
        return value
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value + i
    if isinstance(value, str):
        return f"{value}{i}"
    return value


_FORMATS = {
    "date-time": "2024-01-01T00:00:00Z",
    "date": "2024-01-01",
    "time": "00:00:00",
    "duration": "P1D",
    "email": "user@example.com",
    "idn-email": "user@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "iri": "https://example.com/",
    "uri-reference": "https://example.com/",
    "hostname": "example.com",
    "ipv4": "127.0.0.1",
    "ipv6": "::1",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "uuid4": "00000000-0000-4000-8000-000000000000",
    "binary": "ok",
    "base64": "b2s=",
}


def _string(schema: dict) -> str:
    min_len = int(schema.get("minLength") or 0)
    max_len = schema.get("maxLength")
    pattern = schema.get("pattern")
    fmt = schema.get("format")

    candidates: list[str] = []
    if fmt in _FORMATS:
        candidates.append(_FORMATS[fmt])
    if pattern:
        generated = _from_regex(pattern)
        if generated is not None:
            candidates.append(generated)
        candidates += ["ok", "a", "A", "0", "a1", "abc", "example"]
    candidates.append("ok")

    def fit(s: str) -> str:
        if len(s) < min_len:
            s = s + "x" * (min_len - len(s))
        if max_len is not None and len(s) > int(max_len):
            s = s[: int(max_len)]
        return s

    for cand in candidates:
        s = fit(cand)
        if pattern is None or re.search(pattern, s):
            return s
    return fit(candidates[0])


def _from_regex(pattern: str) -> str | None:
    """Best-effort generation of a string matching ``pattern``."""
    try:
        parsed = _sre_parse.parse(pattern)
    except re.error:
        return None
    try:
        s = _emit(list(parsed))
    except (ValueError, TypeError, IndexError):
        return None
    return s if re.search(pattern, s) else None


def _emit(items: list) -> str:
    out: list[str] = []
    for op, av in items:
        name = str(op)
        if name == "LITERAL":
            out.append(chr(av))
        elif name == "NOT_LITERAL":
            out.append("a" if chr(av) != "a" else "b")
        elif name == "ANY":
            out.append("a")
        elif name == "IN":
            out.append(_emit_in(av))
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            lo, _hi, sub = av
            out.append(_emit(list(sub)) * max(int(lo), 0))
        elif name == "SUBPATTERN":
            out.append(_emit(list(av[-1])))
        elif name in ("ATOMIC_GROUP",):
            out.append(_emit(list(av)))
        elif name == "BRANCH":
            out.append(_emit(list(av[1][0])))
        elif name in ("AT", "ASSERT", "ASSERT_NOT", "GROUPREF"):
            continue
        elif name == "CATEGORY":
            out.append(_category(av))
        else:
            raise ValueError(f"unsupported regex op {op}")
    return "".join(out)


def _category(av: Any) -> str:
    name = str(av)
    if "NOT_DIGIT" in name:
        return "a"
    if "DIGIT" in name:
        return "0"
    if "NOT_SPACE" in name:
        return "a"
    if "SPACE" in name:
        return " "
    if "NOT_WORD" in name:
        return "-"
    if "WORD" in name:
        return "a"
    return "a"


def _emit_in(av: list) -> str:
    negate = any(str(op) == "NEGATE" for op, _ in av)
    if negate:
        excluded: set[str] = set()
        for op, val in av:
            if str(op) == "LITERAL":
                excluded.add(chr(val))
            elif str(op) == "RANGE":
                excluded.update(chr(x) for x in range(val[0], val[1] + 1))
        for ch in "aA0_-x":
            if ch not in excluded:
                return ch
        return "~"
    for op, val in av:
        name = str(op)
        if name == "LITERAL":
            return chr(val)
        if name == "RANGE":
            return chr(val[0])
        if name == "CATEGORY":
            return _category(val)
    return "a"


def _number(schema: dict, *, integer: bool) -> int | float:
    lo = schema.get("minimum")
    hi = schema.get("maximum")
    xlo = schema.get("exclusiveMinimum")
    xhi = schema.get("exclusiveMaximum")
    # draft-4 style boolean exclusives
    if xlo is True:
        xlo, lo = lo, None
    if xhi is True:
        xhi, hi = hi, None
    if xlo is False:
        xlo = None
    if xhi is False:
        xhi = None
    step = schema.get("multipleOf")

    # effective inclusive lower bound / upper bound
    lower: float | None = lo
    if xlo is not None:
        cand = (math.floor(xlo) + 1) if integer else None
        if integer:
            lower = cand if lower is None else max(lower, cand)
        else:
            eps = _float_step(xlo, xhi if xhi is not None else hi)
            lower = xlo + eps if lower is None else max(lower, xlo + eps)
    upper: float | None = hi
    if xhi is not None:
        if integer:
            cand_hi = math.ceil(xhi) - 1
            upper = cand_hi if upper is None else min(upper, cand_hi)
        else:
            eps = _float_step(xlo if xlo is not None else lo, xhi)
            upper = xhi - eps if upper is None else min(upper, xhi - eps)

    value: float = lower if lower is not None else 0
    if upper is not None and value > upper:
        value = upper
    if step:
        value = math.ceil(value / step) * step
        if upper is not None and value > upper:
            value = math.floor(upper / step) * step
    if integer:
        value = math.ceil(value) if lower is not None else int(value)
        return int(value)
    return float(value)


def _float_step(lo: float | None, hi: float | None) -> float:
    if lo is not None and hi is not None and hi > lo:
        return min(1.0, (hi - lo) / 2)
    return 1.0


# --------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------


def _parse_version(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.strip().lstrip("vV").split("."):
        m = re.match(r"\d+", piece)
        if not m:
            break
        parts.append(int(m.group()))
    if not parts:
        raise ValueError(f"cannot parse server version {version!r}")
    return tuple(parts)


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _word_count(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(_word_count(v) for v in value)
    if isinstance(value, dict):
        return sum(_word_count(value.get(k)) for k in ("content", "text"))
    return 0


class FakeOpenAIServer:
    """A loopback OpenAI-compatible server mimicking vLLM's structured-output handling."""

    def __init__(
        self,
        *,
        version: str | None = "0.32.0",
        model: str = "fake-model",
        reject_backend: bool = False,
        mode: str = "enforce",
        responder: Callable[[dict], str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        fault_delay: float = 5.0,
        retry_after: str = "1",
    ) -> None:
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        self.version = version
        self._version_tuple = _parse_version(version) if version is not None else None
        self.model = model
        self.reject_backend = reject_backend
        self.mode = mode
        self.responder = responder
        self.host = host
        self.port = port
        self.requests: list[dict] = []
        self._queue: deque[tuple[Any, str]] = deque()
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._counter = 0
        self.fault_delay = fault_delay
        self.retry_after = retry_after
        self._fault: str | None = None
        self._fault_times: int | None = None
        self._fault_after = 0
        self.faults_served = 0

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> FakeOpenAIServer:
        if self._httpd is not None:
            return self
        httpd = _QuietHTTPServer((self.host, self.port), _Handler)
        httpd.daemon_threads = True
        httpd.fake = self  # type: ignore[attr-defined]
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-openai-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def root(self) -> str:
        if self._httpd is None:
            raise RuntimeError("FakeOpenAIServer is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.root}/v1"

    # -- scripting -----------------------------------------------------------------------
    def queue(self, content: Any, *, finish_reason: str = "stop") -> None:
        """Script the next reply (FIFO). A dict is ``json.dumps``-ed; a callable is called
        when the reply is due, with the request's honoured JSON schema and its messages
        (a reply that must quote the customer's words from the schema)."""
        if not isinstance(content, str) and not callable(content):
            content = json.dumps(content)
        with self._lock:
            self._queue.append((content, finish_reason))

    def clear(self) -> None:
        """Forget recorded requests, queued replies and the fault."""
        with self._lock:
            self.requests.clear()
            self._queue.clear()
            self._fault, self._fault_times = None, None

    def set_fault(self, mode: str | None, *, times: int | None = None, after: int = 0) -> None:
        """Answer chat requests with fault ``mode``: ``after`` healthy ones first, then
        ``times`` faulty ones (all, when ``None``). ``None`` clears the fault."""
        if mode is not None and mode not in FAULT_MODES:
            raise ValueError(f"fault must be one of {FAULT_MODES}, got {mode!r}")
        with self._lock:
            self._fault, self._fault_times, self._fault_after = mode, times, after

    def _take_fault(self) -> str | None:
        with self._lock:
            mode = self._fault
            if mode is None:
                return None
            if self._fault_after > 0:
                self._fault_after -= 1
                return None
            if self._fault_times is not None:
                self._fault_times -= 1
                if self._fault_times <= 0:
                    self._fault, self._fault_times = None, None
            self.faults_served += 1
            return mode

    # -- behaviour -----------------------------------------------------------------------
    def honoured_constraint(self, body: dict) -> tuple[str, Any] | None:
        """The constraint this server version would enforce for ``body``.

        Returns ``("json", schema)`` or ``("choice", [choices...])``, or ``None``.
        """
        if self.mode == "ignore":
            return None
        # Like vLLM's ChatCompletionRequest.to_sampling_params, a json_schema/json_object
        # ``response_format`` overrides the vendor field when both are present.
        rf = body.get("response_format")
        if isinstance(rf, dict):
            if rf.get("type") == "json_schema":
                js = _maybe_json((rf.get("json_schema") or {}).get("schema", {}))
                return "json", (js if isinstance(js, dict) else {})
            if rf.get("type") == "json_object":
                return "json", {"type": "object"}
        vt = self._version_tuple
        if vt is None:  # generic OpenAI server: vendor fields mean nothing
            return None
        if vt >= (0, 12):  # guided_* ignored (removed in vLLM 0.12)
            so = body.get("structured_outputs")
            so = so if isinstance(so, dict) else {}
            schema, choice = so.get("json"), so.get("choice")
        else:  # structured_outputs ignored before 0.12
            schema, choice = body.get("guided_json"), body.get("guided_choice")
        if schema is not None:
            schema = _maybe_json(schema)
            return ("json", schema) if isinstance(schema, dict | bool) else None
        if choice:
            return "choice", list(choice)
        return None

    def honoured_schema(self, body: dict) -> dict | None:
        """The JSON schema this server version would enforce for ``body`` (if any)."""
        found = self.honoured_constraint(body)
        if found is not None and found[0] == "json" and isinstance(found[1], dict):
            return found[1]
        return None

    def _record(self, body: dict) -> None:
        with self._lock:
            self.requests.append(body)

    def _next_reply(self, body: dict) -> tuple[str, str]:
        with self._lock:
            queued = self._queue.popleft() if self._queue else None
        if queued is not None:
            content, finish = queued
            if callable(content):
                found = self.honoured_constraint(body)
                schema = found[1] if found and found[0] == "json" else {}
                out = content(schema, body.get("messages") or [])
                content = out if isinstance(out, str) else json.dumps(out)
            return content, finish
        if self.responder is not None:
            out: Any = self.responder(body)
            return (out if isinstance(out, str) else json.dumps(out)), "stop"
        found = self.honoured_constraint(body)
        if found is None:
            return PLAIN_TEXT, "stop"
        kind, value = found
        if kind == "choice":
            return str(value[0]), "stop"
        return json.dumps(schema_instance(value)), "stop"

    def _next_id(self) -> str:
        with self._lock:
            self._counter += 1
            return f"chatcmpl-fake-{self._counter}-{uuid.uuid4().hex[:8]}"

    def _usage(self, body: dict, content: str) -> dict:
        prompt = _word_count(body.get("messages") or [])
        completion = max(1, len(content.split()))
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }


class _QuietHTTPServer(ThreadingHTTPServer):
    """Faults break connections on purpose: no tracebacks on stderr for them."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60  # idle keep-alive connections do not pin handler threads forever
    server_version = "FakeVLLM/1.0"

    @property
    def fake(self) -> FakeOpenAIServer:
        return self.server.fake  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:  # silence
        pass

    # -- I/O helpers ---------------------------------------------------------------------
    def _send_json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, typ: str) -> None:
        self._send_json(status, {"error": {"message": message, "type": typ, "code": status}})

    def _read_json(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw or b"null")

    def _path(self) -> str:
        return self.path.split("?", 1)[0].rstrip("/") or "/"

    # -- routes --------------------------------------------------------------------------
    def do_GET(self) -> None:
        path = self._path()
        fake = self.fake
        if path == "/version":
            if fake.version is None:
                self._error(404, "Not Found", "NotFoundError")
            else:
                self._send_json(200, {"version": fake.version})
        elif path in ("/v1/models", "/models"):
            self._send_json(
                200,
                {
                    "object": "list",
                    "data": [
                        {"id": fake.model, "object": "model", "created": 0, "owned_by": "fake"}
                    ],
                },
            )
        elif path == "/health":
            self._send_json(200, {})
        elif path == "/_fake/requests":
            with fake._lock:
                reqs = list(fake.requests)
            self._send_json(200, {"requests": reqs})
        else:
            self._error(404, f"Not Found: {path}", "NotFoundError")

    def do_POST(self) -> None:
        path = self._path()
        try:
            body = self._read_json()
        except ValueError as exc:
            self._error(400, f"Invalid JSON body: {exc}", "BadRequestError")
            return
        if path in ("/v1/chat/completions", "/chat/completions"):
            self._chat(body)
        elif path == "/_fake/queue" and isinstance(body, dict) and "content" in body:
            self.fake.queue(body["content"], finish_reason=body.get("finish_reason", "stop"))
            self._send_json(200, {"ok": True})
        elif path == "/_fake/clear":
            self.fake.clear()
            self._send_json(200, {"ok": True})
        elif path == "/_fake/fault" and isinstance(body, dict):
            try:
                self.fake.set_fault(
                    body.get("mode"), times=body.get("times"), after=int(body.get("after") or 0)
                )
            except ValueError as exc:
                self._error(400, str(exc), "BadRequestError")
                return
            self._send_json(200, {"ok": True})
        else:
            self._error(404, f"Not Found: {path}", "NotFoundError")

    def _chat(self, body: Any) -> None:
        fake = self.fake
        if not isinstance(body, dict):
            self._error(400, "Request body must be a JSON object", "BadRequestError")
            return
        fake._record(body)
        if fake.reject_backend and "guided_decoding_backend" in body:
            self._error(400, REJECT_BACKEND_MESSAGE, "BadRequestError")
            return
        fault = fake._take_fault()
        if fault is not None and fault != "ignore":
            self._misbehave(fault, body)
            return
        content, finish_reason = (
            (PLAIN_TEXT, "stop") if fault == "ignore" else fake._next_reply(body)
        )
        usage = fake._usage(body, content)
        cid = fake._next_id()
        created = int(time.time())
        model = body.get("model") or fake.model
        if body.get("stream"):
            opts = body.get("stream_options") or {}
            self._stream(
                cid,
                created,
                model,
                content,
                finish_reason,
                usage if opts.get("include_usage") else None,
            )
            return
        self._send_json(
            200,
            {
                "id": cid,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "logprobs": None,
                        "finish_reason": finish_reason,
                    }
                ],
                "usage": usage,
            },
        )

    def _send_raw(self, status: int, content_type: str, data: bytes, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            self.send_header(key.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(data)

    def _misbehave(self, mode: str, body: dict) -> None:
        """Misbehave as ``mode`` says (see the module docstring)."""
        fake = self.fake
        if mode == "timeout":
            time.sleep(fake.fault_delay)
            self._error(504, "upstream timed out", "TimeoutError")
        elif mode in ("500", "503"):
            self._error(int(mode), f"fake fault {mode}", "InternalServerError")
        elif mode == "429":
            data = json.dumps({"error": {"message": "rate limited", "code": 429}}).encode()
            self._send_raw(429, "application/json", data, Retry_After=fake.retry_after)
        elif mode == "reset":
            self.close_connection = True
            linger = struct.pack("ii", 1, 0)  # close with RST instead of FIN
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            self.connection.close()
        elif mode == "html":
            self._send_raw(200, "text/html", HTML_PAGE.encode())
        else:
            content: str | None = json.dumps(schema_instance(fake.honoured_schema(body) or {}))
            payload: dict[str, Any] = {
                "id": fake._next_id(),
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model") or fake.model,
                "usage": fake._usage(body, ""),
            }
            if mode != "no_choices":
                if mode == "null_content":
                    content = None
                message = {"role": "assistant", "content": content}
                payload["choices"] = [{"index": 0, "message": message, "finish_reason": "stop"}]
            data = json.dumps(payload).encode()
            if mode == "truncated":
                data = data[: len(data) // 2]
            self._send_raw(200, "application/json", data)

    def _stream(
        self,
        cid: str,
        created: int,
        model: str,
        content: str,
        finish_reason: str,
        usage: dict | None,
    ) -> None:
        def chunk(choices: list, **extra: Any) -> dict:
            return {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": choices,
                **extra,
            }

        def choice(delta: dict, fr: str | None = None) -> dict:
            return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": fr}

        events = [chunk([choice({"role": "assistant", "content": ""})])]
        n = max(1, min(3, len(content)))
        size = math.ceil(len(content) / n) if content else 0
        pieces = [content[i : i + size] for i in range(0, len(content), size)] if size else []
        events += [chunk([choice({"content": p})]) for p in pieces]
        events.append(chunk([choice({}, finish_reason)]))
        if usage is not None:
            events.append(chunk([], usage=usage))

        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for ev in events:
            self._write_chunk(f"data: {json.dumps(ev)}\n\n".encode())
        self._write_chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


# --------------------------------------------------------------------------------------
# __main__
# --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Fake OpenAI-compatible vLLM server for tests")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port")
    ap.add_argument(
        "--version",
        default="0.32.0",
        help='vLLM version to report; "none" = generic OpenAI server (no /version)',
    )
    ap.add_argument("--model", default="fake-model")
    ap.add_argument("--mode", choices=_MODES, default="enforce")
    ap.add_argument("--fault", choices=FAULT_MODES, default=None, help="fail every chat call")
    ap.add_argument("--fault-delay", type=float, default=5.0, help="seconds a timeout lasts")
    ap.add_argument(
        "--reject-backend",
        action="store_true",
        help="400 on requests carrying guided_decoding_backend",
    )
    args = ap.parse_args(argv)

    version = None if args.version.lower() in ("none", "null", "") else args.version
    srv = FakeOpenAIServer(
        version=version,
        model=args.model,
        mode=args.mode,
        reject_backend=args.reject_backend,
        host=args.host,
        port=args.port,
        fault_delay=args.fault_delay,
    )
    if args.fault:
        srv.set_fault(args.fault)
    stop = threading.Event()

    def _on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    srv.start()
    print(f"READY {srv.url}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
