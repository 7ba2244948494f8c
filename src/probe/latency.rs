//! HDR latency recording for round trips.

use crate::model::probe::LatencySummary;
use hdrhistogram::Histogram;
use std::time::Duration;

/// Round-trip latencies in microseconds, 1 µs .. 1 h, 3 significant digits.
#[derive(Debug, Clone)]
pub struct Latencies {
    hist: Histogram<u64>,
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies {
            hist: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static bounds are valid"),
        }
    }
}

impl Latencies {
    pub fn record(&mut self, d: Duration) {
        let us = (d.as_micros() as u64).clamp(1, self.hist.high());
        self.hist.record(us).expect("value is clamped into range");
    }

    pub fn summary(&self) -> LatencySummary {
        LatencySummary::from_histogram(&self.hist)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut l = Latencies::default();
        for ms in 1..=100u64 {
            l.record(Duration::from_millis(ms));
        }
        let s = l.summary();
        assert_eq!(s.count, 100);
        assert!((s.p50_ms - 50.0).abs() < 0.1, "{s:?}");
        assert!((s.p99_ms - 99.0).abs() < 0.1, "{s:?}");
        assert!((s.max_ms - 100.0).abs() < 0.1, "{s:?}");
        assert_eq!(s.buckets.iter().map(|b| b.count).sum::<u64>(), 100);
    }

    #[test]
    fn empty_is_zero() {
        assert_eq!(Latencies::default().summary().count, 0);
    }
}
