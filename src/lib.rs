//! firedrill: proves an observability stack really works.
//!
//! Data flows one way: spec files -> `spec::Plan` -> runners (probe, drill,
//! accept) -> `report::Report` -> renderers.

pub mod accept;
pub mod clients;
pub mod exit;
pub mod fleet;
pub mod probe;
pub mod report;
pub mod spec;
pub mod stack;
