-- Audit trail (SQLite, in ledger.sqlite): one row per SGR call, append-only. A node that
-- re-runs writes the same (session_id, turn, node, seq) again and the row is kept as it was.

-- name: audit_schema
CREATE TABLE IF NOT EXISTS audit_log (
    id          INTEGER PRIMARY KEY,
    session_id  TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    turn        INTEGER NOT NULL,
    node        TEXT NOT NULL,
    seq         INTEGER NOT NULL DEFAULT 0,
    schema_name TEXT NOT NULL,
    ok          INTEGER NOT NULL CHECK (ok IN (0, 1)),
    error       TEXT NULL,
    record      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    UNIQUE (session_id, turn, node, seq)
);
CREATE INDEX IF NOT EXISTS audit_log_created ON audit_log (created_at);
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

-- name: audit_append
INSERT OR IGNORE INTO audit_log
    (session_id, user_id, turn, node, seq, schema_name, ok, error, record, created_at)
VALUES (:session_id, :user_id, :turn, :node, :seq, :schema_name, :ok, :error, :record,
        :created_at);

-- name: audit_session
SELECT * FROM audit_log WHERE session_id = ? ORDER BY turn, id;

-- name: audit_since
SELECT * FROM audit_log WHERE created_at >= ? ORDER BY id;

-- name: audit_last_id
SELECT COALESCE(MAX(id), 0) AS last_id FROM audit_log WHERE session_id = ?;

-- name: audit_session_after
SELECT * FROM audit_log WHERE session_id = ? AND id > ? ORDER BY turn, id;
