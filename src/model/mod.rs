//! Plain values shared by every layer: runners, clients and renderers may
//! all use them, and this module uses nothing else of the crate. A type
//! lives here when a layer below the report (a client) and the report both
//! need it, so that neither has to import the other (see `tests/layering.rs`).

pub mod duration;
pub mod hdr;
pub mod http_probe;
pub mod labels;
pub mod probe;
pub mod snapshot;
pub mod span;
pub mod trace;
pub mod value;
pub mod verdict;
pub mod window;

pub use duration::{human_ms, secs};
pub use labels::format_labels;
pub use value::parse_value;
pub use verdict::Verdict;
pub use window::RunWindow;
