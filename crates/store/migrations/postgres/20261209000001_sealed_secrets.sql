-- Secrets at rest (postgres dialect). Keep in step with ../sqlite/.
-- Webhook signing keys (institutions.webhook_secret) and drop/panel passwords are stored sealed
-- (XChaCha20-Poly1305, 'sealed:v1:...') under the deployment's seal key, which is never in the
-- database. A monitor source's password leaves its URL for the sealed credential column.
-- deployment_keys holds a public fingerprint of each deployment key (seal, hmac): a process
-- that brings a different key is refused instead of writing hashes or seals nobody can match.

CREATE TABLE deployment_keys (
    purpose     TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

ALTER TABLE monitor_sources ADD COLUMN credential TEXT;
