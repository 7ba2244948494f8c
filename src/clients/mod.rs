//! One thin module per remote service.

pub mod alertmanager;
pub mod github;
pub mod grafana;
pub mod http;
pub mod jaeger;
pub mod loki;
pub mod nats;
pub mod prometheus;
pub mod tempo;
