//! firedrill: proves an observability stack really works.
//!
//! Data flows one way: spec files -> `spec::Plan` -> runners (probe, drill,
//! accept) -> `report::Report` -> renderers.

pub mod accept;
pub mod cli;
pub mod clients;
pub mod commands;
pub mod drill;
pub mod error;
pub mod exit;
pub mod fleet;
pub mod local;
pub mod model;
pub mod probe;
pub mod procfs;
pub mod promql;
pub mod report;
pub mod runinfo;
pub mod secrets;
pub mod shell;
pub mod signals;
pub mod spec;
pub mod stack;
#[cfg(test)]
mod test_fixtures;
pub mod timemath;
pub mod trace;
pub mod validate;
