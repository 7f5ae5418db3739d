-- Cold analytics (Postgres): user_analytics materialised from the DuckDB file (the source of
-- the analytics) by setup-data with COPY, so that every worker on every machine reads the
-- same values.

-- name: analytics_schema
CREATE TABLE IF NOT EXISTS user_analytics (
    user_id                 TEXT COLLATE "C" PRIMARY KEY,
    lifetime_value          DOUBLE PRECISION NOT NULL CHECK (lifetime_value >= 0),
    churn_probability       DOUBLE PRECISION NOT NULL CHECK (churn_probability BETWEEN 0 AND 1),
    avg_days_between_orders DOUBLE PRECISION NOT NULL CHECK (avg_days_between_orders >= 0)
);

-- name: analytics_get
SELECT user_id, lifetime_value, churn_probability, avg_days_between_orders
FROM user_analytics
WHERE user_id = %s;

-- name: analytics_count
SELECT count(*) AS n FROM user_analytics;

-- name: analytics_truncate
TRUNCATE user_analytics;

-- name: analytics_copy
COPY user_analytics (user_id, lifetime_value, churn_probability, avg_days_between_orders)
FROM STDIN (FORMAT csv);
