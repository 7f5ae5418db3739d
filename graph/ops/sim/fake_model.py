"""A deterministic chat model that answers any JSON schema it is sent (the simulator's default).

It reads the schema from the request (``extra_body`` → ``structured_outputs.json``,
``guided_json`` or ``response_format.json_schema.schema``) and fills it generically, so it
keeps working when the node schemas change:

* strings: the customer's words, cut to ``maxLength``; a field named ``*quote*`` gets a
  verbatim window of the message around its first concession cue;
* numbers: the schema's ``maximum`` (a small model anchors at the top of the range; so does
  this one), else its ``minimum``; a nullable number is the percent the customer states, else
  ``null``;
* a union of tagged objects: the branch chosen by keyword cues in the customer's message
  (accept cues → ``accept_offer``, concession cues → ``negotiate``, else ``respond``);
* ``const``; ``enum``: the top of a numeric one, a cued clause for a quote, else the first;
  booleans ``false``; arrays their ``minItems``.

The customer's message is what the simulator last passed to :meth:`SchemaFiller.hear`, or
else the newest human message of the prompt.
"""

from __future__ import annotations

import re
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage

from graph.ops.fakes import fake_llm
from graph.sgr import StructuredLLM

ACCEPT_CUES = (
    "i'll take it",
    "i will take it",
    "i accept",
    "accept the offer",
    "take the offer",
    "sounds good",
    "it's a deal",
    "deal!",
    "apply it",
    "yes please",
)
CONCESSION_CUES = (
    "discount",
    "%",
    "percent",
    "price",
    "cheaper",
    "deal",
    "coupon",
    "promo",
    "code",
    "offer",
    "match",
    "leave",
    "cancel",
    "expensive",
    "afford",
    "budget",
    "lower",
    "better",
    "higher",
)
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*(?:%|percent)", re.IGNORECASE)
_WORD_CUE = re.compile(r"[a-z]")


def stated_percent(text: str) -> float | None:
    """The first percent the customer states (``"40%"``, ``"15 percent"``), else ``None``."""
    m = _PERCENT.search(text)
    return float(m.group(1)) if m else None


def _has_cue(text: str, cue: str) -> bool:
    if not _WORD_CUE.search(cue):
        return cue in text
    return re.search(rf"(?<![a-z]){re.escape(cue)}(?![a-z])", text) is not None


def intent(text: str) -> str:
    """``accept_offer`` | ``negotiate`` | ``respond`` by keyword cues (accept cues first)."""
    low = text.lower()
    if any(_has_cue(low, c) for c in ACCEPT_CUES):
        return "accept_offer"
    if any(_has_cue(low, c) for c in CONCESSION_CUES):
        return "negotiate"
    return "respond"


def quote_window(text: str, max_len: int) -> str:
    """Whole words of ``text`` (verbatim, at most ``max_len`` characters) around its first cue."""
    low = text.lower()
    hits = [low.find(c) for c in CONCESSION_CUES if _has_cue(low, c)]
    at = min(hits) if hits else 0
    words = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
    if not words:
        return text[:max_len]
    first = next((i for i, (_, end) in enumerate(words) if end > at), 0)
    lo = hi = first
    while True:  # grow right first, then left, while the span still fits
        if hi + 1 < len(words) and words[hi + 1][1] - words[lo][0] <= max_len:
            hi += 1
        elif lo > 0 and words[hi][1] - words[lo - 1][0] <= max_len:
            lo -= 1
        else:
            break
    quote = text[words[lo][0] : words[hi][1]]
    return quote if len(quote) <= max_len else quote[:max_len]


