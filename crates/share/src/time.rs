//! Timestamps as the formats want them, from the store's microseconds since the Unix epoch.
//!
//! STIX 2.1 timestamps are RFC 3339 in UTC with a `Z`; dropwatch writes milliseconds
//! (`2013-12-01T00:00:00.000Z`), the precision the spec requires for `created` and
//! `modified`. The calendar is the `time` crate's, through `dropwatch_model::time`.

use dropwatch_model::Micros;

/// `2013-12-01T00:00:00.000Z`. Instants before 1970 or after 9999 are clamped, so the text
/// always has the fixed width the formats expect.
pub fn stix_timestamp(micros: Micros) -> String {
    dropwatch_model::time::format_zulu(micros.max(0), 3)
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
    if t.len() == 10 {
        return dropwatch_model::time::parse_rfc3339_utc(&format!("{t}T00:00:00Z"));
    }
    dropwatch_model::time::parse_rfc3339_utc(t)
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
            "２０１３-12-01",
            "+013-12-01",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad:?}");
        }
    }
}
