//! The fault contract: what every fault kind implements ([`FaultDriver`]),
//! what the journal stores to undo it ([`FaultRecord`]), and the errors.
//! Imports no fault kind; the kinds and the dispatch import it.

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;
use thiserror::Error;

use super::kube::KubeAccess;

/// Everything a fault needs from the target, beyond its own plan.
#[derive(Clone)]
pub struct FaultContext {
    /// The reference fleet's base URL (`fleet` faults only).
    pub fleet_url: Option<String>,
    pub kube: KubeAccess,
    pub http: reqwest::Client,
}

impl FaultContext {
    pub fn new(fleet_url: Option<String>, kube: KubeAccess) -> Self {
        FaultContext {
            fleet_url,
            kube,
            http: crate::clients::http::client(Duration::from_secs(15)),
        }
    }
}

/// How to undo one injection, self-contained: what the journal stores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
/// Tagged by `type` (`kind` is a Kubernetes field).
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum FaultRecord {
    /// `DELETE <fleet_url>/faults/<fault>` unless it was on before.
    Fleet {
        fleet_url: String,
        fault: String,
        /// The fleet process it was injected into (its `/healthz` instance
        /// header), so a later fleet on the same port is never touched.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        instance: Option<String>,
    },
    /// Run `revert` in `cwd`.
    Exec {
        revert: Vec<String>,
        timeout_ms: u64,
        cwd: PathBuf,
        /// The spec's `check` command, whose output before the inject is the
        /// entry's `original`: when it prints that again, the fault is
        /// already undone and `revert` is not run.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        check: Option<Vec<String>>,
        /// Environment variables `revert`/`check` read (`$NAME`): a revert
        /// run where one is unset would act on the wrong thing and report
        /// success, so it is refused instead.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        env: Vec<String>,
    },
    /// JSON Patch `test` injected + `replace` original at `pointer`.
    Kubernetes {
        api_version: String,
        kind: String,
        /// Resource name in the URL (see `fault_kube::plural`).
        plural: String,
        namespace: String,
        name: String,
        pointer: String,
        /// The pointer had no value before: revert removes it.
        #[serde(default)]
        original_absent: bool,
        /// The API server it was injected through (`None`: kubeconfig).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        api_url: Option<String>,
        /// Env var holding that server's token (never the token itself).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token_env: Option<String>,
        /// Injected into the local stack's rehearsal API, which is gone
        /// with its stack: an unreachable API then means nothing to undo.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        local_stack: bool,
    },
    /// An Alertmanager silence created for the drill: expire it.
    Silence {
        alertmanager_url: String,
        /// `None` while it is being created.
        silence_id: Option<String>,
        ends_at: DateTime<Utc>,
    },
}

impl FaultRecord {
    /// What reverting it does, for the "reverted: …" progress line.
    pub fn revert_action(&self) -> String {
        match self {
            FaultRecord::Fleet {
                fleet_url, fault, ..
            } => format!("turned off fleet fault {fault} at {fleet_url}"),
            FaultRecord::Exec { revert, .. } => {
                format!("ran {}", crate::shell::shell_words(revert))
            }
            FaultRecord::Kubernetes {
                kind,
                namespace,
                name,
                pointer,
                ..
            } => format!("restored {kind} {namespace}/{name} {pointer}"),
            FaultRecord::Silence { silence_id, .. } => format!(
                "expired Alertmanager silence {}",
                silence_id.as_deref().unwrap_or("(never created)")
            ),
        }
    }
}

/// A fault read and ready: the journal entry's content.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    pub record: FaultRecord,
    pub description: String,
    pub original: Value,
    pub injected: Value,
}

/// What a revert did when it did not fail.
#[derive(Debug, Clone, PartialEq)]
pub enum Reverted {
    Restored,
    /// Nothing had to change (left on on purpose, or its host is gone).
    NothingToDo(String),
    /// The fault was no longer in place when the revert came: something
    /// outside this run reverted it (a person, another tool, `recover`).
    AlreadyReverted(String),
}

impl Reverted {
    /// The note worth keeping, if any.
    pub fn note(&self) -> Option<&str> {
        match self {
            Reverted::Restored => None,
            Reverted::NothingToDo(n) | Reverted::AlreadyReverted(n) => Some(n),
        }
    }
}

#[derive(Debug, Error, Clone, PartialEq)]
pub enum FaultError {
    #[error("{0}")]
    Config(String),
    #[error("{what}: {target} is unreachable: {reason}")]
    Unreachable {
        what: String,
        target: String,
        reason: String,
    },
    /// A remote's own error, already naming the remote (reachable or not).
    #[error("{what}: {reason}")]
    Remote { what: String, reason: String },
    #[error("{what}: {target} answered HTTP {status}: {body}")]
    Http {
        what: String,
        target: String,
        status: u16,
        body: String,
    },
    #[error("command `{command}` failed ({status}): {output}")]
    Exec {
        command: String,
        status: String,
        output: String,
    },
    #[error("command `{command}` did not finish within {timeout}; its process group was killed")]
    Timeout { command: String, timeout: String },
    #[error("Kubernetes API {what} {object}: HTTP {code} {reason}: {message}")]
    Kube {
        what: String,
        object: String,
        code: u16,
        reason: String,
        message: String,
    },
    /// RBAC refuses a verb the drill needs (checked before injecting).
    #[error(
        "Kubernetes RBAC: the credentials may not {verb} {resource} {object} \
         ({reason}); the drill needs get and patch to inject and to revert, so nothing was injected. \
         Grant them with a Role bound to this service account, or run the drill with other credentials"
    )]
    Forbidden {
        verb: String,
        resource: String,
        object: String,
        reason: String,
    },
    #[error(
        "CONFLICT: {object} {pointer} is now {live}, not the value the drill injected ({injected}); \
         someone changed it after the drill, so firedrill did not overwrite it"
    )]
    Conflict {
        object: String,
        pointer: String,
        live: String,
        injected: String,
    },
}

/// One fault kind's driver: read the original state, then inject.
pub trait FaultDriver: Send + Sync {
    /// Reads the state the fault will change; nothing is changed yet.
    fn prepare(&self) -> BoxFuture<'_, Result<Prepared, FaultError>>;
    /// Changes it. Only called after `prepare`'s result is journaled.
    fn inject<'a>(&'a self, prepared: &'a Prepared) -> BoxFuture<'a, Result<(), FaultError>>;
}

/// Keeps the end of long command output or bodies (the useful part).
pub(crate) fn tail(s: &str, max: usize) -> String {
    let s = s.trim();
    if s.len() <= max {
        return s.to_string();
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &s[start..])
}
