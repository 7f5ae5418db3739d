-- Analyst report (DuckDB): the current churn of customers whose offers lack it at issue.

-- name: report_cold_churn
SELECT user_id, churn_probability FROM user_analytics WHERE list_contains(?, user_id);
