//! `firedrill merge`: many reports (a matrix job's legs) into one. Pure:
//! the command reads the files and writes the result.
//!
//! Percentiles of the merged report come from the exact sum of the inputs'
//! HDR histograms (never from averaging their percentiles); its verdict is
//! the worst of the inputs'; each input's identity (run id, target, agent
//! types) and its own figures are kept in [`InputRun`].

use super::model::{
    DrillResult, ProbeResult, Report, TargetInfo, TimingStats, ToolInfo, SCHEMA_VERSION,
};
use crate::model::hdr;
use crate::model::probe::{LatencySummary, ProbeOutcome};
use crate::model::{RunWindow, Verdict};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One input of a merged report, as its tables show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputRun {
    pub run_id: String,
    /// The file it was read from.
    pub file: String,
    pub command: String,
    pub target: String,
    /// Agent types its probes sent sentinels as.
    pub agent_types: Vec<String>,
    pub verdict: Verdict,
    pub window: RunWindow,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<InputProbe>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drills: Vec<InputDrill>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub criteria: Vec<InputCriterion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputProbe {
    pub name: String,
    pub agent_type: String,
    pub verdict: Verdict,
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputDrill {
    pub name: String,
    pub verdict: Verdict,
    pub trials: usize,
    pub time_to_fire: Option<TimingStats>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputCriterion {
    pub id: String,
    pub verdict: Verdict,
    /// The worst listed series' value, as Prometheus wrote it.
    pub value: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MergeError {
    #[error("nothing to merge: name at least one report.json")]
    Empty,
    #[error(
        "{file} is report schema {found} but {first_file} is schema {first}: reports of different schema versions \
         cannot be merged; re-run the older leg with the same firedrill, or merge each schema's reports separately"
    )]
    SchemaMismatch {
        file: String,
        found: u32,
        first_file: String,
        first: u32,
    },
    #[error(
        "{file} is report schema {found}; this firedrill merges schema {SCHEMA_VERSION} (older reports carry no \
         histograms, so their percentiles cannot be merged exactly); re-run that leg with this firedrill"
    )]
    UnsupportedSchema { file: String, found: u32 },
    #[error(
        "run id {run_id} is in both {first_file} and {file}: each run may be merged once; drop the duplicate file"
    )]
    OverlappingRunId {
        run_id: String,
        first_file: String,
        file: String,
    },
    #[error("{file}: {what} has an unreadable histogram ({reason}); the file is damaged, download it again")]
    BadHistogram {
        file: String,
        what: String,
        reason: String,
    },
    #[error(
        "{file}: {what} shows percentiles but carries no histogram, so it cannot be merged exactly; \
         re-run that leg with this firedrill"
    )]
    MissingHistogram { file: String, what: String },
}

