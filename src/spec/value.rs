//! Small checked value types for the raw (deserialised) specs.
//!
//! Each rejects a bad value inside deserialisation, so the error carries the
//! value's own line and key without any bookkeeping by the caller. The
//! `check_*` functions are also used on values only known after a template
//! is rendered.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use url::Url;

use super::vars;

/// Whether `s` looks like an environment variable name: `[A-Z_][A-Z0-9_]*`.
pub fn is_env_var_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('A'..='Z' | '_'))
        && chars.all(|c| matches!(c, 'A'..='Z' | '0'..='9' | '_'))
}

fn check_env_var_name(s: &str) -> Result<(), String> {
    if is_env_var_name(s) {
        return Ok(());
    }
    // The value is not echoed: a secret pasted here by mistake must not
    // reach logs.
    Err(
        "invalid environment variable name (expected upper-case letters, digits and underscores, \
         not starting with a digit, e.g. \"GRAFANA_TOKEN\"; this key holds the NAME of a variable \
         that holds the secret, never the secret itself, so the value is not shown)"
            .to_string(),
    )
}

/// A spec name used on the command line and in reports: target, probe and
/// drill names, criterion ids.
pub(crate) fn check_name(s: &str) -> Result<(), String> {
    let mut chars = s.chars();
    let ok = matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && s.len() <= 128;
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid name {s:?} (expected letters, digits, '-', '_' or '.', starting with a letter or digit)"
        ))
    }
}

fn check_non_empty(s: &str) -> Result<(), String> {
    if s.trim().is_empty() {
        Err("must not be empty".to_string())
    } else {
        Ok(())
    }
}

/// A Kubernetes namespace: an RFC 1123 label.
pub(crate) fn check_dns_label(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid Kubernetes namespace {s:?} (expected lower-case letters, digits and '-', at most 63 characters)"
        ))
    }
}

/// A Kubernetes object name: an RFC 1123 subdomain.
pub(crate) fn check_object_name(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 253
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid Kubernetes object name {s:?} (expected lower-case letters, digits, '-' and '.')"
        ))
    }
}

/// A JetStream stream or consumer name.
pub(crate) fn check_nats_name(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && !s
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '.' | '*' | '>' | '/' | '\\'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid JetStream name {s:?} (expected no spaces and none of . * > / \\)"
        ))
    }
}

/// A NATS subject; with `wildcards`, `*` tokens and a final `>` are allowed.
pub(crate) fn check_subject(s: &str, wildcards: bool) -> Result<(), String> {
    let tokens: Vec<&str> = s.split('.').collect();
    let last = tokens.len() - 1;
    for (i, token) in tokens.iter().enumerate() {
        let bad_token = token.is_empty() || token.chars().any(char::is_whitespace);
        let wildcard = *token == "*" || (*token == ">" && i == last);
        let stray = !wildcard && (token.contains('*') || token.contains('>'));
        if bad_token || stray || (wildcard && !wildcards) {
            let expect = if wildcards {
                "dot-separated tokens, no spaces; '*' as a whole token, '>' only as the last token"
            } else {
                "dot-separated tokens, no spaces and no wildcards, since firedrill publishes on it"
            };
            return Err(format!("invalid NATS subject {s:?} (expected {expect})"));
        }
    }
    Ok(())
}

/// A Prometheus label name.
pub(crate) fn check_label_name(s: &str) -> Result<(), String> {
    let mut chars = s.chars();
    let ok = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with("__");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid label name {s:?} (expected [a-zA-Z_][a-zA-Z0-9_]*, not starting with \"__\")"
        ))
    }
}

/// A Prometheus alerting rule name (a metric-name-shaped `alertname`).
pub(crate) fn check_alert_name(s: &str) -> Result<(), String> {
    let mut chars = s.chars();
    let ok = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid alert name {s:?} (expected the rule's name, [a-zA-Z_:][a-zA-Z0-9_:]*)"
        ))
    }
}

/// A target variable name: a template variable name that is not reserved.
pub(crate) fn check_var_name(s: &str) -> Result<(), String> {
    if !super::template::is_var_name(s) {
        return Err(format!(
            "invalid variable name {s:?} (expected a letter or '_' then letters, digits, '_', '-' or '.')"
        ));
    }
    if vars::is_reserved(s) {
        return Err(format!(
            "variable name {s:?} is reserved: firedrill fills it in itself (reserved: {}, {}, {}, sentinel.*)",
            vars::RUNTIME_VARS[..3].join(", "),
            vars::NAMESPACE,
            vars::TRACE_URL
        ));
    }
    Ok(())
}

