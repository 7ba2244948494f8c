//! One child process of the local stack: spawned as the leader of its own
//! process group with its output in a log file, and killed together with
//! its whole group on every exit path.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::time::Instant;

use super::{StackError, Tool};

/// How long a synchronous reap waits for a SIGKILLed child to disappear.
const REAP_LIMIT: Duration = Duration::from_secs(2);
/// How long `terminate` waits after its own SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(2);
/// Readiness polls start fast (nats-server is ready in milliseconds) and
/// back off to this.
const MAX_POLL_PAUSE: Duration = Duration::from_millis(100);

/// Why a child did not become ready.
#[derive(Debug)]
pub(crate) enum NotReady {
    Exited(ExitStatus),
    TimedOut,
}

pub(crate) struct ManagedChild {
    tool: Tool,
    child: Child,
    pid: u32,
    log_path: PathBuf,
    /// Length of the (appended) log when this attempt started.
    log_start: u64,
    /// Set when the child was reaped behind tokio's back (`ECHILD`): its
    /// pid may already belong to someone else, so never signal it again.
    gone: bool,
}

impl ManagedChild {
    /// Spawns `program` in a new process group with stdout and stderr
    /// appended to `log_path`. Call from an async task, not from
    /// `spawn_blocking`: `PR_SET_PDEATHSIG` fires when the *thread* that
    /// forked the child exits, and blocking-pool threads exit when idle.
    pub(crate) fn spawn(
        tool: Tool,
        program: &Path,
        args: &[OsString],
        log_path: &Path,
        cwd: &Path,
    ) -> Result<Self, StackError> {
        let write_err = |source| StackError::WriteFile {
            path: log_path.to_path_buf(),
            source,
        };
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .map_err(write_err)?;
        let log_start = log.metadata().map_err(write_err)?.len();
        let log_err = log.try_clone().map_err(write_err)?;

        let mut cmd = Command::new(program);
        cmd.args(args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            // Own group: a terminal's Ctrl-C does not hit the children
            // behind our back, and killpg reaches anything they fork.
            .process_group(0)
            .kill_on_drop(false);
        let parent = std::process::id();
        // SAFETY: the closure runs between fork and exec and only makes
        // async-signal-safe syscalls (prctl, getppid); it allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
                // The parent may have died before prctl took effect; then
                // the signal will never come, so refuse to run orphaned.
                if nix::unistd::getppid().as_raw() as u32 != parent {
                    return Err(std::io::Error::other(
                        "firedrill exited while starting this child",
                    ));
                }
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|source| StackError::Spawn {
            name: tool.display_name(),
            program: program.to_path_buf(),
            env_var: tool.env_var(),
            source,
        })?;
        let pid = child
            .id()
            .expect("a child that was just spawned has not been reaped");
        tracing::debug!(child = tool.display_name(), pid, program = %program.display(), "spawned");
        Ok(ManagedChild {
            tool,
            child,
            pid,
            log_path: log_path.to_path_buf(),
            log_start,
            gone: false,
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    pub(crate) fn name(&self) -> &'static str {
        self.tool.display_name()
    }

    /// Polls `url` until it answers 200, the child exits, or `timeout` passes.
    pub(crate) async fn wait_ready(
        &mut self,
        http: &reqwest::Client,
        url: &str,
        timeout: Duration,
    ) -> Result<(), NotReady> {
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(10);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(NotReady::Exited(status));
            }
            let answered = matches!(
                http.get(url).send().await,
                Ok(resp) if resp.status() == reqwest::StatusCode::OK
            );
            if answered {
                // If our child lost the bind race, the answer came from
                // whoever owns the port; trust it only while ours is alive.
                return match self.child.try_wait() {
                    Ok(Some(status)) => Err(NotReady::Exited(status)),
                    _ => Ok(()),
                };
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(NotReady::TimedOut);
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(MAX_POLL_PAUSE);
        }
    }

    /// The exit status, if the child has exited (reaping it).
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Sends `signal` to the child's process group, unless the child has
    /// been reaped (its pid, and so the group id, may have been reused).
    pub(crate) fn signal_group(&self, signal: Signal) {
        if self.gone || self.child.id().is_none() {
            return;
        }
        // ESRCH just means the group is already empty.
        let _ = killpg(Pid::from_raw(self.pid as i32), signal);
    }

    /// After the caller's SIGTERM: waits until `deadline`, then SIGKILLs the
    /// group and waits a little more.
    pub(crate) async fn terminate(mut self, deadline: Instant) -> Result<(), StackError> {
        match tokio::time::timeout_at(deadline, self.child.wait()).await {
            Ok(Ok(status)) => {
                tracing::debug!(child = self.name(), pid = self.pid, %status, "exited");
                return Ok(());
            }
            Ok(Err(e)) => {
                self.gone = true;
                tracing::debug!(child = self.name(), pid = self.pid, error = %e, "already reaped");
                return Ok(());
            }
            Err(_) => {
                tracing::warn!(
                    child = self.name(),
                    pid = self.pid,
                    "did not exit after SIGTERM; sending SIGKILL"
                );
                self.signal_group(Signal::SIGKILL);
            }
        }
        match tokio::time::timeout(KILL_WAIT, self.child.wait()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => {
                self.gone = true;
                Err(StackError::StopFailed {
                    name: self.name(),
                    pid: self.pid,
                    detail: e.to_string(),
                })
            }
            Err(_) => Err(StackError::StopFailed {
                name: self.name(),
                pid: self.pid,
                detail: format!("still running {KILL_WAIT:?} after SIGKILL"),
            }),
        }
    }

    /// Synchronously waits (bounded) for an already-signalled child to be
    /// reaped, so that its pid is gone when this returns. For `Drop`, which
    /// cannot await.
    pub(crate) fn reap_blocking(&mut self) {
        let until = std::time::Instant::now() + REAP_LIMIT;
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => return,
                Err(_) => {
                    self.gone = true;
                    return;
                }
                Ok(None) if std::time::Instant::now() >= until => {
                    // tokio's orphan queue reaps it later.
                    tracing::warn!(
                        child = self.name(),
                        pid = self.pid,
                        "still not reaped {REAP_LIMIT:?} after SIGKILL"
                    );
                    return;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            }
        }
    }

