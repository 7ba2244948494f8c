//! Humantime durations (`"90s"`, `"3m"`, `"40ms"`) as spec values.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer};

/// The longest duration firedrill accepts anywhere: every duration in a
/// spec file and every duration flag. Drill deadlines and timeouts are
/// minutes; a month of acceptance window is twice Prometheus' default
/// retention. Anything longer is a typo (`"99999999h"`) that would
/// otherwise wait for millennia or overflow date arithmetic.
pub const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// [`MAX_DURATION`] as the error message and `--help` write it.
pub const MAX_DURATION_TEXT: &str = "30 days";

/// Parses a humantime duration of at most [`MAX_DURATION`]; the error is
/// the user-facing message (callers add where the value came from).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text).map_err(|_| {
        format!(
            "invalid duration {text:?} (expected a humantime duration such as \"90s\" or \"3m\")"
        )
    })?;
    if d > MAX_DURATION {
        return Err(format!(
            "duration {text:?} is longer than the maximum of {MAX_DURATION_TEXT} (\"720h\") \
             that firedrill allows for any duration"
        ));
    }
    Ok(d)
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
    fn caps_every_duration_at_30_days() {
        let cases = [
            ("30days", Some(MAX_DURATION)),
            ("720h", Some(MAX_DURATION)),
            ("4w 2d", Some(MAX_DURATION)),
            (
                "29days 23h 59m 59s",
                Some(MAX_DURATION - Duration::from_secs(1)),
            ),
            ("30days 1s", None),
            ("31days", None),
            ("99999999h", None),
            ("1000000years", None),
        ];
        for (text, want) in cases {
            match (parse_duration(text), want) {
                (Ok(got), Some(want)) => assert_eq!(got, want, "{text}"),
                (Err(e), None) => {
                    assert!(
                        e.contains(&format!("{text:?}")) && e.contains("maximum of 30 days"),
                        "{text}: {e}"
                    );
                }
                (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
        // Also for spec fields, whatever their kind.
        #[derive(Debug, Deserialize)]
        struct T {
            #[allow(dead_code)]
            a: Option<HumanDuration>,
            #[allow(dead_code)]
            p: Option<PositiveDuration>,
        }
        for doc in ["a = \"1000000years\"", "p = \"99999999h\""] {
            let e = toml::from_str::<T>(doc).unwrap_err();
            assert!(
                e.message().contains("maximum of 30 days"),
                "{}",
                e.message()
            );
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
