-- SQLite copy of user_analytics (stores/cold.py): what lookups read.

-- name: cold_copy_build_pragmas
PRAGMA journal_mode = OFF;
PRAGMA synchronous = OFF;
PRAGMA cache_size = -65536;

-- name: cold_copy_read_pragmas
PRAGMA query_only = ON;
PRAGMA cache_size = -16384;
PRAGMA mmap_size = 268435456;

-- name: cold_copy_schema
CREATE TABLE user_analytics (
    user_id                 TEXT PRIMARY KEY,
    lifetime_value          REAL NOT NULL,
    churn_probability       REAL NOT NULL,
    avg_days_between_orders REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE copy_source (identity TEXT NOT NULL);

-- name: cold_copy_insert
INSERT INTO user_analytics (user_id, lifetime_value, churn_probability, avg_days_between_orders)
VALUES (?, ?, ?, ?);

-- name: cold_copy_set_identity
INSERT INTO copy_source (identity) VALUES (?);

-- name: cold_copy_identity
SELECT identity FROM copy_source LIMIT 1;

-- name: cold_copy_get
SELECT user_id, lifetime_value, churn_probability, avg_days_between_orders
FROM user_analytics
WHERE user_id = ?;

-- name: cold_copy_count
SELECT count(*) FROM user_analytics;

-- The analytics as a table of a store database (stores/cold.py AnalyticsTable). On the SQLite
-- backend lookups read the copy above; these serve a Database holding user_analytics.

-- name: analytics_schema
CREATE TABLE IF NOT EXISTS user_analytics (
    user_id                 TEXT PRIMARY KEY,
    lifetime_value          REAL NOT NULL,
    churn_probability       REAL NOT NULL,
    avg_days_between_orders REAL NOT NULL
);

-- name: analytics_get
SELECT user_id, lifetime_value, churn_probability, avg_days_between_orders
FROM user_analytics
WHERE user_id = ?;

-- name: analytics_count
SELECT count(*) AS n FROM user_analytics;
