//! `exec` faults: run an inject command, later a revert command.
//!
//! Commands run in their own process group, so a Ctrl-C at the terminal
//! reaches firedrill, which reverts, rather than the command. Whichever way
//! a command ends (exit, timeout, or its future dropped because a signal
//! cancelled the drill) the whole group is killed and waited for, so nothing
//! a `sh -c` started can apply the fault after firedrill reverted it.

use super::contract::{tail, FaultDriver, FaultError, FaultRecord, Prepared, Reverted};
use crate::shell::shell_words;
use crate::spec::drill::ExecFault;
use futures::future::BoxFuture;
use futures::FutureExt;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

const OUTPUT_TAIL: usize = 2000;

/// Runs the spec's `inject` command (and `check`, before it, for the
/// original state) in the working directory firedrill started in.
pub struct ExecDriver {
    inject: Vec<String>,
    revert: Vec<String>,
    check: Option<Vec<String>>,
    timeout: Duration,
    cwd: PathBuf,
}

impl ExecDriver {
    /// From a validated spec (commands non-empty, checked at load).
    pub fn new(spec: &ExecFault) -> Result<Self, FaultError> {
        let cwd = std::env::current_dir().map_err(|e| {
            FaultError::Config(format!(
                "exec fault: cannot read the working directory: {e}"
            ))
        })?;
        Ok(ExecDriver {
            inject: spec.inject.clone(),
            revert: spec.revert.clone(),
            check: spec.check.clone(),
            timeout: spec.timeout,
            cwd,
        })
    }
}

impl FaultDriver for ExecDriver {
    fn prepare(&self) -> BoxFuture<'_, Result<Prepared, FaultError>> {
        async move {
            let original = match &self.check {
                Some(check) => Value::String(run(check, self.timeout, &self.cwd).await?),
                None => Value::Null,
            };
            Ok(Prepared {
                record: FaultRecord::Exec {
                    revert: self.revert.clone(),
                    timeout_ms: self.timeout.as_millis() as u64,
                    cwd: self.cwd.clone(),
                    check: self.check.clone(),
                    env: env_refs(self.revert.iter().chain(self.check.iter().flatten())),
                },
                description: format!("exec {}", shell_words(&self.inject)),
                original,
                injected: Value::String(shell_words(&self.inject)),
            })
        }
        .boxed()
    }

    fn inject<'a>(&'a self, _prepared: &'a Prepared) -> BoxFuture<'a, Result<(), FaultError>> {
        async move { run(&self.inject, self.timeout, &self.cwd).await.map(drop) }.boxed()
    }
}

/// Names of the environment variables `args` read (`$NAME`, `${NAME}`),
/// sorted, without duplicates.
pub fn env_refs<'a>(args: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut out = std::collections::BTreeSet::new();
    for a in args {
        let b = a.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'$' {
                let start = i + 1 + usize::from(b.get(i + 1) == Some(&b'{'));
                let mut end = start;
                while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
                    end += 1;
                }
                if end > start && !b[start].is_ascii_digit() {
                    out.insert(a[start..end].to_string());
                }
                i = end.max(i + 1);
            } else {
                i += 1;
            }
        }
    }
    out.into_iter().collect()
}

/// Refuses a revert whose command reads a variable this process does not
/// have (e.g. `recover` run from another shell than the drill).
pub fn check_env(revert: &[String], env: &[String]) -> Result<(), FaultError> {
    let missing: Vec<&str> = env
        .iter()
        .filter(|v| std::env::var_os(v).is_none())
        .map(String::as_str)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(FaultError::Config(format!(
        "the revert command `{}` reads ${}, which {} not set here (the drill had it); \
         set it as the drill had it and run firedrill recover again",
        shell_words(revert),
        missing.join(", $"),
        if missing.len() == 1 { "is" } else { "are" }
    )))
}

/// Runs the journaled revert command, unless the journaled `check` prints
/// the state from before the inject again (something already undid it).
pub async fn revert(
    argv: &[String],
    check: Option<&[String]>,
    original: &Value,
    timeout: Duration,
    cwd: &Path,
) -> Result<Reverted, FaultError> {
    if let (Some(check), Value::String(before)) = (check, original) {
        if run(check, timeout, cwd).await.ok().as_ref() == Some(before) {
            return Ok(Reverted::AlreadyReverted(format!(
                "`{}` already prints the state from before the inject ({before:?})",
                shell_words(check)
            )));
        }
    }
    run(argv, timeout, cwd).await.map(|_| Reverted::Restored)
}

