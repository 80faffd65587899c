//! Operating the outbox: listing alerts and their delivery attempts, re-delivery on demand, and
//! the per-alert timings behind the time-to-freeze report.
//!
//! Nothing here reads victim data (no account, no payload), so nothing here is audited; callers
//! that act on an operator's behalf (re-delivery) write their own audit entry.

use std::collections::BTreeMap;

use dropwatch_model::Micros;
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{now_micros, Result, Store};

/// The outbox statuses an alert can be in.
pub const ALERT_STATUSES: [&str; 4] = ["pending", "delivered", "dead", "undeliverable"];

/// An alert's outbox state, without its payload (which names the account).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxAlert {
    pub id: i64,
    pub institution_id: String,
    pub reason: String,
    /// `pending`, `delivered`, `dead` or `undeliverable`.
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: Micros,
    pub record_fetched_at: Micros,
    pub created_at: Micros,
    pub delivered_at: Option<Micros>,
    /// The error of the most recent attempt, if it failed.
    pub last_error: Option<String>,
}

/// One delivery attempt as `deliveries` keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryRow {
    pub alert_id: i64,
    /// 1 for the first attempt; counts on across re-deliveries.
    pub attempt: i64,
    pub at: Micros,
    pub http_status: Option<i64>,
    pub error: Option<String>,
    pub duration_us: i64,
}

/// What [`Store::redeliver_alert`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Redelivery {
    /// The alert was `previous` (dead or delivered) and is pending again, due now.
    Queued { previous: String },
    /// The alert is already waiting for delivery; nothing changed.
    AlreadyPending,
    /// The alert cannot be delivered (its status is neither dead, delivered nor pending).
    NotRedeliverable { status: String },
    /// No alert has this id.
    NotFound,
}

/// When one alert passed each step from detection to freeze.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertTiming {
    pub alert_id: i64,
    pub institution_id: String,
    pub status: String,
    /// Detected: when the record behind the alert was fetched from the drop.
    pub detected_at: Micros,
    /// The latest successful delivery.
    pub delivered_at: Option<Micros>,
    /// The institution's first acknowledgement of any kind (a freeze acknowledges too).
    pub acknowledged_at: Option<Micros>,
    /// The institution's first `frozen` acknowledgement.
    pub frozen_at: Option<Micros>,
}

/// Count and percentiles (nearest rank) of one step, in microseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StepStats {
    pub count: usize,
    pub p50_us: Option<i64>,
    pub p90_us: Option<i64>,
    pub p99_us: Option<i64>,
    pub max_us: Option<i64>,
}

impl StepStats {
    /// The statistics of some durations (any order).
    pub fn of(mut durations: Vec<i64>) -> StepStats {
        durations.sort_unstable();
        StepStats {
            count: durations.len(),
            p50_us: percentile(&durations, 50),
            p90_us: percentile(&durations, 90),
            p99_us: percentile(&durations, 99),
            max_us: durations.last().copied(),
        }
    }
}

/// The nearest-rank percentile of sorted values: the smallest value with at least `p` % of the
/// values at or below it.
pub fn percentile(sorted: &[i64], p: u32) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (sorted.len() * p.min(100) as usize).div_ceil(100).max(1);
    Some(sorted[rank - 1])
}

/// Time to freeze for a set of alerts: how many reached each step and how long each step took.
///
/// Steps are measured between consecutive milestones of the same alert. An institution may
/// acknowledge an alert it pulled from the API before the webhook arrived: such a step counts as
/// zero rather than negative.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TimeToFreeze {
    pub alerts: usize,
    pub delivered: usize,
    pub acknowledged: usize,
    pub frozen: usize,
    pub dead: usize,
    pub pending: usize,
    pub detected_to_delivered: StepStats,
    pub delivered_to_acknowledged: StepStats,
    pub acknowledged_to_frozen: StepStats,
    /// The whole way, for frozen alerts.
    pub detected_to_frozen: StepStats,
}

