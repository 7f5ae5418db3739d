-- Audit trail (Postgres, beside the offers): one row per SGR call, append-only (row triggers
-- refuse UPDATE and DELETE, a statement trigger TRUNCATE). A node that re-runs writes the
-- same (session_id, turn, node, seq) again and the row is kept as it was.

-- name: audit_schema
CREATE TABLE IF NOT EXISTS audit_log (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id  TEXT COLLATE "C" NOT NULL,
    user_id     TEXT COLLATE "C" NOT NULL,
    turn        INTEGER NOT NULL,
    node        TEXT COLLATE "C" NOT NULL,
    seq         INTEGER NOT NULL DEFAULT 0,
    schema_name TEXT COLLATE "C" NOT NULL,
    ok          INTEGER NOT NULL CHECK (ok IN (0, 1)),
    error       TEXT COLLATE "C" NULL,
    record      TEXT COLLATE "C" NOT NULL,
    created_at  TEXT COLLATE "C" NOT NULL,
    CONSTRAINT audit_log_call_key UNIQUE (session_id, turn, node, seq)
);
CREATE INDEX IF NOT EXISTS audit_log_created ON audit_log (created_at);
CREATE OR REPLACE FUNCTION audit_log_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger
                   WHERE tgrelid = 'audit_log'::regclass AND tgname = 'audit_log_no_update') THEN
        CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
            FOR EACH ROW EXECUTE FUNCTION audit_log_refuse();
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger
                   WHERE tgrelid = 'audit_log'::regclass AND tgname = 'audit_log_no_delete') THEN
        CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
            FOR EACH ROW EXECUTE FUNCTION audit_log_refuse();
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger
                   WHERE tgrelid = 'audit_log'::regclass AND tgname = 'audit_log_no_truncate') THEN
        CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
            FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse();
    END IF;
END;
$$;

-- name: audit_append
INSERT INTO audit_log
    (session_id, user_id, turn, node, seq, schema_name, ok, error, record, created_at)
VALUES (%(session_id)s, %(user_id)s, %(turn)s, %(node)s, %(seq)s, %(schema_name)s, %(ok)s,
        %(error)s, %(record)s, %(created_at)s)
ON CONFLICT (session_id, turn, node, seq) DO NOTHING;

-- name: audit_session
SELECT * FROM audit_log WHERE session_id = %s ORDER BY turn, id;

-- name: audit_since
SELECT * FROM audit_log WHERE created_at >= %s ORDER BY id;

-- name: audit_last_id
SELECT COALESCE(MAX(id), 0) AS last_id FROM audit_log WHERE session_id = %s;

-- name: audit_session_after
SELECT * FROM audit_log WHERE session_id = %s AND id > %s ORDER BY turn, id;
