//! The drill journal: what was changed, and how to undo it.
//!
//! `reports/<run-id>/journal.json` holds every injection of a run. An entry
//! is written (`injecting`, with the original state) BEFORE the fault is
//! injected, and updated after. Every write goes to a temp file that is
//! fsynced, renamed over the journal, and followed by an fsync of the
//! directory, so a crash leaves either the old or the new journal, never a
//! torn one.

use super::fault::FaultRecord;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use thiserror::Error;

pub const JOURNAL_FILE: &str = "journal.json";
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
    pub entries: Vec<JournalEntry>,
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
}

/// An open journal; every change is persisted before the call returns.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    doc: JournalDoc,
}

impl Journal {
    /// Creates `<reports_dir>/<run_id>/journal.json` (empty).
    pub fn create(reports_dir: &Path, run_id: &str, target: &str) -> Result<Journal, JournalError> {
        let path = reports_dir.join(run_id).join(JOURNAL_FILE);
        let j = Journal {
            path,
            doc: JournalDoc {
                schema: SCHEMA,
                run_id: run_id.to_string(),
                target: target.to_string(),
                created_at: Utc::now(),
                entries: Vec::new(),
            },
        };
        j.persist()?;
        Ok(j)
    }

    pub fn open(path: &Path) -> Result<Journal, JournalError> {
        let bytes = fs::read(path).map_err(|source| JournalError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let doc: JournalDoc =
            serde_json::from_slice(&bytes).map_err(|e| JournalError::Invalid {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        Ok(Journal {
            path: path.to_path_buf(),
            doc,
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
}

/// Every `<reports_dir>/*/journal.json` with unreverted entries, sorted by path.
/// A journal that cannot be read counts as unrecovered (with no entries):
/// it may describe a live fault.
pub fn scan_unrecovered(reports_dir: &Path) -> Vec<Unrecovered> {
    let mut out = Vec::new();
    for path in journal_paths(reports_dir) {
        match Journal::open(&path) {
            Ok(j) => {
                let entries: Vec<JournalEntry> = j.unreverted().into_iter().cloned().collect();
                if !entries.is_empty() {
                    out.push(Unrecovered { path, entries });
                }
            }
            Err(_) => out.push(Unrecovered {
                path,
                entries: Vec::new(),
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
        assert!(Journal::open(&path).unwrap().doc().entries.is_empty());

        let id = j.add(entry("worker-image-tag")).unwrap();
        assert_eq!(id, 1);
        let back = Journal::open(&path).unwrap();
        assert_eq!(back.doc(), j.doc());
        assert_eq!(back.entry(1).unwrap().status, EntryStatus::Injecting);

        j.update(id, |e| e.status = EntryStatus::Reverted).unwrap();
        let back = Journal::open(&path).unwrap();
        assert_eq!(back.entry(1).unwrap().status, EntryStatus::Reverted);
        assert!(back.unreverted().is_empty());

        // Only the journal is left in the directory: no temp files.
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["journal.json"]);

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

        let found = scan_unrecovered(dir.path());
        let paths: Vec<_> = found.iter().map(|u| u.path.clone()).collect();
        assert_eq!(
            paths,
            [
                dir.path().join("a/journal.json"),
                dir.path().join("c/journal.json")
            ]
        );
        assert_eq!(found[0].entries[0].drill, "d1");
        assert!(scan_unrecovered(&dir.path().join("missing")).is_empty());
    }
}
