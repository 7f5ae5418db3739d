-- Analyst report (discount-manager report): read-only queries over ledger.sqlite (tables
-- offers and audit_log), plus the customer attributes it groups by (hot and cold stores).
-- :since is a stored-format UTC text ('' = everything); :now the report's time.
-- "Issued" = every offer row except approval_pending and rejected (those never reached the
-- customer). Offers are grouped by the churn band and inventory they were priced under
-- (offers.churn_band / offers.inventory, via the temp view report_offers as issued_*); rows
-- written before those columns existed (NULL) fall back to the customer's *current* values
-- (temp table report_customer, filled from the hot and cold stores when the report runs) and
-- are counted in grouped_by_current_values.

-- name: report_has_table
SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ?;

-- name: report_has_column
SELECT count(*) AS n FROM pragma_table_info(?) WHERE name = ?;

-- name: report_offers_view
CREATE TEMP VIEW IF NOT EXISTS report_offers AS
SELECT *, churn_band AS issued_churn_band, inventory AS issued_inventory FROM main.offers;

-- name: report_offers_view_legacy
-- A ledger file never opened since the at-issue columns were added (the report only reads).
CREATE TEMP VIEW IF NOT EXISTS report_offers AS
SELECT *, NULL AS issued_churn_band, NULL AS issued_inventory FROM main.offers;

-- name: report_offer_users
-- Only customers with offers lacking an at-issue value need their current values.
SELECT DISTINCT user_id FROM temp.report_offers
WHERE created_at >= :since AND (issued_churn_band IS NULL OR issued_inventory IS NULL)
ORDER BY user_id;

-- name: report_hot_inventory
SELECT user_id, inventory FROM live_sessions
WHERE user_id IN (SELECT value FROM json_each(?));

-- name: report_customer_table
CREATE TEMP TABLE IF NOT EXISTS report_customer (
    user_id           TEXT PRIMARY KEY,
    churn_probability REAL NULL,
    inventory         TEXT NULL
);

-- name: report_customer_insert
INSERT OR REPLACE INTO temp.report_customer (user_id, churn_probability, inventory)
VALUES (:user_id, :churn_probability, :inventory);

-- name: report_offer_totals
WITH issued AS (
    SELECT * FROM temp.report_offers
    WHERE created_at >= :since AND status NOT IN ('approval_pending', 'rejected')
)
SELECT count(*)                                                          AS offers_issued,
       coalesce(sum(issued_churn_band IS NULL OR issued_inventory IS NULL), 0)
                                                                         AS by_current,
       coalesce(sum(status = 'accepted'), 0)                             AS accepted,
       coalesce(sum(status = 'superseded'), 0)                           AS superseded,
       avg(discount_percent)                                             AS avg_offered_percent,
       avg(CASE WHEN status = 'accepted' THEN discount_percent END)      AS avg_discount_percent,
       avg(CASE WHEN status = 'accepted' THEN amount END)                AS avg_discount_amount,
       avg(CASE WHEN status = 'accepted' THEN cap_percent END)           AS avg_cap_percent,
       avg(CASE WHEN status = 'accepted' AND cap_percent > 0
                THEN discount_percent / cap_percent END)                 AS discount_to_cap,
       coalesce(sum(CASE WHEN status = 'accepted' THEN amount END), 0)   AS discount_given_total,
       coalesce(sum(CASE WHEN status = 'accepted'
                         THEN round(cart_value * cap_percent / 100, 2) END), 0) AS cap_amount_total
FROM issued;

-- name: report_by_churn_band
WITH issued AS (
    SELECT o.*, c.churn_probability AS churn
    FROM temp.report_offers AS o LEFT JOIN temp.report_customer AS c USING (user_id)
    WHERE o.created_at >= :since AND o.status NOT IN ('approval_pending', 'rejected')
), grouped AS (
    SELECT *, issued_churn_band IS NULL AS by_current,
           coalesce(issued_churn_band,
                    CASE WHEN churn IS NULL THEN 'unknown'
                         WHEN churn > :churn_high THEN 'high'
                         WHEN churn >= :churn_low THEN 'mid'
                         ELSE 'low' END) AS grp
    FROM issued
)
SELECT grp,
       sum(by_current)                                                 AS by_current,
       count(*)                                                        AS offers_issued,
       sum(status = 'accepted')                                        AS accepted,
       sum(status = 'superseded')                                      AS superseded,
       avg(CASE WHEN status = 'accepted' THEN discount_percent END)    AS avg_discount_percent,
       avg(CASE WHEN status = 'accepted' THEN cap_percent END)         AS avg_cap_percent,
       coalesce(sum(CASE WHEN status = 'accepted' THEN amount END), 0) AS discount_given_total
