-- Hot store (Postgres): live shopping sessions, filled by setup-data with COPY.

-- name: hot_schema
CREATE TABLE IF NOT EXISTS live_sessions (
    user_id    TEXT COLLATE "C" PRIMARY KEY,
    cart_value DOUBLE PRECISION NOT NULL CHECK (cart_value >= 0),
    margin     DOUBLE PRECISION NOT NULL CHECK (margin BETWEEN 0 AND 1),
    inventory  TEXT COLLATE "C" NOT NULL CHECK (inventory IN ('High', 'Normal', 'Low', 'Critical')),
    updated_at TEXT COLLATE "C" NOT NULL
);

-- name: hot_get_session
SELECT user_id, cart_value, margin, inventory, updated_at
FROM live_sessions
WHERE user_id = %s;

-- name: hot_put_session
INSERT INTO live_sessions (user_id, cart_value, margin, inventory, updated_at)
VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (user_id) DO UPDATE SET
    cart_value = excluded.cart_value,
    margin     = excluded.margin,
    inventory  = excluded.inventory,
    updated_at = excluded.updated_at;

-- name: hot_count_sessions
SELECT count(*) AS n FROM live_sessions;

-- name: hot_truncate
-- setup-data: the new rows replace the old ones in one transaction (readers wait for it).
TRUNCATE live_sessions;

-- name: hot_copy
COPY live_sessions (user_id, cart_value, margin, inventory, updated_at) FROM STDIN (FORMAT csv);
