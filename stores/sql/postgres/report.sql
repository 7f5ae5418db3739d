-- Analyst report (Postgres): the queries of sqlite/report.sql over the backend's one database
-- (offers, audit_log, live_sessions, user_analytics). They run in one REPEATABLE READ
-- transaction that is rolled back at the end (the temp view and table vanish with it).
-- Booleans are counted with FILTER; money is rounded as numeric; waits are timestamptz
-- differences of the stored ISO texts.

-- name: report_has_table
SELECT count(*) AS n FROM information_schema.tables
WHERE table_schema = current_schema() AND table_name = %s;

-- name: report_has_column
SELECT count(*) AS n FROM information_schema.columns
WHERE table_schema = current_schema() AND table_name = %s AND column_name = %s;

-- name: report_offers_view
CREATE TEMP VIEW report_offers AS
SELECT o.*, o.churn_band AS issued_churn_band, o.inventory AS issued_inventory FROM offers AS o;

-- name: report_customer_table
CREATE TEMP TABLE report_customer (
    user_id           TEXT COLLATE "C" PRIMARY KEY,
    churn_probability DOUBLE PRECISION NULL,
    inventory         TEXT COLLATE "C" NULL
);

-- name: report_customer_fill
-- Only customers with offers lacking an at-issue value need their current values.
INSERT INTO report_customer (user_id, churn_probability, inventory)
SELECT u.user_id, a.churn_probability, h.inventory
FROM (SELECT DISTINCT user_id FROM report_offers
      WHERE created_at >= %(since)s
        AND (issued_churn_band IS NULL OR issued_inventory IS NULL)) AS u
LEFT JOIN user_analytics AS a ON a.user_id = u.user_id
LEFT JOIN live_sessions AS h ON h.user_id = u.user_id;

-- name: report_offer_totals
WITH issued AS (
    SELECT * FROM report_offers
    WHERE created_at >= %(since)s AND status NOT IN ('approval_pending', 'rejected')
)
SELECT count(*)                                                            AS offers_issued,
       count(*) FILTER (WHERE issued_churn_band IS NULL OR issued_inventory IS NULL)
                                                                           AS by_current,
       count(*) FILTER (WHERE status = 'accepted')                         AS accepted,
       count(*) FILTER (WHERE status = 'superseded')                       AS superseded,
       avg(discount_percent)                                               AS avg_offered_percent,
       avg(discount_percent) FILTER (WHERE status = 'accepted')            AS avg_discount_percent,
       avg(amount) FILTER (WHERE status = 'accepted')                      AS avg_discount_amount,
       avg(cap_percent) FILTER (WHERE status = 'accepted')                 AS avg_cap_percent,
       avg(discount_percent / cap_percent)
           FILTER (WHERE status = 'accepted' AND cap_percent > 0)          AS discount_to_cap,
       coalesce(sum(amount) FILTER (WHERE status = 'accepted'), 0)         AS discount_given_total,
       coalesce(sum(round((cart_value * cap_percent / 100)::numeric, 2))
                    FILTER (WHERE status = 'accepted'), 0)                 AS cap_amount_total
FROM issued;

-- name: report_by_churn_band
WITH issued AS (
    SELECT o.*, c.churn_probability AS churn
    FROM report_offers AS o LEFT JOIN report_customer AS c USING (user_id)
    WHERE o.created_at >= %(since)s AND o.status NOT IN ('approval_pending', 'rejected')
), grouped AS (
    SELECT *, issued_churn_band IS NULL AS by_current,
           coalesce(issued_churn_band,
                    CASE WHEN churn IS NULL THEN 'unknown'
                         WHEN churn > %(churn_high)s THEN 'high'
                         WHEN churn >= %(churn_low)s THEN 'mid'
                         ELSE 'low' END) AS grp
    FROM issued
)
SELECT grp,
       count(*) FILTER (WHERE by_current)                              AS by_current,
       count(*)                                                        AS offers_issued,
       count(*) FILTER (WHERE status = 'accepted')                     AS accepted,
       count(*) FILTER (WHERE status = 'superseded')                   AS superseded,
       avg(discount_percent) FILTER (WHERE status = 'accepted')        AS avg_discount_percent,
       avg(cap_percent) FILTER (WHERE status = 'accepted')             AS avg_cap_percent,
       coalesce(sum(amount) FILTER (WHERE status = 'accepted'), 0)     AS discount_given_total
