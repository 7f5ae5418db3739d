"""Timezone-aware UTC times and their one stored text format."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now(now: datetime | None = None) -> datetime:
    """``now`` (must be timezone-aware) in UTC, or the current UTC time."""
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("naive datetime: pass a timezone-aware time")
    return now.astimezone(UTC)


def to_text(moment: datetime) -> str:
    """Fixed-width ISO-8601 UTC text; text order equals time order."""
    return utc_now(moment).isoformat(timespec="microseconds")
