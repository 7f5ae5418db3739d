"""Input checks shared by the CLI and the graph: bad input never reaches the model.

Text from outside (customer messages) and text going to a terminal pass ``strip_controls``:
ANSI/OSC escape sequences, C0/C1 control characters (tab and newline kept) and bidirectional
overrides/isolates are removed, so nothing can recolour, rewrite or reorder what an operator
reads. A NUL character is refused outright (it truncates text in C tools and logs).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

SESSION_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
USER_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$")


# CSI (ESC [ ... final), OSC (ESC ] ... BEL or ST), other two-byte ESC sequences, 8-bit CSI.
_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[@-Z\\-_]"
    r"|\x9b[0-?]*[ -/]*[@-~]"
)
# Bidi embeddings/overrides (U+202A-E), isolates (U+2066-9), marks (LRM, RLM, ALM).
BIDI_CHARS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
_CONTROLS = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{BIDI_CHARS}]")


class InputError(ValueError):
    """Input that cannot start a turn; the message is meant for the user."""


def strip_controls(text: str) -> str:
    """``text`` without escape sequences, control characters (but tab and newline) or bidi
    controls; ``\\r\\n`` and lone ``\\r`` become newlines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROLS.sub("", _ANSI.sub("", text))


def message_problem(text: str, max_chars: int) -> str | None:
    """Why ``text`` cannot be sent to the model, or ``None`` when it can."""
    if "\x00" in (text or ""):
        return "the message contains a NUL character"
    if not text or not strip_controls(text).strip():
        return "the message is empty"
    if len(text) > max_chars:
        return f"the message is {len(text)} characters long; the limit is {max_chars}"
    return None


def check_message(text: str, max_chars: int) -> str:
    """The message without control characters, stripped, or ``InputError``."""
    problem = message_problem(text, max_chars)
    if problem:
        raise InputError(problem)
    return strip_controls(text).strip()


def check_session_id(session: str) -> str:
    """A thread id of letters, digits and ``_.:-`` (at most 128), or ``InputError``."""
    if not SESSION_ID_RE.fullmatch(session or ""):
        raise InputError(
            f"malformed session id {session!r}: use 1-128 letters, digits, '_', '.', ':' or '-'"
        )
    return session


def check_idempotency_key(key: str) -> str:
    """A client's idempotency key: 1-128 letters, digits and ``_.:-`` (a UUID fits), or
    ``InputError``."""
    if not SESSION_ID_RE.fullmatch(key or ""):
        raise InputError(
            f"malformed idempotency key {key[:40]!r}: "
            "use 1-128 letters, digits, '_', '.', ':' or '-'"
        )
    return key


def check_user_id(user_id: str) -> str:
    """A customer id of letters, digits and ``_.@-`` (at most 128), or ``InputError``."""
    if not USER_ID_RE.fullmatch(user_id or ""):
        raise InputError(f"malformed user id {user_id!r}")
    return user_id


def parse_since(text: str | None, name: str = "since") -> datetime | None:
    """A report's lower bound: an ISO date or time (UTC without an offset), ``None`` when
    empty, or ``InputError`` naming the parameter ``name``."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as e:
        raise InputError(f"{name} {text[:40]!r} is not an ISO date or time") from e
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
