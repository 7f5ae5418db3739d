-- Offer ledger (SQLite, its own file: ledger.sqlite). Times are ISO-8601 UTC strings of one
-- fixed format, so text comparison is time comparison.

-- name: ledger_schema
CREATE TABLE IF NOT EXISTS offers (
    code             TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL,
    session_id       TEXT NOT NULL,
    turn             INTEGER NOT NULL CHECK (turn >= 0),
    slot             TEXT NOT NULL DEFAULT 'main',
    discount_percent REAL NOT NULL CHECK (discount_percent BETWEEN 0 AND 100),
    cap_percent      REAL NOT NULL CHECK (cap_percent >= 0),
    cart_value       REAL NOT NULL CHECK (cart_value >= 0),
    amount           REAL NOT NULL CHECK (amount >= 0),
    status           TEXT NOT NULL CHECK (status IN
        ('proposed', 'approval_pending', 'accepted', 'rejected', 'expired', 'superseded')),
    created_at       TEXT NOT NULL,
    expires_at       TEXT NOT NULL,
    decided_by       TEXT NULL,
    superseded_by    TEXT NULL,
    decided_at       TEXT NULL,
    churn_band       TEXT NULL,  -- at issue: the policy's band ('high', 'mid', 'low')
    inventory        TEXT NULL,  -- at issue: the hot store's stock status ('Low', ...)
    UNIQUE (session_id, turn, slot)
);
CREATE INDEX IF NOT EXISTS offers_user_status ON offers (user_id, status);
CREATE INDEX IF NOT EXISTS offers_status_expiry ON offers (status, expires_at);

-- name: ledger_get
SELECT * FROM offers WHERE code = ?;

-- name: ledger_owner
SELECT user_id FROM offers WHERE code = ?;

-- name: ledger_by_session_turn
SELECT * FROM offers WHERE session_id = ? AND turn = ? AND slot = ?;

-- name: ledger_insert
INSERT INTO offers (code, user_id, session_id, turn, slot, discount_percent, cap_percent,
                    cart_value, amount, status, created_at, expires_at, decided_by,
                    churn_band, inventory)
VALUES (:code, :user_id, :session_id, :turn, :slot, :discount_percent, :cap_percent,
        :cart_value, :amount, :status, :created_at, :expires_at, NULL,
        :churn_band, :inventory);

-- name: ledger_columns
PRAGMA table_info(offers);

-- name: ledger_add_superseded_by
ALTER TABLE offers ADD COLUMN superseded_by TEXT NULL;

-- name: ledger_add_decided_at
ALTER TABLE offers ADD COLUMN decided_at TEXT NULL;

-- name: ledger_add_churn_band
-- Rows written before this column existed keep NULL (the report falls back to current values).
ALTER TABLE offers ADD COLUMN churn_band TEXT NULL;

-- name: ledger_add_inventory
ALTER TABLE offers ADD COLUMN inventory TEXT NULL;

-- name: ledger_supersede_proposed
-- A new redeemable code replaces the customer's other proposed (not yet accepted) codes.
UPDATE offers
SET status = 'superseded', superseded_by = :code
WHERE user_id = :user_id AND code <> :code AND status = 'proposed';

-- name: ledger_supersede_live
-- Acceptance closes every other live offer of the customer, pending proposals included.
UPDATE offers
SET status = 'superseded', superseded_by = :code
WHERE user_id = :user_id AND code <> :code AND status IN ('proposed', 'approval_pending');

-- name: ledger_redeemable_user
SELECT * FROM offers
WHERE user_id = ? AND status IN ('proposed', 'accepted') AND expires_at > ?
ORDER BY discount_percent DESC, created_at DESC, rowid DESC;

-- name: ledger_pending_user
SELECT * FROM offers
WHERE user_id = ? AND status = 'approval_pending' AND expires_at > ?
ORDER BY created_at DESC, rowid DESC;

-- name: ledger_pending_all
SELECT * FROM offers
WHERE status = 'approval_pending' AND expires_at > ?
ORDER BY created_at DESC, rowid DESC;

-- name: ledger_expire_due
-- Read paths: one statement over every customer.
UPDATE offers
SET status = 'expired'
WHERE status IN ('proposed', 'approval_pending') AND expires_at <= ?;

-- name: ledger_expire_due_user
-- Write paths: only the customer the transaction is about (as on Postgres, where touching
-- other customers' rows would take their row locks).
UPDATE offers
SET status = 'expired'
WHERE user_id = ? AND status IN ('proposed', 'approval_pending') AND expires_at <= ?;

-- name: ledger_set_status
UPDATE offers SET status = ? WHERE code = ?;

-- name: ledger_decide
UPDATE offers
SET status = :status, decided_by = :decided_by, decided_at = :decided_at,
    discount_percent = :discount_percent, amount = :amount
WHERE code = :code;

-- name: ledger_standing
SELECT * FROM offers
WHERE user_id = ? AND status IN ('proposed', 'accepted') AND expires_at > ?
ORDER BY created_at DESC, turn DESC, rowid DESC
LIMIT 1;

-- name: ledger_pending
SELECT * FROM offers
WHERE session_id = ? AND status = 'approval_pending' AND expires_at > ?
ORDER BY turn DESC, rowid DESC
LIMIT 1;

-- name: ledger_list_all
SELECT * FROM offers ORDER BY created_at, session_id, turn, rowid;

-- name: ledger_list_user
SELECT * FROM offers WHERE user_id = ? ORDER BY created_at, session_id, turn, rowid;

-- name: ledger_standing_best
SELECT * FROM offers
WHERE user_id = ? AND status IN ('proposed', 'accepted') AND expires_at > ?
ORDER BY discount_percent DESC, created_at DESC, rowid DESC
LIMIT 1;

-- name: ledger_withdraw
-- A pending proposal nobody can decide any more lapses now.
UPDATE offers SET status = 'expired', expires_at = :now
WHERE code = :code AND status = 'approval_pending';

-- name: ledger_insert_order
SELECT code, rowid AS seq FROM offers;
