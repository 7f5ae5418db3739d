-- Cold store (DuckDB): customer analytics.

-- name: cold_schema
CREATE TABLE user_analytics (
    user_id                 VARCHAR PRIMARY KEY,
    lifetime_value          DOUBLE NOT NULL CHECK (lifetime_value >= 0),
    churn_probability       DOUBLE NOT NULL CHECK (churn_probability BETWEEN 0 AND 1),
    avg_days_between_orders DOUBLE NOT NULL CHECK (avg_days_between_orders >= 0)
);

-- name: cold_lookup_settings
SET threads = 1;
SET enable_progress_bar = false;

-- name: cold_get_analytics
SELECT user_id, lifetime_value, churn_probability, avg_days_between_orders
FROM user_analytics
WHERE user_id = ?;

-- name: cold_insert_analytics
INSERT INTO user_analytics (user_id, lifetime_value, churn_probability, avg_days_between_orders)
VALUES (?, ?, ?, ?);

-- name: cold_count_analytics
SELECT count(*) FROM user_analytics;

-- name: cold_checkpoint
CHECKPOINT;

-- name: cold_all_analytics
SELECT user_id, lifetime_value, churn_probability, avg_days_between_orders
FROM user_analytics
ORDER BY user_id;
