-- Hot store (SQLite): live shopping sessions. The offer ledger has its own file (ledger.sql).

-- name: hot_pragmas
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
PRAGMA busy_timeout = 30000;  -- writers of several processes queue, not fail
PRAGMA foreign_keys = ON;
PRAGMA cache_size = -16384;
PRAGMA mmap_size = 268435456;

-- name: hot_schema
CREATE TABLE IF NOT EXISTS live_sessions (
    user_id    TEXT PRIMARY KEY,
    cart_value REAL NOT NULL CHECK (cart_value >= 0),
    margin     REAL NOT NULL CHECK (margin BETWEEN 0 AND 1),
    inventory  TEXT NOT NULL CHECK (inventory IN ('High', 'Normal', 'Low', 'Critical')),
    updated_at TEXT NOT NULL
);

-- name: hot_get_session
SELECT user_id, cart_value, margin, inventory, updated_at
FROM live_sessions
WHERE user_id = ?;

-- name: hot_put_session
INSERT INTO live_sessions (user_id, cart_value, margin, inventory, updated_at)
VALUES (?, ?, ?, ?, ?)
ON CONFLICT (user_id) DO UPDATE SET
    cart_value = excluded.cart_value,
    margin     = excluded.margin,
    inventory  = excluded.inventory,
    updated_at = excluded.updated_at;

-- name: hot_count_sessions
SELECT count(*) AS n FROM live_sessions;

-- name: hot_bulk_pragmas
PRAGMA journal_mode = OFF;
PRAGMA synchronous = OFF;
PRAGMA cache_size = -262144;

-- name: hot_insert_session
INSERT INTO live_sessions (user_id, cart_value, margin, inventory, updated_at)
VALUES (?, ?, ?, ?, ?);

-- name: sqlite_begin
BEGIN IMMEDIATE;

-- name: sqlite_commit
COMMIT;

-- name: sqlite_rollback
ROLLBACK;

-- name: hot_refill_clear
DELETE FROM main.live_sessions;

-- name: hot_refill_copy
INSERT INTO main.live_sessions (user_id, cart_value, margin, inventory, updated_at)
SELECT user_id, cart_value, margin, inventory, updated_at FROM built.live_sessions;

-- name: sqlite_savepoint
SAVEPOINT sgr_savepoint;

-- name: sqlite_release
RELEASE sgr_savepoint;

-- name: sqlite_rollback_to
ROLLBACK TO sgr_savepoint;
