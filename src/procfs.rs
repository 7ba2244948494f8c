//! Linux `/proc`, read for process checks: which processes of a group are
//! still alive, and when a process started. Where there is no `/proc`,
//! each answers "cannot tell" (`false` / `None`).

use chrono::{DateTime, Utc};
use std::fs;
use std::path::Path;

/// The fields of one `/proc/<pid>/stat` this crate reads.
struct Stat {
    /// `R`, `S`, `Z` (zombie: runs no code), ...
    state: String,
    pgrp: u32,
    /// Clock ticks after boot.
    start_ticks: i64,
}

/// Parses a `stat` file: `pid (comm) state ppid pgrp ... starttime ...`;
/// `comm` may hold spaces and parentheses, so fields count from its end.
fn stat(path: &Path) -> Option<Stat> {
    let text = fs::read_to_string(path).ok()?;
    let f: Vec<&str> = text[text.rfind(')')? + 1..].split_whitespace().collect();
    Some(Stat {
        state: f.first()?.to_string(),
        pgrp: f.get(2)?.parse().ok()?,
        start_ticks: f.get(19)?.parse().ok()?,
    })
}

/// Whether any process of group `pgid` is still alive (zombies do not count).
pub fn group_alive(pgid: u32) -> bool {
    let Ok(dir) = fs::read_dir("/proc") else {
        return false;
    };
    dir.flatten()
        .filter_map(|e| stat(&e.path().join("stat")))
        .any(|s| s.pgrp == pgid && s.state != "Z")
}

/// When process `pid` started.
pub fn started_at(pid: u32) -> Option<DateTime<Utc>> {
    let ticks = stat(Path::new(&format!("/proc/{pid}/stat")))?.start_ticks;
    let btime: i64 = fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { nix::libc::sysconf(nix::libc::_SC_CLK_TCK) };
    let hz = if hz > 0 { hz } else { 100 };
    DateTime::from_timestamp_millis(btime * 1000 + ticks * 1000 / hz)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_started_before_now_and_leads_no_dead_group() {
        let started = started_at(std::process::id()).unwrap();
        assert!(started <= Utc::now(), "{started}");
        assert!(
            Utc::now() - started < chrono::TimeDelta::hours(24 * 365),
            "{started}"
        );
        // The test runner's own group is alive; a group nobody leads is not.
        let own = nix::unistd::getpgrp().as_raw() as u32;
        assert!(group_alive(own));
        assert!(!group_alive(u32::MAX - 7));
    }
}
