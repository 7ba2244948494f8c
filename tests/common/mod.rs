//! Helpers shared by integration tests. Each test binary uses a subset.
#![allow(dead_code)]

pub mod fleet;
pub mod grafana;
pub mod jaeger;
pub mod loki;
pub mod nats;
pub mod prom_text;
pub mod prometheus;
pub mod reports;
pub mod run;
