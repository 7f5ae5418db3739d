"""Storage: hot SQLite sessions + offer ledger, cold DuckDB analytics, synthetic data.

Entry points: ``stores.features.get_feature_store``, ``stores.ledger.get_ledger``,
``stores.seed.generate``. All SQL lives in ``stores/sql/*.sql``.
"""