    /// The last `n` lines of the child's log (whole log, all attempts).
    pub(crate) fn log_tail(&self, n: usize) -> String {
        tail_lines(&read_lossy(&self.log_path, 0), n)
    }

    /// What the child wrote during this attempt.
    pub(crate) fn log_since_spawn(&self) -> String {
        read_lossy(&self.log_path, self.log_start)
    }
}

impl Drop for ManagedChild {
    fn drop(&mut self) {
        if self.gone || self.child.id().is_none() {
            return;
        }
        self.signal_group(Signal::SIGKILL);
        self.reap_blocking();
    }
}

/// Reserves `n` distinct free loopback ports. They are released before the
/// child binds them, so another process can win the race; the launcher
/// retries with fresh ports when that happens.
pub(crate) fn free_ports(n: usize) -> Result<Vec<u16>, StackError> {
    // All listeners are held at once so the ports are distinct.
    let listeners = (0..n)
        .map(|_| std::net::TcpListener::bind(("127.0.0.1", 0)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| StackError::Port { source })?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| StackError::Port { source })
}

fn read_lossy(path: &Path, from: u64) -> String {
    let mut bytes = Vec::new();
    let read = std::fs::File::open(path).and_then(|mut f| {
        f.seek(SeekFrom::Start(from))?;
        f.read_to_end(&mut bytes)
    });
    match read {
        Ok(_) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => format!("(could not read {}: {e})", path.display()),
    }
}

fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(n)..];
    if tail.is_empty() {
        "(log is empty)".to_string()
    } else {
        tail.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_last_lines() {
        assert_eq!(tail_lines("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail_lines("a\nb", 5), "a\nb");
        assert_eq!(tail_lines("", 5), "(log is empty)");
    }

    #[test]
    fn free_ports_are_distinct_and_nonzero() {
        let ports = free_ports(4).unwrap();
        assert_eq!(ports.len(), 4);
        assert!(ports.iter().all(|&p| p != 0));
        let mut sorted = ports.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 4);
    }

    fn sh(dir: &Path, script: &str) -> ManagedChild {
        ManagedChild::spawn(
            Tool::NatsServer,
            Path::new("/bin/sh"),
            &["-c".into(), script.into()],
            &dir.join("sh.log"),
            dir,
        )
        .unwrap()
    }

    fn alive(pid: u32) -> bool {
        nix::sys::signal::kill(Pid::from_raw(pid as i32), None).is_ok()
    }

    #[tokio::test]
    async fn drop_kills_the_whole_group_including_grandchildren() {
        let dir = tempfile::tempdir().unwrap();
        // The shell forks a grandchild and records its pid.
        let child = sh(dir.path(), "sleep 60 & echo $! > grandchild.pid; wait");
        let pid = child.pid();
        let pid_file = dir.path().join("grandchild.pid");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::fs::read_to_string(&pid_file).map_or(true, |s| s.trim().is_empty()) {
            assert!(
                std::time::Instant::now() < deadline,
                "grandchild never started"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let grandchild: u32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(alive(pid) && alive(grandchild));
        drop(child);
        assert!(!alive(pid), "child {pid} survived drop");
        // The grandchild is reparented to init (or a subreaper), which reaps it
        // shortly after the SIGKILL; give that a moment.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while alive(grandchild) && !is_zombie(grandchild) {
            assert!(
                std::time::Instant::now() < deadline,
                "grandchild {grandchild} survived drop"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn is_zombie(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(false)
    }

    #[tokio::test]
    async fn terminate_escalates_to_sigkill_when_sigterm_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let child = sh(
            dir.path(),
            "trap '' TERM; echo started; while true; do sleep 0.05; done",
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        let pid = child.pid();
        child.signal_group(Signal::SIGTERM);
        let started = Instant::now();
        child
            .terminate(Instant::now() + Duration::from_millis(300))
            .await
            .unwrap();
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert!(!alive(pid));
    }

    #[tokio::test]
    async fn readiness_reports_an_early_exit_and_the_log_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = sh(
            dir.path(),
            "echo 'bind: address already in use' >&2; exit 3",
        );
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        // Nothing listens on port 9 of loopback here; the exit is what ends the wait.
        let got = child
            .wait_ready(&http, "http://127.0.0.1:9/", Duration::from_secs(10))
            .await;
        assert!(matches!(got, Err(NotReady::Exited(s)) if s.code() == Some(3)));
        assert!(child.log_since_spawn().contains("address already in use"));
        assert_eq!(child.log_tail(20), "bind: address already in use");
    }

    #[tokio::test]
    async fn readiness_times_out_while_the_child_runs() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = sh(dir.path(), "sleep 60");
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let port = free_ports(1).unwrap()[0];
        let got = child
            .wait_ready(
                &http,
                &format!("http://127.0.0.1:{port}/"),
                Duration::from_millis(200),
            )
            .await;
        assert!(matches!(got, Err(NotReady::TimedOut)));
    }
}
