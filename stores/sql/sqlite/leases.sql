-- Session leases (SQLite, in the checkpoint DB): one turn per session at a time, across
-- threads and processes. A row is taken by one upsert (leases_take) when free, expired or
-- already the taker's; a row whose holder is a dead process of this host is replaced by a
-- compare-and-swap on the row as read (leases_steal). The turn deletes its row when it ends
-- and heartbeats it (leases_renew) while it runs; a holder that died leaves a row that
-- expires (or is taken over on the same host).

-- name: leases_schema
CREATE TABLE IF NOT EXISTS session_leases (
    session_id  TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    host        TEXT NOT NULL,
    pid         INTEGER NOT NULL,
    expires_at  REAL NOT NULL
);

-- name: leases_get
SELECT holder, host, pid, expires_at FROM session_leases WHERE session_id = ?;

-- name: leases_steal
-- Only the row as it was read (same holder, same expiry): two takers cannot both win.
UPDATE session_leases
SET holder = :holder, host = :host, pid = :pid, expires_at = :expires_at
WHERE session_id = :session_id AND holder = :old_holder AND expires_at = :old_expires_at;

-- name: leases_release
DELETE FROM session_leases WHERE session_id = ? AND holder = ?;

-- name: leases_renew
UPDATE session_leases SET expires_at = :expires_at
WHERE session_id = :session_id AND holder = :holder;

-- name: leases_take
-- One statement, one write: takes a free, expired or own lease. 0 rows changed: it is held
-- (by time); the caller then checks whether its holder is a dead process of this host.
INSERT INTO session_leases (session_id, holder, host, pid, expires_at)
VALUES (:session_id, :holder, :host, :pid, :expires_at)
ON CONFLICT (session_id) DO UPDATE SET
    holder = excluded.holder, host = excluded.host, pid = excluded.pid,
    expires_at = excluded.expires_at
WHERE session_leases.holder = excluded.holder OR session_leases.expires_at <= :now;
