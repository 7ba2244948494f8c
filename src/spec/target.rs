//! Targets (`firedrill.toml`): where a run points, and what it may do there.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use toml::Spanned;
use url::Url;

use super::duration::{HumanDuration, PositiveDuration};
use super::error::{SourceLoc, SpecError, SpecErrorKind};
use super::source::{deserialize_checked, SourceFile, TableError};
use super::template::{self, Vars};
use super::value::{
    check_name, check_object_name, check_var_name, parse_url, EnvVarName, HttpUrl, Name, NatsName,
    NatsUrl, NonEmpty, NonEmptyList, Ranged, SubjectFilter, VarName,
};
use super::vars::{self, Scope, TemplateProblem};

/// The built-in local target, used when no `firedrill.toml` defines `local`.
/// The repo's `firedrill.toml` starts with this exact text.
pub const BUILTIN_LOCAL_TARGET: &str = include_str!("builtin/local-target.toml");

/// `[fleet] worker_image` when the table leaves it out.
pub const DEFAULT_WORKER_IMAGE: &str = "registry.local/worker:stable";
/// `[fleet] collector_deployment` when the table leaves it out.
pub const DEFAULT_COLLECTOR_DEPLOYMENT: &str = "otel-collector";

/// Name of the target firedrill can always run against: the local stack.
pub const LOCAL_TARGET: &str = "local";

/// A validated target.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub name: String,
    pub description: String,
    /// The platform's namespace, if it has one (Kubernetes, or any other
    /// grouping its labels use); the `{{namespace}}` variable when set.
    pub namespace: Option<String>,
    /// Drills refuse to run unless this is true.
    pub drills_allowed: bool,
    /// Grafana dashboard UID for the run-window snapshot.
    pub dashboard_uid: Option<String>,
    /// Link to one trace; may use the query variables, notably
    /// `{{sentinel.trace_id}}`. Validated; rendered by [`Target::trace_url`].
    pub trace_url_template: Option<String>,
    /// Free-form `{{name}}` variables (including any `--var` overrides).
    pub variables: Vars,
    /// Drill deadlines and resolve timeouts are multiplied by this (the
    /// local stack scales its rules' `for:` and windows down, so its
    /// drills' waits shrink with them). 1 = as written.
    pub drill_time_scale: f64,
    /// The drills this target runs when none are named (`None` = every
    /// drill loaded).
    pub drills: Option<Vec<String>>,
    /// The drills `firedrill smoke` runs on this (local-stack) target when
    /// `--drills` is not given.
    pub smoke_drills: Vec<String>,
    pub endpoints: Endpoints,
    /// Loki for `kind = "logql"` criteria (local or deployed platform).
    pub loki_url: Option<Url>,
    /// The uid of Grafana's Loki data source, for Explore links.
    pub loki_datasource_uid: Option<String>,
    /// Jaeger's query service: traces are read from it (`/api/traces/{id}`)
    /// instead of Tempo.
    pub jaeger_url: Option<Url>,
    /// What `firedrill validate` asks of the rules and routing (`[validate]`).
    pub validate: ValidateSettings,
    /// Spec directories this target names (`probes_dir`, ...), resolved
    /// against the directory of its `firedrill.toml`.
    pub dirs: SpecDirs,
    /// The target's table in its file.
    pub source: SourceLoc,
}

/// `probes_dir`, `acceptance_dir`, `drills_dir` of a target (already
/// resolved against its file's directory). `None`: the command line's or
/// the default directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpecDirs {
    pub probes: Option<std::path::PathBuf>,
    pub acceptance: Option<std::path::PathBuf>,
    pub drills: Option<std::path::PathBuf>,
}

/// `[targets.<name>.validate]`: the rule audit's policy for this platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidateSettings {
    /// How far back a selector may have had series and still count.
    pub lookback: Duration,
    /// Labels every alerting rule must carry as static literals (routing
    /// matches on them), each with how a rule without it is reported.
    pub required_labels: BTreeMap<String, PolicyLevel>,
    /// Annotations every alerting rule must carry, non-empty (by default
    /// `runbook_url`, as an error).
    pub required_annotations: BTreeMap<String, PolicyLevel>,
    /// Labels a rule with an `absent()` leg must carry as static literals
    /// (by default `namespace`, as an error): the series `absent()` makes
    /// up has only the labels written in its selector, so a route that
    /// matches on any other label never sees the alert unless the rule
    /// sets it.
    pub absent_labels: BTreeMap<String, PolicyLevel>,
    /// Where alerts with given static labels must be routed.
    pub expected_receivers: Vec<ExpectedReceiver>,
}

/// How a `[validate]` policy entry is enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyLevel {
    /// A finding of severity error (exit 1).
    Error,
    /// A finding of severity warning.
    Warning,
    /// Not checked.
    Off,
}

