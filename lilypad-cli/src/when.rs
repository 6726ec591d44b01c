//! Chain times as a person reads them: `2026-12-05 12:00:03 UTC`, `in 4m 12s`.

use jiff::{SignedDuration, Timestamp, fmt::friendly::SpanPrinter};

/// A unix second as a UTC date and time.
pub(crate) fn utc(unix: u64) -> String {
    i64::try_from(unix).ok().and_then(|s| Timestamp::from_second(s).ok()).map_or_else(
        || format!("unix second {unix}"),
        |t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

/// A number of seconds as `1h 4m 12s`.
pub(crate) fn span(secs: u64) -> String {
    let secs = i64::try_from(secs).unwrap_or(i64::MAX);
    SpanPrinter::new().duration_to_string(&SignedDuration::from_secs(secs))
}

/// `at` relative to `now`: `in 4m 12s`, `4m 12s ago`, or `now`.
pub(crate) fn relative(at: u64, now: u64) -> String {
    match at.cmp(&now) {
        std::cmp::Ordering::Greater => format!("in {}", span(at - now)),
        std::cmp::Ordering::Less => format!("{} ago", span(now - at)),
        std::cmp::Ordering::Equal => "now".into(),
    }
}

/// `at` as `2026-12-05 12:00:03 UTC (in 4m 12s)`.
pub(crate) fn utc_relative(at: u64, now: u64) -> String {
    format!("{} ({})", utc(at), relative(at, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_utc_and_spans() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_796_472_003), "2026-12-05 12:00:03 UTC");
        assert_eq!(utc(u64::MAX), format!("unix second {}", u64::MAX));
        assert_eq!(span(252), "4m 12s");
        assert_eq!(span(3600 * 26 + 5), "26h 5s");
        assert_eq!(relative(1252, 1000), "in 4m 12s");
        assert_eq!(relative(1000, 1252), "4m 12s ago");
        assert_eq!(relative(7, 7), "now");
        assert_eq!(utc_relative(252, 0), "1970-01-01 00:04:12 UTC (in 4m 12s)");
    }
}
