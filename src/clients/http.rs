//! Shared HTTP plumbing: one client, bounded retry on connection errors only.

use std::time::Duration;

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