FROM grouped GROUP BY grp
ORDER BY CASE grp WHEN 'high' THEN 0 WHEN 'mid' THEN 1 WHEN 'low' THEN 2 ELSE 3 END;

-- name: report_by_inventory
WITH grouped AS (
    SELECT o.*, o.issued_inventory IS NULL AS by_current,
           coalesce(o.issued_inventory, c.inventory, 'unknown') AS grp
    FROM report_offers AS o LEFT JOIN report_customer AS c USING (user_id)
    WHERE o.created_at >= %(since)s AND o.status NOT IN ('approval_pending', 'rejected')
)
SELECT grp,
       count(*) FILTER (WHERE by_current)                              AS by_current,
       count(*)                                                        AS offers_issued,
       count(*) FILTER (WHERE status = 'accepted')                     AS accepted,
       count(*) FILTER (WHERE status = 'superseded')                   AS superseded,
       avg(discount_percent) FILTER (WHERE status = 'accepted')        AS avg_discount_percent,
       avg(cap_percent) FILTER (WHERE status = 'accepted')             AS avg_cap_percent,
       coalesce(sum(amount) FILTER (WHERE status = 'accepted'), 0)     AS discount_given_total
FROM grouped GROUP BY grp
ORDER BY CASE grp WHEN 'Critical' THEN 0 WHEN 'Low' THEN 1 WHEN 'Normal' THEN 2
                  WHEN 'High' THEN 3 ELSE 4 END;

-- name: report_approvals
SELECT count(*) FILTER (WHERE status = 'approval_pending' AND expires_at > %(now)s)  AS pending,
       count(*) FILTER (WHERE decided_by IS NOT NULL AND status <> 'rejected')      AS approved,
       count(*) FILTER (WHERE status = 'rejected')                                  AS rejected,
       count(*) FILTER (WHERE status = 'approval_pending' AND expires_at <= %(now)s)
                                                                                    AS expired_pending
FROM offers WHERE created_at >= %(since)s;

-- name: report_pending_median_age
WITH waits AS (
    SELECT extract(epoch FROM (%(now)s::text::timestamptz - created_at::timestamptz)) AS wait
    FROM offers
    WHERE status = 'approval_pending' AND expires_at > %(now)s AND created_at >= %(since)s
), ranked AS (
    SELECT wait, row_number() OVER (ORDER BY wait) AS rn, count(*) OVER () AS n FROM waits
)
SELECT avg(wait) AS median FROM ranked WHERE rn IN ((n + 1) / 2, (n + 2) / 2);

-- name: report_decided_median_wait
WITH waits AS (
    SELECT extract(epoch FROM (decided_at::timestamptz - created_at::timestamptz)) AS wait
    FROM offers
    WHERE decided_by IS NOT NULL AND decided_at IS NOT NULL AND created_at >= %(since)s
), ranked AS (
    SELECT wait, row_number() OVER (ORDER BY wait) AS rn, count(*) OVER () AS n FROM waits
)
SELECT avg(wait) AS median FROM ranked WHERE rn IN ((n + 1) / 2, (n + 2) / 2);

-- name: report_fallback_totals
SELECT count(*)                                                            AS calls,
       count(*) FILTER (WHERE ok = 0)                                      AS failed_calls,
       count(DISTINCT session_id || '#' || turn)                           AS turns,
       count(DISTINCT CASE WHEN ok = 0 THEN session_id || '#' || turn END) AS fallback_turns
FROM audit_log WHERE created_at >= %(since)s;

-- name: report_fallback_causes
SELECT node, coalesce(substr(error, 1, 160), 'unknown') AS cause, count(*) AS count
FROM audit_log
WHERE ok = 0 AND created_at >= %(since)s
GROUP BY node, cause
ORDER BY count DESC, node, cause;
