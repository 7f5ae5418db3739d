"""Every sentence the shop says that the model did not write: ``prompts/replies.toml``.

Shop-specific words come from the settings (``SGR_SHOP_NAME``, ``SGR_SUPPORT_TEXT``); a shop
can replace the whole file (``SGR_REPLIES_PATH``, missing keys fall back to the shipped
ones). Numbers are formatted here, once: percents as ``12.5``, amounts with two decimals.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from graph.settings import Settings
from graph.state import OfferData
from prompts import DIR as PROMPTS_DIR

SHIPPED = PROMPTS_DIR / "replies.toml"


@lru_cache(maxsize=8)
def _load(path: Path | None) -> dict[str, str]:
    texts = tomllib.loads(SHIPPED.read_text(encoding="utf-8"))
    if path is not None and Path(path) != SHIPPED:
        texts |= tomllib.loads(Path(path).read_text(encoding="utf-8"))
    return {k: str(v) for k, v in texts.items()}


def percent_text(value: float) -> str:
    """``12.5`` / ``10`` (no trailing zeros)."""
    return f"{float(value):g}"


def amount_text(value: float) -> str:
    """``24.00``."""
    return f"{float(value):.2f}"


@dataclass(frozen=True)
class Replies:
    """The templates of one shop (settings), rendered by name."""

    texts: dict[str, str]
    shop: str
    support: str

    @classmethod
    def of(cls, s: Settings) -> Replies:
        """The replies configured by ``s``."""
        return _replies(s.replies_path, s.shop_name, s.support_text)

    def say(self, name: str, **values: Any) -> str:
        """Template ``name`` with ``{shop}``, ``{support}`` and ``values`` filled in."""
        return self.texts[name].format(shop=self.shop, support=self.support, **values)

    # -- replies built from ledger rows -----------------------------------------------

    def offer_terms(self, offer: OfferData) -> str:
        """The authoritative terms of an issued code."""
        expires = str(offer["expires_at"])[:16].replace("T", " ")
        return self.say(
            "offer_terms",
            percent=percent_text(offer["discount_percent"]),
            amount=amount_text(offer["amount"]),
            code=offer["code"],
            expires=expires,
        )

    def hold(self, standing: OfferData | None) -> str:
        """No better offer can be made: the standing one holds, or there is none."""
        if standing:
            return self.say(
                "offer_holds",
                percent=percent_text(standing["discount_percent"]),
                code=standing["code"],
            )
        return self.say("no_discount")

    def final(self, standing: OfferData | None) -> str:
        """The last word once the pricing rounds are spent."""
        if standing:
            return self.say(
                "final_offer",
                percent=percent_text(standing["discount_percent"]),
                code=standing["code"],
            )
        return self.say("final_none")

    def accepted_stands(self, accepted: OfferData) -> str:
        """The customer already accepted a code that is still redeemable."""
        return self.say(
            "accepted_stands",
            percent=percent_text(accepted["discount_percent"]),
            code=accepted["code"],
        )

    def pending(self, standing: OfferData | None) -> str:
        """Another proposal for the customer waits for a manager's approval."""
        if standing:
            return self.say(
                "approval_pending_standing",
                percent=percent_text(standing["discount_percent"]),
                code=standing["code"],
            )
        return self.say("approval_pending")

    def refusal(self, reason: str, standing: OfferData | None) -> str:
        """A ledger refusal (``stores.errors.RefusalReason``), in true statements only."""
        if reason == "accepted_stands" and standing:
            return self.accepted_stands(standing)
        if reason == "approval_pending":
            return self.pending(standing)
        if reason == "session_conflict":
            return self.say("session_conflict")
        return self.hold(standing)

    def confirm_accept(self, standing: OfferData | None) -> str:
        """Ask before redeeming: the message did not clearly accept the standing offer."""
        percent = float((standing or {}).get("discount_percent") or 0)
        return self.say("confirm_accept", percent=percent_text(percent))


@lru_cache(maxsize=8)
def _replies(path: Path | None, shop: str, support: str) -> Replies:
    return Replies(_load(path), shop, support)
