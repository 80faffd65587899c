-- dropwatch initial schema (SQLite dialect). Keep in step with ../postgres/.
-- Instants are microseconds since the Unix epoch (BIGINT). Secrets never appear in any column.

CREATE TABLE institutions (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    country        TEXT NOT NULL,
    domains        TEXT NOT NULL,          -- JSON array
    url_masks      TEXT NOT NULL,          -- JSON array
    account_fields TEXT NOT NULL,          -- JSON array
    webhook_url    TEXT,
    webhook_secret TEXT,
    created_at     BIGINT NOT NULL
);

CREATE TABLE samples (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    sha256     TEXT NOT NULL UNIQUE,
    kind       TEXT NOT NULL,               -- pe | config_bin | webinjects | ...
    family     TEXT,
    name       TEXT,
    first_seen BIGINT NOT NULL
);

CREATE TABLE configs (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    sample_id      BIGINT REFERENCES samples(id),
    canonical_hash TEXT NOT NULL UNIQUE,
    family         TEXT NOT NULL,
    version        TEXT,
    botnet         TEXT,
    body           TEXT NOT NULL,           -- JSON
    created_at     BIGINT NOT NULL
);

CREATE TABLE injects (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    sample_id      BIGINT NOT NULL REFERENCES samples(id),
    idx            BIGINT NOT NULL,
    url_mask       TEXT NOT NULL,
    flags          TEXT NOT NULL,
    institution_id TEXT REFERENCES institutions(id),
    blocks         TEXT NOT NULL,           -- JSON; attacker-written, shown escaped only
    UNIQUE (sample_id, idx)
);

CREATE TABLE servers (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    url        TEXT NOT NULL,
    host       TEXT NOT NULL,
    role       TEXT NOT NULL,
    first_seen BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL,
    UNIQUE (url, role)
);

CREATE TABLE server_sources (
    server_id BIGINT NOT NULL REFERENCES servers(id),
    source    TEXT NOT NULL,                -- provenance: sample:<sha256>, config:<hash>, manual, ...
    seen_at   BIGINT NOT NULL,
    PRIMARY KEY (server_id, source)
);

CREATE TABLE monitor_sources (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    server_id      BIGINT REFERENCES servers(id),
    kind           TEXT NOT NULL,           -- http_jsonl | file_jsonl
    url            TEXT NOT NULL,
    cursor         TEXT,
    state          TEXT NOT NULL DEFAULT 'active',
    last_polled_at BIGINT,
    last_error     TEXT,
    created_at     BIGINT NOT NULL,
    UNIQUE (kind, url)
);

CREATE TABLE records (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    source_id      BIGINT REFERENCES monitor_sources(id),
    fingerprint    TEXT NOT NULL UNIQUE,    -- keyed HMAC over normalised fields
    external_id    TEXT,
    bot_id         TEXT NOT NULL,
    botnet         TEXT NOT NULL,
    url            TEXT NOT NULL,
    institution_id TEXT,
    account_norm   TEXT,
    secrets        TEXT NOT NULL,           -- JSON of masked secrets (kind, field, length, hmac)
    other_fields   TEXT NOT NULL,           -- JSON of field names only
    urgency        TEXT NOT NULL,
    evidence       BLOB,                    -- the raw record, only ever encrypted; unused so far
    fetched_at     BIGINT NOT NULL,
    created_at     BIGINT NOT NULL
);

CREATE TABLE victims (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    institution_id TEXT NOT NULL REFERENCES institutions(id),
    account_norm   TEXT NOT NULL,
    account        TEXT NOT NULL,
    exposed        TEXT NOT NULL,           -- comma-separated secret kinds, sorted
    urgency        TEXT NOT NULL,
    first_seen     BIGINT NOT NULL,
    last_seen      BIGINT NOT NULL,
    n_records      BIGINT NOT NULL,
    UNIQUE (institution_id, account_norm)
);

CREATE TABLE victim_records (
    victim_id BIGINT NOT NULL REFERENCES victims(id),
    record_id BIGINT NOT NULL REFERENCES records(id),
    PRIMARY KEY (victim_id, record_id)
);

CREATE TABLE alerts (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    victim_id         BIGINT NOT NULL REFERENCES victims(id),
    institution_id    TEXT NOT NULL REFERENCES institutions(id),
    reason            TEXT NOT NULL,
    payload           TEXT NOT NULL,
    idempotency_key   TEXT NOT NULL UNIQUE,
    status            TEXT NOT NULL,        -- pending | delivered | dead | undeliverable
    attempts          BIGINT NOT NULL DEFAULT 0,
    next_attempt_at   BIGINT NOT NULL,
    record_fetched_at BIGINT NOT NULL,
    created_at        BIGINT NOT NULL,
    delivered_at      BIGINT
);
CREATE INDEX alerts_due ON alerts (status, next_attempt_at);

CREATE TABLE deliveries (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id    BIGINT NOT NULL REFERENCES alerts(id),
    attempt     BIGINT NOT NULL,
    at          BIGINT NOT NULL,
    http_status BIGINT,
    error       TEXT,
    duration_us BIGINT NOT NULL
);

CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      BIGINT NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    subject TEXT NOT NULL
);
