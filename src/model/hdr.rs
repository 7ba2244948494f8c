//! The raw HDR histograms behind the report's percentiles, as `report.json`
//! carries them: HdrHistogram's portable V2 deflate encoding, base64
//! (standard alphabet, padded). Any HdrHistogram implementation (Java, Go,
//! Python) reads the decoded bytes; `firedrill merge` adds them exactly.

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;

/// Highest time to fire a drill histogram holds (ms): one day.
pub const TIME_TO_FIRE_HIGHEST_MS: u64 = 86_400_000;

#[derive(Debug, thiserror::Error)]
pub enum HdrError {
    #[error("not base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("not an HdrHistogram V2 (deflate) encoding: {0:?}")]
    Decode(hdrhistogram::serialization::DeserializeError),
}

/// Encodes `hist` as V2 deflate, base64.
pub fn encode(hist: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(hist, &mut bytes)
        .expect("serialising into memory cannot fail");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes what [`encode`] wrote (or any V2 / V2 deflate encoding).
pub fn decode(text: &str) -> Result<Histogram<u64>, HdrError> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(text.trim())?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(HdrError::Decode)
}

/// An empty histogram for times to fire in ms (1 ms .. one day, 3 digits).
pub fn time_to_fire_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, TIME_TO_FIRE_HIGHEST_MS, 3).expect("static bounds are valid")
}

/// Records `ms` into a time-to-fire histogram, clamped into its range (a
/// negative time, an alert already firing at inject, counts as 0).
pub fn record_ms(hist: &mut Histogram<u64>, ms: i64) {
    let v = (ms.max(0) as u64).min(hist.high());
    hist.record(v).expect("value is clamped into range");
}

/// Adds `other` into `into`, growing `into` when `other` reaches further
/// (histograms written by other tools may have other bounds).
pub fn add(into: &mut Histogram<u64>, other: &Histogram<u64>) {
    if into.add(other).is_err() {
        // Only a narrower `into` fails: widen it and add again.
        let mut wide =
            Histogram::<u64>::new(into.sigfig().max(other.sigfig())).expect("sigfig is valid");
        wide.add(&*into)
            .expect("auto-resizing histogram takes any value");
        wide.add(other)
            .expect("auto-resizing histogram takes any value");
        *into = wide;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_every_count() {
        let mut h = time_to_fire_histogram();
        for ms in [0, 1, 999, 12_345, 90_000, 3_600_000] {
            record_ms(&mut h, ms);
        }
        let back = decode(&encode(&h)).unwrap();
        assert_eq!(back, h);
        assert_eq!(back.len(), 6);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(matches!(decode("%%%"), Err(HdrError::Base64(_))));
        assert!(matches!(decode("aGVsbG8="), Err(HdrError::Decode(_))));
    }

    #[test]
    fn add_widens_a_narrow_histogram() {
        let mut narrow = Histogram::<u64>::new_with_bounds(1, 1000, 3).unwrap();
        narrow.record(10).unwrap();
        let mut wide = Histogram::<u64>::new_with_bounds(1, 10_000_000, 3).unwrap();
        wide.record(5_000_000).unwrap();
        add(&mut narrow, &wide);
        assert_eq!(narrow.len(), 2);
        assert!(narrow.max() >= 4_990_000);
    }
}