FROM grouped GROUP BY grp
ORDER BY CASE grp WHEN 'high' THEN 0 WHEN 'mid' THEN 1 WHEN 'low' THEN 2 ELSE 3 END;

-- name: report_by_inventory
WITH grouped AS (
    SELECT o.*, o.issued_inventory IS NULL AS by_current,
           coalesce(o.issued_inventory, c.inventory, 'unknown') AS grp
    FROM temp.report_offers AS o LEFT JOIN temp.report_customer AS c USING (user_id)
    WHERE o.created_at >= :since AND o.status NOT IN ('approval_pending', 'rejected')
)
SELECT grp,
       sum(by_current)                                                 AS by_current,
       count(*)                                                        AS offers_issued,
       sum(status = 'accepted')                                        AS accepted,
       sum(status = 'superseded')                                      AS superseded,
       avg(CASE WHEN status = 'accepted' THEN discount_percent END)    AS avg_discount_percent,
       avg(CASE WHEN status = 'accepted' THEN cap_percent END)         AS avg_cap_percent,
       coalesce(sum(CASE WHEN status = 'accepted' THEN amount END), 0) AS discount_given_total
FROM grouped GROUP BY grp
ORDER BY CASE grp WHEN 'Critical' THEN 0 WHEN 'Low' THEN 1 WHEN 'Normal' THEN 2
                  WHEN 'High' THEN 3 ELSE 4 END;

-- name: report_approvals
-- approved = a manager's decision that was not a rejection (decided_by is set only by it);
-- a pending request past its expiry counts as expired (the ledger expires lazily).
SELECT coalesce(sum(status = 'approval_pending' AND expires_at > :now), 0)  AS pending,
       coalesce(sum(decided_by IS NOT NULL AND status <> 'rejected'), 0)    AS approved,
       coalesce(sum(status = 'rejected'), 0)                                AS rejected,
       coalesce(sum(status = 'approval_pending' AND expires_at <= :now), 0) AS expired_pending
FROM offers WHERE created_at >= :since;

-- name: report_pending_median_age
WITH waits AS (
    SELECT (julianday(:now) - julianday(created_at)) * 86400.0 AS wait
    FROM offers
    WHERE status = 'approval_pending' AND expires_at > :now AND created_at >= :since
), ranked AS (
    SELECT wait, row_number() OVER (ORDER BY wait) AS rn, count(*) OVER () AS n FROM waits
)
SELECT avg(wait) AS median FROM ranked WHERE rn IN ((n + 1) / 2, (n + 2) / 2);

-- name: report_decided_median_wait
-- Needs offers.decided_at (ledgers older than that column lack it): run only when it exists.
WITH waits AS (
    SELECT (julianday(decided_at) - julianday(created_at)) * 86400.0 AS wait
    FROM offers
    WHERE decided_by IS NOT NULL AND decided_at IS NOT NULL AND created_at >= :since
), ranked AS (
    SELECT wait, row_number() OVER (ORDER BY wait) AS rn, count(*) OVER () AS n FROM waits
)
SELECT avg(wait) AS median FROM ranked WHERE rn IN ((n + 1) / 2, (n + 2) / 2);

-- name: report_fallback_totals
-- One audit row per SGR call; ok = 0 is a call without a valid reply after the repair,
-- i.e. a turn that fell back.
SELECT count(*)                                                            AS calls,
       coalesce(sum(ok = 0), 0)                                            AS failed_calls,
       count(DISTINCT session_id || '#' || turn)                           AS turns,
       count(DISTINCT CASE WHEN ok = 0 THEN session_id || '#' || turn END) AS fallback_turns
FROM audit_log WHERE created_at >= :since;

-- name: report_fallback_causes
SELECT node, coalesce(substr(error, 1, 160), 'unknown') AS cause, count(*) AS count
FROM audit_log
WHERE ok = 0 AND created_at >= :since
GROUP BY node, cause
ORDER BY count DESC, node, cause;
