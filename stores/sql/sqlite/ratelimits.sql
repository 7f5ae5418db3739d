-- Rate limits (SQLite, beside the session leases): one fixed-window counter per key, shared
-- by every process on the file. A hit is one upsert: a call in a newer window restarts the
-- count, one in the current (or, from a lagging clock, an older) window adds to it.

-- name: ratelimits_schema
CREATE TABLE IF NOT EXISTS rate_limits (
    key          TEXT PRIMARY KEY,
    window_start REAL NOT NULL,
    window_end   REAL NOT NULL,
    hits         INTEGER NOT NULL
);

-- name: ratelimits_hit
INSERT INTO rate_limits (key, window_start, window_end, hits)
VALUES (:key, :window_start, :window_end, 1)
ON CONFLICT (key) DO UPDATE SET
    hits = CASE WHEN excluded.window_start > rate_limits.window_start THEN 1
                ELSE rate_limits.hits + 1 END,
    window_start = max(rate_limits.window_start, excluded.window_start),
    window_end = max(rate_limits.window_end, excluded.window_end)
RETURNING hits;

-- name: ratelimits_prune
DELETE FROM rate_limits WHERE window_end <= ?;
