"""Input checks shared by the CLI and the graph: bad input never reaches the model."""

from __future__ import annotations

import re

SESSION_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
USER_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$")


class InputError(ValueError):
    """Input that cannot start a turn; the message is meant for the user."""


def message_problem(text: str, max_chars: int) -> str | None:
    """Why ``text`` cannot be sent to the model, or ``None`` when it can."""
    if not text or not text.strip():
        return "the message is empty"
    if len(text) > max_chars:
        return f"the message is {len(text)} characters long; the limit is {max_chars}"
    return None


def check_message(text: str, max_chars: int) -> str:
    """The message, stripped, or ``InputError``."""
    problem = message_problem(text, max_chars)
    if problem:
        raise InputError(problem)
    return text.strip()


def check_session_id(session: str) -> str:
    """A thread id of letters, digits and ``_.:-`` (at most 128), or ``InputError``."""
    if not SESSION_ID_RE.fullmatch(session or ""):
        raise InputError(
            f"malformed session id {session!r}: use 1-128 letters, digits, '_', '.', ':' or '-'"
        )
    return session


def check_user_id(user_id: str) -> str:
    """A customer id of letters, digits and ``_.@-`` (at most 128), or ``InputError``."""
    if not USER_ID_RE.fullmatch(user_id or ""):
        raise InputError(f"malformed user id {user_id!r}")
    return user_id