impl Default for ValidateSettings {
    fn default() -> Self {
        ValidateSettings {
            lookback: Duration::from_secs(3600),
            required_labels: BTreeMap::new(),
            required_annotations: [("runbook_url".to_string(), PolicyLevel::Error)].into(),
            absent_labels: [("namespace".to_string(), PolicyLevel::Error)].into(),
            expected_receivers: Vec::new(),
        }
    }
}

/// Alerts whose static labels include all of `labels` must reach `receiver`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedReceiver {
    pub labels: BTreeMap<String, String>,
    pub receiver: String,
}

/// How firedrill reaches the platform.
// One per run: the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Endpoints {
    /// `stack = "local"`: firedrill starts Prometheus and Alertmanager itself
    /// (so it knows their URLs), plus NATS and the reference fleet when the
    /// target has a `[fleet]` table.
    Local(LocalSpec),
    /// A deployed platform.
    Remote(RemoteEndpoints),
}

/// What the local stack runs for a `stack = "local"` target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalSpec {
    /// The reference fleet (and with it nats-server); `None`: Prometheus and
    /// Alertmanager only, scraping `scrape`.
    pub fleet: Option<FleetSpec>,
    /// Rule files to load (`rules = [...]`, globs resolved against the
    /// target's file). Empty with a fleet: the shipped rules for the fleet.
    pub rules: Vec<RuleFile>,
    /// Extra scrape jobs (`[[targets.X.scrape]]`): the services a compose
    /// or bare-metal platform runs beside the stack.
    pub scrape: Vec<ScrapeSpec>,
}

/// One rule file a local-stack target loads; `{{var}}` templates in it are
/// rendered with the target's variables before Prometheus reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleFile {
    pub path: std::path::PathBuf,
    pub text: String,
}

/// A Prometheus scrape job of a local-stack target. `targets` may use the
/// target's `{{variables}}` (e.g. a port given with `--var`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrapeSpec {
    pub job: String,
    pub targets: Vec<String>,
    pub metrics_path: String,
}

/// Endpoints of a deployed platform. Secrets are only ever named (env var
/// names), never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteEndpoints {
    /// `nats://` or `tls://`; `None` on a platform without NATS (then no
    /// probe, trigger or trace audit of the run may need it).
    pub nats_url: Option<Url>,
    /// Env var holding a NATS `.creds` file's contents or its path.
    pub nats_creds_env: Option<String>,
    pub prometheus_url: Url,
    /// Required for drills (checked by [`super::drill::plan_drills`]).
    pub alertmanager_url: Option<Url>,
    pub grafana_url: Option<Url>,
    /// Env var holding a Grafana service-account token.
    pub grafana_token_env: Option<String>,
    pub tempo_url: Option<Url>,
    /// Kubernetes API server for `kubernetes-*` drills; without it,
    /// kubeconfig / in-cluster config is used.
    pub kube_api_url: Option<Url>,
    /// Env var holding the bearer token for `kube_api_url`.
    pub kube_token_env: Option<String>,
}

/// How the local reference fleet names things (mirrors the platform's
/// naming so the same rules and criteria apply).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetSpec {
    /// JetStream stream the fleet creates and consumes.
    pub stream: String,
    /// Subjects the stream captures (wildcards allowed).
    pub subjects: Vec<String>,
    /// Durable consumer name (`consumer_name` label in nats-surveyor metrics).
    pub consumer: String,
    /// `agent_type` label values the fleet serves.
    pub agent_types: Vec<String>,
    /// Prefix of the pod names it reports (e.g. `worker-`; the built-in local
    /// target sets it).
    pub worker_pod_prefix: String,
    /// `deployment` label of the orchestrator in kube-state-metrics series.
    pub orchestrator_deployment: String,
    /// `scaledObject` name KEDA metrics carry, and the worker ScaledJob's name.
    pub scaled_object: String,
    /// The worker image the rehearsed release runs (any other is unpullable).
    pub worker_image: String,
    /// The OTel collector Deployment the rehearsed cluster runs.
    pub collector_deployment: String,
    /// Tasks run at once.
    pub concurrency: u32,
    /// Simulated worker cold start per task.
    pub cold_start: Duration,
    /// Simulated work per task.
    pub work: Duration,
}

impl Target {
    /// `d` times [`Target::drill_time_scale`], never under 1 s.
    pub fn scale_drill_time(&self, d: Duration) -> Duration {
        if self.drill_time_scale == 1.0 {
            return d;
        }
        d.mul_f64(self.drill_time_scale).max(Duration::from_secs(1))
    }

    pub fn is_local(&self) -> bool {
        matches!(self.endpoints, Endpoints::Local(_))
    }

