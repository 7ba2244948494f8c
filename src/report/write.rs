//! Writes every file format of a report into `reports/<run-id>/`.

use super::{json, markdown, Report};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `report.json` and `report.md` into `dir` (created if needed);
/// returns the paths written.
pub fn write_all(report: &Report, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let files = [
        ("report.json", json::render(report)),
        ("report.md", markdown::render(report)),
    ];
    let mut written = Vec::new();
    for (name, body) in files {
        let path = dir.join(name);
        let mut f = std::fs::File::create(&path)?;
        f.write_all(body.as_bytes())?;
        f.sync_all()?;
        written.push(path);
    }
    Ok(written)
}
