//! NATS connection with optional credentials taken from an env var.

use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum NatsError {
    #[error(
        "the NATS credentials env var {var} is not set; export it with the path to the .creds file, or remove nats_creds_env from the target"
    )]
    CredsEnvMissing { var: String },
    #[error("cannot read NATS credentials file {path} (from env var {var}): {source}")]
    CredsFile {
        var: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot connect to NATS at {url}: {reason}. Check that the server is up and the URL in the target is right")]
    Connect { url: String, reason: String },
}

/// Connects to `url`; `creds_env` names an env var holding the path of a
/// `.creds` file (the secret itself never appears in specs or logs).
pub async fn connect(url: &str, creds_env: Option<&str>) -> Result<async_nats::Client, NatsError> {
    let mut opts = async_nats::ConnectOptions::new()
        .name("firedrill")
        .connection_timeout(std::time::Duration::from_secs(5))
        // Probes need their results promptly; a large client buffer keeps
        // 10k in-flight sentinels from stalling the reader.
        .client_capacity(65_536)
        .subscription_capacity(262_144);
    if let Some(var) = creds_env {
        let path = std::env::var_os(var).ok_or_else(|| NatsError::CredsEnvMissing {
            var: var.to_string(),
        })?;
        let path = PathBuf::from(path);
        opts = opts
            .credentials_file(&path)
            .await
            .map_err(|source| NatsError::CredsFile {
                var: var.to_string(),
                path: path.clone(),
                source,
            })?;
    }
    opts.connect(url).await.map_err(|e| NatsError::Connect {
        url: url.to_string(),
        reason: e.to_string(),
    })
}
