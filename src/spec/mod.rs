//! Spec files -> validated Plan (pure; file:line errors).

pub mod template;
