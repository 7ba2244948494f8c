//! Humantime durations (`"90s"`, `"3m"`, `"40ms"`) as spec values.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer};

/// Parses a humantime duration; the error is the user-facing message.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|_| {
        format!(
            "invalid duration {text:?} (expected a humantime duration such as \"90s\" or \"3m\")"
        )
    })
}

/// Formats a duration the way specs write them (`"1m 30s"`).
pub fn format_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// A duration field; zero allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HumanDuration(pub Duration);

/// A duration field that must be longer than zero (timeouts, deadlines).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PositiveDuration(pub Duration);

struct DurationVisitor {
    positive: bool,
}

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration string such as \"90s\" or \"3m\"")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        let d = parse_duration(v).map_err(E::custom)?;
        if self.positive && d.is_zero() {
            return Err(E::custom(format!(
                "duration {v:?} must be longer than zero"
            )));
        }
        Ok(d)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(DurationVisitor { positive: false })
            .map(HumanDuration)
    }
}

impl<'de> Deserialize<'de> for PositiveDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(DurationVisitor { positive: true })
            .map(PositiveDuration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_humantime() {
        let cases = [
            ("90s", Duration::from_secs(90)),
            ("3m", Duration::from_secs(180)),
            ("40ms", Duration::from_millis(40)),
            ("1h 30m", Duration::from_secs(5400)),
            ("0s", Duration::ZERO),
        ];
        for (text, want) in cases {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn rejects_non_durations_with_a_hint() {
        for text in ["5 parsecs", "", "90", "-1s", "3 minutes later"] {
            let err = parse_duration(text).unwrap_err();
            assert!(
                err.contains("expected a humantime duration"),
                "{text}: {err}"
            );
            assert!(err.contains(&format!("{text:?}")), "{text}: {err}");
        }
    }

    #[test]
    fn formats_back() {
        assert_eq!(format_duration(Duration::from_secs(90)), "1m 30s");
    }

    #[test]
    fn positive_rejects_zero_and_integers() {
        #[derive(Deserialize)]
        struct T {
            #[allow(dead_code)]
            d: PositiveDuration,
        }
        let e = toml::from_str::<T>("d = \"0s\"").err().unwrap();
        assert!(e.message().contains("longer than zero"), "{}", e.message());
        let e = toml::from_str::<T>("d = 10").err().unwrap();
        assert!(
            e.message().contains("a duration string such as"),
            "{}",
            e.message()
        );
        let ok: Result<T, _> = toml::from_str("d = \"10s\"");
        assert!(ok.is_ok());
    }
}