/// Merges `inputs` (file name, report) into one report with id `run_id`.
pub fn merge(
    inputs: &[(String, Report)],
    run_id: &str,
    tool: ToolInfo,
) -> Result<Report, MergeError> {
    let (first_file, first) = inputs.first().ok_or(MergeError::Empty)?;
    for (file, r) in inputs {
        if r.schema_version != first.schema_version {
            return Err(MergeError::SchemaMismatch {
                file: file.clone(),
                found: r.schema_version,
                first_file: first_file.clone(),
                first: first.schema_version,
            });
        }
    }
    if first.schema_version != SCHEMA_VERSION {
        return Err(MergeError::UnsupportedSchema {
            file: first_file.clone(),
            found: first.schema_version,
        });
    }
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut runs = Vec::new();
    for (file, r) in inputs {
        for run in identities(file, r) {
            if let Some(first_file) = seen.get(&run.run_id) {
                return Err(MergeError::OverlappingRunId {
                    run_id: run.run_id.clone(),
                    first_file: first_file.clone(),
                    file: file.clone(),
                });
            }
            seen.insert(run.run_id.clone(), file.clone());
            runs.push(run);
        }
    }

    let window = RunWindow {
        start: inputs
            .iter()
            .map(|(_, r)| r.window.start)
            .min()
            .expect("non-empty"),
        end: inputs
            .iter()
            .map(|(_, r)| r.window.end)
            .max()
            .expect("non-empty"),
    };
    let mut out = Report {
        schema_version: SCHEMA_VERSION,
        run_id: run_id.to_string(),
        command: "merge".into(),
        tool,
        target: merged_target(inputs),
        window,
        verdict: Verdict::Pass,
        probes: merge_probes(inputs)?,
        criteria: inputs
            .iter()
            .flat_map(|(_, r)| r.criteria.clone())
            .collect(),
        drills: merge_drills(inputs)?,
        errors: inputs
            .iter()
            .flat_map(|(_, r)| r.errors.iter().map(|e| format!("{}: {e}", r.run_id)))
            .collect(),
        interrupted: inputs.iter().any(|(_, r)| r.interrupted),
        criteria_window: None,
        snapshot: None,
        validation: dedup(inputs.iter().flat_map(|(_, r)| r.validation.clone())),
        trace_audit: merge_trace_audits(inputs),
        inputs: runs,
        baseline: None,
        // Coverage and routes belong to one target's Prometheus and
        // Alertmanager; a merge does not combine them.
        coverage: None,
        routes: Vec::new(),
        // Groups and their crosstalk belong to one run's timeline.
        drill_groups: Vec::new(),
    };
    let worst_input = inputs.iter().map(|(_, r)| r.verdict).max();
    out.verdict = out
        .compute_verdict()
        .max(worst_input.unwrap_or(Verdict::Pass));
    Ok(out)
}

fn identities(file: &str, r: &Report) -> Vec<InputRun> {
    if !r.inputs.is_empty() {
        return r.inputs.clone();
    }
    let mut agent_types: Vec<String> = r
        .probes
        .iter()
        .map(|p| p.outcome.agent_type.clone())
        .collect();
    agent_types.sort();
    agent_types.dedup();
    vec![InputRun {
        run_id: r.run_id.clone(),
        file: file.to_string(),
        command: r.command.clone(),
        target: r.target.name.clone(),
        agent_types,
        verdict: r.verdict,
        window: r.window,
        probes: r
            .probes
            .iter()
            .map(|p| InputProbe {
                name: p.outcome.name.clone(),
                agent_type: p.outcome.agent_type.clone(),
                verdict: p.verdict,
                count: p.outcome.latency.count,
                p50_ms: p.outcome.latency.p50_ms,
                p99_ms: p.outcome.latency.p99_ms,
            })
            .collect(),
        drills: r
            .drills
            .iter()
            .map(|d| InputDrill {
                name: d.name.clone(),
                verdict: d.verdict,
                trials: d.trials.len(),
                time_to_fire: d.time_to_fire,
            })
            .collect(),
        criteria: r
            .criteria
            .iter()
            .map(|c| InputCriterion {
                id: c.id.clone(),
                verdict: c.verdict,
                value: c.series.first().map(|s| s.value.clone()),
            })
            .collect(),
        snapshot_url: r.snapshot.as_ref().map(|s| s.url.clone()),
    }]
}

fn merged_target(inputs: &[(String, Report)]) -> TargetInfo {
    let first = &inputs[0].1.target;
    if inputs.iter().all(|(_, r)| r.target == *first) {
        return first.clone();
    }
    let names = dedup(inputs.iter().map(|(_, r)| r.target.name.clone()));
    let namespaces = dedup(inputs.iter().map(|(_, r)| r.target.namespace.clone()));
    TargetInfo {
        name: names.join(" + "),
        description: format!("{} runs merged", inputs.len()),
        kind: "merged".into(),
        namespace: namespaces.join(", "),
        nats_url: String::new(),
        prometheus_url: None,
        alertmanager_url: None,
        grafana_url: None,
    }
}