    pub fn fleet(&self) -> Option<&FleetSpec> {
        match &self.endpoints {
            Endpoints::Local(local) => local.fleet.as_ref(),
            Endpoints::Remote(_) => None,
        }
    }

    pub fn local(&self) -> Option<&LocalSpec> {
        match &self.endpoints {
            Endpoints::Local(local) => Some(local),
            Endpoints::Remote(_) => None,
        }
    }

    /// Whether this target has NATS: a local stack with a fleet, or a
    /// deployed platform with `nats_url`.
    pub fn has_nats(&self) -> bool {
        match &self.endpoints {
            Endpoints::Local(local) => local.fleet.is_some(),
            Endpoints::Remote(r) => r.nats_url.is_some(),
        }
    }

    /// The target's `[targets.X]` header, for messages.
    pub fn table(&self) -> String {
        format!("[targets.{}] in {}", self.name, self.source.file.display())
    }

    pub fn remote(&self) -> Option<&RemoteEndpoints> {
        match &self.endpoints {
            Endpoints::Remote(remote) => Some(remote),
            Endpoints::Local(_) => None,
        }
    }

    /// Variables known before a run starts: `variables` plus `namespace`;
    /// on a local-stack target also the rehearsed cluster's names from its
    /// `[fleet]` table (see [`FleetSpec::cluster_vars`]) unless `variables`
    /// sets them.
    pub fn vars(&self) -> Vars {
        let mut vars = self.variables.clone();
        if let Some(ns) = &self.namespace {
            vars.insert(vars::NAMESPACE.to_string(), ns.clone());
        }
        if let (Some(fleet), Some(ns)) = (self.fleet(), &self.namespace) {
            for (k, v) in fleet.cluster_vars(ns) {
                vars.entry(k.to_string()).or_insert(v);
            }
        }
        vars
    }

    /// Every variable a query or evidence link may use in one run: `vars()`,
    /// then `runtime` (`window`, `start`, `end`, `sentinel.task_id`,
    /// `sentinel.trace_id`), then `trace_url` (empty without a
    /// `trace_url_template`). Validated templates always render with it.
    pub fn run_vars(&self, runtime: &Vars) -> Vars {
        let mut all = self.vars();
        all.extend(runtime.iter().map(|(k, v)| (k.clone(), v.clone())));
        let trace_url = self.trace_url(&all).unwrap_or_default();
        all.insert(vars::TRACE_URL.to_string(), trace_url);
        all
    }

