//! Shared HTTP plumbing: one client, bounded retry on connection errors
//! only, and a bounded body reader.
//!
//! Every answer from a remote HTTP API is read through [`read_body`], which
//! stops past a size limit instead of buffering whatever the server sends
//! (a Prometheus answer of 300,000 series is ~75 MB and took 641 MB of RSS
//! to decode). The limit is [`DEFAULT_MAX_RESPONSE_BYTES`], changed for the
//! whole process with `--max-response-bytes` / `FIREDRILL_MAX_RESPONSE_BYTES`
//! (see [`set_max_response_bytes`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The most firedrill reads of one answer: 32 MiB, about 120,000 Prometheus
/// series with a few labels each. Far more than any criterion, panel or
/// alert list needs; an answer past it is an error naming the request.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 32 * 1024 * 1024;

/// The environment variable behind `--max-response-bytes`.
pub const MAX_RESPONSE_BYTES_ENV: &str = "FIREDRILL_MAX_RESPONSE_BYTES";

static MAX_RESPONSE_BYTES: AtomicU64 = AtomicU64::new(DEFAULT_MAX_RESPONSE_BYTES);

/// Sets the process-wide limit (from `--max-response-bytes`); clients made
/// afterwards use it.
pub fn set_max_response_bytes(limit: u64) {
    MAX_RESPONSE_BYTES.store(limit, Ordering::Relaxed);
}

/// The process-wide limit on one answer's body.
pub fn max_response_bytes() -> u64 {
    MAX_RESPONSE_BYTES.load(Ordering::Relaxed)
}

/// A client with firedrill's user agent and sane timeouts.
pub fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!("firedrill/", env!("CARGO_PKG_VERSION")))
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(5))
        .build()
        .expect("reqwest client builds with static settings")
}

/// Sends the request built by `build`, retrying up to `attempts` times on
/// connection errors only (never on an HTTP answer, which is the server's word).
pub async fn send_with_retry<F>(
    build: F,
    attempts: u32,
) -> Result<reqwest::Response, reqwest::Error>
where
    F: Fn() -> reqwest::RequestBuilder,
{
    let mut delay = Duration::from_millis(200);
    let mut tries = 0;
    loop {
        tries += 1;
        match build().send().await {
            Err(e) if e.is_connect() && tries < attempts => {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            other => return other,
        }
    }
}

/// A transport error in words a user can act on: a timeout says so (with
/// the client's limit), and the causes reqwest keeps in its source chain
/// ("connection refused", "operation timed out") are spelled out.
pub fn describe(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(cause) = src {
        let c = cause.to_string();
        if !s.contains(&c) {
            s.push_str(": ");
            s.push_str(&c);
        }
        src = cause.source();
    }
    if e.is_timeout() {
        format!("timed out (no answer within the client's limit): {s}")
    } else {
        s
    }
}

/// An answer larger than the limit. Its text completes "<service> at <url>
/// answered <request> with ..." and says what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooLarge {
    pub limit: u64,
    /// The answer's `Content-Length`, when it declared one.
    pub declared: Option<u64>,
}

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let limit = human_bytes(self.limit);
        match self.declared {
            Some(n) => write!(
                f,
                "{n} bytes (Content-Length), over firedrill's limit of {limit} for one \
                 answer, so it was not read"
            )?,
            None => write!(
                f,
                "more than {} bytes, over firedrill's limit of {limit} for one answer, so \
                 firedrill stopped reading it there",
                self.limit
            )?,
        }
        write!(
            f,
            ". Narrow the request so it returns less (for PromQL: aggregate with \
             `sum by (...)`, select fewer labels or use `topk`), or raise the limit with \
             --max-response-bytes or {MAX_RESPONSE_BYTES_ENV}"
        )
    }
}

/// Why a body could not be read.
#[derive(Debug)]
pub enum BodyError {
    TooLarge(TooLarge),
    /// The connection failed or timed out mid-body.
    Read(reqwest::Error),
}

/// Reads `resp`'s body, at most `limit` bytes: a `Content-Length` over the
/// limit is refused before reading, and reading stops at the first chunk
/// that would go past it (dropping the response closes the connection).
pub async fn read_body(mut resp: reqwest::Response, limit: u64) -> Result<Vec<u8>, BodyError> {
    let declared = resp.content_length();
    if let Some(n) = declared.filter(|n| *n > limit) {
        return Err(BodyError::TooLarge(TooLarge {
            limit,
            declared: Some(n),
        }));
    }
    let mut body = Vec::with_capacity(declared.unwrap_or(0) as usize);
    while let Some(chunk) = resp.chunk().await.map_err(BodyError::Read)? {
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(BodyError::TooLarge(TooLarge {
                limit,
                declared: None,
            }));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// At most `max` bytes of `body` as text, for an error message.
pub fn snippet(body: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(max)]);
    if body.len() > max {
        format!("{text}… ({} bytes in all)", body.len())
    } else {
        text.into_owned()
    }
}

/// `33554432` -> `32 MiB`; `1500` -> `1500 bytes`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (size, unit) in UNITS {
        if n >= size && n.is_multiple_of(size) {
            return format!("{} {unit}", n / size);
        }
    }
    format!("{n} bytes")
}

/// A size for `--max-response-bytes`: bytes, or a whole number of `KiB`,
/// `MiB` or `GiB` (`64MiB`, `512 KiB`). Zero is refused.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let shift = match unit.trim() {
        "" | "B" => 0,
        "KiB" => 10,
        "MiB" => 20,
        "GiB" => 30,
        _ => {
            return Err(format!(
                "`{s}` is not a size; use bytes or e.g. 512KiB, 64MiB, 1GiB"
            ))
        }
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("`{s}` is not a size above zero; use bytes or e.g. 64MiB"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_print() {
        assert_eq!(parse_size("33554432"), Ok(DEFAULT_MAX_RESPONSE_BYTES));
        assert_eq!(parse_size("32MiB"), Ok(DEFAULT_MAX_RESPONSE_BYTES));
        assert_eq!(parse_size(" 512 KiB "), Ok(512 * 1024));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert!(parse_size("0").is_err());
        assert!(parse_size("32MB").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999999GiB").is_err());
        assert_eq!(human_bytes(DEFAULT_MAX_RESPONSE_BYTES), "32 MiB");
        assert_eq!(human_bytes(1500), "1500 bytes");
    }

    #[test]
    fn snippets_are_cut_and_say_so() {
        assert_eq!(snippet(b"short", 300), "short");
        assert_eq!(snippet(b"abcdef", 3), "abc… (6 bytes in all)");
    }
}