/// Adds one input's histogram (`text`) to `acc`. An input with no samples
/// (`empty`) may have none; any other input without one is refused.
fn accumulate(
    acc: &mut Option<Histogram<u64>>,
    file: &str,
    what: String,
    text: Option<&str>,
    empty: bool,
) -> Result<(), MergeError> {
    let h = match text {
        Some(text) => decode(file, &what, text)?,
        None if empty => return Ok(()),
        None => {
            return Err(MergeError::MissingHistogram {
                file: file.to_string(),
                what,
            })
        }
    };
    match acc {
        Some(acc) => hdr::add(acc, &h),
        None => *acc = Some(h),
    }
    Ok(())
}

fn decode(file: &str, what: &str, text: &str) -> Result<Histogram<u64>, MergeError> {
    hdr::decode(text).map_err(|e| MergeError::BadHistogram {
        file: file.to_string(),
        what: what.to_string(),
        reason: e.to_string(),
    })
}

/// A probe's name and agent type.
type ProbeKey = (String, String);
/// One input's probe, with the file it came from.
type ProbePart<'a> = (&'a str, &'a ProbeResult);
/// One input's drill, with its file and report.
type DrillPart<'a> = (&'a str, &'a Report, &'a DrillResult);

fn merge_probes(inputs: &[(String, Report)]) -> Result<Vec<ProbeResult>, MergeError> {
    // Same probe and agent type across legs: one row, in first-seen order.
    let mut groups: Vec<(ProbeKey, Vec<ProbePart>)> = Vec::new();
    for (file, r) in inputs {
        for p in &r.probes {
            let key = (p.outcome.name.clone(), p.outcome.agent_type.clone());
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, v)) => v.push((file, p)),
                None => groups.push((key, vec![(file, p)])),
            }
        }
    }
    groups
        .into_iter()
        .map(|(_, parts)| merge_probe(&parts))
        .collect()
}

fn merge_probe(parts: &[(&str, &ProbeResult)]) -> Result<ProbeResult, MergeError> {
    let mut hist: Option<Histogram<u64>> = None;
    for (file, p) in parts {
        let what = format!("probe {} ({})", p.outcome.name, p.outcome.agent_type);
        let text = p.outcome.latency.histogram.as_deref();
        accumulate(&mut hist, file, what, text, p.outcome.latency.count == 0)?;
    }
    let outs: Vec<&ProbeOutcome> = parts.iter().map(|(_, p)| &p.outcome).collect();
    let first = outs[0];
    let outcome = ProbeOutcome {
        name: first.name.clone(),
        subject: first.subject.clone(),
        agent_type: first.agent_type.clone(),
        started_at: outs.iter().map(|o| o.started_at).min().expect("non-empty"),
        finished_at: outs.iter().map(|o| o.finished_at).max().expect("non-empty"),
        sent: outs.iter().map(|o| o.sent).sum(),
        acked: outs.iter().map(|o| o.acked).sum(),
        completed: outs.iter().map(|o| o.completed).sum(),
        timed_out: outs.iter().flat_map(|o| o.timed_out.clone()).collect(),
        duplicated: outs.iter().flat_map(|o| o.duplicated.clone()).collect(),
        trace_mismatches: outs
            .iter()
            .flat_map(|o| o.trace_mismatches.clone())
            .collect(),
        publish_failures: outs
            .iter()
            .flat_map(|o| o.publish_failures.clone())
            .collect(),
        latency: hist
            .as_ref()
            .map(LatencySummary::from_histogram)
            .unwrap_or_default(),
        // Legs of a matrix run side by side: their rates add up.
        throughput_per_s: outs.iter().map(|o| o.throughput_per_s).sum(),
        sentinel: first.sentinel.clone(),
        tasks: Vec::new(),
    };
    let mut result = ProbeResult::from_outcome(outcome);
    let worst = parts
        .iter()
        .map(|(_, p)| p.verdict)
        .max()
        .unwrap_or(Verdict::Pass);
    result.verdict = result.verdict.max(worst);
    Ok(result)
}

fn merge_drills(inputs: &[(String, Report)]) -> Result<Vec<DrillResult>, MergeError> {
    let mut groups: Vec<(String, Vec<DrillPart>)> = Vec::new();
    for (file, r) in inputs {
        for d in &r.drills {
            match groups.iter_mut().find(|(k, _)| *k == d.name) {
                Some((_, v)) => v.push((file, r, d)),
                None => groups.push((d.name.clone(), vec![(file, r, d)])),
            }
        }
    }
    groups
        .into_iter()
        .map(|(_, parts)| merge_drill(&parts))
        .collect()
}

