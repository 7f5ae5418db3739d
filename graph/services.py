"""What the nodes use: settings, the structured LLM, the stores. Injected by the builder."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx
import openai

from graph.settings import Settings, get_settings
from graph.sgr import LLMUnavailableError, RetryPolicy, StructuredLLM, detect_dialect
from graph.sgr.probe_cache import ProbeCache

if TYPE_CHECKING:
    from stores.audit import AuditLog
    from stores.backend import Backend
    from stores.features import FeatureStore
    from stores.leases import SessionLeases
    from stores.ledger import OfferLedger
    from stores.ratelimits import RateLimits

log = logging.getLogger(__name__)


def first_model(base_url: str, api_key: str = "EMPTY", timeout: float = 5.0) -> str:
    """The id of the first model served at ``<base_url>/models``."""
    try:
        r = httpx.get(
            f"{base_url.rstrip('/')}/models",
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
        )
        r.raise_for_status()
        return str(r.json()["data"][0]["id"])
    except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError) as e:
        raise LLMUnavailableError(f"cannot list models at {base_url}: {e}") from e


def build_structured_llm(s: Settings) -> StructuredLLM:
    """``ChatOpenAI`` against the configured endpoint, with the dialect resolved once."""
    from langchain_openai import ChatOpenAI

    dialect = (
        detect_dialect(s.server_root) if s.structured_output == "auto" else s.structured_output
    )
    model = s.llm_model or first_model(s.llm_base_url, s.llm_api_key)
    client = openai.DefaultAioHttpClient(timeout=s.llm_timeout_s)
    chat = ChatOpenAI(
        base_url=s.llm_base_url,
        api_key=s.llm_api_key,  # type: ignore[arg-type]
        model=model,
        temperature=s.llm_temperature,
        timeout=s.llm_timeout_s,
        max_retries=0,  # StructuredLLM retries (bounded, typed, Retry-After capped)
        use_responses_api=False,
        stream_usage=True,
        # a client of this LLM's own (langchain's shared default is bound to the first event
        # loop that used it; the CLI, the simulator and tests run one loop per command), on
        # aiohttp: httpx's pool scans every connection per request, a fifth of the service's
        # CPU with 200 calls in flight
        http_async_client=client,
        extra_body=(
            {"repetition_penalty": s.llm_repetition_penalty}
            if s.llm_repetition_penalty is not None
            else None
        ),
    )
    return StructuredLLM(
        chat,
        dialect,
        model_name=model,
        max_tokens=s.llm_max_tokens,
        verify=s.verify_constraint,
        probe_cache=ProbeCache(s.data_dir / "probe.json", s.probe_cache_s),
        probe_key=ProbeCache.key(s.llm_base_url, model, dialect),
        retry=RetryPolicy(s.llm_max_retries, s.llm_retry_backoff_s, s.llm_retry_max_wait_s),
        probe_retry_s=s.probe_retry_s,
        http_client=client,
    )


@dataclass
class Services:
    """Lazily built dependencies of the nodes (nothing connects at import time).

    Methods, not properties: compiling a graph inspects node closures, and a property would
    connect to the LLM and the stores right then.
    """

    settings: Settings = field(default_factory=get_settings)
    llm_factory: Callable[[Settings], StructuredLLM] = build_structured_llm
    _llm: StructuredLLM | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _backend: Backend | None = None
    _owns_llm: bool = False

    @classmethod
    def with_llm(cls, llm: StructuredLLM, settings: Settings | None = None) -> Services:
        """Services around a ready LLM (tests, the demo)."""
        return cls(settings=settings or get_settings(), _llm=llm)

    def llm(self) -> StructuredLLM:
        """The structured LLM, built on first use."""
        with self._lock:
            if self._llm is None:
                self._llm = self.llm_factory(self.settings)
                self._owns_llm = True
            return self._llm

    async def allm(self) -> StructuredLLM:
        """The structured LLM; built on first use in a worker thread (it asks the endpoint
        for its version and models, which must not block the event loop)."""
        if self._llm is not None:
            return self._llm
        return await asyncio.to_thread(self.llm)

    def backend(self) -> Backend:
        """The process-wide stores of this deployment: SQLite files under ``SGR_DATA_DIR``,
        or the Postgres database of ``SGR_DATABASE_URL`` (``stores.backend``)."""
        from stores.backend import open_backend

        backend = self._backend
        if backend is None or backend.closed:  # reopened after ``reset_backends``
            s = self.settings
            assert s.checkpoint_db is not None  # derived from data_dir by Settings
            backend = self._backend = open_backend(s.database_url, s.data_dir, s.checkpoint_db)
        return backend

    async def aclose(self) -> None:
        """Close what these services built (the LLM's connections); an LLM handed in with
        :meth:`with_llm` belongs to the caller and stays open."""
        if self._llm is not None and self._owns_llm:
            llm, self._llm = self._llm, None
            await llm.aclose()

    def features(self) -> FeatureStore:
        """Customer features: the hot store joined with the cold analytics."""
        return self.backend().features

    def audit_log(self) -> AuditLog:
        """The append-only audit trail (beside the ledger)."""
        return self.backend().audit

    def ledger(self) -> OfferLedger:
        """The offer ledger: the authority on money."""
        return self.backend().ledger

    def leases(self) -> SessionLeases:
        """One turn per session at a time, across processes and machines."""
        return self.backend().leases

    def report(self, since: datetime | None = None) -> dict[str, Any]:
        """The analyst report over this deployment's ledger and audit trail."""
        from stores.timeline import daily_timeline

        s = self.settings
        backend = self.backend()
        report = backend.report(since=since, churn_high=s.churn_high, churn_low=s.churn_low)
        report["timeline"] = daily_timeline(backend.ledger.list(), since)
        return report

    def rate_limits(self) -> RateLimits:
        """Fixed-window counters shared by every worker."""
        return self.backend().rate_limits
