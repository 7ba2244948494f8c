//! Induced-failure drills: inject a named fault, time the matching alert
//! through Prometheus, Alertmanager and a webhook receiver, then always revert.

pub mod machine;
pub mod plan;
pub mod timeline;
