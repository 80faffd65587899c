-- Bad records per monitor source (sqlite dialect). Keep in step with ../postgres/.
-- A bad record is one a source served that is not a panel report (malformed, oversized, ...).
-- Only the count and the position of the last one are kept: a bad record's text is attacker
-- input that may hold a victim's secret, so it is never stored.

ALTER TABLE monitor_sources ADD COLUMN bad_records BIGINT NOT NULL DEFAULT 0;
ALTER TABLE monitor_sources ADD COLUMN last_bad_position BIGINT;
ALTER TABLE monitor_sources ADD COLUMN last_bad_at BIGINT;
