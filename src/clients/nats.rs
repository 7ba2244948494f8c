//! NATS connection with optional credentials taken from an env var.

use std::ffi::OsString;
use thiserror::Error;

/// Credential errors name the env var and never its value: the value may be
/// the `.creds` contents themselves (a JWT and an NKEY seed).
#[derive(Debug, Error)]
pub enum NatsError {
    #[error(
        "the NATS credentials env var {var} is not set; export it with the contents of the .creds file (or its path), or remove nats_creds_env from the target"
    )]
    CredsEnvMissing { var: String },
    #[error(
        "the NATS credentials env var {var} holds neither a readable .creds path nor .creds contents ({why}); set it to the contents of the .creds file or to the file's path"
    )]
    CredsUnusable { var: String, why: String },
    #[error("cannot connect to NATS at {url}: {reason}. Check that the server is up and the URL in the target is right")]
    Connect { url: String, reason: String },
}

/// Connects to `url`; `creds_env` names an env var holding either the
/// contents of a `.creds` file (what a CI secret usually holds) or its path.
/// The secret itself never appears in specs, logs or errors.
pub async fn connect(url: &str, creds_env: Option<&str>) -> Result<async_nats::Client, NatsError> {
    let mut opts = options("firedrill");
    if let Some(var) = creds_env {
        opts = with_credentials(opts, var, std::env::var_os(var)).await?;
    }
    opts.connect(url).await.map_err(|e| NatsError::Connect {
        url: url.to_string(),
        reason: e.to_string(),
    })
}

/// What every firedrill connection is opened with (the reference fleet's
/// too, so a probe can share the fleet's connection): `name` shows in the
/// server's connection list.
pub fn options(name: &str) -> async_nats::ConnectOptions {
    async_nats::ConnectOptions::new()
        .name(name)
        .connection_timeout(std::time::Duration::from_secs(5))
        // Probes need their results promptly; a large client buffer keeps
        // 10k in-flight sentinels from stalling the reader.
        .client_capacity(65_536)
        .subscription_capacity(262_144)
}

/// Adds the credentials in env var `var` (its value is `value`) to `opts`.
///
/// A value holding a `-----BEGIN` marker or a line break is `.creds`
/// contents; anything else is a path. No error text comes from the value,
/// the file, or async-nats' parser (whose messages may quote either): each
/// problem is described in fixed words.
pub(crate) async fn with_credentials(
    opts: async_nats::ConnectOptions,
    var: &str,
    value: Option<OsString>,
) -> Result<async_nats::ConnectOptions, NatsError> {
    let unusable = |why: String| NatsError::CredsUnusable {
        var: var.to_string(),
        why,
    };
    let value = value.ok_or_else(|| NatsError::CredsEnvMissing {
        var: var.to_string(),
    })?;
    if value.is_empty() {
        return Err(unusable("it is empty".into()));
    }
    let contents = match value.to_str() {
        Some(s) if looks_like_creds(s) => {
            crate::secrets::register(s);
            return opts.credentials(s).map_err(|_| {
                unusable(
                    "it looks like .creds contents but has no valid user JWT and NKEY seed blocks"
                        .into(),
                )
            });
        }
        _ => tokio::fs::read_to_string(&value)
            .await
            .map_err(|e| unusable(format!("read as a path, it cannot be opened: {}", e.kind())))?,
    };
    crate::secrets::register(&contents);
    opts.credentials(&contents).map_err(|_| {
        unusable(
            "read as a path, it names a file without valid user JWT and NKEY seed blocks".into(),
        )
    })
}

fn looks_like_creds(s: &str) -> bool {
    s.contains("-----BEGIN") || s.contains('\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A seed with a valid checksum (async-nats' documentation example) and
    /// a JWT that only needs to look like one: nothing is verified offline.
    const SEED: &str = "SUAIO3FHUX5PNV2LQIIP7TZ3N4L7TX3W53MQGEIVYFIGA635OZCKEYHFLM";

    fn creds(jwt: &str, seed: &str) -> String {
        format!(
            "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
             ************************* IMPORTANT *************************\n\
             NKEY Seed printed below can be used to sign and prove identity.\n\n\
             -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"
        )
    }

    async fn try_creds(value: Option<&str>) -> Result<(), String> {
        with_credentials(
            async_nats::ConnectOptions::new(),
            "TEST_NATS_CREDS",
            value.map(OsString::from),
        )
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
    }

    #[tokio::test]
    async fn contents_and_paths_both_work() {
        let good = creds("eyJ0eXAiOiJKV1QifQ.e30.c2ln", SEED);
        assert_eq!(try_creds(Some(&good)).await, Ok(()));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("user.creds");
        std::fs::write(&path, &good).unwrap();
        assert_eq!(try_creds(Some(path.to_str().unwrap())).await, Ok(()));
    }

    #[tokio::test]
    async fn no_error_echoes_the_value() {
        let marker = "FIREDRILLSECRETMARKER";
        let dir = tempfile::tempdir().unwrap();
        let not_creds = dir.path().join(format!("{marker}.txt"));
        std::fs::write(&not_creds, format!("{marker}\n")).unwrap();
        let cases = [
            // Contents whose seed is not an NKEY seed.
            creds(&format!("eyJ.{marker}.sig"), &format!("SU{marker}")),
            // Contents with no blocks at all.
            format!("{marker}\nsecond line"),
            // A path that does not exist, and a file that is no .creds.
            format!("/nonexistent/{marker}.creds"),
            not_creds.to_string_lossy().into_owned(),
            // A bare seed pasted without its file around it.
            format!("SU{marker}"),
        ];
        for value in &cases {
            let err = try_creds(Some(value)).await.unwrap_err();
            assert!(!err.contains(marker), "{value:?} leaked: {err}");
            assert!(err.contains("TEST_NATS_CREDS"), "{err}");
            assert!(
                err.contains("holds neither a readable .creds path nor .creds contents"),
                "{err}"
            );
        }
        let err = try_creds(Some("")).await.unwrap_err();
        assert!(err.contains("it is empty"), "{err}");
        let err = try_creds(None).await.unwrap_err();
        assert!(err.contains("TEST_NATS_CREDS is not set"), "{err}");
    }
}
