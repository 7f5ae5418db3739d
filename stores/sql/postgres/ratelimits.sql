-- Rate limits (Postgres, beside the session leases): see sqlite/ratelimits.sql.

-- name: ratelimits_schema
CREATE TABLE IF NOT EXISTS rate_limits (
    key          TEXT COLLATE "C" PRIMARY KEY,
    window_start DOUBLE PRECISION NOT NULL,
    window_end   DOUBLE PRECISION NOT NULL,
    hits         BIGINT NOT NULL
);

-- name: ratelimits_hit
INSERT INTO rate_limits (key, window_start, window_end, hits)
VALUES (%(key)s, %(window_start)s, %(window_end)s, 1)
ON CONFLICT (key) DO UPDATE SET
    hits = CASE WHEN excluded.window_start > rate_limits.window_start THEN 1
                ELSE rate_limits.hits + 1 END,
    window_start = GREATEST(rate_limits.window_start, excluded.window_start),
    window_end = GREATEST(rate_limits.window_end, excluded.window_end)
RETURNING hits;

-- name: ratelimits_prune
DELETE FROM rate_limits WHERE window_end <= %s;
