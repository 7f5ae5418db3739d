-- Session leases (Postgres): the same lease rows as on SQLite (see sqlite/leases.sql), shared
-- by every worker on every machine. Expiry times are Unix seconds.

-- name: leases_schema
CREATE TABLE IF NOT EXISTS session_leases (
    session_id  TEXT COLLATE "C" PRIMARY KEY,
    holder      TEXT COLLATE "C" NOT NULL,
    host        TEXT COLLATE "C" NOT NULL,
    pid         INTEGER NOT NULL,
    expires_at  DOUBLE PRECISION NOT NULL
);

-- name: leases_get
SELECT holder, host, pid, expires_at FROM session_leases WHERE session_id = %s;

-- name: leases_steal
UPDATE session_leases
SET holder = %(holder)s, host = %(host)s, pid = %(pid)s, expires_at = %(expires_at)s
WHERE session_id = %(session_id)s AND holder = %(old_holder)s
  AND expires_at = %(old_expires_at)s;

-- name: leases_release
DELETE FROM session_leases WHERE session_id = %s AND holder = %s;

-- name: leases_renew
UPDATE session_leases SET expires_at = %(expires_at)s
WHERE session_id = %(session_id)s AND holder = %(holder)s;

-- name: leases_take
INSERT INTO session_leases (session_id, holder, host, pid, expires_at)
VALUES (%(session_id)s, %(holder)s, %(host)s, %(pid)s, %(expires_at)s)
ON CONFLICT (session_id) DO UPDATE SET
    holder = excluded.holder, host = excluded.host, pid = excluded.pid,
    expires_at = excluded.expires_at
WHERE session_leases.holder = excluded.holder OR session_leases.expires_at <= %(now)s;