impl TimeToFreeze {
    pub fn of<'a>(timings: impl IntoIterator<Item = &'a AlertTiming>) -> TimeToFreeze {
        let mut t = TimeToFreeze::default();
        let (mut det_del, mut del_ack, mut ack_frz, mut det_frz) = (vec![], vec![], vec![], vec![]);
        let step = |from: Micros, to: Micros| to.saturating_sub(from).max(0);
        for a in timings {
            t.alerts += 1;
            match a.status.as_str() {
                "dead" => t.dead += 1,
                "pending" => t.pending += 1,
                _ => {}
            }
            if let Some(d) = a.delivered_at {
                t.delivered += 1;
                det_del.push(step(a.detected_at, d));
                if let Some(k) = a.acknowledged_at {
                    del_ack.push(step(d, k));
                }
            }
            if let Some(k) = a.acknowledged_at {
                t.acknowledged += 1;
                if let Some(f) = a.frozen_at {
                    ack_frz.push(step(k, f));
                }
            }
            if let Some(f) = a.frozen_at {
                t.frozen += 1;
                det_frz.push(step(a.detected_at, f));
            }
        }
        t.detected_to_delivered = StepStats::of(det_del);
        t.delivered_to_acknowledged = StepStats::of(del_ack);
        t.acknowledged_to_frozen = StepStats::of(ack_frz);
        t.detected_to_frozen = StepStats::of(det_frz);
        t
    }
}

/// The time-to-freeze report: all alerts, then per institution (sorted by id).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TimeToFreezeReport {
    pub overall: TimeToFreeze,
    pub institutions: BTreeMap<String, TimeToFreeze>,
}

impl TimeToFreezeReport {
    pub fn of(timings: &[AlertTiming]) -> TimeToFreezeReport {
        let mut by_inst: BTreeMap<&str, Vec<&AlertTiming>> = BTreeMap::new();
        for t in timings {
            by_inst.entry(&t.institution_id).or_default().push(t);
        }
        TimeToFreezeReport {
            overall: TimeToFreeze::of(timings),
            institutions: by_inst
                .into_iter()
                .map(|(id, ts)| (id.to_string(), TimeToFreeze::of(ts)))
                .collect(),
        }
    }
}

fn outbox_alert_from_row(r: &AnyRow) -> Result<OutboxAlert> {
    Ok(OutboxAlert {
        id: r.try_get("id")?,
        institution_id: r.try_get("institution_id")?,
        reason: r.try_get("reason")?,
        status: r.try_get("status")?,
        attempts: r.try_get("attempts")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        record_fetched_at: r.try_get("record_fetched_at")?,
        created_at: r.try_get("created_at")?,
        delivered_at: r.try_get("delivered_at")?,
        last_error: r.try_get("last_error")?,
    })
}

const OUTBOX_SELECT: &str = "SELECT a.id, a.institution_id, a.reason, a.status, a.attempts, a.next_attempt_at,
       a.record_fetched_at, a.created_at, a.delivered_at,
       (SELECT d.error FROM deliveries d WHERE d.alert_id = a.id ORDER BY d.attempt DESC, d.id DESC LIMIT 1) AS last_error
     FROM alerts a";

impl Store {
    /// Alerts in the outbox, newest first, optionally only those in one status, at most `limit`.
    pub async fn list_alerts(&self, status: Option<&str>, limit: i64) -> Result<Vec<OutboxAlert>> {
        let rows = sqlx::query(&format!(
            "{OUTBOX_SELECT} WHERE ($1 IS NULL OR a.status = $1) ORDER BY a.id DESC LIMIT $2"
        ))
        .bind(status)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(outbox_alert_from_row).collect()
    }

