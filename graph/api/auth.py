"""Who may do what: shoppers by the shop's JWT, managers and analysts by their tokens.

* A **shopper** call carries ``Authorization: Bearer <JWT>`` signed by the shop's backend with
  ``SGR_SHOP_SECRET`` (HS256); ``sub`` is the customer, ``exp`` is required. The customer is
  never read from a request body.
* A **manager** (or analyst) call carries one of ``SGR_MANAGER_TOKENS`` (compared in constant
  time), as a bearer token or through the pages' sign-in cookie: a short-lived JWT signed
  with a key derived from that manager token (so every worker can check it, and removing the
  token from the settings signs its holders out), carrying the page's CSRF token.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

import jwt

from graph.settings import Settings

ALGORITHM = "HS256"
SESSION_COOKIE = "sgr_manager"
SESSION_TTL_S = 8 * 3600
_NAMED = re.compile(r"^([A-Za-z0-9_.-]{1,32}):(.+)$")


class AuthError(Exception):
    """A failed authentication (401) or authorisation (403)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Shopper:
    """A customer, as the shop's token names them."""

    user_id: str


@dataclass(frozen=True)
class Manager:
    """A manager or analyst: ``name`` for the audit of decisions, ``token_id`` for cookies."""

    name: str
    token_id: str
    csrf: str = ""


def shopper_token(s: Settings, user_id: str, ttl_s: int | None = None) -> str:
    """A shopper JWT as the shop's backend would sign it (``discount-manager token``)."""
    if not s.shop_secret:
        raise ValueError("SGR_SHOP_SECRET is not set: there is no key to sign tokens with")
    now = int(time.time())
    claims = {"sub": user_id, "iat": now, "exp": now + int(ttl_s or s.token_ttl_s)}
    return jwt.encode(claims, s.shop_secret, algorithm=ALGORITHM)


def shopper_from_token(s: Settings, token: str) -> Shopper:
    """The customer of a valid shopper JWT; ``AuthError(401)`` for a forged, expired or
    malformed one."""
    if not s.shop_secret:
        raise AuthError(401, "shopper tokens are not accepted: SGR_SHOP_SECRET is not set")
    try:
        claims = jwt.decode(
            token, s.shop_secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]}
        )
    except jwt.ExpiredSignatureError as e:
        raise AuthError(401, "the token has expired") from e
    except jwt.InvalidTokenError as e:
        raise AuthError(401, f"invalid token: {e}") from e
    user = str(claims.get("sub") or "").strip()
    if not user:
        raise AuthError(401, "invalid token: no customer in sub")
    return Shopper(user_id=user)


def manager_entries(s: Settings) -> list[tuple[str, str]]:
    """``(name, token)`` of each ``SGR_MANAGER_TOKENS`` entry (``token`` or ``name:token``)."""
    out = []
    for entry in s.manager_token_list:
        m = _NAMED.match(entry)
        name, token = (m.group(1), m.group(2)) if m else ("", entry)
        out.append((name or f"manager-{_token_id(token)[:6]}", token))
    return out


def _token_id(token: str) -> str:
    return hashlib.sha256(f"sgr-token-id:{token}".encode()).hexdigest()[:16]


def _cookie_key(token: str) -> str:
    return hashlib.sha256(f"sgr-manager-session:{token}".encode()).hexdigest()


def manager_from_token(s: Settings, token: str) -> Manager | None:
    """The manager whose token this is (constant-time comparison), else ``None``."""
    found: Manager | None = None
    for name, known in manager_entries(s):
        if hmac.compare_digest(known.encode(), token.encode()):
            found = Manager(name=name, token_id=_token_id(known))
    return found


def session_cookie(s: Settings, manager: Manager) -> tuple[str, str]:
    """A signed sign-in cookie for ``manager`` and the CSRF token the pages must send back."""
    token = next(t for _, t in manager_entries(s) if _token_id(t) == manager.token_id)
    csrf = secrets.token_urlsafe(24)
    now = int(time.time())
    claims = {
        "sub": manager.name,
        "tid": manager.token_id,
        "csrf": csrf,
        "iat": now,
        "exp": now + SESSION_TTL_S,
    }
    return jwt.encode(claims, _cookie_key(token), algorithm=ALGORITHM), csrf


def manager_from_cookie(s: Settings, cookie: str) -> Manager | None:
    """The manager of a valid sign-in cookie (with its CSRF token), else ``None``."""
    try:
        tid = str(jwt.decode(cookie, options={"verify_signature": False}).get("tid") or "")
    except jwt.InvalidTokenError:
        return None
    token = next((t for _, t in manager_entries(s) if _token_id(t) == tid), None)
    if token is None:
        return None
    try:
        claims = jwt.decode(
            cookie, _cookie_key(token), algorithms=[ALGORITHM], options={"require": ["exp"]}
        )
    except jwt.InvalidTokenError:
        return None
    return Manager(name=str(claims["sub"]), token_id=tid, csrf=str(claims.get("csrf") or ""))
