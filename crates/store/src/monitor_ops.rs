//! Per-source health of the monitors: how many bad records each source served.
//!
//! A bad record is one a source served that is not a panel report (malformed, oversized, in a
//! broken encoding...). The monitor skips it and goes on; the store counts it per source so
//! `dropwatch monitor list` shows which drops serve junk. Only the count, the position of the
//! last bad record (byte offset, array index or row id) and when it was seen are kept: the
//! record's text is attacker input that may hold a victim's secret, so it is never stored.
//!
//! The monitors count bad records in the ingest transaction of the batch that skipped them
//! (`IngestBatch::bad_records`, fenced like the cursor), so a crash neither loses nor repeats a
//! count; [`Store::note_bad_records`] is for callers outside a batch.

use dropwatch_model::Micros;
use serde::Serialize;
use sqlx::Row;

use crate::{now_micros, Result, Store};

/// A source's bad-record count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SourceErrorCounts {
    pub source_id: i64,
    pub bad_records: i64,
    /// Where the last bad record was in the source.
    pub last_bad_position: Option<i64>,
    pub last_bad_at: Option<Micros>,
}

impl Store {
    /// Notes `count` bad records served by a source, the last at `last_position`. An
    /// append-only source adds to its count; a snapshot source (read whole every poll)
    /// `replace`s it, so that re-reading the same bad element is not counted again.
    pub async fn note_bad_records(
        &self,
        source_id: i64,
        count: u64,
        last_position: Option<u64>,
        replace: bool,
    ) -> Result<()> {
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        let position = last_position.map(|p| i64::try_from(p).unwrap_or(i64::MAX));
        let sql = if replace {
            "UPDATE monitor_sources SET bad_records = $1,
               last_bad_position = COALESCE($2, last_bad_position),
               last_bad_at = CASE WHEN $1 > 0 THEN $3 ELSE last_bad_at END WHERE id = $4"
        } else {
            "UPDATE monitor_sources SET bad_records = bad_records + $1,
               last_bad_position = COALESCE($2, last_bad_position),
               last_bad_at = CASE WHEN $1 > 0 THEN $3 ELSE last_bad_at END WHERE id = $4"
        };
        sqlx::query(sql)
            .bind(count)
            .bind(position)
            .bind(now_micros())
            .bind(source_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Every source's bad-record count, by source id.
    pub async fn monitor_error_counts(&self) -> Result<Vec<SourceErrorCounts>> {
        let rows = sqlx::query(
            "SELECT id, bad_records, last_bad_position, last_bad_at FROM monitor_sources ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SourceErrorCounts {
                    source_id: r.try_get("id")?,
                    bad_records: r.try_get("bad_records")?,
                    last_bad_position: r.try_get("last_bad_position")?,
                    last_bad_at: r.try_get("last_bad_at")?,
                })
            })
            .collect()
    }
}