/// Runs `argv` in `cwd`, bounded by `timeout`; returns trimmed stdout.
/// The command's process group is killed on every path (see [`GroupGuard`]).
pub async fn run(argv: &[String], timeout: Duration, cwd: &Path) -> Result<String, FaultError> {
    let command = shell_words(argv);
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| FaultError::Config("exec fault: empty command".into()))?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| FaultError::Exec {
        command: command.clone(),
        status: "did not start".into(),
        output: e.to_string(),
    })?;
    // The group id is the child's pid (process_group(0)). Armed before the
    // first await: dropping this future (a signal aborted the drill) kills
    // the group too, not only the direct child.
    let group = child.id().map(GroupGuard);
    // Output is kept up to a cap and the rest drained, so a chatty command
    // can neither exhaust memory nor bloat the journal.
    let out = tokio::spawn(read_capped(child.stdout.take()));
    let err = tokio::spawn(read_capped(child.stderr.take()));
    let status = match tokio::time::timeout(timeout, child.wait()).await {
        Err(_) => {
            return Err(FaultError::Timeout {
                command,
                timeout: humantime::format_duration(timeout).to_string(),
            })
        }
        Ok(Err(e)) => {
            return Err(FaultError::Exec {
                command,
                status: "could not be waited for".into(),
                output: e.to_string(),
            })
        }
        Ok(Ok(status)) => status,
    };
    // The command is done: whatever it left in its group goes now, which
    // also closes the pipes a background child may have held open.
    drop(group);
    let collect = |h: tokio::task::JoinHandle<String>| async {
        tokio::time::timeout(Duration::from_secs(2), h)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default()
    };
    let stdout = collect(out).await.trim().to_string();
    if status.success() {
        Ok(stdout)
    } else {
        let stderr = collect(err).await;
        let both = format!("{stdout}\n{stderr}");
        Err(FaultError::Exec {
            command,
            status: status.to_string(),
            output: tail(&both, OUTPUT_TAIL),
        })
    }
}

/// How much of a command's stdout (and of its stderr) is kept.
const OUTPUT_KEPT: usize = 64 * 1024;

/// Reads a pipe to its end, keeping the first [`OUTPUT_KEPT`] bytes and
/// saying how much more there was.
async fn read_capped(pipe: Option<impl tokio::io::AsyncRead + Unpin>) -> String {
    use tokio::io::AsyncReadExt;
    let Some(mut pipe) = pipe else {
        return String::new();
    };
    let (mut kept, mut dropped) = (Vec::new(), 0usize);
    let mut buf = [0u8; 8192];
    while let Ok(n) = pipe.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let room = OUTPUT_KEPT.saturating_sub(kept.len()).min(n);
        kept.extend_from_slice(&buf[..room]);
        dropped += n - room;
    }
    let mut s = String::from_utf8_lossy(&kept).into_owned();
    if dropped > 0 {
        s.push_str(&format!("\n… ({dropped} more bytes not kept)"));
    }
    s
}

/// How long dropping a [`GroupGuard`] waits for the killed group to vanish.
const GROUP_GONE_WAIT: Duration = Duration::from_secs(2);

