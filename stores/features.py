"""Feature store: one customer's hot session joined with their cold analytics.

SQLite backend: ``hot.sqlite`` + ``cold.duckdb`` (``open``); Postgres backend: the
``live_sessions`` and ``user_analytics`` tables of the database (``on_database``).
"""

from __future__ import annotations

import logging
from pathlib import Path

from stores._cache import StoreCache
from stores.cold import AnalyticsTable, ColdStore
from stores.db import Database
from stores.hot import HotStore
from stores.models import CustomerFeatures, UnknownUser

log = logging.getLogger(__name__)


class FeatureStore:
    """Looks customers up in both stores; thread-safe (each store guards its connection)."""

    def __init__(self, hot: HotStore, cold: ColdStore | AnalyticsTable) -> None:
        self.hot = hot
        self.cold = cold

    @classmethod
    def on_database(cls, db: Database) -> FeatureStore:
        """Both stores as tables of ``db`` (Postgres: filled by ``setup-data``); ``close``
        leaves ``db`` open."""
        return cls(HotStore(db), AnalyticsTable(db))

    @classmethod
    def open(cls, hot_db: Path, cold_db: Path) -> FeatureStore:
        """Open both stores (``StoreNotFoundError`` if a file is missing)."""
        hot = HotStore(hot_db)
        try:
            cold = ColdStore(cold_db)
        except BaseException:
            hot.close()
            raise
        return cls(hot, cold)

    def lookup(self, user_id: str) -> CustomerFeatures | UnknownUser:
        """The customer's features, or ``UnknownUser`` saying which store lacks them."""
        if not user_id or not user_id.strip():
            return UnknownUser(user_id=user_id, reason="empty user id")
        session = self.hot.get_session(user_id)
        analytics = self.cold.get_analytics(user_id)
        if session is None or analytics is None:
            if session is None and analytics is None:
                reason = "unknown customer: not in the hot store nor the cold store"
            elif session is None:
                reason = "no live session (cart) in the hot store"
            else:
                reason = "no analytics in the cold store"
            log.info("lookup %r: %s", user_id, reason)
            return UnknownUser(user_id=user_id, reason=reason)
        return CustomerFeatures(
            user_id=user_id,
            cart_value=session.cart_value,
            margin=session.margin,
            inventory=session.inventory,
            lifetime_value=analytics.lifetime_value,
            churn_probability=analytics.churn_probability,
            avg_days_between_orders=analytics.avg_days_between_orders,
            updated_at=session.updated_at,
        )

    def close(self) -> None:
        """Close both stores."""
        self.hot.close()
        self.cold.close()


_CACHE: StoreCache[FeatureStore] = StoreCache(FeatureStore.open)


def get_feature_store(hot_db: Path, cold_db: Path) -> FeatureStore:
    """The process-wide feature store on these two files (opened once, reused)."""
    return _CACHE.get(hot_db, cold_db)


def reset_feature_stores(data_dir: Path | None = None) -> None:
    """Close cached feature stores (of ``data_dir``, or all)."""
    _CACHE.reset(data_dir)