    /// The trace link for the run-time `vars` (which must hold the
    /// sentinel's ids); `None` when the target has no `trace_url_template`.
    pub fn trace_url(&self, vars: &Vars) -> Option<String> {
        let template = self.trace_url_template.as_ref()?;
        template::render(template, vars).ok()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    targets: BTreeMap<Name, RawTarget>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetFields {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    stack: Option<StackKind>,
    #[serde(default)]
    namespace: Option<NonEmpty>,
    #[serde(default)]
    probes_dir: Option<NonEmpty>,
    #[serde(default)]
    acceptance_dir: Option<NonEmpty>,
    #[serde(default)]
    drills_dir: Option<NonEmpty>,
    #[serde(default)]
    rules: Option<Vec<NonEmpty>>,
    #[serde(default)]
    scrape: Option<Vec<RawScrape>>,
    #[serde(default)]
    drills_allowed: bool,
    #[serde(default)]
    dashboard_uid: Option<NonEmpty>,
    #[serde(default)]
    variables: BTreeMap<VarName, String>,
    #[serde(default)]
    fleet: Option<RawFleet>,
    #[serde(default)]
    nats_url: Option<NatsUrl>,
    #[serde(default)]
    nats_creds_env: Option<EnvVarName>,
    #[serde(default)]
    prometheus_url: Option<HttpUrl>,
    #[serde(default)]
    alertmanager_url: Option<HttpUrl>,
    #[serde(default)]
    grafana_url: Option<HttpUrl>,
    #[serde(default)]
    grafana_token_env: Option<EnvVarName>,
    #[serde(default)]
    tempo_url: Option<HttpUrl>,
    #[serde(default)]
    jaeger_url: Option<Spanned<String>>,
    #[serde(default)]
    loki_url: Option<Spanned<String>>,
    #[serde(default)]
    loki_datasource_uid: Option<NonEmpty>,
    #[serde(default)]
    trace_url_template: Option<Spanned<String>>,
    #[serde(default)]
    kube_api_url: Option<HttpUrl>,
    #[serde(default)]
    kube_token_env: Option<EnvVarName>,
    #[serde(default)]
    drill_time_scale: Option<TimeScale>,
    #[serde(default)]
    drills: Option<Vec<Name>>,
    #[serde(default)]
    smoke_drills: Option<Vec<Name>>,
    #[serde(default)]
    validate: Option<RawValidate>,
}

/// `drill_time_scale`: a factor in (0, 10].
#[derive(Debug, Clone, Copy)]
struct TimeScale(f64);

impl<'de> Deserialize<'de> for TimeScale {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        if !(v > 0.0 && v <= 10.0) {
            return Err(serde::de::Error::custom(format!(
                "must be a number above 0 and at most 10 (e.g. 0.2 for a stack whose rules run 5 times faster), got {v}"
            )));
        }
        Ok(TimeScale(v))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawValidate {
    #[serde(default)]
    lookback: Option<PositiveDuration>,
    #[serde(default)]
    required_labels: Option<LevelTable<LabelName>>,
    #[serde(default)]
    required_annotations: Option<LevelTable<AnnotationName>>,
    #[serde(default)]
    absent_labels: Option<LevelTable<LabelName>>,
    #[serde(default)]
    expected_receivers: Option<OneOrMany>,
}

/// `["a", "b"]` (each an error) or `{ a = "error", b = "warning", c = "off" }`.
struct LevelTable<N>(Vec<(String, PolicyLevel)>, std::marker::PhantomData<N>);

impl<'de, N: Deserialize<'de> + Into<String>> Deserialize<'de> for LevelTable<N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<N>(std::marker::PhantomData<N>);
        impl<'de, N: Deserialize<'de> + Into<String>> serde::de::Visitor<'de> for V<N> {
            type Value = LevelTable<N>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "a list of names (each checked as an error), or a table of name = \"error\" | \"warning\" | \"off\"",
                )
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(n) = a.next_element::<N>()? {
                    out.push((n.into(), PolicyLevel::Error));
                }
                Ok(LevelTable(out, std::marker::PhantomData))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(n) = a.next_key::<N>()? {
                    let level = a.next_value::<PolicyLevel>()?;
                    out.push((n.into(), level));
                }
                Ok(LevelTable(out, std::marker::PhantomData))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// `expected_receivers`: one inline table or a list of them.
enum OneOrMany {
    One(RawExpectedReceiver),
    Many(Vec<RawExpectedReceiver>),
}

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "a list of tables such as [{ namespace = \"team-a\", receiver = \"team-a-pager\" }]",
                )
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<OneOrMany, A::Error> {
                let mut out = Vec::new();
                while let Some(e) = a.next_element::<RawExpectedReceiver>()? {
                    out.push(e);
                }
                Ok(OneOrMany::Many(out))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, a: A) -> Result<OneOrMany, A::Error> {
                RawExpectedReceiver::deserialize(serde::de::value::MapAccessDeserializer::new(a))
                    .map(OneOrMany::One)
            }
        }
        d.deserialize_any(V)
    }
}

/// `{ namespace = "x", receiver = "r" }`: `receiver` and label equalities.
struct RawExpectedReceiver(ExpectedReceiver);

impl<'de> Deserialize<'de> for RawExpectedReceiver {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut labels = BTreeMap::<String, String>::deserialize(d).map_err(|e| {
            serde::de::Error::custom(format!(
                "an expected_receivers entry is a table of label = \"value\" strings plus receiver = \"<name>\", e.g. {{ namespace = \"team-a\", receiver = \"team-a-pager\" }} ({})",
                e.to_string().lines().next().unwrap_or_default()
            ))
        })?;
        let receiver = labels.remove("receiver").filter(|r| !r.is_empty()).ok_or_else(|| {
            serde::de::Error::custom(
                "an expected_receivers entry needs `receiver = \"<Alertmanager receiver name>\"` next to the labels it applies to",
            )
        })?;
        if let Some(bad) = labels.keys().find(|k| !is_label_name(k)) {
            return Err(serde::de::Error::custom(format!(
                "invalid label name {bad:?} in expected_receivers (expected [a-zA-Z_][a-zA-Z0-9_]*)"
            )));
        }
        if labels.is_empty() {
            return Err(serde::de::Error::custom(format!(
                "the expected_receivers entry for {receiver:?} names no label, so it would apply to every alert; add the static labels of the alerts that must reach it, e.g. {{ namespace = \"team-a\", receiver = {receiver:?} }}"
            )));
        }
        Ok(RawExpectedReceiver(ExpectedReceiver { labels, receiver }))
    }
}

/// A Prometheus label name.
struct LabelName(String);

impl From<LabelName> for String {
    fn from(l: LabelName) -> String {
        l.0
    }
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl<'de> Deserialize<'de> for LabelName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s == "alertname" || s.starts_with("__") {
            return Err(serde::de::Error::custom(format!(
                "{s:?} is set by Prometheus on every alert (or is internal), so requiring it checks nothing; list the static labels your routes match on, e.g. \"namespace\""
            )));
        }
        if !is_label_name(&s) {
            return Err(serde::de::Error::custom(format!(
                "invalid label name {s:?} (expected [a-zA-Z_][a-zA-Z0-9_]*)"
            )));
        }
        Ok(LabelName(s))
    }
}

