//! `/metrics` in the Prometheus text exposition format (version 0.0.4), from the store's
//! [`AlertMetrics`]: the outbox by status, delivery attempts, and the time-to-freeze
//! histograms (detected → delivered, detected → each kind of acknowledgement).

use std::fmt::Write as _;

use dropwatch_store::{AckStatus, AlertMetrics};

/// Histogram bucket bounds, seconds: from sub-second delivery to a day-long freeze.
const BUCKETS_SECS: [f64; 14] = [
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21600.0, 86400.0,
];

/// Statuses always exported (zero when empty), so series do not appear and vanish.
const ALERT_STATUSES: [&str; 4] = ["pending", "delivered", "dead", "undeliverable"];

fn histogram(out: &mut String, name: &str, labels: &str, micros: &[i64]) {
    let secs: Vec<f64> = micros.iter().map(|&us| us as f64 / 1e6).collect();
    let sep = if labels.is_empty() { "" } else { "," };
    for le in BUCKETS_SECS {
        let n = secs.iter().filter(|&&s| s <= le).count();
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
        secs.len()
    );
    let braces = if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    };
    let _ = writeln!(out, "{name}_sum{braces} {}", secs.iter().sum::<f64>());
    let _ = writeln!(out, "{name}_count{braces} {}", secs.len());
}

/// The text of `/metrics`.
pub fn render(m: &AlertMetrics) -> String {
    let mut out = String::new();
    out.push_str("# HELP dropwatch_alerts Alerts in the outbox, by delivery status.\n");
    out.push_str("# TYPE dropwatch_alerts gauge\n");
    let mut statuses: Vec<(&str, i64)> = ALERT_STATUSES.iter().map(|&s| (s, 0)).collect();
    for (status, n) in &m.alerts_by_status {
        match statuses.iter_mut().find(|(s, _)| s == status) {
            Some(slot) => slot.1 = *n,
            None => statuses.push((status.as_str(), *n)),
        }
    }
    for (status, n) in statuses {
        let _ = writeln!(out, "dropwatch_alerts{{status=\"{status}\"}} {n}");
    }

    out.push_str(
        "# HELP dropwatch_delivery_attempts_total Webhook delivery attempts, by outcome.\n",
    );
    out.push_str("# TYPE dropwatch_delivery_attempts_total counter\n");
    let _ = writeln!(
        out,
        "dropwatch_delivery_attempts_total{{outcome=\"success\"}} {}",
        m.delivery_attempts - m.delivery_failures
    );
    let _ = writeln!(
        out,
        "dropwatch_delivery_attempts_total{{outcome=\"failure\"}} {}",
        m.delivery_failures
    );

    out.push_str("# HELP dropwatch_detected_to_delivered_seconds From a record's fetch to its alert's delivery.\n");
    out.push_str("# TYPE dropwatch_detected_to_delivered_seconds histogram\n");
    histogram(
        &mut out,
        "dropwatch_detected_to_delivered_seconds",
        "",
        &m.detected_to_delivered_us,
    );

    out.push_str("# HELP dropwatch_detected_to_ack_seconds From a record's fetch to the institution's first acknowledgement of each status.\n");
    out.push_str("# TYPE dropwatch_detected_to_ack_seconds histogram\n");
    for status in AckStatus::ALL {
        let lat: Vec<i64> = m
            .detected_to_ack_us
            .iter()
            .filter(|(s, _)| *s == status)
            .map(|&(_, us)| us)
            .collect();
        histogram(
            &mut out,
            "dropwatch_detected_to_ack_seconds",
            &format!("status=\"{}\"", status.as_str()),
            &lat,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str, series: &str) -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no series {series} in\n{text}"))
    }

    #[test]
    fn renders_counts_and_cumulative_buckets() {
        let m = AlertMetrics {
            alerts_by_status: vec![("delivered".into(), 2), ("pending".into(), 1)],
            delivery_attempts: 5,
            delivery_failures: 3,
            detected_to_delivered_us: vec![200_000, 3_000_000],
            detected_to_ack_us: vec![(AckStatus::Frozen, 120_000_000)],
        };
        let t = render(&m);
        assert_eq!(value(&t, "dropwatch_alerts{status=\"delivered\"}"), 2.0);
        assert_eq!(value(&t, "dropwatch_alerts{status=\"dead\"}"), 0.0);
        assert_eq!(
            value(&t, "dropwatch_delivery_attempts_total{outcome=\"success\"}"),
            2.0
        );
        let d = "dropwatch_detected_to_delivered_seconds";
        assert_eq!(value(&t, &format!("{d}_bucket{{le=\"0.1\"}}")), 0.0);
        assert_eq!(value(&t, &format!("{d}_bucket{{le=\"0.25\"}}")), 1.0);
        assert_eq!(value(&t, &format!("{d}_bucket{{le=\"5\"}}")), 2.0);
        assert_eq!(value(&t, &format!("{d}_bucket{{le=\"+Inf\"}}")), 2.0);
        assert!((value(&t, &format!("{d}_sum")) - 3.2).abs() < 1e-9);
        let a = "dropwatch_detected_to_ack_seconds";
        assert_eq!(
            value(&t, &format!("{a}_bucket{{status=\"frozen\",le=\"60\"}}")),
            0.0
        );
        assert_eq!(
            value(&t, &format!("{a}_bucket{{status=\"frozen\",le=\"300\"}}")),
            1.0
        );
        assert_eq!(
            value(&t, &format!("{a}_count{{status=\"acknowledged\"}}")),
            0.0
        );
        // Every sample line is `name{labels} value` or `name value`.
        for line in t.lines().filter(|l| !l.starts_with('#')) {
            let (_, v) = line.rsplit_once(' ').unwrap();
            v.parse::<f64>().unwrap();
        }
    }
}
