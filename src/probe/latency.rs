//! HDR latency recording for round trips.

use crate::model::probe::{LatencyBucket, LatencySummary};
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
        let ms = |us: u64| us as f64 / 1000.0;
        if self.hist.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            count: self.hist.len(),
            min_ms: ms(self.hist.min()),
            p50_ms: ms(self.hist.value_at_quantile(0.50)),
            p90_ms: ms(self.hist.value_at_quantile(0.90)),
            p99_ms: ms(self.hist.value_at_quantile(0.99)),
            max_ms: ms(self.hist.max()),
            mean_ms: self.hist.mean() / 1000.0,
            buckets: self.buckets(),
        }
    }

    /// A coarse distribution for charts: counts per power-of-two ms bucket.
    fn buckets(&self) -> Vec<LatencyBucket> {
        let mut out: Vec<LatencyBucket> = Vec::new();
        let mut upper_ms = 1.0f64;
        let max_ms = self.hist.max() as f64 / 1000.0;
        let mut below = 0u64;
        loop {
            let upper_us = (upper_ms * 1000.0) as u64;
            let cum = self.hist.count_between(0, upper_us);
            out.push(LatencyBucket {
                le_ms: upper_ms,
                count: cum - below,
            });
            below = cum;
            if upper_ms >= max_ms || out.len() >= 24 {
                break;
            }
            upper_ms *= 2.0;
        }
        out
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
