-- Synthetic data (DuckDB). Randomness is a pure integer hash of (row index, salt), so the
-- rows depend only on the seed, never on thread scheduling or the DuckDB version.

-- name: seed_macro_mix
CREATE OR REPLACE TEMP MACRO sgr_mix(x) AS (xor(x, x >> 16) * 73244475) % 4294967296;

-- name: seed_macro_unit
CREATE OR REPLACE TEMP MACRO sgr_unit(i, salt) AS
    xor(sgr_mix(sgr_mix((i * 2654435761 + salt) % 4294967296)),
        sgr_mix(sgr_mix((i * 2654435761 + salt) % 4294967296)) >> 16) / 4294967296.0;

-- name: seed_cold_random
INSERT INTO user_analytics (user_id, lifetime_value, churn_probability, avg_days_between_orders)
SELECT
    'user_' || (100 + i),
    round(8000 * sgr_unit(i, $salt_ltv) * sgr_unit(i, $salt_ltv), 2),
    round(sgr_unit(i, $salt_churn), 3),
    round(3 + 117 * sgr_unit(i, $salt_days), 1)
FROM range($start, $stop) AS t(i);

-- name: seed_hot_random
SELECT
    'user_' || (100 + i) AS user_id,
    round(15 + 1985 * sgr_unit(i, $salt_cart) * sgr_unit(i, $salt_cart), 2) AS cart_value,
    round(0.05 + 0.55 * sgr_unit(i, $salt_margin), 3) AS margin,
    CASE
        WHEN sgr_unit(i, $salt_inventory) < 0.20 THEN 'High'
        WHEN sgr_unit(i, $salt_inventory) < 0.80 THEN 'Normal'
        WHEN sgr_unit(i, $salt_inventory) < 0.95 THEN 'Low'
        ELSE 'Critical'
    END AS inventory,
    $updated_at AS updated_at
FROM range($start, $stop) AS t(i);

-- name: seed_settings
SET enable_progress_bar = false;
