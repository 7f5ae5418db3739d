"""One entry point to every store, on SQLite files (the zero-setup default) or PostgreSQL.

``open_backend(None, data_dir, checkpoint_db)``: today's files (``ledger.sqlite`` with the
ledger and the audit trail, ``hot.sqlite``, ``cold.duckdb``; leases and rate limits in the
checkpoint DB). ``open_backend("postgresql://...", ...)``: all of them as tables of that one
database (created idempotently on open), shared by every worker on every machine; the
hot and analytics tables are filled by ``stores.seed.generate(..., database_url=...)``.

Backends are cached per process (``open_backend`` returns the same instance for the same
arguments until ``reset_backends``).
"""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from stores.audit import AuditLog
from stores.db import Database, is_database_url, open_postgres, open_sqlite
from stores.features import FeatureStore
from stores.files import data_files
from stores.leases import SessionLeases
from stores.ledger import OfferLedger
from stores.ratelimits import RateLimits
from stores.report import build_report
from stores.sql import Dialect

POSTGRES_SCHEMA = (
    "ledger_schema",
    "audit_schema",
    "hot_schema",
    "analytics_schema",
    "leases_schema",
    "ratelimits_schema",
)
"""Every table of the Postgres backend, created on open."""


class Backend:
    """The stores of one backend: ``ledger``, ``audit``, ``features``, ``leases``,
    ``rate_limits``, and ``report()``; ``close()`` closes them all."""

    def __init__(
        self,
        *,
        dialect: Dialect,
        database_url: str | None,
        data_dir: Path,
        ledger: OfferLedger,
        audit: AuditLog,
        leases: SessionLeases,
        rate_limits: RateLimits,
        databases: tuple[Database, ...],
        features: FeatureStore | None = None,
    ) -> None:
        self.dialect: Dialect = dialect
        self.database_url = database_url
        self.data_dir = data_dir
        self.ledger = ledger
        self.audit = audit
        self.leases = leases
        self.rate_limits = rate_limits
        self._databases = databases
        self._features = features
        self._lock = threading.Lock()
        self._closed = False

    @property
    def features(self) -> FeatureStore:
        """The feature store (SQLite: opened on first use; ``StoreNotFoundError`` until
        ``setup-data`` has written the files)."""
        with self._lock:
            if self._features is None:
                files = data_files(self.data_dir)
                self._features = FeatureStore.open(files.hot, files.cold)
            return self._features

    def report(
        self,
        *,
        since: datetime | None = None,
        now: datetime | None = None,
        churn_high: float = 0.7,
        churn_low: float = 0.3,
    ) -> dict[str, Any]:
        """The analyst report (``stores.report.build_report``) over this backend."""
        if self.dialect == "postgres":
            target: Path | Database = self._databases[0]
            hot = cold = None
        else:
            files = data_files(self.data_dir)
            target, hot, cold = files.ledger, files.hot, files.cold
        return build_report(
            target,
            hot_db=hot,
            cold_db=cold,
            since=since,
            now=now,
            churn_high=churn_high,
            churn_low=churn_low,
        )

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` ran (``reset_backends``): open a new one."""
        return self._closed

    def close(self) -> None:
        """Close every store and connection of the backend (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            stores: list[Any] = [self.ledger, self.audit, self.leases, self.rate_limits]
            if self._features is not None:
                stores.append(self._features)
            for store in stores:
                store.close()
            for db in self._databases:
                db.close()


def _open_sqlite(data_dir: Path, checkpoint_db: Path) -> Backend:
    files = data_files(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    checkpoint_db.parent.mkdir(parents=True, exist_ok=True)
    ledger = OfferLedger(files.ledger)
    audit = AuditLog(files.ledger)
    side = open_sqlite(checkpoint_db)  # leases and rate limits share one connection
    return Backend(
        dialect="sqlite",
        database_url=None,
        data_dir=data_dir,
        ledger=ledger,
        audit=audit,
        leases=SessionLeases(side),
        rate_limits=RateLimits(side),
        databases=(side,),
    )


def _open_postgres(url: str, data_dir: Path) -> Backend:
    db = open_postgres(url, schema=POSTGRES_SCHEMA, max_size=8)
    try:
        return Backend(
            dialect="postgres",
            database_url=url,
            data_dir=data_dir,
            ledger=OfferLedger(db),
            audit=AuditLog(db),
            leases=SessionLeases(db),
            rate_limits=RateLimits(db),
            features=FeatureStore.on_database(db),
            databases=(db,),
        )
    except BaseException:
        db.close()
        raise


_LOCK = threading.Lock()
_BACKENDS: dict[tuple[str, ...], Backend] = {}


def open_backend(database_url: str | None, data_dir: Path, checkpoint_db: Path) -> Backend:
    """The process-wide backend: SQLite files under ``data_dir`` (and ``checkpoint_db``)
    when ``database_url`` is ``None``, else the Postgres database of ``database_url``."""
    if database_url is not None and not is_database_url(database_url):
        raise ValueError(f"not a postgresql:// URL: {database_url!r}")
    data_dir = Path(data_dir).resolve()
    if database_url is None:
        key: tuple[str, ...] = ("sqlite", str(data_dir), str(Path(checkpoint_db).resolve()))
    else:
        key = ("postgres", database_url)
    with _LOCK:
        backend = _BACKENDS.get(key)
        if backend is None or backend._closed:
            if database_url is None:
                backend = _open_sqlite(data_dir, Path(checkpoint_db).resolve())
            else:
                backend = _open_postgres(database_url, data_dir)
            _BACKENDS[key] = backend
        return backend


def reset_backends() -> None:
    """Close and forget every cached backend."""
    with _LOCK:
        backends = list(_BACKENDS.values())
        _BACKENDS.clear()
    for backend in backends:
        backend.close()
