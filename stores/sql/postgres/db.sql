-- Database plumbing (Postgres).

-- name: pg_advisory_lock
-- First statement of a keyed transaction: writers of the same key queue here, in the
-- database (any process, any machine); the lock ends with the transaction.
SELECT pg_advisory_xact_lock(hashtextextended(%s, 0));

-- name: pg_repeatable_read
-- First statement of a snapshot (the report): one view of the data for all its queries.
SET TRANSACTION ISOLATION LEVEL REPEATABLE READ;
