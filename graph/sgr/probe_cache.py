"""A passed constraint probe, remembered across processes for a while.

Each ``discount-manager turn`` is a process of its own; without this every one of them spends
a model call on the probe before the customer's turn (on the local CPU model, ~1 s of a 3-8 s
turn). Only a *passed* probe is remembered, keyed by endpoint, model and dialect, for
``SGR_PROBE_CACHE_S``; a failed one never is. A server swapped for one that ignores the
constraint within that time is still caught at its first reply: prose where JSON was enforced
is ``ConstraintNotEnforcedError``, and every reply is validated anyway.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from graph.sgr.dialects import ProbeResult

log = logging.getLogger(__name__)


class ProbeCache:
    """One JSON file of passed probes: ``{key: {"at": epoch, "raw": ..., "ms": ...}}``."""

    def __init__(self, path: Path, ttl_s: float) -> None:
        self.path = Path(path)
        self.ttl_s = ttl_s

    @staticmethod
    def key(base_url: str, model: str, dialect: str) -> str:
        return f"{base_url.rstrip('/')}|{model}|{dialect}"

    def _read(self) -> dict[str, dict[str, object]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, key: str, now: float | None = None) -> ProbeResult | None:
        """The remembered pass of ``key`` if younger than the TTL."""
        if self.ttl_s <= 0:
            return None
        entry = self._read().get(key)
        moment = time.time() if now is None else now
        if not isinstance(entry, dict) or moment - float(entry.get("at", 0)) > self.ttl_s:
            return None
        dialect = key.rsplit("|", 1)[-1]
        return ProbeResult(True, dialect, str(entry.get("raw", "")), float(entry.get("ms", 0)))

    def put(self, key: str, result: ProbeResult, now: float | None = None) -> None:
        """Remember a passed probe (a failed one is never written)."""
        if not result.enforced or self.ttl_s <= 0:
            return
        data = self._read()
        data[key] = {
            "at": time.time() if now is None else now,
            "raw": result.raw[:200],
            "ms": round(result.latency_ms, 1),
        }
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as e:  # a cache: the next process probes again
            log.info("probe not remembered: %s", e)
