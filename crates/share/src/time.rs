//! Timestamps as the formats want them, from the store's microseconds since the Unix epoch.
//!
//! STIX 2.1 timestamps are RFC 3339 in UTC with a `Z`; dropwatch writes milliseconds
//! (`2013-12-01T00:00:00.000Z`), the precision the spec requires for `created` and
//! `modified`. The calendar arithmetic is the proleptic Gregorian civil-from-days conversion.

use dropwatch_model::Micros;

/// `(year, month, day)` of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Days since 1970-01-01 of a civil date.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2013-12-01T00:00:00.000Z`. Instants before 1970 or after 9999 are clamped, so the text
/// always has the fixed width the formats expect.
pub fn stix_timestamp(micros: Micros) -> String {
    const MAX: Micros = 253_402_300_799_999_999; // 9999-12-31T23:59:59.999999Z
    let micros = micros.clamp(0, MAX);
    let secs = micros.div_euclid(1_000_000);
    let millis = micros.rem_euclid(1_000_000) / 1000;
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// `2013-12-01`, the day in UTC.
pub fn date(micros: Micros) -> String {
    stix_timestamp(micros)[..10].to_string()
}

/// Whole seconds since the Unix epoch (MISP's `timestamp`).
pub fn unix_seconds(micros: Micros) -> i64 {
    micros.max(0).div_euclid(1_000_000)
}

/// Truncates to milliseconds, the precision exports carry, so that comparisons with an exported
/// timestamp agree with its text.
pub fn to_millis(micros: Micros) -> Micros {
    micros - micros.rem_euclid(1000)
}

/// Parses `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM:SSZ` or the same with a fraction of a second (up to
/// microseconds), in UTC (`Z` or `+00:00`). Returns microseconds since the Unix epoch.
pub fn parse_timestamp(text: &str) -> Option<Micros> {
    let t = text.trim();
    let b = t.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let s = t.get(range)?;
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let month = u32::try_from(month).ok().filter(|m| (1..=12).contains(m))?;
    let day = u32::try_from(day).ok().filter(|d| (1..=31).contains(d))?;
    let days = days_from_civil(year, month, day);
    if civil_from_days(days) != (year, month, day) {
        return None; // 2013-02-30
    }
    let mut micros = days * 86_400_000_000;
    if b.len() == 10 {
        return Some(micros);
    }
    if b.len() < 20 || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if h > 23 || mi > 59 || s > 60 {
        return None;
    }
    micros += (h * 3600 + mi * 60 + s) * 1_000_000;
    let mut rest = &t[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 || n > 9 {
            return None;
        }
        let digits = &frac[..n];
        let padded: String = digits.chars().chain("000000".chars()).take(6).collect();
        micros += padded.parse::<i64>().ok()?;
        rest = &frac[n..];
    }
    matches!(rest, "Z" | "z" | "+00:00").then_some(micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_round_trip() {
        let t = 1_385_856_000_123_456; // 2013-12-01T00:00:00.123456Z
        assert_eq!(stix_timestamp(t), "2013-12-01T00:00:00.123Z");
        assert_eq!(parse_timestamp("2013-12-01T00:00:00.123456Z"), Some(t));
        assert_eq!(
            parse_timestamp(&stix_timestamp(t)),
            Some(to_millis(t)),
            "an exported timestamp parses back to its millisecond"
        );
        assert_eq!(stix_timestamp(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(stix_timestamp(-5), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            stix_timestamp(951_782_400_000_000),
            "2000-02-29T00:00:00.000Z"
        );
        assert_eq!(date(t), "2013-12-01");
        assert_eq!(parse_timestamp("2013-12-01"), Some(1_385_856_000_000_000));
        assert_eq!(
            parse_timestamp("2024-02-29T23:59:59+00:00"),
            Some(1_709_251_199_000_000)
        );
    }

    #[test]
    fn rejects_what_is_not_a_utc_timestamp() {
        for bad in [
            "",
            "yesterday",
            "2013-02-30",
            "2013-13-01",
            "2013-12-01T25:00:00Z",
            "2013-12-01T00:00:00",
            "2013-12-01T00:00:00+09:00",
            "2013-12-01T00:00:00.Z",
            "2013-12-01T00:00:00.1234567890Z",
            "２０１３-12-01",
            "+013-12-01",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad:?}");
        }
    }
}