/// Parses a URL with one of `schemes` and a host, and no credentials.
pub(crate) fn parse_url(s: &str, schemes: &[&str]) -> Result<Url, String> {
    let expect = schemes
        .iter()
        .map(|s| format!("{s}://"))
        .collect::<Vec<_>>()
        .join(" or ");
    let url = Url::parse(s)
        .map_err(|e| format!("invalid URL {s:?}: {e} (expected an absolute {expect} URL)"))?;
    if !url.username().is_empty() || url.password().is_some() {
        // Not echoed: it holds a credential.
        return Err("URL must not carry credentials (put secrets in an environment variable and name it in the matching *_env key)".to_string());
    }
    if !schemes.contains(&url.scheme()) {
        return Err(format!(
            "unsupported URL scheme \"{}\" in {s:?} (expected {expect})",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("URL {s:?} has no host (expected {expect}host...)"));
    }
    Ok(url)
}

macro_rules! checked_string {
    ($(#[$meta:meta])* $name:ident, $check:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
        pub(crate) struct $name(pub String);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                ($check)(&s).map_err(de::Error::custom)?;
                Ok($name(s))
            }
        }

        // Derived Ord on the one String field orders like str, as Borrow needs.
        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}

checked_string!(
    /// See [`is_env_var_name`].
    EnvVarName,
    check_env_var_name
);
checked_string!(
    /// See [`check_name`].
    Name,
    check_name
);
/// A TOML table, as a JSON object.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct JsonTable(pub serde_json::Value);

impl<'de> Deserialize<'de> for JsonTable {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let table = toml::Table::deserialize(d)?;
        toml_to_json(&toml::Value::Table(table), "")
            .map(JsonTable)
            .map_err(de::Error::custom)
    }
}

checked_string!(
    /// Any string with something in it.
    NonEmpty,
    check_non_empty
);
checked_string!(
    /// See [`check_nats_name`].
    NatsName,
    check_nats_name
);
checked_string!(
    /// A NATS subject filter (wildcards allowed).
    SubjectFilter,
    |s: &str| check_subject(s, true)
);
checked_string!(
    /// See [`check_label_name`].
    LabelName,
    check_label_name
);
checked_string!(
    /// See [`check_alert_name`].
    AlertName,
    check_alert_name
);
checked_string!(
    /// See [`check_var_name`].
    VarName,
    check_var_name
);
checked_string!(
    /// A Kubernetes object kind (`Deployment`, `ScaledJob`).
    ObjectKind,
    |s: &str| if s.chars().next().is_some_and(|c| c.is_ascii_uppercase()) && s.chars().all(|c| c.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(format!("invalid object kind {s:?} (expected a Kubernetes kind such as \"Deployment\")"))
    }
);
checked_string!(
    /// An RFC 6901 JSON pointer (`/spec/template/spec/containers/0/image`).
    JsonPointer,
    |s: &str| {
        let escapes_ok = s.split('~').skip(1).all(|rest| rest.starts_with('0') || rest.starts_with('1'));
        if (s.is_empty() || s.starts_with('/')) && escapes_ok {
            Ok(())
        } else {
            Err(format!("invalid JSON pointer {s:?} (expected RFC 6901 such as \"/spec/template/spec/containers/0/image\"; write '~' as ~0 and '/' inside a key as ~1)"))
        }
    }
);

/// An `http(s)://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpUrl(pub Url);

impl<'de> Deserialize<'de> for HttpUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_url(&s, &["http", "https"])
            .map(HttpUrl)
            .map_err(de::Error::custom)
    }
}

/// A `nats://` or `tls://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NatsUrl(pub Url);

impl<'de> Deserialize<'de> for NatsUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_url(&s, &["nats", "tls"])
            .map(NatsUrl)
            .map_err(de::Error::custom)
    }
}

/// An integer in `MIN..=MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ranged<const MIN: u32, const MAX: u32>(pub u32);

impl<'de, const MIN: u32, const MAX: u32> Deserialize<'de> for Ranged<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct RangeVisitor<const MIN: u32, const MAX: u32>;
        impl<const MIN: u32, const MAX: u32> Visitor<'_> for RangeVisitor<MIN, MAX> {
            type Value = u32;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "an integer from {MIN} to {MAX}")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<u32, E> {
                match u32::try_from(v) {
                    Ok(n) if (MIN..=MAX).contains(&n) => Ok(n),
                    _ => Err(E::custom(format!("must be from {MIN} to {MAX}, got {v}"))),
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<u32, E> {
                self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
            }
        }
        d.deserialize_i64(RangeVisitor::<MIN, MAX>).map(Ranged)
    }
}

/// A list with at least one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NonEmptyList<T>(pub Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for NonEmptyList<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let items = Vec::<T>::deserialize(d)?;
        if items.is_empty() {
            return Err(de::Error::custom("must list at least one value"));
        }
        Ok(NonEmptyList(items))
    }
}