class _Filler:
    """Fills one schema for one customer message."""

    def __init__(self, root: dict[str, Any], text: str) -> None:
        self.root = root
        self.text = text.strip() or "ok"

    def resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        ref = node.get("$ref")
        if not ref:
            return node
        target: Any = self.root
        for part in ref.lstrip("#/").split("/"):
            target = target[part]
        return self.resolve(target)

    def fill(self, node: dict[str, Any], name: str = "") -> Any:
        node = self.resolve(node)
        if "const" in node:
            return node["const"]
        if node.get("enum"):
            return self.pick(node["enum"], name)
        options = node.get("oneOf") or node.get("anyOf")
        if options:
            return self.choose(options, name)
        kind = node.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind == "object" or "properties" in node:
            return {k: self.fill(v, k) for k, v in node.get("properties", {}).items()}
        if kind in ("number", "integer"):
            return self.number(node, None)
        if kind == "string":
            return self.string(node, name)
        if kind == "boolean":
            return False
        if kind == "array":
            return [self.fill(node.get("items", {}), name) for _ in range(node.get("minItems", 0))]
        return None

    def choose(self, options: list[dict[str, Any]], name: str) -> Any:
        resolved = [self.resolve(o) for o in options]
        non_null = [o for o in resolved if o.get("type") != "null"]
        if len(non_null) < len(resolved) and len(non_null) == 1:
            only = non_null[0]
            if only.get("type") in ("number", "integer"):
                asked = stated_percent(self.text)
                return None if asked is None else self.number(only, asked)
            return self.fill(only, name)
        wanted = intent(self.text)
        for option in non_null:
            if wanted in self._tags(option):
                return self.fill(option, name)
        for option in non_null:  # the default: the branch that just answers
            if "respond" in self._tags(option):
                return self.fill(option, name)
        return self.fill(non_null[0], name)

    def _tags(self, option: dict[str, Any]) -> set[str]:
        tags: set[str] = set()
        for prop in option.get("properties", {}).values():
            prop = self.resolve(prop)
            if "const" in prop:
                tags.add(str(prop["const"]))
            tags.update(str(v) for v in prop.get("enum") or [])
        return tags

    def pick(self, values: list[Any], name: str) -> Any:
        """An ``enum`` value: the top of a numeric range (the anchor), the clause holding a
        concession cue for a quote, else the first."""
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            return max(values)
        if "quote" in name.lower():
            low = [str(v).lower() for v in values]
            cued = [v for v, t in zip(values, low, strict=True) if intent(t) == "negotiate"]
            return (cued or values)[0]
        return values[0]

    @staticmethod
    def number(node: dict[str, Any], wanted: float | None) -> float:
        lo = node.get("minimum", node.get("exclusiveMinimum"))
        hi = node.get("maximum", node.get("exclusiveMaximum"))
        value = wanted if wanted is not None else (hi if hi is not None else (lo or 0))
        if hi is not None:
            value = min(value, hi)
        if lo is not None:
            value = max(value, lo)
        return int(value) if node.get("type") == "integer" else float(value)

    def string(self, node: dict[str, Any], name: str) -> str:
        max_len = int(node.get("maxLength", 200))
        min_len = int(node.get("minLength", 0))
        if "quote" in name.lower():
            value = quote_window(self.text, max_len)
        else:
            value = " ".join(self.text.split())[:max_len].strip()
        return value.ljust(min_len, ".")


def fill_schema(schema: dict[str, Any], customer_text: str) -> Any:
    """A value that satisfies ``schema``, derived from the customer's message."""
    return _Filler(schema, customer_text).fill(schema)


class SchemaFiller:
    """A responder (``graph.ops.fakes``) answering :func:`fill_schema` of each request's
    schema, from the customer's message it last heard (else the prompt's last one)."""

    def __init__(self) -> None:
        self.customer_text = ""
        self.schemas: list[str] = []

    def hear(self, text: str) -> None:
        """The customer's message of the turn about to run."""
        self.customer_text = text

    def __call__(self, schema: dict[str, Any], messages: list[BaseMessage]) -> Any:
        schema = schema or {"type": "object", "properties": {}}
        self.schemas.append(str(schema.get("title", "")))
        return fill_schema(schema, self.customer_text or _last_human(messages))


def _last_human(messages: list[BaseMessage]) -> str:
    for m in reversed(messages):
        if isinstance(m, HumanMessage):
            return str(m.content)
    return ""


def fake_structured_llm() -> StructuredLLM:
    """A ``StructuredLLM`` over the shared fake chat model with a fresh :class:`SchemaFiller`
    (vLLM >= 0.12 dialect); ``llm.chat.responder`` is the filler."""
    return fake_llm(SchemaFiller(), model_name="fake-schema")
