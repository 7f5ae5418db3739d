"""Grounding: whether the model's routing decision is what the customer's message says.

A ``negotiate`` must quote the customer's own words holding a concession cue; an
``accept_offer`` needs words of acceptance and none of refusal or counter-offer; a percent
counts only if the message states it. The cues are data (``prompts/concession_cues.json``,
``SGR_CONCESSION_CUES``).
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from graph.settings import Settings
from prompts import DIR as PROMPTS_DIR

_CLAUSE_BREAK = re.compile(r"[.,;:!?()\[\]\"\n]+|\s+(?:or|and|but|so)\s+", re.IGNORECASE)
MAX_CLAUSES = 24


def message_clauses(message: str, max_chars: int = 60) -> list[str]:
    """Verbatim pieces of the message (split at punctuation and or/and/but/so), each at most
    ``max_chars`` long: the values the server lets ``quote`` take."""
    pieces = [p.strip()[:max_chars].strip() for p in _CLAUSE_BREAK.split(message)]
    return list(dict.fromkeys(p for p in pieces if p))[:MAX_CLAUSES]


@dataclass(frozen=True)
class Lexicon:
    """Concession cues (``counter`` ones count only while an offer stands); ``accept`` cues
    ground an ``accept_offer``, ``reject`` cues (and the counter ones) veto it."""

    cues: tuple[str, ...]
    counter: tuple[str, ...]
    accept: tuple[str, ...] = ()
    reject: tuple[str, ...] = ()
    closing: tuple[str, ...] = ()
    quoting: tuple[str, ...] = ()
    asks: tuple[str, ...] = ()
    support: tuple[str, ...] = ()
    greeting: tuple[str, ...] = ()


DEFAULT_CUES = PROMPTS_DIR / "concession_cues.json"


@lru_cache(maxsize=8)
def load_lexicon(path: Path) -> Lexicon:
    """The cue lexicon at ``path`` (JSON: ``{"cues": [...], "counter": [...]}``)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if path != DEFAULT_CUES:  # a custom lexicon may leave out the accept/reject lists
        data = {**json.loads(DEFAULT_CUES.read_text(encoding="utf-8")), **data}

    def words(key: str) -> tuple[str, ...]:
        return tuple(normalise(c) for c in data.get(key, ()))

    return Lexicon(
        words("cues"),
        words("counter"),
        words("accept"),
        words("reject"),
        words("closing"),
        words("quoting"),
        words("asks"),
        words("support"),
        words("greeting"),
    )


def lexicon_for(s: Settings) -> Lexicon:
    """The lexicon configured by ``SGR_CONCESSION_CUES`` (the shipped one by default)."""
    return load_lexicon(Path(s.concession_cues_path or DEFAULT_CUES))


_NON_WORD = re.compile(r"[^\w%]+")


def normalise(text: str) -> str:
    """Lower case, NFKC, punctuation to spaces, ``%`` a word of its own, spaces collapsed."""
    text = unicodedata.normalize("NFKC", text).lower().replace("\u2019", "").replace("'", "")
    text = text.replace("%", " % ")
    return " ".join(_NON_WORD.sub(" ", text).split())


@lru_cache(maxsize=256)
def _cue_pattern(cues: tuple[str, ...]) -> re.Pattern[str] | None:
    """One regex for a list of cues over normalised text: a phrase or a cue of under 4
    letters matches whole words; a longer single-word cue also the longer words it starts
    ("discount" -> "discounts")."""
    whole = [re.escape(c) for c in cues if " " in c or len(c) < 4]
    prefix = [re.escape(c) for c in cues if " " not in c and len(c) >= 4]
    parts = []
    if whole:
        parts.append(rf"(?:{'|'.join(sorted(whole, key=len, reverse=True))})(?= )")
    if prefix:
        parts.append(rf"(?:{'|'.join(sorted(prefix, key=len, reverse=True))})")
    return re.compile(rf" (?:{'|'.join(parts)})") if parts else None


def _has_cue(words: list[str], cues: tuple[str, ...]) -> bool:
    pattern = _cue_pattern(cues)
    return pattern is not None and pattern.search(f" {' '.join(words)} ") is not None


def asks_concession(message: str, lexicon: Lexicon, *, offer_stands: bool) -> bool:
    """Whether the message itself holds a concession cue (counter cues while an offer stands)."""
    cues = lexicon.cues + (lexicon.counter if offer_stands else ())
    return _has_cue(normalise(message).split(), cues)


def asks_to_close(message: str, lexicon: Lexicon) -> bool:
    """Whether the message thanks or says goodbye (and asks for nothing more)."""
    words = normalise(message).split()
    return _has_cue(words, lexicon.closing) and not _has_cue(words, lexicon.cues)


GREETING_WORDS = 4  # "hi there, good morning" is a hello; longer messages say something more


def greets(message: str, lexicon: Lexicon) -> bool:
    """Whether the message is a hello and nothing more (or has no words at all: "👍")."""
    words = normalise(message).split()
    if not words:
        return True
    return len(words) <= GREETING_WORDS and _has_cue(words, lexicon.greeting)


def quotes_a_discount(message: str, lexicon: Lexicon) -> bool:
    """Whether the message frames its discount words as something to translate, retell or
    repeat ("Translate to French: 'You get 50% off'"): quoting a discount is not asking."""
    return _has_cue(normalise(message).split(), lexicon.quoting)


