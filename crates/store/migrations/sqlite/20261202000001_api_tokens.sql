-- API tokens and alert acknowledgements (sqlite dialect). Keep in step with ../postgres/.
-- A token is stored only as the SHA-256 of its text: the text is shown once, at creation.

CREATE TABLE api_tokens (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash     TEXT NOT NULL UNIQUE,    -- hex SHA-256 of the token text
    role           TEXT NOT NULL CHECK (role IN ('analyst', 'institution', 'partner')),
    institution_id TEXT REFERENCES institutions(id),
    label          TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    revoked_at     BIGINT,
    last_used_at   BIGINT,
    -- an institution token belongs to exactly one institution; other roles to none
    CHECK ((role = 'institution') = (institution_id IS NOT NULL))
);

CREATE TABLE alert_acks (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id       BIGINT NOT NULL REFERENCES alerts(id),
    institution_id TEXT NOT NULL REFERENCES institutions(id),
    status         TEXT NOT NULL CHECK (status IN ('acknowledged', 'frozen', 'false_positive', 'not_our_customer')),
    note           TEXT NOT NULL,
    actor          TEXT NOT NULL,           -- who acknowledged (token id and label)
    at             BIGINT NOT NULL
);
CREATE INDEX alert_acks_alert ON alert_acks (alert_id, id);
CREATE INDEX alerts_institution ON alerts (institution_id, id);
CREATE INDEX alerts_victim ON alerts (victim_id, id);
