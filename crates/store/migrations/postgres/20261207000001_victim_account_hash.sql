-- Indexed account hashes for the privacy-preserving lookup (postgres dialect). Keep in step with ../sqlite/.
-- `account_hash` = hex SHA-256 of `account_norm` (see `account_hash` in src/api.rs). A lookup by
-- 5-hex-digit prefix is a range scan on it; the store fills the column for rows that predate it
-- when it opens (the backends' SHA-256 functions differ, so it is computed in Rust).
-- COLLATE "C": the range [prefix, prefix || 'g') must compare bytes, whatever the database locale.

ALTER TABLE victims ADD COLUMN account_hash TEXT COLLATE "C";
CREATE INDEX victims_institution_account_hash ON victims (institution_id, account_hash);
CREATE INDEX victims_account_hash ON victims (account_hash);