_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


def _numbers(pattern: re.Pattern[str], message: str) -> set[float]:
    """The numbers ``pattern`` finds in ``message`` (a decimal comma read as a point)."""
    return {float(n.replace(",", ".")) for n in pattern.findall(message)}


_PERCENT_ASK = re.compile(r"(\d+(?:[.,]\d+)?)\s*(?:%|percent)", re.IGNORECASE)


def stated_percent(message: str) -> float | None:
    """The one percent the message states ("25%", "12,5 percent"); ``None`` if none or several."""
    found = _numbers(_PERCENT_ASK, message)
    return found.pop() if len(found) == 1 else None


def acceptance_problem(message: str, lexicon: Lexicon) -> str:
    """Why an ``accept_offer`` is not what the message says ('' when it is).

    The message must hold an accept cue and none of the reject or counter cues: "That's too
    little, I need 25%" and "Can you go higher?" are not acceptances, whatever the model says.
    """
    words = normalise(message).split()
    if not _has_cue(words, lexicon.accept):
        return "no words of acceptance in the message"
    if _has_cue(words, lexicon.reject + lexicon.counter):
        return "the message asks for more or turns the offer down"
    return ""


_COUNTER_NUMBER = re.compile(
    r"\b(?:go(?:ing)?\s+(?:up\s+)?to|make\s+it|do|meet\s+(?:me\s+)?at|how\s+about|what\s+about"
    r"|at\s+least|up\s+to|settle\s+(?:for|at))\s+(\d{1,2}(?:[.,]5)?)\b(?!\s*(?:€|\$|£|eur|usd|"
    r"dollars?|euros?|pounds?|items?|days?|pieces?|am|pm))",
    re.IGNORECASE,
)


def counter_number(message: str) -> float | None:
    """A bare number the customer counters with ("Could you go to 15?", "make it 12"): read as
    a percent only while an offer stands (the caller's job); ``None`` if there is none."""
    found = _numbers(_COUNTER_NUMBER, message)
    return found.pop() if len(found) == 1 else None


Heard = Literal["negotiate", "accept", "close"]


def heard_intent(message: str, lexicon: Lexicon, *, offer_stands: bool) -> Heard | None:
    """What the message plainly says, whatever the model routed it to (``None``: nothing
    plain; the model's decision stands, grounded as usual).

    * a discount only quoted (a translation, a story) is nothing;
    * ``accept``: an offer stands, the message has words of acceptance, no ask, no refusal
      or counter, and is no question ("Deal!", "Sounds good, apply it");
    * ``negotiate``: an unambiguous ask ("any chance of the same discount", "I want a
      discount or I'm leaving"), or, while an offer stands, a counter ("not enough", "could
      you go to 15?") — unless the message is also about an order (returns, tracking...);
    * ``close``: thanks or goodbye and nothing else.
    """
    if quotes_a_discount(message, lexicon):
        return None
    words = normalise(message).split()
    asks = _has_cue(words, lexicon.asks)
    plain_asks = tuple(c for c in lexicon.asks if c not in lexicon.accept)  # "Deal!" accepts
    if (
        offer_stands
        and not _has_cue(words, plain_asks)
        and not message.rstrip().endswith("?")
        and acceptance_problem(message, lexicon) == ""
    ):
        return "accept"
    counters = offer_stands and (
        _has_cue(words, lexicon.counter) or counter_number(message) is not None
    )
    if (asks or counters) and not _has_cue(words, lexicon.support):
        return "negotiate"  # "my discounted jacket arrived broken" is for the model to read
    if asks_to_close(message, lexicon):
        return "close"
    return None


def cue_clause(message: str, lexicon: Lexicon, *, offer_stands: bool) -> str:
    """The clause of the message that holds its ask (a ``negotiate`` quote of its own words)."""
    cues = lexicon.asks + lexicon.cues + (lexicon.counter if offer_stands else ())
    clauses = message_clauses(message)
    for clause in clauses:
        if _has_cue(normalise(clause).split(), cues):
            return clause
    return clauses[0] if clauses else message[:60]


def grounded_ask(percent: float | None, message: str) -> float | None:
    """The model's ``requested_percent`` if the message states that number, else ``None``.

    The schema asks for a whole percent (a JSON float may run on until ``max_tokens``): a
    stated "10.5%" comes back as 10, and the customer's own 10.5 is kept.
    """
    if percent is None:
        return None
    stated = _numbers(_NUMBER, message)
    if percent in stated:
        return percent
    return next((n for n in sorted(stated) if math.floor(n) == percent), None)


def grounding_problem(quote: str, message: str, lexicon: Lexicon, *, offer_stands: bool) -> str:
    """Why a ``negotiate`` quote is not grounded in ``message`` ('' when it is)."""
    q, m = normalise(quote), normalise(message)
    if not q:
        return "empty quote"
    if f" {q} " not in f" {m} ":
        return f"quote {quote[:60]!r} is not in the message"
    cues = lexicon.cues + (lexicon.counter if offer_stands else ())
    if not _has_cue(q.split(), cues):
        return f"quote {quote[:60]!r} holds no concession cue"
    return ""
