//! Report model and renderers. Renderers read only the `Report` value.

pub mod console;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod model;
pub mod write;

pub use model::{Report, Verdict};
