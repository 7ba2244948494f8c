//! The drill journal: what was changed, and how to undo it.
//!
//! `reports/<run-id>/journal.json` holds every injection of a run. An entry
//! is written (`injecting`, with the original state) BEFORE the fault is
//! injected, and updated after. Every write goes to a temp file that is
//! fsynced, renamed over the journal, and followed by an fsync of the
//! directory, so a crash leaves either the old or the new journal, never a
//! torn one.
//!
//! A live run holds an exclusive lock on `journal.lock` beside its journal
//! for as long as it may have a fault live; the kernel drops the lock when
//! the process dies, however it dies (SIGKILL included). So `recover` and the
//! pre-drill check tell a live run's journal (locked: leave it to its owner)
//! from a dead run's (unlocked: revert it). The journal also records its
//! owner (pid, host, start) so messages can name it.

use super::fault::{FaultError, FaultRecord, Reverted};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use thiserror::Error;

pub const JOURNAL_FILE: &str = "journal.json";
/// Beside the journal: locked exclusively while the owning run is live.
pub const LOCK_FILE: &str = "journal.lock";
const SCHEMA: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryStatus {
    /// Journaled; the inject call may or may not have happened.
    Injecting,
    Injected,
    Reverted,
    RevertFailed,
}

impl EntryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryStatus::Injecting => "injecting",
            EntryStatus::Injected => "injected",
            EntryStatus::Reverted => "reverted",
            EntryStatus::RevertFailed => "revert_failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub id: u32,
    pub drill: String,
    pub trial: u32,
    /// One line: what was changed.
    pub fault: String,
    /// How to undo it, self-contained.
    pub record: FaultRecord,
    pub original: Value,
    pub injected: Value,
    pub status: EntryStatus,
    pub journaled_at: DateTime<Utc>,
    pub injected_at: Option<DateTime<Utc>>,
    pub reverted_at: Option<DateTime<Utc>>,
    /// Why the last revert failed.
    pub error: Option<String>,
    /// e.g. "already at its original value".
    pub note: Option<String>,
    /// What a person runs to undo it by hand.
    pub manual_recovery: String,
}

impl JournalEntry {
    /// A new entry (status `injecting`; its id is assigned by [`Journal::add`]),
    /// written before the change is made.
    #[allow(clippy::too_many_arguments)]
    pub fn injecting(
        drill: &crate::spec::drill::DrillSpec,
        trial: u32,
        at: DateTime<Utc>,
        record: FaultRecord,
        fault: String,
        original: Value,
        injected: Value,
    ) -> JournalEntry {
        let manual_recovery = super::fault::manual_fix(&record, &original);
        JournalEntry {
            id: 0,
            drill: drill.name.clone(),
            trial,
            fault,
            record,
            original,
            injected,
            status: EntryStatus::Injecting,
            journaled_at: at,
            injected_at: None,
            reverted_at: None,
            error: None,
            note: None,
            manual_recovery,
        }
    }

    /// Records how a revert of this entry ended. `by` names who reverted
    /// it (e.g. `firedrill recover`) for the note; the drill's own revert
    /// passes `None` and keeps only what the revert had to say.
    pub fn record_revert(
        &mut self,
        result: &Result<Reverted, FaultError>,
        at: DateTime<Utc>,
        by: Option<&str>,
    ) {
        match result {
            Ok(done) => {
                self.status = EntryStatus::Reverted;
                self.reverted_at = Some(at);
                self.error = None;
                match (by, done.note()) {
                    (None, None) => {}
                    (None, Some(n)) => self.note = Some(n.to_string()),
                    (Some(by), None) => self.note = Some(format!("reverted by {by}")),
                    (Some(by), Some(n)) => self.note = Some(format!("{by}: {n}")),
                }
            }
            Err(err) => {
                self.status = EntryStatus::RevertFailed;
                self.error = Some(err.to_string());
            }
        }
    }

