//! One thin module per remote service.

pub mod nats;
