//! Writes every file format of a report into `reports/<run-id>/`.

use super::{json, junit, markdown, Report};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `report.json`, `report.md` and `junit.xml` into `dir` (created if
/// needed), each fsynced, then the directory itself; returns the paths
/// written, in that order.
pub fn write_all(report: &Report, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let files = [
        ("report.json", json::render(report)),
        ("report.md", markdown::render(report)),
        ("junit.xml", junit::render(report)),
    ];
    let mut written = Vec::new();
    for (name, body) in files {
        let path = dir.join(name);
        let mut f = std::fs::File::create(&path)?;
        f.write_all(body.as_bytes())?;
        f.sync_all()?;
        written.push(path);
    }
    // The new directory entries survive a crash too (best effort: not every
    // platform can open a directory for syncing).
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(written)
}
