//! Every integration test but two in one binary: one link instead of one per
//! file, and one test pool, so a long test no longer holds the rest back.
//! `stack.rs` (sets process-wide env vars, re-executes itself) and
//! `grafana.rs` (sets an env var) keep their own process.

mod common;

mod accept;
mod aegis_e2e;
mod baseline_previous;
mod cli;
mod drill_cli;
mod drill_cluster;
mod drill_kube;
mod drill_parallel;
mod drill_runner;
mod drill_watch;
mod fleet;
mod github;
mod grafana_dashboards;
mod http_pipeline;
mod http_probe;
mod jaeger;
mod layering;
mod logql;
mod merge;
mod platform;
mod probe;
mod report;
mod report_render;
mod response_size;
mod routing;
mod rules;
mod spec;
mod trace_audit;
mod trace_spans;
mod validate;
mod validate_public;
mod workflow;
