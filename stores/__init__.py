"""Storage: offer ledger, audit trail, hot sessions, cold analytics, leases, rate limits.

Two backends behind one interface (``stores.db.Database``): SQLite files (the zero-setup
default: ``ledger.sqlite``, ``hot.sqlite``, ``cold.duckdb``, the checkpoint DB) or one
PostgreSQL database shared by every worker. Entry points: ``stores.backend.open_backend``
(either backend), and the file-based ``stores.features.get_feature_store``,
``stores.ledger.get_ledger``, ``stores.audit.get_audit_log``; ``stores.seed.generate`` writes
the data. All SQL lives in ``stores/sql/<engine>/*.sql``.
"""
