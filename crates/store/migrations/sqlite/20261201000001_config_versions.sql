-- Config versions (sqlite dialect). Keep in step with ../postgres/.
-- A config's targets (inject URL masks, web-filter masks), so that a new config of the same
-- botnet can be compared with the one before it, and the events that comparison records.

CREATE TABLE config_targets (
    config_id BIGINT NOT NULL REFERENCES configs(id),
    target    TEXT NOT NULL,
    PRIMARY KEY (config_id, target)
);

CREATE TABLE config_events (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    config_id          BIGINT NOT NULL REFERENCES configs(id),
    previous_config_id BIGINT REFERENCES configs(id),
    family             TEXT NOT NULL,
    botnet             TEXT NOT NULL,
    kind               TEXT NOT NULL,       -- targets_added
    targets            TEXT NOT NULL,       -- JSON array of the added targets, sorted
    created_at         BIGINT NOT NULL
);

CREATE INDEX configs_family_botnet ON configs (family, botnet, id);