    /// The status, with the last revert error if any: `revert-failed: …`.
    pub fn status_detail(&self) -> String {
        match &self.error {
            Some(e) => format!("{}: {e}", self.status.as_str()),
            None => self.status.as_str().to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalDoc {
    pub schema: u32,
    pub run_id: String,
    pub target: String,
    pub created_at: DateTime<Utc>,
    /// The run that wrote it (absent in journals of older versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
    pub entries: Vec<JournalEntry>,
}

/// Which process owns a journal, for messages ("pid 4242 on ci-7 since …").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Owner {
    pub pid: u32,
    pub host: String,
    pub started_at: DateTime<Utc>,
}

impl Owner {
    fn this_process() -> Owner {
        Owner {
            pid: std::process::id(),
            host: this_host(),
            started_at: Utc::now(),
        }
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} on {} since {}",
            self.pid,
            self.host,
            self.started_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
    }
}

#[derive(Debug, Error)]
pub enum JournalError {
    #[error("cannot write drill journal {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read drill journal {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("drill journal {path} is not valid: {reason}. Fix or move it by hand after checking its faults are reverted")]
    Invalid { path: PathBuf, reason: String },
    #[error("drill journal {path} belongs to a run that is still live ({owner}); it reverts its own faults. If that process is stuck, stop it (kill -TERM {pid}) and run firedrill recover again")]
    Live {
        path: PathBuf,
        owner: String,
        pid: String,
    },
}

/// An open journal; every change is persisted before the call returns.
/// Holds the journal's lock while it lives.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    doc: JournalDoc,
    _lock: fs::File,
}

impl Journal {
    /// Creates `<reports_dir>/<run_id>/journal.json` (empty), locked by
    /// this process until the `Journal` is dropped.
    pub fn create(reports_dir: &Path, run_id: &str, target: &str) -> Result<Journal, JournalError> {
        let path = reports_dir.join(run_id).join(JOURNAL_FILE);
        let write_err = |source| JournalError::Write {
            path: path.clone(),
            source,
        };
        fs::create_dir_all(path.parent().unwrap_or(Path::new("."))).map_err(write_err)?;
        let lock = match try_lock(&path).map_err(write_err)? {
            Some(l) => l,
            None => {
                return Err(write_err(std::io::Error::new(
                    std::io::ErrorKind::WouldBlock,
                    "another live run holds its lock (run ids must be unique)",
                )))
            }
        };
        let j = Journal {
            path: path.clone(),
            doc: JournalDoc {
                schema: SCHEMA,
                run_id: run_id.to_string(),
                target: target.to_string(),
                created_at: Utc::now(),
                owner: Some(Owner::this_process()),
                entries: Vec::new(),
            },
            _lock: lock,
        };
        j.persist()?;
        Ok(j)
    }

