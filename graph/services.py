"""What the nodes use: settings, the structured LLM, the stores. Injected by the builder."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx

from graph.settings import Settings, get_settings
from graph.sgr import LLMUnavailableError, RetryPolicy, StructuredLLM, detect_dialect

if TYPE_CHECKING:
    from stores.audit import AuditLog
    from stores.features import FeatureStore
    from stores.ledger import OfferLedger

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
    chat = ChatOpenAI(
        base_url=s.llm_base_url,
        api_key=s.llm_api_key,  # type: ignore[arg-type]
        model=model,
        temperature=s.llm_temperature,
        timeout=s.llm_timeout_s,
        max_retries=0,  # StructuredLLM retries (bounded, typed, Retry-After capped)
        use_responses_api=False,
        stream_usage=True,
        # a client of this LLM's own: langchain's shared default is bound to the first event
        # loop that used it (the CLI, the simulator and tests run one loop per command)
        http_async_client=httpx.AsyncClient(
            timeout=s.llm_timeout_s,
            limits=httpx.Limits(max_connections=1000, max_keepalive_connections=100),
        ),
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
        retry=RetryPolicy(s.llm_max_retries, s.llm_retry_backoff_s, s.llm_retry_max_wait_s),
        probe_retry_s=s.probe_retry_s,
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

    @classmethod
    def with_llm(cls, llm: StructuredLLM, settings: Settings | None = None) -> Services:
        """Services around a ready LLM (tests, the demo)."""
        return cls(settings=settings or get_settings(), _llm=llm)

    def llm(self) -> StructuredLLM:
        """The structured LLM, built on first use."""
        with self._lock:
            if self._llm is None:
                self._llm = self.llm_factory(self.settings)
            return self._llm

    async def allm(self) -> StructuredLLM:
        """The structured LLM; built on first use in a worker thread (it asks the endpoint
        for its version and models, which must not block the event loop)."""
        if self._llm is not None:
            return self._llm
        return await asyncio.to_thread(self.llm)

    def features(self) -> FeatureStore:
        """The process-wide feature store of the data dir."""
        from stores.features import get_feature_store

        return get_feature_store(self.settings.hot_db, self.settings.cold_db)

    def audit_log(self) -> AuditLog:
        """The process-wide audit trail (append-only, beside the ledger)."""
        from stores.audit import get_audit_log

        return get_audit_log(self.settings.ledger_db)

    def ledger(self) -> OfferLedger:
        """The process-wide offer ledger of the data dir."""
        from stores.ledger import get_ledger

        return get_ledger(self.settings.ledger_db)
