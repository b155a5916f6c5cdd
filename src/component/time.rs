//! 1C dates are local wall-clock times; Kafka timestamps are UTC milliseconds.

use chrono::{Local, LocalResult, NaiveDate, TimeZone};

use crate::boundary::Date;

/// The UTC instant of a local 1C date (the earlier one when a DST change makes it ambiguous).
pub fn local_date_to_unix_ms(d: Date) -> i64 {
    let naive = NaiveDate::from_ymd_opt(d.year, d.month, d.day)
        .and_then(|day| day.and_hms_opt(d.hour, d.minute, d.second));
    let Some(naive) = naive else {
        return d.seconds_since_epoch() * 1000;
    };
    match Local.from_local_datetime(&naive) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.timestamp_millis(),
        // In a DST gap: the wall time does not exist, treat it as UTC-offset-free.
        LocalResult::None => d.seconds_since_epoch() * 1000,
    }
}

/// The local 1C date of a UTC instant (milliseconds are dropped: 1C dates have seconds).
pub fn unix_ms_to_local_date(ms: i64) -> Date {
    match Local.timestamp_millis_opt(ms) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => {
            let naive = t.naive_local();
            Date::from_seconds_since_epoch(naive.and_utc().timestamp())
        }
        LocalResult::None => Date::from_seconds_since_epoch(ms.div_euclid(1000)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_through_local_time() {
        for ms in [0i64, 1_700_000_000_000, 1_000_000_000_000] {
            let d = unix_ms_to_local_date(ms);
            assert_eq!(local_date_to_unix_ms(d), ms);
        }
    }
}
