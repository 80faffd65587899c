-- Source leases (postgres dialect). Keep in step with ../sqlite/.
-- A worker polls a monitor source only while it holds the source's lease. `lease_epoch` grows
-- by one at every claim: an ingest carries the epoch it was claimed under and commits only if
-- the source still has that owner and epoch (a fencing token), so a worker whose lease was
-- taken over can never move the cursor back or write a batch twice.

ALTER TABLE monitor_sources ADD COLUMN lease_owner TEXT;
ALTER TABLE monitor_sources ADD COLUMN lease_until BIGINT;
ALTER TABLE monitor_sources ADD COLUMN lease_epoch BIGINT NOT NULL DEFAULT 0;

-- The victim upsert of a batch looks victims up by institution and a set of accounts: the
-- UNIQUE (institution_id, account_norm) index serves it. Records of one source in order:
CREATE INDEX records_source ON records (source_id, id);
CREATE INDEX victim_records_record ON victim_records (record_id);