/// An annotation name (any non-empty key; Prometheus requires label-name
/// syntax for them too).
struct AnnotationName(String);

impl From<AnnotationName> for String {
    fn from(a: AnnotationName) -> String {
        a.0
    }
}

impl<'de> Deserialize<'de> for AnnotationName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if !is_label_name(&s) {
            return Err(serde::de::Error::custom(format!(
                "invalid annotation name {s:?} (expected [a-zA-Z_][a-zA-Z0-9_]*, e.g. \"runbook_url\")"
            )));
        }
        Ok(AnnotationName(s))
    }
}

impl From<RawValidate> for ValidateSettings {
    fn from(v: RawValidate) -> Self {
        let d = ValidateSettings::default();
        // Entries override the defaults; "off" drops one.
        let merged = |mut base: BTreeMap<String, PolicyLevel>,
                      given: Option<Vec<(String, PolicyLevel)>>| {
            base.extend(given.unwrap_or_default());
            base
        };
        ValidateSettings {
            lookback: v.lookback.map(|l| l.0).unwrap_or(d.lookback),
            required_labels: merged(d.required_labels, v.required_labels.map(|t| t.0)),
            required_annotations: merged(
                d.required_annotations,
                v.required_annotations.map(|t| t.0),
            ),
            absent_labels: merged(d.absent_labels, v.absent_labels.map(|t| t.0)),
            expected_receivers: match v.expected_receivers {
                None => Vec::new(),
                Some(OneOrMany::One(one)) => vec![one.0],
                Some(OneOrMany::Many(many)) => many.into_iter().map(|e| e.0).collect(),
            },
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScrape {
    job: NonEmpty,
    targets: NonEmptyList<NonEmpty>,
    #[serde(default)]
    metrics_path: Option<NonEmpty>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum StackKind {
    Local,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFleet {
    stream: NatsName,
    subjects: NonEmptyList<SubjectFilter>,
    consumer: NatsName,
    agent_types: NonEmptyList<NonEmpty>,
    worker_pod_prefix: NonEmpty,
    orchestrator_deployment: ObjectName,
    scaled_object: ObjectName,
    #[serde(default)]
    worker_image: Option<NonEmpty>,
    #[serde(default)]
    collector_deployment: Option<ObjectName>,
    concurrency: Ranged<1, 10_000>,
    cold_start: HumanDuration,
    work: HumanDuration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ObjectName(String);

impl<'de> Deserialize<'de> for ObjectName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        check_object_name(&s).map_err(serde::de::Error::custom)?;
        Ok(ObjectName(s))
    }
}

/// A target table after the checks that involve several of its keys.
struct RawTarget {
    fields: TargetFields,
    endpoints: Endpoints,
}

impl<'de> Deserialize<'de> for RawTarget {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_checked(d, check_target)
    }
}

fn check_target(mut f: TargetFields) -> Result<RawTarget, TableError> {
    let endpoints = match f.stack {
        Some(StackKind::Local) => {
            let remote_keys = [
                ("nats_url", f.nats_url.is_some()),
                ("nats_creds_env", f.nats_creds_env.is_some()),
                ("prometheus_url", f.prometheus_url.is_some()),
                ("alertmanager_url", f.alertmanager_url.is_some()),
                ("grafana_url", f.grafana_url.is_some()),
                ("grafana_token_env", f.grafana_token_env.is_some()),
                ("tempo_url", f.tempo_url.is_some()),
                ("kube_api_url", f.kube_api_url.is_some()),
                ("kube_token_env", f.kube_token_env.is_some()),
            ];
            if let Some((key, _)) = remote_keys.iter().find(|(_, present)| *present) {
                return Err(TableError::invalid(
                    key,
                    format!(
                        "\"{key}\" does not apply to stack = \"local\": firedrill starts the local stack and knows its endpoints \
                         (remove it, or remove stack = \"local\" to describe a deployed platform)"
                    ),
                ));
            }
            let fleet = f.fleet.take().map(FleetSpec::from);
            if fleet.is_some() && f.namespace.is_none() {
                return Err(TableError::missing(
                    "namespace",
                    "the reference fleet ([fleet]) rehearses a Kubernetes namespace and needs its name; add namespace = \"<name>\" to {table}",
                ));
            }
            if fleet.is_none() && f.rules.is_none() {
                return Err(TableError::missing(
                    "rules",
                    "stack = \"local\" without a [fleet] table runs only Prometheus and Alertmanager, so it needs the alert rules to load; add rules = [\"rules/*.yml\"] to {table} (or a [fleet] table for the reference fleet)",
                ));
            }
            Endpoints::Local(LocalSpec {
                fleet,
                rules: Vec::new(),
                scrape: Vec::new(),
            })
        }
        None => {
            for (key, present) in [
                ("fleet", f.fleet.is_some()),
                ("rules", f.rules.is_some()),
                ("scrape", f.scrape.is_some()),
            ] {
                if present {
                    return Err(TableError::invalid(
                        key,
                        format!("\"{key}\" only applies to stack = \"local\" (a deployed platform loads its own rules and scrapes its own services): remove it, or add stack = \"local\""),
                    ));
                }
            }
            let remote_reason = "a target without stack = \"local\" is a deployed platform and needs it; add it to {table}";
            let prometheus_url = f
                .prometheus_url
                .take()
                .ok_or_else(|| TableError::missing("prometheus_url", remote_reason))?;
            if f.kube_token_env.is_some() && f.kube_api_url.is_none() {
                return Err(TableError::missing(
                    "kube_api_url",
                    "kube_token_env is set, so firedrill will talk to a Kubernetes API server by URL; add kube_api_url to {table} or remove kube_token_env (kubeconfig is used without both)",
                ));
            }
            if f.jaeger_url.is_some() && f.tempo_url.is_some() {
                return Err(TableError::invalid(
                    "jaeger_url",
                    "a target reads traces from one backend: jaeger_url and tempo_url are both set; keep the one the platform exports its traces to",
                ));
            }
            if f.grafana_token_env.is_some() && f.grafana_url.is_none() {
                return Err(TableError::missing(
                    "grafana_url",
                    "grafana_token_env is set, so firedrill will talk to Grafana; add grafana_url to {table} or remove grafana_token_env",
                ));
            }
            Endpoints::Remote(RemoteEndpoints {
                nats_url: f.nats_url.take().map(|u| u.0),
                nats_creds_env: f.nats_creds_env.take().map(|e| e.0),
                prometheus_url: prometheus_url.0,
                alertmanager_url: f.alertmanager_url.take().map(|u| u.0),
                grafana_url: f.grafana_url.take().map(|u| u.0),
                grafana_token_env: f.grafana_token_env.take().map(|e| e.0),
                tempo_url: f.tempo_url.take().map(|u| u.0),
                kube_api_url: f.kube_api_url.take().map(|u| u.0),
                kube_token_env: f.kube_token_env.take().map(|e| e.0),
            })
        }
    };
    Ok(RawTarget {
        fields: f,
        endpoints,
    })
}

impl FleetSpec {
    /// The names the shipped drills address the cluster's objects by, as
    /// the local stack's rehearsed cluster has them. A deployed target sets
    /// the same names in its `variables`.
    pub fn cluster_vars(&self, namespace: &str) -> Vec<(&'static str, String)> {
        vec![
            (
                "orchestrator_deployment",
                self.orchestrator_deployment.clone(),
            ),
            ("worker_scaledjob", self.scaled_object.clone()),
            ("worker_pod_prefix", self.worker_pod_prefix.clone()),
            ("collector_deployment", self.collector_deployment.clone()),
            ("collector_namespace", namespace.to_string()),
            ("stream", self.stream.clone()),
            ("consumer", self.consumer.clone()),
            ("alert_receiver", LOCAL_RECEIVER.to_string()),
        ]
    }
}

/// The receiver the local stack's Alertmanager routes every alert to.
pub const LOCAL_RECEIVER: &str = "firedrill";

impl From<RawFleet> for FleetSpec {
    fn from(f: RawFleet) -> Self {
        FleetSpec {
            stream: f.stream.0,
            subjects: f.subjects.0.into_iter().map(|s| s.0).collect(),
            consumer: f.consumer.0,
            agent_types: f.agent_types.0.into_iter().map(|s| s.0).collect(),
            worker_pod_prefix: f.worker_pod_prefix.0,
            orchestrator_deployment: f.orchestrator_deployment.0,
            scaled_object: f.scaled_object.0,
            worker_image: f
                .worker_image
                .map(|i| i.0)
                .unwrap_or_else(|| DEFAULT_WORKER_IMAGE.to_string()),
            collector_deployment: f
                .collector_deployment
                .map(|c| c.0)
                .unwrap_or_else(|| DEFAULT_COLLECTOR_DEPLOYMENT.to_string()),
            concurrency: f.concurrency.0,
            cold_start: f.cold_start.0,
            work: f.work.0,
        }
    }
}

/// Loads target `name` from the `firedrill.toml` at `config`, which must
/// exist. If the file has no `local` target, `local` is the built-in one.
/// `extra_vars` (e.g. `--var k=v`) are layered over the target's variables.
pub fn load_target(config: &Path, name: &str, extra_vars: &Vars) -> Result<Target, SpecError> {
    let file = SourceFile::read(
        config,
        "create it with a [targets.<name>] table, or point the config option at the right file",
    )?;
    let raw: RawConfig = file.parse()?;
    let mut targets = raw.targets;
    match targets.remove_entry(name) {
        Some((_, target)) => build(&file, name, target, extra_vars),
        None if name == LOCAL_TARGET => builtin_local_target(extra_vars),
        None => {
            let mut known: Vec<String> = targets.keys().map(|k| k.0.clone()).collect();
            if !known.iter().any(|k| k == LOCAL_TARGET) {
                known.push(format!("{LOCAL_TARGET} (built-in)"));
            }
            known.sort();
            Err(unknown_target(config, name, &known))
        }
    }
}

/// The built-in `local` target (`src/spec/builtin/local-target.toml`).
pub fn builtin_local_target(extra_vars: &Vars) -> Result<Target, SpecError> {
    let file = SourceFile::builtin("local-target.toml", BUILTIN_LOCAL_TARGET);
    let mut raw: RawConfig = file.parse()?;
    let target = raw.targets.remove(LOCAL_TARGET).ok_or_else(|| {
        SpecError::file(
            SpecErrorKind::MissingKey,
            &file.path,
            "built-in spec lacks [targets.local] (a firedrill bug)",
        )
    })?;
    build(&file, LOCAL_TARGET, target, extra_vars)
}

pub(crate) fn unknown_target(config: &Path, name: &str, known: &[String]) -> SpecError {
    let message = if check_name(name).is_err() {
        format!(
            "unknown target {name:?} (known targets: {})",
            known.join(", ")
        )
    } else {
        format!(
            "unknown target \"{name}\" (known targets: {}; pick one with --target, or add [targets.{name}] to {})",
            known.join(", "),
            config.display()
        )
    };
    SpecError::file(SpecErrorKind::UnknownTarget, config, message)
}

fn build(
    file: &SourceFile,
    name: &str,
    raw: RawTarget,
    extra_vars: &Vars,
) -> Result<Target, SpecError> {
    let RawTarget {
        fields: mut f,
        mut endpoints,
    } = raw;
    let base = file
        .path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let resolve = |p: Option<NonEmpty>| p.map(|p| base.join(p.0));
    let dirs = SpecDirs {
        probes: resolve(f.probes_dir.take()),
        acceptance: resolve(f.acceptance_dir.take()),
        drills: resolve(f.drills_dir.take()),
    };
    let mut variables: Vars = f.variables.into_iter().map(|(k, v)| (k.0, v)).collect();
    for (key, value) in extra_vars {
        if let Err(message) = check_var_name(key) {
            return Err(SpecError::new(
                SpecErrorKind::InvalidValue,
                "<command line>",
                None,
                Some(format!("var.{key}")),
                message,
            ));
        }
        variables.insert(key.clone(), value.clone());
    }
    let key_prefix = format!("targets.{}", super::source::join_path(&[name]));

    let trace_url_template = match f.trace_url_template {
        None => None,
        Some(spanned) => {
            let span = spanned.span();
            let text = spanned.into_inner();
            let key = format!("{key_prefix}.trace_url_template");
            let avail = vars::available(Scope::TraceTemplate, &variables);
            if let Err(problem) = vars::check(&text, &avail, true, name) {
                return Err(match problem {
                    TemplateProblem::Unknown { name, message } => {
                        file.unknown_var_error(Some(&span), key, &name, message)
                    }
                    TemplateProblem::Spaced { message, .. } => {
                        file.error(SpecErrorKind::InvalidValue, &span, key, message)
                    }
                });
            }
            // Render with stand-ins to check that the result is a link.
            let stand_ins: Vars = avail.iter().map(|n| (n.clone(), "0".to_string())).collect();
            let rendered = template::render(&text, &stand_ins).unwrap_or_default();
            if let Err(e) = parse_url(&rendered, &["http", "https"]) {
                return Err(file.error(
                    SpecErrorKind::InvalidValue,
                    &span,
                    key,
                    format!("does not render to a valid link: {e}"),
                ));
            }
            Some(text)
        }
    };

    // `jaeger_url` and `loki_url` may use the target's variables (and
    // `--var`): a rehearsal's stand-ins listen on ports chosen at run time.
    let mut url_vars = variables.clone();
    if let Some(ns) = &f.namespace {
        url_vars.insert(vars::NAMESPACE.to_string(), ns.0.clone());
    }
    let jaeger_url = templated_url(
        file,
        &key_prefix,
        "jaeger_url",
        f.jaeger_url.take(),
        &url_vars,
        name,
    )?;
    let loki_url = templated_url(
        file,
        &key_prefix,
        "loki_url",
        f.loki_url.take(),
        &url_vars,
        name,
    )?;

    let line = file.header_line(&["targets", name]).unwrap_or(1);
    if let Endpoints::Local(local) = &mut endpoints {
        let key = format!("{key_prefix}.rules");
        for pattern in f.rules.take().unwrap_or_default() {
            local
                .rules
                .extend(rule_files(&base, &pattern.0, file, line, &key)?);
        }
        local.scrape = f
            .scrape
            .take()
            .unwrap_or_default()
            .into_iter()
            .map(|s| ScrapeSpec {
                job: s.job.0,
                targets: s.targets.0.into_iter().map(|t| t.0).collect(),
                metrics_path: s
                    .metrics_path
                    .map(|m| m.0)
                    .unwrap_or_else(|| "/metrics".into()),
            })
            .collect();
    }
    Ok(Target {
        name: name.to_string(),
        description: f.description.unwrap_or_default(),
        namespace: f.namespace.map(|n| n.0),
        drills_allowed: f.drills_allowed,
        dashboard_uid: f.dashboard_uid.map(|d| d.0),
        trace_url_template,
        variables,
        drill_time_scale: f.drill_time_scale.map(|s| s.0).unwrap_or(1.0),
        drills: f.drills.map(|d| d.into_iter().map(|n| n.0).collect()),
        smoke_drills: f
            .smoke_drills
            .map(|d| d.into_iter().map(|n| n.0).collect())
            .unwrap_or_default(),
        endpoints,
        loki_url,
        loki_datasource_uid: f.loki_datasource_uid.map(|u| u.0),
        jaeger_url,
        validate: f.validate.map(Into::into).unwrap_or_default(),
        dirs,
        source: SourceLoc {
            file: file.path.clone(),
            line,
        },
    })
}

/// A URL key that may hold `{{variable}}` templates: checked against the
/// target's variables, rendered, then parsed as an `http(s)://` URL; errors
/// name the key's line.
fn templated_url(
    file: &SourceFile,
    key_prefix: &str,
    field: &str,
    value: Option<Spanned<String>>,
    url_vars: &Vars,
    target: &str,
) -> Result<Option<Url>, SpecError> {
    let Some(spanned) = value else {
        return Ok(None);
    };
    let span = spanned.span();
    let text = spanned.into_inner();
    let key = format!("{key_prefix}.{field}");
    let avail: std::collections::BTreeSet<String> = url_vars.keys().cloned().collect();
    if let Err(problem) = vars::check(&text, &avail, true, target) {
        return Err(match problem {
            TemplateProblem::Unknown { name, message } => {
                file.unknown_var_error(Some(&span), key, &name, message)
            }
            TemplateProblem::Spaced { message, .. } => {
                file.error(SpecErrorKind::InvalidValue, &span, key, message)
            }
        });
    }
    let rendered = template::render(&text, url_vars)
        .map_err(|e| file.error(SpecErrorKind::InvalidValue, &span, key.clone(), e))?;
    parse_url(&rendered, &["http", "https"])
        .map(Some)
        .map_err(|e| {
            let shown = if rendered == text {
                String::new()
            } else {
                format!(" (rendered from {text:?})")
            };
            file.error(
                SpecErrorKind::InvalidValue,
                &span,
                key,
                format!("{e}{shown}"),
            )
        })
}

/// The files `pattern` (relative to `base`, `*`/`?`/`[..]` globs allowed)
/// names, sorted; none is an error naming the pattern.
fn rule_files(
    base: &Path,
    pattern: &str,
    file: &SourceFile,
    line: usize,
    key: &str,
) -> Result<Vec<RuleFile>, SpecError> {
    let err = |message: String| {
        SpecError::new(
            SpecErrorKind::InvalidValue,
            file.path.clone(),
            Some(line),
            Some(key.to_string()),
            message,
        )
    };
    let full = base.join(pattern);
    let paths = glob::glob(&full.to_string_lossy())
        .map_err(|e| err(format!("{pattern:?} is not a valid file pattern: {e}")))?;
    let mut out = Vec::new();
    for path in paths {
        let path = path.map_err(|e| err(format!("cannot read {}: {e}", e.path().display())))?;
        if !path.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| {
            err(format!(
                "cannot read rule file {}: {e} (check the path and its permissions)",
                path.display()
            ))
        })?;
        out.push(RuleFile { path, text });
    }
    if out.is_empty() {
        return Err(err(format!(
            "{pattern:?} matches no file under {} (paths are relative to the directory of this firedrill.toml; e.g. rules = [\"rules/*.yml\"])",
            if base.as_os_str().is_empty() { Path::new(".") } else { base }.display()
        )));
    }
    Ok(out)
}