    /// One alert's outbox state.
    pub async fn outbox_alert(&self, alert_id: i64) -> Result<Option<OutboxAlert>> {
        let row = sqlx::query(&format!("{OUTBOX_SELECT} WHERE a.id = $1"))
            .bind(alert_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(outbox_alert_from_row).transpose()
    }

    /// Every delivery attempt of one alert, in order.
    pub async fn alert_deliveries(&self, alert_id: i64) -> Result<Vec<DeliveryRow>> {
        let rows = sqlx::query(
            "SELECT alert_id, attempt, at, http_status, error, duration_us FROM deliveries
             WHERE alert_id = $1 ORDER BY attempt, id",
        )
        .bind(alert_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DeliveryRow {
                    alert_id: r.try_get("alert_id")?,
                    attempt: r.try_get("attempt")?,
                    at: r.try_get("at")?,
                    http_status: r.try_get("http_status")?,
                    error: r.try_get("error")?,
                    duration_us: r.try_get("duration_us")?,
                })
            })
            .collect()
    }

    /// Re-delivery on demand: a dead or delivered alert becomes pending again, due now. Its
    /// attempts (and their rows in `deliveries`) are kept, so the deliverer's dead-letter limit
    /// counts on from them: a re-delivered alert that fails again is dead after one attempt
    /// more. Delivering it again moves `delivered_at` to the new delivery.
    pub async fn redeliver_alert(&self, alert_id: i64) -> Result<Redelivery> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query("SELECT status FROM alerts WHERE id = $1")
            .bind(alert_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Ok(Redelivery::NotFound);
        };
        let status: String = row.try_get("status")?;
        let outcome = match status.as_str() {
            "pending" => Redelivery::AlreadyPending,
            "dead" | "delivered" => {
                // The status guard makes a concurrent change (a delivery finishing) lose cleanly.
                let res = sqlx::query(
                    "UPDATE alerts SET status = 'pending', next_attempt_at = $1 WHERE id = $2 AND status = $3",
                )
                .bind(now_micros())
                .bind(alert_id)
                .bind(&status)
                .execute(&mut *tx)
                .await?;
                if res.rows_affected() == 1 {
                    Redelivery::Queued { previous: status }
                } else {
                    Redelivery::AlreadyPending
                }
            }
            _ => Redelivery::NotRedeliverable { status },
        };
        tx.commit().await?;
        Ok(outcome)
    }

    /// Detection, delivery, first acknowledgement and first freeze of every alert with a
    /// payload, by alert id.
    pub async fn alert_timings(&self) -> Result<Vec<AlertTiming>> {
        let rows = sqlx::query(
            "SELECT a.id, a.institution_id, a.status, a.record_fetched_at, a.delivered_at,
                    (SELECT MIN(k.at) FROM alert_acks k WHERE k.alert_id = a.id) AS acknowledged_at,
                    (SELECT MIN(k.at) FROM alert_acks k WHERE k.alert_id = a.id AND k.status = 'frozen') AS frozen_at
             FROM alerts a WHERE a.payload <> '' ORDER BY a.id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AlertTiming {
                    alert_id: r.try_get("id")?,
                    institution_id: r.try_get("institution_id")?,
                    status: r.try_get("status")?,
                    detected_at: r.try_get("record_fetched_at")?,
                    delivered_at: r.try_get("delivered_at")?,
                    acknowledged_at: r.try_get("acknowledged_at")?,
                    frozen_at: r.try_get("frozen_at")?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50), Some(50));
        assert_eq!(percentile(&v, 90), Some(90));
        assert_eq!(percentile(&v, 99), Some(99));
        assert_eq!(percentile(&v, 100), Some(100));
        assert_eq!(percentile(&[7], 99), Some(7));
        assert_eq!(percentile(&[1, 2, 3], 50), Some(2));
        assert_eq!(percentile(&[], 50), None);
    }

    fn timing(
        id: i64,
        inst: &str,
        status: &str,
        det: i64,
        del: Option<i64>,
        ack: Option<i64>,
        frz: Option<i64>,
    ) -> AlertTiming {
        AlertTiming {
            alert_id: id,
            institution_id: inst.into(),
            status: status.into(),
            detected_at: det,
            delivered_at: del,
            acknowledged_at: ack,
            frozen_at: frz,
        }
    }

    #[test]
    fn steps_are_counted_per_milestone_and_never_negative() {
        let ts = [
            timing(1, "a", "delivered", 0, Some(10), Some(30), Some(60)),
            timing(2, "a", "delivered", 100, Some(120), Some(110), None),
            timing(3, "b", "dead", 0, None, None, None),
            timing(4, "b", "pending", 0, None, None, None),
        ];
        let r = TimeToFreezeReport::of(&ts);
        let o = &r.overall;
        assert_eq!(
            (
                o.alerts,
                o.delivered,
                o.acknowledged,
                o.frozen,
                o.dead,
                o.pending
            ),
            (4, 2, 2, 1, 1, 1)
        );
        assert_eq!(o.detected_to_delivered.count, 2);
        assert_eq!(o.detected_to_delivered.p50_us, Some(10));
        assert_eq!(o.detected_to_delivered.max_us, Some(20));
        // Alert 2 was acknowledged before its webhook arrived: zero, not -10.
        assert_eq!(o.delivered_to_acknowledged.p50_us, Some(0));
        assert_eq!(o.delivered_to_acknowledged.max_us, Some(20));
        assert_eq!(o.acknowledged_to_frozen.p99_us, Some(30));
        assert_eq!(o.detected_to_frozen.p50_us, Some(60));
        assert_eq!(r.institutions.len(), 2);
        assert_eq!(r.institutions["a"].alerts, 2);
        assert_eq!(r.institutions["b"].dead, 1);
        assert_eq!(
            r.institutions["b"].detected_to_delivered,
            StepStats::default()
        );
    }
}