    /// Opens a dead run's journal for recovery, taking its lock; a journal
    /// whose owner is still live is refused with [`JournalError::Live`].
    pub fn open(path: &Path) -> Result<Journal, JournalError> {
        let doc = read_doc(path)?;
        let lock = try_lock(path).map_err(|source| JournalError::Write {
            path: lock_path(path),
            source,
        })?;
        let live_owner = doc.owner.as_ref().is_some_and(Owner::is_running_here);
        let (Some(lock), false) = (lock, live_owner) else {
            return Err(live_error(path, doc.owner.as_ref()));
        };
        Ok(Journal {
            path: path.to_path_buf(),
            doc,
            _lock: lock,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn doc(&self) -> &JournalDoc {
        &self.doc
    }

    pub fn entry(&self, id: u32) -> Option<&JournalEntry> {
        self.doc.entries.iter().find(|e| e.id == id)
    }

    /// Appends an entry (its `id` is assigned here) and persists.
    pub fn add(&mut self, mut entry: JournalEntry) -> Result<u32, JournalError> {
        let id = self.doc.entries.iter().map(|e| e.id).max().unwrap_or(0) + 1;
        entry.id = id;
        self.doc.entries.push(entry);
        self.persist()?;
        Ok(id)
    }

    /// Changes one entry and persists.
    pub fn update(
        &mut self,
        id: u32,
        f: impl FnOnce(&mut JournalEntry),
    ) -> Result<(), JournalError> {
        if let Some(e) = self.doc.entries.iter_mut().find(|e| e.id == id) {
            f(e);
        }
        self.persist()
    }

    /// Entries whose fault may still be live.
    pub fn unreverted(&self) -> Vec<&JournalEntry> {
        self.doc
            .entries
            .iter()
            .filter(|e| e.status != EntryStatus::Reverted)
            .collect()
    }

    fn persist(&self) -> Result<(), JournalError> {
        let bytes = serde_json::to_vec_pretty(&self.doc).expect("journal serialises");
        write_atomic(&self.path, &bytes).map_err(|source| JournalError::Write {
            path: self.path.clone(),
            source,
        })
    }
}

/// Reads a journal without taking its lock (for looking only).
pub fn read_doc(path: &Path) -> Result<JournalDoc, JournalError> {
    let bytes = fs::read(path).map_err(|source| JournalError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|e| JournalError::Invalid {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

fn lock_path(journal: &Path) -> PathBuf {
    journal.with_file_name(LOCK_FILE)
}

/// Takes the journal's lock without waiting: `None` when a live process
/// (this one included, through another handle) holds it.
fn try_lock(journal: &Path) -> std::io::Result<Option<fs::File>> {
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock_path(journal))?;
    match f.try_lock() {
        Ok(()) => Ok(Some(f)),
        Err(fs::TryLockError::WouldBlock) => Ok(None),
        Err(fs::TryLockError::Error(e)) => Err(e),
    }
}

/// Whether the run that owns `journal` is live: it holds the lock, or
/// (should the lock file have been removed under it) the journal's owner is
/// a `firedrill` process on this host that is still running.
pub fn owner_is_live(journal: &Path) -> bool {
    let locked = lock_path(journal).exists() && matches!(try_lock(journal), Ok(None));
    locked
        || read_doc(journal)
            .ok()
            .and_then(|d| d.owner)
            .is_some_and(|o| o.is_running_here())
}

impl Owner {
    /// Same host, and its pid is a running process named `firedrill` (a
    /// reused pid almost never is).
    fn is_running_here(&self) -> bool {
        if !self.is_this_host() {
            return false;
        }
        let named_firedrill = std::fs::read_to_string(format!("/proc/{}/comm", self.pid))
            .is_ok_and(|c| c.trim() == "firedrill");
        // A pid reused by a later firedrill started after the owner wrote
        // its journal: that process is not the owner.
        named_firedrill
            && crate::procfs::started_at(self.pid)
                .is_none_or(|t| t <= self.started_at + chrono::TimeDelta::seconds(2))
    }

    /// Whether it was written on this host (`recover` leaves other hosts'
    /// journals alone unless given one by path).
    pub fn is_this_host(&self) -> bool {
        self.host == this_host()
    }
}

fn this_host() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown host".into())
}

fn live_error(path: &Path, owner: Option<&Owner>) -> JournalError {
    JournalError::Live {
        path: path.to_path_buf(),
        owner: owner.map_or_else(|| "owner unknown".into(), Owner::to_string),
        pid: owner.map_or_else(|| "<pid>".into(), |o| o.pid.to_string()),
    }
}

/// temp file in the same directory -> fsync -> rename -> fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// A journal with entries that are not reverted.
#[derive(Debug, Clone, PartialEq)]
pub struct Unrecovered {
    pub path: PathBuf,
    pub entries: Vec<JournalEntry>,
    /// Why it could not be read, when it could not.
    pub unreadable: Option<String>,
}

/// What the pre-drill check found under a reports dir.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scan {
    /// Dead runs' journals with unreverted entries, or unreadable ones.
    pub unrecovered: Vec<Unrecovered>,
    /// Journals whose run is still live (it reverts its own faults): one
    /// line each naming the journal and its owner.
    pub live: Vec<String>,
}

/// Every `<reports_dir>/*/journal.json`, sorted by path, sorted into dead
/// runs' unrecovered journals and live runs' journals. A journal that cannot
/// be read counts as unrecovered (it may describe a live fault).
pub fn scan(reports_dir: &Path) -> Scan {
    let mut out = Scan::default();
    for path in journal_paths(reports_dir) {
        let doc = read_doc(&path);
        if owner_is_live(&path) {
            let owner = doc
                .as_ref()
                .ok()
                .and_then(|d| d.owner.as_ref())
                .map_or_else(|| "owner unknown".into(), Owner::to_string);
            out.live
                .push(format!("{} (a live run: {owner})", path.display()));
            continue;
        }
        match doc {
            Ok(d) => {
                let entries: Vec<JournalEntry> = d
                    .entries
                    .into_iter()
                    .filter(|e| e.status != EntryStatus::Reverted)
                    .collect();
                if !entries.is_empty() {
                    out.unrecovered.push(Unrecovered {
                        path,
                        entries,
                        unreadable: None,
                    });
                }
            }
            Err(e) => out.unrecovered.push(Unrecovered {
                path,
                entries: Vec::new(),
                unreadable: Some(e.to_string()),
            }),
        }
    }
    out
}

/// `<reports_dir>/*/journal.json`, sorted.
pub fn journal_paths(reports_dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = fs::read_dir(reports_dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .map(|e| e.path().join(JOURNAL_FILE))
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn entry(drill: &str) -> JournalEntry {
        JournalEntry {
            id: 0,
            drill: drill.into(),
            trial: 1,
            fault: "fleet fault worker-image-tag".into(),
            record: FaultRecord::Fleet {
                fleet_url: "http://127.0.0.1:1".into(),
                fault: "worker-image-tag".into(),
                instance: None,
            },
            original: Value::Bool(false),
            injected: Value::Bool(true),
            status: EntryStatus::Injecting,
            journaled_at: Utc::now(),
            injected_at: None,
            reverted_at: None,
            error: None,
            note: None,
            manual_recovery: "curl -fsS -X DELETE http://127.0.0.1:1/faults/worker-image-tag"
                .into(),
        }
    }

    #[test]
    fn write_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::create(dir.path(), "run-1", "local").unwrap();
        let path = dir.path().join("run-1").join("journal.json");
        assert_eq!(j.path(), path);
        // Written before anything is injected: the file exists and is empty.
        assert!(read_doc(&path).unwrap().entries.is_empty());

        let id = j.add(entry("worker-image-tag")).unwrap();
        assert_eq!(id, 1);
        let back = read_doc(&path).unwrap();
        assert_eq!(&back, j.doc());
        assert_eq!(back.entries[0].status, EntryStatus::Injecting);

        j.update(id, |e| e.status = EntryStatus::Reverted).unwrap();
        let back = read_doc(&path).unwrap();
        assert_eq!(back.entries[0].status, EntryStatus::Reverted);
        assert!(j.unreverted().is_empty());

        // Only the journal and its lock are left in the directory: no temp files.
        let mut names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["journal.json", "journal.lock"]);

        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"status\": \"reverted\""), "{text}");
        assert!(text.contains("\"type\": \"fleet\""), "{text}");
    }

