"""Offer codes: 50 random bits in Crockford base32, formatted ``SGR-XXXXX-XXXXX``."""

from __future__ import annotations

import re
import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U
PREFIX = "SGR"
CODE_LENGTH = 10  # 10 symbols x 5 bits = 50 bits of entropy
CODE_RE = re.compile(rf"\b{PREFIX}-[{ALPHABET}]{{5}}-[{ALPHABET}]{{5}}\b")
_LOOSE_RE = re.compile(r"[\s\-_]")
_CONFUSABLE = str.maketrans({"O": "0", "I": "1", "L": "1"})


def new_code() -> str:
    """A fresh random code from ``secrets``."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    return f"{PREFIX}-{body[:5]}-{body[5:]}"


def normalize_code(text: str) -> str | None:
    """The canonical form of a typed code (case, dashes, O/I/L tolerated) or ``None``."""
    body = _LOOSE_RE.sub("", text.strip().upper())
    if len(body) == len(PREFIX) + CODE_LENGTH:
        body = body.removeprefix(PREFIX)
    body = body.translate(_CONFUSABLE)
    if len(body) != CODE_LENGTH or any(ch not in ALPHABET for ch in body):
        return None
    return f"{PREFIX}-{body[:5]}-{body[5:]}"
