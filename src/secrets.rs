//! Secret values this process has read (tokens, NATS credentials), so that
//! text which came back from a remote (an error body echoing a header, say)
//! never carries them into a report, a log line or an artifact.
//!
//! Readers of a secret call [`register`]; writers of anything a person or a
//! CI artifact sees call [`redact`] (reports go through it as a whole, see
//! `Report::redact_secrets`).

use std::sync::{Mutex, OnceLock};

/// What a secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Shorter values are not treated as secrets (they would match ordinary
/// words and numbers).
const MIN_LEN: usize = 8;

fn store() -> &'static Mutex<Vec<String>> {
    static S: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    S.get_or_init(|| Mutex::new(Vec::new()))
}

/// Remembers `value` (and, for multi-line values such as `.creds`
/// contents, each long line of it) as a secret.
pub fn register(value: &str) {
    let mut s = store().lock().unwrap_or_else(|e| e.into_inner());
    // The lines of a multi-line value that are one long token (a JWT, an
    // NKEY seed), not its banner or prose.
    let lines = value.lines().map(str::trim).filter(|l| {
        !l.contains(char::is_whitespace) && !l.starts_with("---") && !l.starts_with('*')
    });
    for p in std::iter::once(value.trim()).chain(lines) {
        if p.len() >= MIN_LEN && !s.iter().any(|x| x == p) {
            s.push(p.to_string());
        }
    }
    // Longest first, so a secret containing another is replaced whole.
    s.sort_by_key(|x| std::cmp::Reverse(x.len()));
}

/// `text` with every registered secret replaced by [`REDACTED`].
pub fn redact(text: &str) -> String {
    let s = store().lock().unwrap_or_else(|e| e.into_inner());
    let mut out = text.to_string();
    for secret in s.iter() {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), REDACTED);
        }
    }
    out
}

/// Redacts every string in a JSON value, in place.
pub fn redact_json(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::String(s) => {
            let r = redact(s);
            if r != *s {
                *s = r;
            }
        }
        Value::Array(a) => a.iter_mut().for_each(redact_json),
        Value::Object(o) => o.values_mut().for_each(redact_json),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_values_never_survive() {
        register("glsa_TESTsecretTOKEN_0123456789");
        register("-----BEGIN NATS USER JWT-----\neyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.payload\n------END NATS USER JWT------\nSUAMK2FG4MI6UE3ACF3FK3OIQBCEIEZV7NSWFFEW63UXMRLFM2XLAXK4GY\n");
        register("short");
        let text = "denied: Authorization was Bearer glsa_TESTsecretTOKEN_0123456789; seed SUAMK2FG4MI6UE3ACF3FK3OIQBCEIEZV7NSWFFEW63UXMRLFM2XLAXK4GY; short";
        let r = redact(text);
        assert!(!r.contains("glsa_TESTsecret"), "{r}");
        assert!(!r.contains("SUAMK2FG"), "{r}");
        assert!(r.contains("Bearer [redacted]"), "{r}");
        assert!(r.ends_with("short"), "short values are not secrets: {r}");
        let mut v = serde_json::json!({"a": ["x glsa_TESTsecretTOKEN_0123456789 y"]});
        redact_json(&mut v);
        assert_eq!(v["a"][0], "x [redacted] y");
    }
}
