-- Workers and delivery leases (postgres dialect). Keep in step with ../sqlite/.
-- `dropwatch worker` processes register here and heartbeat; each claims monitor sources (the
-- lease columns of 20261204000001) and alerts for a lease time, renews what it still holds at
-- every heartbeat, and releases it on a clean stop. A lease's epoch grows by one at every claim
-- and every write made under a lease is fenced on (owner, epoch), so a worker that lost a lease
-- (it stalled, or was presumed dead) can never write under it. Instants are microseconds.

CREATE TABLE workers (
    id           TEXT PRIMARY KEY,           -- --id, or host-pid-random
    host         TEXT NOT NULL,
    pid          BIGINT NOT NULL,
    roles        TEXT NOT NULL,              -- comma-separated: monitor, deliver, analyze
    lease_ttl_us BIGINT NOT NULL,            -- its lease time: alive while heartbeat_at is newer
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL,
    stopped_at   BIGINT                      -- set on a clean stop
);

-- When a source is next due; set when a poll's lease is released (interval + jitter, or now
-- when the poll stopped at the read limit). 0 = due now.
ALTER TABLE monitor_sources ADD COLUMN next_poll_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX monitor_sources_due ON monitor_sources (next_poll_at, id) WHERE state = 'active';
CREATE INDEX monitor_sources_lease_owner ON monitor_sources (lease_owner) WHERE lease_owner IS NOT NULL;

-- Alerts are claimed for one delivery attempt; the attempt is recorded only under the lease.
ALTER TABLE alerts ADD COLUMN lease_owner TEXT;
ALTER TABLE alerts ADD COLUMN lease_until BIGINT;
ALTER TABLE alerts ADD COLUMN lease_epoch BIGINT NOT NULL DEFAULT 0;
CREATE INDEX alerts_pending_due ON alerts (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX alerts_lease_owner ON alerts (lease_owner) WHERE lease_owner IS NOT NULL;
