-- Sharing: TAXII 2.1 collections and the STIX object versions they hold (sqlite dialect).
-- Keep in step with ../postgres/.
--
-- An object version, once stored, is never changed: (collection, object id, version) is its
-- identity and re-publishing it is a no-op. date_added is strictly increasing within a
-- collection (TAXII clients page and poll on it); taxii_collections.last_date_added is the
-- high-water mark that publish_stix advances under the collection row's lock.

CREATE TABLE taxii_collections (
    id              TEXT PRIMARY KEY,            -- UUID: the TAXII collection id
    alias           TEXT UNIQUE,                 -- stable local name, e.g. dropwatch-indicators
    title           TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    can_read        BIGINT NOT NULL CHECK (can_read IN (0, 1)),
    can_write       BIGINT NOT NULL CHECK (can_write IN (0, 1)),
    media_types     TEXT NOT NULL,               -- JSON list of strings
    created_at      BIGINT NOT NULL,
    last_date_added BIGINT NOT NULL DEFAULT 0    -- µs; every new version gets a larger one
);

CREATE TABLE stix_objects (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    collection_id TEXT NOT NULL REFERENCES taxii_collections(id),
    object_id     TEXT NOT NULL,                 -- STIX id, type--uuid
    object_type   TEXT NOT NULL,
    spec_version  TEXT NOT NULL,                 -- '2.1', '2.0'
    version       BIGINT NOT NULL,               -- µs: modified, else created, else date_added
    date_added    BIGINT NOT NULL,               -- µs; strictly increasing per collection
    object        TEXT NOT NULL,                 -- the object's JSON, as published
    UNIQUE (collection_id, object_id, version)   -- also serves match[id], versions, first/last
);
-- Paging and added_after: keyset on (date_added, id) within a collection.
CREATE UNIQUE INDEX stix_objects_added ON stix_objects (collection_id, date_added, id);
-- match[type].
CREATE INDEX stix_objects_type ON stix_objects (collection_id, object_type, date_added, id);