/// Owns a command's process group: on drop (exit, timeout, error, or the
/// future cancelled) sends SIGKILL to the whole group and waits, bounded,
/// until no live (non-zombie) process is left in it. A command that must
/// leave something running has to start it in a session of its own.
struct GroupGuard(u32);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        let pgid = nix::unistd::Pid::from_raw(self.0 as i32);
        if nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL).is_err() {
            return; // ESRCH: the group is already empty.
        }
        // SIGKILL cannot be caught, but delivery is asynchronous: wait (a few
        // ms in practice) so the revert that follows cannot race it.
        let start = std::time::Instant::now();
        while crate::procfs::group_alive(self.0) && start.elapsed() < GROUP_GONE_WAIT {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drill::fault::{self, kube::KubeAccess, FaultContext};
    use crate::spec::drill::Fault;
    use std::time::Instant;

    fn sh(script: &str) -> Vec<String> {
        vec!["sh".into(), "-c".into(), script.into()]
    }

    fn ctx() -> FaultContext {
        FaultContext::new(None, KubeAccess::from_env())
    }

    #[tokio::test]
    async fn inject_then_revert_real_commands() {
        let dir = tempfile::tempdir().unwrap();
        let flag = dir.path().join("fault");
        let f = flag.display().to_string();
        let plan = Fault::Exec(ExecFault {
            inject: sh(&format!("touch {f}")),
            revert: sh(&format!("rm -f {f}")),
            check: Some(sh(&format!("test -e {f} && echo on || echo off"))),
            timeout: Duration::from_secs(5),
            touches: Vec::new(),
        });
        let driver = fault::driver(&plan, &ctx()).unwrap();
        let p = driver.prepare().await.unwrap();
        assert_eq!(p.original, Value::String("off".into()));
        assert!(!flag.exists());
        driver.inject(&p).await.unwrap();
        assert!(flag.exists());
        let r = fault::revert(&p.record, &p.original, &p.injected, &ctx())
            .await
            .unwrap();
        assert_eq!(r, Reverted::Restored);
        assert!(!flag.exists());
        // Reverted again (recover after a revert): the check shows the
        // original state, so the revert command is not run.
        let r = fault::revert(&p.record, &p.original, &p.injected, &ctx())
            .await
            .unwrap();
        assert!(matches!(r, Reverted::AlreadyReverted(_)), "{r:?}");
        let fix = fault::manual_fix(&p.record, &p.original);
        assert!(fix.contains("rm -f"), "{fix}");
    }

    #[tokio::test]
    async fn failing_command_reports_status_and_output() {
        let err = run(
            &sh("echo oops >&2; exit 3"),
            Duration::from_secs(5),
            Path::new("/"),
        )
        .await
        .unwrap_err();
        match err {
            FaultError::Exec { status, output, .. } => {
                assert!(status.contains('3'), "{status}");
                assert!(output.contains("oops"), "{output}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let late = dir.path().join("late");
        let started = Instant::now();
        let err = run(
            &sh(&format!("sleep 3; touch {}", late.display())),
            Duration::from_millis(300),
            Path::new("/"),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, FaultError::Timeout { .. }), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(3));
        tokio::time::sleep(Duration::from_millis(3500)).await;
        assert!(!late.exists(), "the shell's child outlived the timeout");
    }

    #[tokio::test]
    async fn huge_output_is_capped_not_buffered() {
        let out = run(
            &sh("head -c 20000000 /dev/zero | tr '\\0' x"),
            Duration::from_secs(20),
            Path::new("/"),
        )
        .await
        .unwrap();
        assert!(out.len() < OUTPUT_KEPT + 100, "{} bytes kept", out.len());
        assert!(
            out.ends_with("(19934464 more bytes not kept)"),
            "{}",
            &out[out.len() - 60..]
        );
    }

    #[test]
    fn finds_the_variables_a_command_reads() {
        let argv = sh(r#"rm -f "$FIREDRILL_TEST_FAULT" ${HOME}/x $1 $$ cost$ $_ok"#);
        assert_eq!(
            env_refs(argv.iter()),
            ["FIREDRILL_TEST_FAULT", "HOME", "_ok"]
        );
        assert!(check_env(&argv, &["HOME".into()]).is_ok());
        let err = check_env(&argv, &["FIREDRILL_SURELY_UNSET_VAR".into()]).unwrap_err();
        assert!(
            err.to_string()
                .contains("$FIREDRILL_SURELY_UNSET_VAR, which is not set here"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_cancelled_command_takes_its_grandchildren_with_it() {
        // The drill body is aborted on a signal, which drops `run`'s future
        // mid-wait; a grandchild must not outlive it and apply the fault.
        let dir = tempfile::tempdir().unwrap();
        let late = dir.path().join("late");
        let script = format!("sh -c 'sleep 1; touch {}'; true", late.display());
        let cancelled = tokio::time::timeout(
            Duration::from_millis(300),
            run(&sh(&script), Duration::from_secs(30), Path::new("/")),
        )
        .await;
        assert!(
            cancelled.is_err(),
            "the command should still have been running"
        );
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(
            !late.exists(),
            "a grandchild outlived the cancelled command"
        );
    }

    #[tokio::test]
    async fn a_finished_command_leaves_nothing_running_in_its_group() {
        let dir = tempfile::tempdir().unwrap();
        let late = dir.path().join("late");
        // Backgrounded with its output detached, so the shell exits at once.
        let script = format!("(sleep 1; touch {}) >/dev/null 2>&1 &", late.display());
        run(&sh(&script), Duration::from_secs(5), Path::new("/"))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(!late.exists(), "a background child outlived the command");
    }
}
