//! Instants as text: RFC 3339 in UTC, the form STIX, TAXII and the exports use.
//!
//! The store keeps instants as [`Micros`] (microseconds since the Unix epoch); these convert
//! them, through the `time` crate, to and from `YYYY-MM-DDTHH:MM:SS.fffZ` text.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

use crate::Micros;

/// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z: what four-digit years can say.
pub const MIN_MICROS: Micros = -62_135_596_800_000_000;
pub const MAX_MICROS: Micros = 253_402_300_799_999_999;

fn micros_of(t: OffsetDateTime) -> Option<Micros> {
    i64::try_from(t.unix_timestamp_nanos().div_euclid(1000)).ok()
}

/// Parses RFC 3339 text with a UTC offset (`Z`, `z`, `+00:00`) into microseconds; digits
/// beyond the microsecond are truncated. Any other offset, year 0, or anything else is `None`.
pub fn parse_rfc3339_utc(text: &str) -> Option<Micros> {
    // RFC 3339 allows a space for the `T` "for readability"; STIX and TAXII do not.
    if !matches!(text.as_bytes().get(10), Some(b'T' | b't')) {
        return None;
    }
    let t = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    (t.offset() == UtcOffset::UTC && t.year() >= 1).then_some(())?;
    micros_of(t)
}

/// Like [`parse_rfc3339_utc`], but only with the `Z` designator, as STIX and TAXII require.
pub fn parse_zulu(text: &str) -> Option<Micros> {
    if !text.ends_with(['Z', 'z']) {
        return None;
    }
    parse_rfc3339_utc(text)
}

/// `YYYY-MM-DDTHH:MM:SS` + a fraction of `digits` (3 or 6; anything else means 6) + `Z`.
/// Instants outside years 1..=9999 are clamped, so the text always has its fixed width.
pub fn format_zulu(micros: Micros, digits: u8) -> String {
    let micros = micros.clamp(MIN_MICROS, MAX_MICROS);
    let Ok(t) = OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000) else {
        return String::new(); // unreachable: clamped into the representable range
    };
    let formatted = if digits == 3 {
        t.format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        ))
    } else {
        t.format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
        ))
    };
    formatted.unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_known_values() {
        let t = 1_385_856_000_123_456; // 2013-12-01T00:00:00.123456Z
        assert_eq!(format_zulu(t, 6), "2013-12-01T00:00:00.123456Z");
        assert_eq!(format_zulu(t, 3), "2013-12-01T00:00:00.123Z");
        assert_eq!(parse_zulu("2013-12-01T00:00:00.123456Z"), Some(t));
        assert_eq!(parse_zulu("2013-12-01T00:00:00.1234569Z"), Some(t));
        assert_eq!(parse_zulu("2013-12-01t00:00:00.123456z"), Some(t));
        assert_eq!(
            parse_rfc3339_utc("2013-12-01T00:00:00.123456+00:00"),
            Some(t)
        );
        assert_eq!(parse_zulu("2013-12-01T00:00:00.123456+00:00"), None);
        assert_eq!(format_zulu(-1, 6), "1969-12-31T23:59:59.999999Z");
        assert_eq!(format_zulu(i64::MAX, 3), "9999-12-31T23:59:59.999Z");
        assert_eq!(format_zulu(i64::MIN, 6), "0001-01-01T00:00:00.000000Z");
        assert_eq!(parse_zulu(&format_zulu(MIN_MICROS, 6)), Some(MIN_MICROS));
        assert_eq!(parse_zulu(&format_zulu(MAX_MICROS, 6)), Some(MAX_MICROS));
        assert_eq!(
            parse_zulu("2000-02-29T00:00:00Z"),
            Some(951_782_400_000_000)
        );
    }

    #[test]
    fn refuses_what_is_not_utc_rfc3339() {
        for bad in [
            "",
            "2013-02-30T00:00:00Z",
            "2013-13-01T00:00:00Z",
            "2013-12-01T25:00:00Z",
            "2013-12-01T00:00:00",
            "2013-12-01T00:00:00+09:00",
            "2013-12-01T00:00:00.Z",
            "２０１３-12-01T00:00:00Z",
            "+013-12-01T00:00:00Z",
            "0000-01-01T00:00:00Z",
            "2013-12-01 00:00:00Z",
        ] {
            assert_eq!(parse_rfc3339_utc(bad), None, "{bad:?}");
        }
    }
}