    #[test]
    fn scan_finds_unreverted_and_unreadable_journals() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Journal::create(dir.path(), "a", "local").unwrap();
        a.add(entry("d1")).unwrap();
        let mut b = Journal::create(dir.path(), "b", "local").unwrap();
        let id = b.add(entry("d2")).unwrap();
        b.update(id, |e| e.status = EntryStatus::Reverted).unwrap();
        fs::create_dir_all(dir.path().join("c")).unwrap();
        fs::write(dir.path().join("c/journal.json"), b"{not json").unwrap();
        fs::create_dir_all(dir.path().join("d")).unwrap(); // no journal at all
        drop((a, b)); // their runs ended: the locks are released

        let found = scan(dir.path()).unrecovered;
        let paths: Vec<_> = found.iter().map(|u| u.path.clone()).collect();
        assert_eq!(
            paths,
            [
                dir.path().join("a/journal.json"),
                dir.path().join("c/journal.json")
            ]
        );
        assert_eq!(found[0].entries[0].drill, "d1");
        assert!(found[1].unreadable.is_some());
        assert_eq!(scan(&dir.path().join("missing")), Scan::default());
    }

    #[test]
    fn a_live_runs_journal_is_left_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut live = Journal::create(dir.path(), "live", "local").unwrap();
        live.add(entry("d1")).unwrap();
        let path = live.path().to_path_buf();

        assert!(owner_is_live(&path));
        let found = scan(dir.path());
        assert!(found.unrecovered.is_empty(), "{found:?}");
        assert_eq!(found.live.len(), 1);
        assert!(
            found.live[0].contains(&format!("pid {}", std::process::id())),
            "{found:?}"
        );
        let err = Journal::open(&path).unwrap_err();
        assert!(matches!(err, JournalError::Live { .. }), "{err}");
        assert!(err.to_string().contains("still live"), "{err}");

        // The run ends (or is SIGKILLed): the kernel releases the lock.
        drop(live);
        assert!(!owner_is_live(&path));
        assert_eq!(scan(dir.path()).unrecovered.len(), 1);
        let back = Journal::open(&path).unwrap();
        assert_eq!(back.doc().owner.as_ref().unwrap().pid, std::process::id());
    }
}
