//! `dropwatch report`: time to freeze. For every alert, detected (its record fetched from the
//! drop) → delivered (webhook accepted) → acknowledged (the institution's first answer) →
//! frozen (its first `frozen` answer): how many alerts reached each step and how long each step
//! took (p50/p90/p99/max, nearest rank), overall and per institution.

use std::process::ExitCode;

use clap::Args;
use dropwatch_store::delivery_ops::{StepStats, TimeToFreeze, TimeToFreezeReport};

use crate::context::Context;

#[derive(Args)]
pub struct ReportArgs {
    /// Print the report as JSON (durations in microseconds).
    #[arg(long)]
    json: bool,
}

pub async fn run(ctx: &Context, args: ReportArgs) -> anyhow::Result<ExitCode> {
    let store = ctx.store().await?;
    let report = TimeToFreezeReport::of(&store.alert_timings().await?);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(ExitCode::SUCCESS)
}

/// A duration for people: ms below 10 s, then s, min, h.
fn human(us: Option<i64>) -> String {
    let Some(us) = us else {
        return "-".to_string();
    };
    let s = us as f64 / 1e6;
    if s < 10.0 {
        format!("{:.1} ms", us as f64 / 1e3)
    } else if s < 600.0 {
        format!("{s:.1} s")
    } else if s < 36_000.0 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

fn render_one(out: &mut String, title: &str, t: &TimeToFreeze) {
    out.push_str(&format!(
        "{title}: {} alerts, {} delivered, {} acknowledged, {} frozen, {} dead, {} pending\n",
        t.alerts, t.delivered, t.acknowledged, t.frozen, t.dead, t.pending
    ));
    out.push_str(&format!(
        "  {:<26} {:>6} {:>12} {:>12} {:>12} {:>12}\n",
        "step", "count", "p50", "p90", "p99", "max"
    ));
    let steps: [(&str, &StepStats); 4] = [
        ("detected -> delivered", &t.detected_to_delivered),
        ("delivered -> acknowledged", &t.delivered_to_acknowledged),
        ("acknowledged -> frozen", &t.acknowledged_to_frozen),
        ("detected -> frozen", &t.detected_to_frozen),
    ];
    for (name, s) in steps {
        out.push_str(&format!(
            "  {name:<26} {:>6} {:>12} {:>12} {:>12} {:>12}\n",
            s.count,
            human(s.p50_us),
            human(s.p90_us),
            human(s.p99_us),
            human(s.max_us)
        ));
    }
}

fn render(report: &TimeToFreezeReport) -> String {
    let mut out = String::new();
    render_one(&mut out, "all institutions", &report.overall);
    for (id, t) in &report.institutions {
        out.push('\n');
        render_one(&mut out, id, t);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human(None), "-");
        assert_eq!(human(Some(1_500)), "1.5 ms");
        assert_eq!(human(Some(2_500_000)), "2500.0 ms");
        assert_eq!(human(Some(90_000_000)), "90.0 s");
        assert_eq!(human(Some(3_600_000_000)), "60.0 min");
        // A unit is used from 10 of it on: 7 h still reads in minutes, 12 h in hours.
        assert_eq!(human(Some(7 * 3_600_000_000)), "420.0 min");
        assert_eq!(human(Some(12 * 3_600_000_000)), "12.0 h");
    }
}