fn merge_drill(parts: &[(&str, &Report, &DrillResult)]) -> Result<DrillResult, MergeError> {
    let mut hist: Option<Histogram<u64>> = None;
    for (file, _, d) in parts {
        let what = format!("drill {}", d.name);
        let text = d.time_to_fire_histogram.as_deref();
        accumulate(&mut hist, file, what, text, d.time_to_fire.is_none())?;
    }
    let first = parts[0].2;
    let mut trials = Vec::new();
    let mut notes = Vec::new();
    let mut recovery: Option<super::model::ManualRecovery> = None;
    for (_, r, d) in parts {
        for t in &d.trials {
            let mut t = t.clone();
            t.notes
                .insert(0, format!("run {} trial {}", r.run_id, t.trial));
            t.trial = trials.len() as u32 + 1;
            trials.push(t);
        }
        notes.extend(d.notes.iter().map(|n| format!("{}: {n}", r.run_id)));
        if let Some(m) = &d.manual_recovery {
            match &mut recovery {
                Some(acc) => {
                    acc.summary
                        .push_str(&format!(" {}: {}", r.run_id, m.summary));
                    acc.steps.extend(m.steps.iter().cloned());
                }
                None => {
                    let mut m = m.clone();
                    m.summary = format!("{}: {}", r.run_id, m.summary);
                    recovery = Some(m);
                }
            }
        }
    }
    let verdict = parts
        .iter()
        .map(|(_, _, d)| d.verdict)
        .max()
        .unwrap_or(Verdict::Error);
    let reasons: Vec<String> = parts
        .iter()
        .map(|(_, r, d)| format!("{} {}: {}", r.run_id, d.verdict, d.reason))
        .collect();
    Ok(DrillResult {
        name: first.name.clone(),
        alert: first.alert.clone(),
        fault: first.fault.clone(),
        deadline_ms: first.deadline_ms,
        verdict,
        reason: format!("worst of {} runs; {}", parts.len(), reasons.join("; ")),
        trials,
        alert_urls: dedup(parts.iter().flat_map(|(_, _, d)| d.alert_urls.clone())),
        manual_recovery: recovery,
        time_to_fire: hist.as_ref().map(stats_of),
        time_to_fire_histogram: hist.as_ref().map(hdr::encode),
        notes,
        journal: None,
    })
}

/// Min, median (HDR p50) and max of a histogram of times to fire (ms).
pub fn stats_of(h: &Histogram<u64>) -> TimingStats {
    TimingStats {
        count: h.len() as usize,
        min_ms: h.min() as i64,
        median_ms: h.value_at_quantile(0.5) as i64,
        max_ms: h.max() as i64,
    }
}

fn merge_trace_audits(
    inputs: &[(String, Report)],
) -> Option<crate::model::trace::TraceAuditSummary> {
    let mut audits = inputs.iter().filter_map(|(_, r)| r.trace_audit.as_ref());
    let mut acc = audits.next()?.clone();
    for a in audits {
        acc.source = dedup([acc.source.clone(), a.source.clone()]).join(", ");
        acc.tasks += a.tasks;
        acc.passed += a.passed;
        acc.failed += a.failed;
        for (hop, n) in &a.missing_by_hop {
            *acc.missing_by_hop.entry(hop.clone()).or_default() += n;
        }
        acc.orphan_spans += a.orphan_spans;
        acc.root_count_failures += a.root_count_failures;
        acc.escaped_traces += a.escaped_traces;
        acc.envelope_mismatches += a.envelope_mismatches;
        acc.wall_ms = acc.wall_ms.max(a.wall_ms);
        acc.failures.extend(a.failures.iter().cloned());
        acc.errors.extend(a.errors.iter().cloned());
    }
    Some(acc)
}

/// Keeps the first of equal items, in order.
fn dedup<T: PartialEq>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::new();
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}
