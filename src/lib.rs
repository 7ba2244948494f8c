//! firedrill: proves an observability stack really works.
//!
//! Data flows one way: spec files -> `spec::Plan` -> runners (probe, drill,
//! accept) -> `report::Report` -> renderers.

pub mod clients;
pub mod drill;
pub mod exit;
pub mod fleet;
pub mod probe;
pub mod report;
pub mod spec;
pub mod stack;
