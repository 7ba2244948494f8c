//! Faults: a contract, one driver per kind, and reverts driven by the journal.
//!
//! A fault is prepared (the original state is read), journaled, injected, and
//! later reverted from its [`FaultRecord`] alone, so `firedrill recover` can
//! undo it in another process with nothing but the journal.
//!
//! Layout: `contract` (trait, record, errors; imports no kind), one file per
//! kind (`exec`, `fleet`, `kube`; each imports only the contract and
//! `shell`), and this file: dispatch from a validated spec to a driver, and
//! from a journaled record to its revert.

mod contract;
pub mod exec;
pub mod fleet;
pub mod kube;

pub use contract::{FaultContext, FaultDriver, FaultError, FaultRecord, Prepared, Reverted};

use crate::spec::drill::Fault;
use exec::ExecDriver;
use fleet::FleetDriver;
use kube::KubeDriver;
use serde_json::Value;
use std::time::Duration;

/// The driver for a validated fault spec (nothing is validated again).
pub fn driver(fault: &Fault, ctx: &FaultContext) -> Result<Box<dyn FaultDriver>, FaultError> {
    Ok(match fault {
        Fault::Fleet { fault } => {
            let url = ctx.fleet_url.clone().ok_or_else(|| {
                FaultError::Config(format!(
                    "fleet fault {fault} needs the target's fleet_url, and this target has none"
                ))
            })?;
            Box::new(FleetDriver::new(&url, fault.as_str(), ctx.http.clone()))
        }
        Fault::Exec(spec) => Box::new(ExecDriver::new(spec)?),
        Fault::KubernetesPatch(spec) => Box::new(KubeDriver::patch(ctx.kube.clone(), spec)),
        Fault::KubernetesScale(spec) => Box::new(KubeDriver::scale(ctx.kube.clone(), spec)),
    })
}

/// Undoes one journaled injection.
pub async fn revert(
    record: &FaultRecord,
    original: &Value,
    injected: &Value,
    ctx: &FaultContext,
) -> Result<Reverted, FaultError> {
    match record {
        FaultRecord::Fleet {
            fleet_url,
            fault,
            instance,
        } => {
            fleet::revert(&ctx.http, fleet_url, fault, instance.as_deref(), original)
                .await
        }
        FaultRecord::Exec {
            revert,
            timeout_ms,
            cwd,
            check,
            env,
        } => {
            exec::check_env(revert, env)?;
            exec::revert(
                revert,
                check.as_deref(),
                original,
                Duration::from_millis(*timeout_ms),
                cwd,
            )
            .await
        }
        FaultRecord::Kubernetes { .. } => {
            kube::revert(&ctx.kube, record, original, injected).await
        }
        FaultRecord::Silence {
            alertmanager_url,
            silence_id,
            ends_at,
        } => match silence_id {
            None => Ok(Reverted::NothingToDo(format!(
                "the silence was never confirmed created; if it exists it ends by itself at {ends_at}"
            ))),
            Some(id) => {
                let am = crate::clients::alertmanager::Alertmanager::new(alertmanager_url);
                am.expire_silence(id)
                    .await
                    .map(|()| Reverted::Restored)
                    .map_err(|e| FaultError::Remote {
                        what: format!("expire silence {id}"),
                        reason: e.to_string(),
                    })
            }
        },
    }
}

/// What a person runs to undo the injection by hand.
pub fn manual_fix(record: &FaultRecord, original: &Value) -> String {
    match record {
        FaultRecord::Fleet {
            fleet_url, fault, ..
        } => {
            if original == &Value::Bool(true) {
                format!("nothing: fleet fault {fault} was already on before the drill")
            } else {
                format!(
                    "curl -fsS -X DELETE {}/faults/{fault}",
                    fleet_url.trim_end_matches('/')
                )
            }
        }
        FaultRecord::Exec { revert, cwd, .. } => format!(
            "cd {} && {}",
            crate::shell::shell_quote(&cwd.to_string_lossy()),
            crate::shell::shell_words(revert)
        ),
        FaultRecord::Kubernetes { .. } => kube::kubectl_restore(record, original),
        FaultRecord::Silence {
            alertmanager_url,
            silence_id,
            ends_at,
        } => match silence_id {
            Some(id) => format!(
                "curl -fsS -X DELETE {}/api/v2/silence/{id}",
                alertmanager_url.trim_end_matches('/')
            ),
            None => format!("nothing: the silence ends by itself at {ends_at}"),
        },
    }
}