/// Any TOML value, as JSON (datetimes become RFC 3339 strings).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct JsonValue(pub serde_json::Value);

impl<'de> Deserialize<'de> for JsonValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = toml::Value::deserialize(d)?;
        toml_to_json(&value, "")
            .map(JsonValue)
            .map_err(de::Error::custom)
    }
}

fn toml_to_json(value: &toml::Value, at: &str) -> Result<serde_json::Value, String> {
    use serde_json::Value as J;
    Ok(match value {
        toml::Value::String(s) => J::String(s.clone()),
        toml::Value::Integer(i) => J::from(*i),
        toml::Value::Float(f) => {
            serde_json::Number::from_f64(*f)
                .map(J::Number)
                .ok_or_else(|| {
                    let at = if at.is_empty() {
                        String::new()
                    } else {
                        format!(" at {at}")
                    };
                    format!("{f}{at} cannot be represented in JSON (use a finite number)")
                })?
        }
        toml::Value::Boolean(b) => J::Bool(*b),
        toml::Value::Datetime(dt) => J::String(dt.to_string()),
        toml::Value::Array(items) => J::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| toml_to_json(v, &format!("{at}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        toml::Value::Table(table) => J::Object(
            table
                .iter()
                .map(|(k, v)| {
                    let at = if at.is_empty() {
                        k.clone()
                    } else {
                        format!("{at}.{k}")
                    };
                    toml_to_json(v, &at).map(|v| (k.clone(), v))
                })
                .collect::<Result<_, _>>()?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_var_names() {
        for ok in ["GRAFANA_TOKEN", "_X", "A1", "DAEDALUS_NATS_CREDS"] {
            assert!(is_env_var_name(ok), "{ok}");
        }
        for bad in [
            "",
            "grafana_token",
            "1A",
            "A-B",
            "A B",
            "/path/to.creds",
            "Ab",
        ] {
            assert!(!is_env_var_name(bad), "{bad}");
        }
        let msg = check_env_var_name("glsa_secret_token").unwrap_err();
        assert!(
            !msg.contains("glsa_secret_token"),
            "must not echo a possible secret: {msg}"
        );
    }

    #[test]
    fn subjects() {
        assert!(check_subject("daedalus.tasks.copilot", false).is_ok());
        assert!(check_subject("daedalus.tasks.>", true).is_ok());
        assert!(check_subject("daedalus.*.x", true).is_ok());
        for bad in ["daedalus.tasks.>", "a..b", "", "a b", "a.*"] {
            assert!(check_subject(bad, false).is_err(), "{bad}");
        }
        for bad in ["a.>.b", "a.b*", "a..b"] {
            assert!(check_subject(bad, true).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls() {
        assert!(parse_url("https://prometheus.example/", &["http", "https"]).is_ok());
        assert!(parse_url("nats://nats.daedalus.svc:4222", &["nats", "tls"]).is_ok());
        let e = parse_url("prometheus.example", &["http", "https"]).unwrap_err();
        assert!(e.contains("relative URL without a base"), "{e}");
        let e = parse_url("ftp://x/", &["http", "https"]).unwrap_err();
        assert!(e.contains("unsupported URL scheme \"ftp\""), "{e}");
        let e = parse_url("https://user:hunter2@x/", &["http", "https"]).unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn names() {
        assert!(check_name("aks-test").is_ok());
        assert!(check_name("AC1").is_ok());
        assert!(check_name("-x").is_err());
        assert!(check_dns_label("daedalus").is_ok());
        assert!(check_dns_label("Daedalus").is_err());
        assert!(check_nats_name("DAEDALUS_TASKS").is_ok());
        assert!(check_nats_name("a.b").is_err());
        assert!(check_label_name("namespace").is_ok());
        assert!(check_label_name("__name__").is_err());
        assert!(check_alert_name("WorkerImagePullBackOff").is_ok());
        assert!(check_alert_name("Worker Down").is_err());
        assert!(check_var_name("stream").is_ok());
        assert!(check_var_name("window").unwrap_err().contains("reserved"));
    }

    #[test]
    fn toml_values_become_json() {
        let v: toml::Value =
            toml::from_str("a = 1\nb = [true, \"x\"]\nc = 1979-05-27T07:32:00Z\n[d]\ne = 1.5\n")
                .unwrap();
        assert_eq!(
            toml_to_json(&v, "").unwrap(),
            serde_json::json!({"a": 1, "b": [true, "x"], "c": "1979-05-27T07:32:00Z", "d": {"e": 1.5}})
        );
        let v: toml::Value = toml::from_str("a = { b = nan }").unwrap();
        assert!(toml_to_json(&v, "").unwrap_err().contains("at a.b"));
    }
}
