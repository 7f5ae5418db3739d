-- Offer ledger (Postgres). Times are ISO-8601 UTC strings of one fixed format (as on SQLite),
-- so text comparison is time comparison and both backends parse rows the same way. ``seq``
-- (an identity column) plays SQLite's rowid: the insertion order ties are broken by. Every
-- statement names its columns (the Offer model has no ``seq``).

-- name: ledger_schema
CREATE TABLE IF NOT EXISTS offers (
    code             TEXT COLLATE "C" PRIMARY KEY,
    seq              BIGINT GENERATED ALWAYS AS IDENTITY,
    user_id          TEXT COLLATE "C" NOT NULL,
    session_id       TEXT COLLATE "C" NOT NULL,
    turn             INTEGER NOT NULL CHECK (turn >= 0),
    slot             TEXT COLLATE "C" NOT NULL DEFAULT 'main',
    discount_percent DOUBLE PRECISION NOT NULL CHECK (discount_percent BETWEEN 0 AND 100),
    cap_percent      DOUBLE PRECISION NOT NULL CHECK (cap_percent >= 0),
    cart_value       DOUBLE PRECISION NOT NULL CHECK (cart_value >= 0),
    amount           DOUBLE PRECISION NOT NULL CHECK (amount >= 0),
    status           TEXT COLLATE "C" NOT NULL CHECK (status IN
        ('proposed', 'approval_pending', 'accepted', 'rejected', 'expired', 'superseded')),
    created_at       TEXT COLLATE "C" NOT NULL,
    expires_at       TEXT COLLATE "C" NOT NULL,
    decided_by       TEXT COLLATE "C" NULL,
    superseded_by    TEXT COLLATE "C" NULL,
    decided_at       TEXT COLLATE "C" NULL,
    churn_band       TEXT COLLATE "C" NULL,
    inventory        TEXT COLLATE "C" NULL,
    CONSTRAINT offers_session_key UNIQUE (session_id, turn, slot)
);
CREATE INDEX IF NOT EXISTS offers_user_status ON offers (user_id, status);
CREATE INDEX IF NOT EXISTS offers_status_expiry ON offers (status, expires_at);

-- name: ledger_get
SELECT code, user_id, session_id, turn, slot, discount_percent, cap_percent, cart_value,
       amount, status, created_at, expires_at, decided_by, superseded_by, decided_at,
       churn_band, inventory
FROM offers WHERE code = %s;

-- name: ledger_owner
SELECT user_id FROM offers WHERE code = %s;

-- name: ledger_by_session_turn
SELECT code, user_id, session_id, turn, slot, discount_percent, cap_percent, cart_value,
       amount, status, created_at, expires_at, decided_by, superseded_by, decided_at,
       churn_band, inventory
FROM offers WHERE session_id = %s AND turn = %s AND slot = %s;

-- name: ledger_insert
INSERT INTO offers (code, user_id, session_id, turn, slot, discount_percent, cap_percent,
                    cart_value, amount, status, created_at, expires_at, decided_by,
                    churn_band, inventory)
VALUES (%(code)s, %(user_id)s, %(session_id)s, %(turn)s, %(slot)s, %(discount_percent)s,
        %(cap_percent)s, %(cart_value)s, %(amount)s, %(status)s, %(created_at)s,
        %(expires_at)s, NULL, %(churn_band)s, %(inventory)s);

-- name: ledger_supersede_proposed
UPDATE offers
SET status = 'superseded', superseded_by = %(code)s
WHERE user_id = %(user_id)s AND code <> %(code)s AND status = 'proposed';

-- name: ledger_supersede_live
UPDATE offers
SET status = 'superseded', superseded_by = %(code)s
WHERE user_id = %(user_id)s AND code <> %(code)s AND status IN ('proposed', 'approval_pending');

-- name: ledger_redeemable_user
SELECT code, user_id, session_id, turn, slot, discount_percent, cap_percent, cart_value,
       amount, status, created_at, expires_at, decided_by, superseded_by, decided_at,
       churn_band, inventory
