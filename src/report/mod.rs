//! Report model and renderers. Renderers read only the `Report` value;
//! adding a format touches one file (plus its line in `write`).

pub mod baseline;
pub mod compare_md;
pub mod console;
pub mod findings;
pub mod github;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod md;
pub mod merge;
pub mod model;
pub mod timeline_chart;
pub mod write;

pub use model::{Report, Verdict};
