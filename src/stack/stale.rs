//! Temp dirs of stacks whose firedrill was SIGKILLed.
//!
//! SIGKILL runs no destructor: the children die (`PR_SET_PDEATHSIG`), but
//! the `firedrill-stack-*` dir with its TSDB, JetStream store and logs is
//! left behind. Each stack writes its owner's pid into its dir; the next
//! start removes the dirs whose owner no longer exists.

use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;

/// Prefix of every stack's temp dir.
pub const DIR_PREFIX: &str = "firedrill-stack-";
/// File in a stack's temp dir holding the pid of the firedrill that owns it.
pub const OWNER_FILE: &str = "owner.pid";

/// Whether process `pid` no longer exists (EPERM means it does, as
/// another user's).
fn gone(pid: i32) -> bool {
    pid > 0 && kill(Pid::from_raw(pid), None) == Err(Errno::ESRCH)
}

/// Removes every `firedrill-stack-*` dir in `parent` whose owner pid file
/// names a process that is gone, and returns the removed dirs. A dir
/// without a readable pid file is left alone: it may be one that another
/// firedrill is creating right now, or not ours at all.
pub fn sweep(parent: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(DIR_PREFIX) {
            continue;
        }
        let dir = entry.path();
        let owner = std::fs::read_to_string(dir.join(OWNER_FILE))
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok());
        let Some(pid) = owner.filter(|&p| gone(p)) else {
            continue;
        };
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {
                tracing::info!(
                    dir = %dir.display(),
                    pid,
                    "removed the temp dir of a stack whose firedrill was killed"
                );
                removed.push(dir);
            }
            Err(e) => tracing::warn!(
                dir = %dir.display(),
                pid,
                "cannot remove the stale temp dir of a killed stack ({e}); remove it by hand"
            ),
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack_dir(parent: &Path, name: &str, owner: Option<&str>) -> PathBuf {
        let dir = parent.join(format!("{DIR_PREFIX}{name}"));
        std::fs::create_dir_all(dir.join("prom")).unwrap();
        if let Some(pid) = owner {
            std::fs::write(dir.join(OWNER_FILE), pid).unwrap();
        }
        dir
    }

    fn dead_pid() -> i32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        child.wait().unwrap();
        pid
    }

    #[test]
    fn removes_only_dirs_of_dead_owners() {
        let tmp = tempfile::tempdir().unwrap();
        let dead = stack_dir(tmp.path(), "dead", Some(&dead_pid().to_string()));
        let live = stack_dir(tmp.path(), "live", Some(&std::process::id().to_string()));
        let unowned = stack_dir(tmp.path(), "unowned", None);
        let garbled = stack_dir(tmp.path(), "garbled", Some("not a pid"));
        let other = tmp.path().join("something-else");
        std::fs::create_dir(&other).unwrap();
        std::fs::write(other.join(OWNER_FILE), dead_pid().to_string()).unwrap();

        assert_eq!(sweep(tmp.path()), vec![dead.clone()]);
        assert!(!dead.exists());
        for kept in [live, unowned, garbled, other] {
            assert!(kept.exists(), "{} was removed", kept.display());
        }
        assert!(sweep(tmp.path()).is_empty());
    }

    #[test]
    fn a_missing_parent_is_nothing_to_sweep() {
        assert!(sweep(Path::new("/nonexistent/firedrill")).is_empty());
    }
}