FROM offers
WHERE user_id = %s AND status IN ('proposed', 'accepted') AND expires_at > %s
ORDER BY discount_percent DESC, created_at DESC, seq DESC;

-- name: ledger_pending_user
SELECT code, user_id, session_id, turn, slot, discount_percent, cap_percent, cart_value,
       amount, status, created_at, expires_at, decided_by, superseded_by, decided_at,
       churn_band, inventory
FROM offers
WHERE user_id = %s AND status = 'approval_pending' AND expires_at > %s
ORDER BY created_at DESC, seq DESC;

-- name: ledger_pending_all
SELECT code, user_id, session_id, turn, slot, discount_percent, cap_percent, cart_value,
       amount, status, created_at, expires_at, decided_by, superseded_by, decided_at,
       churn_band, inventory
FROM offers
WHERE status = 'approval_pending' AND expires_at > %s
ORDER BY created_at DESC, seq DESC;

-- name: ledger_expire_due
-- Read paths: one statement over every customer (retried on a deadlock).
UPDATE offers
SET status = 'expired'
WHERE status IN ('proposed', 'approval_pending') AND expires_at <= %s;

-- name: ledger_expire_due_user
-- Write paths: only the locked customer's rows (no row locks of other customers).
UPDATE offers
SET status = 'expired'
WHERE user_id = %s AND status IN ('proposed', 'approval_pending') AND expires_at <= %s;

-- name: ledger_set_status
UPDATE offers SET status = %s WHERE code = %s;

-- name: ledger_decide
UPDATE offers
SET status = %(status)s, decided_by = %(decided_by)s, decided_at = %(decided_at)s,
    discount_percent = %(discount_percent)s, amount = %(amount)s
WHERE code = %(code)s;

-- name: ledger_standing
SELECT code, user_id, session_id, turn, slot, discount_percent, cap_percent, cart_value,
       amount, status, created_at, expires_at, decided_by, superseded_by, decided_at,
       churn_band, inventory
FROM offers
WHERE user_id = %s AND status IN ('proposed', 'accepted') AND expires_at > %s
ORDER BY created_at DESC, turn DESC, seq DESC
LIMIT 1;

-- name: ledger_pending
SELECT code, user_id, session_id, turn, slot, discount_percent, cap_percent, cart_value,
       amount, status, created_at, expires_at, decided_by, superseded_by, decided_at,
       churn_band, inventory
FROM offers
WHERE session_id = %s AND status = 'approval_pending' AND expires_at > %s
ORDER BY turn DESC, seq DESC
LIMIT 1;

-- name: ledger_list_all
SELECT code, user_id, session_id, turn, slot, discount_percent, cap_percent, cart_value,
       amount, status, created_at, expires_at, decided_by, superseded_by, decided_at,
       churn_band, inventory
FROM offers ORDER BY created_at, session_id, turn, seq;

-- name: ledger_list_user
SELECT code, user_id, session_id, turn, slot, discount_percent, cap_percent, cart_value,
       amount, status, created_at, expires_at, decided_by, superseded_by, decided_at,
       churn_band, inventory
FROM offers WHERE user_id = %s ORDER BY created_at, session_id, turn, seq;

-- name: ledger_standing_best
SELECT code, user_id, session_id, turn, slot, discount_percent, cap_percent, cart_value,
       amount, status, created_at, expires_at, decided_by, superseded_by, decided_at,
       churn_band, inventory
FROM offers
WHERE user_id = %s AND status IN ('proposed', 'accepted') AND expires_at > %s
ORDER BY discount_percent DESC, created_at DESC, seq DESC
LIMIT 1;

-- name: ledger_withdraw
UPDATE offers SET status = 'expired', expires_at = %(now)s
WHERE code = %(code)s AND status = 'approval_pending';

-- name: ledger_insert_order
SELECT code, seq FROM offers;
