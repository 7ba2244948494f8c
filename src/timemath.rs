//! Date arithmetic that cannot panic.
//!
//! Durations are capped at load (`spec::MAX_DURATION`), so these never
//! saturate in practice. They exist because a `DateTime + TimeDelta` that
//! overflows panics, and a panic mid-drill is the worst place to fail: an
//! instant past the end of chrono's calendar is "never", which is what an
//! absurd deadline means anyway.

use chrono::{DateTime, TimeDelta, Utc};
use std::time::Duration;

/// `d` as a `TimeDelta`, saturating at `TimeDelta::MAX`.
pub fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

/// `t + d`, or the last representable instant.
pub fn after(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t.checked_add_signed(delta(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `t - d`, or the first representable instant.
pub fn before(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t.checked_sub_signed(delta(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturates_instead_of_panicking() {
        let t = DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let year = Duration::from_secs(365 * 24 * 3600);
        assert_eq!(
            after(t, Duration::from_secs(90)).to_rfc3339(),
            "2026-11-23T10:01:30+00:00"
        );
        assert_eq!(
            before(t, Duration::from_secs(90)).to_rfc3339(),
            "2026-11-23T09:58:30+00:00"
        );
        for d in [
            year * 1_000_000,
            Duration::from_secs(u64::MAX),
            Duration::MAX,
        ] {
            assert_eq!(after(t, d), DateTime::<Utc>::MAX_UTC, "{d:?}");
            assert_eq!(before(t, d), DateTime::<Utc>::MIN_UTC, "{d:?}");
        }
        assert_eq!(delta(Duration::MAX), TimeDelta::MAX);
    }
}
