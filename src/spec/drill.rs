//! Drill specs (`induced-failures/<name>.toml`): one induced fault, the
//! alert it must raise, and how fast.
//!
//! `[fault]` is read as one flat table and then turned into the [`Fault`]
//! enum by its `kind`. (serde's internally tagged enums buffer the table
//! before picking the variant, which loses toml's spans, so an unknown key
//! would be reported without its line; the flat form keeps them.)

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use toml::Spanned;

use super::duration::PositiveDuration;
use super::error::{SourceLoc, SpecError, SpecErrorKind};
use super::load::toml_files;
use super::probe::ProbeSpec;
use super::source::{deserialize_checked, SourceFile, TableError};
use super::target::{Endpoints, Target};
use super::value::{
    check_dns_label, check_object_name, AlertName, JsonPointer, JsonValue, LabelName, Name,
    NonEmpty, NonEmptyList, ObjectKind, Ranged,
};
use super::vars::{render_at_load, render_json_at_load};

/// Default bounded wait for the alert to resolve after the revert.
pub const DEFAULT_RESOLVE_TIMEOUT: Duration = Duration::from_secs(120);
/// Default limit for each `exec` command.
pub const DEFAULT_EXEC_TIMEOUT: Duration = Duration::from_secs(30);

/// A validated drill, templates rendered for the target.
#[derive(Debug, Clone, PartialEq)]
pub struct DrillSpec {
    /// Equals the file stem.
    pub name: String,
    /// `alertname` that must fire.
    pub alert: String,
    /// Labels the firing alert must carry (rendered).
    pub expect_labels: BTreeMap<String, String>,
    /// The alert must be FIRING within this time of `inject_done`.
    pub deadline: Duration,
    /// Bounded wait for the alert to resolve after the revert.
    pub resolve_timeout: Duration,
    /// Inject/observe/revert cycles, 1..=100.
    pub trials: u32,
    /// Silence the alert in Alertmanager for the drill window.
    pub silence: bool,
    /// Alertmanager receiver the alert must be routed to (rendered), if set.
    pub expect_receiver: Option<String>,
    /// `regression = "+25%"`: a time to fire worse by more than this
    /// (percent) since a baseline report is a regression; `None`: the default.
    pub regression: Option<f64>,
    pub fault: Fault,
    pub trigger: Option<Trigger>,
    pub source: SourceLoc,
    /// The `[fault]` table's line (where a fault a target cannot run is
    /// reported).
    pub fault_line: usize,
}

/// The fault to induce.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Flip a switch on the local reference fleet.
    Fleet { fault: FleetFault },
    /// JSON-patch one field of a Kubernetes object (original read and
    /// journaled first).
    KubernetesPatch(KubernetesPatch),
    /// Scale a Deployment or StatefulSet (original replicas journaled).
    KubernetesScale(KubernetesScale),
    /// Run commands.
    Exec(ExecFault),
}

impl Fault {
    /// One line for reports: what this fault does.
    pub fn describe(&self) -> String {
        match self {
            Fault::Fleet { fault } => format!("fleet fault {fault}"),
            Fault::KubernetesPatch(p) => format!(
                "kubernetes-patch {} {}/{} {} = {}",
                p.object_kind, p.namespace, p.name, p.pointer, p.value
            ),
            Fault::KubernetesScale(s) => format!(
                "kubernetes-scale {} {}/{} to {} replicas",
                s.object_kind.as_str(),
                s.namespace,
                s.name,
                s.replicas
            ),
            Fault::Exec(e) => format!("exec {}", crate::shell::shell_words(&e.inject)),
        }
    }

    /// The `kind` as written in the spec.
    pub fn kind(&self) -> FaultKind {
        match self {
            Fault::Fleet { .. } => FaultKind::Fleet,
            Fault::KubernetesPatch(_) => FaultKind::KubernetesPatch,
            Fault::KubernetesScale(_) => FaultKind::KubernetesScale,
            Fault::Exec(_) => FaultKind::Exec,
        }
    }
}

/// `[fault] kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    Fleet,
    KubernetesPatch,
    KubernetesScale,
    Exec,
}

impl FaultKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Fleet => "fleet",
            FaultKind::KubernetesPatch => "kubernetes-patch",
            FaultKind::KubernetesScale => "kubernetes-scale",
            FaultKind::Exec => "exec",
        }
    }

    /// Keys of `[fault]` this kind takes besides `kind`, and whether each
    /// is required.
    fn keys(self) -> &'static [(&'static str, bool)] {
        match self {
            FaultKind::Fleet => &[("fault", true)],
            FaultKind::KubernetesPatch => &[
                ("api_version", true),
                ("object_kind", true),
                ("namespace", true),
                ("name", true),
                ("pointer", true),
                ("value", true),
            ],
            FaultKind::KubernetesScale => &[
                ("object_kind", true),
                ("namespace", true),
                ("name", true),
                ("replicas", true),
            ],
            FaultKind::Exec => &[
                ("inject", true),
                ("revert", true),
                ("check", false),
                ("timeout", false),
                ("touches", false),
            ],
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The local reference fleet's fault switches, one per structural alert it
/// can be made to raise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FleetFault {
    /// Workers report `ImagePullBackOff`.
    WorkerImageTag,
    /// Workers restart in a loop.
    WorkerCrash,
    /// The consumer stops consuming; the backlog grows.
    ConsumerStop,
    /// The KEDA scaler reports errors.
    KedaError,
    /// The OTel collector's `up` series disappears.
    CollectorDown,
    /// The orchestrator deployment has no available replicas.
    OrchestratorDown,
    /// The stream has messages but no consumer.
    StreamUnhealthy,
}

impl FleetFault {
    pub const ALL: [FleetFault; 7] = [
        FleetFault::WorkerImageTag,
        FleetFault::WorkerCrash,
        FleetFault::ConsumerStop,
        FleetFault::KedaError,
        FleetFault::CollectorDown,
        FleetFault::OrchestratorDown,
        FleetFault::StreamUnhealthy,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FleetFault::WorkerImageTag => "worker-image-tag",
            FleetFault::WorkerCrash => "worker-crash",
            FleetFault::ConsumerStop => "consumer-stop",
            FleetFault::KedaError => "keda-error",
            FleetFault::CollectorDown => "collector-down",
            FleetFault::OrchestratorDown => "orchestrator-down",
            FleetFault::StreamUnhealthy => "stream-unhealthy",
        }
    }
}

impl fmt::Display for FleetFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FleetFault {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        FleetFault::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| {
                let all: Vec<&str> = FleetFault::ALL.iter().map(|f| f.as_str()).collect();
                format!(
                    "unknown fleet fault {s:?} (expected one of: {})",
                    all.join(", ")
                )
            })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct KubernetesPatch {
    /// e.g. `apps/v1`, `keda.sh/v1alpha1`.
    pub api_version: String,
    /// e.g. `Deployment`, `ScaledJob`.
    pub object_kind: String,
    pub namespace: String,
    pub name: String,
    /// RFC 6901 pointer to the field to break.
    pub pointer: String,
    /// The broken value.
    pub value: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubernetesScale {
    pub object_kind: ScaleKind,
    pub namespace: String,
    pub name: String,
    pub replicas: u32,
}

/// What `kubernetes-scale` can scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleKind {
    Deployment,
    StatefulSet,
}

impl ScaleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ScaleKind::Deployment => "Deployment",
            ScaleKind::StatefulSet => "StatefulSet",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecFault {
    /// Program and arguments that break things.
    pub inject: Vec<String>,
    /// Program and arguments that undo `inject`.
    pub revert: Vec<String>,
    /// Optional: prints the current state (journaled before injecting).
    pub check: Option<Vec<String>>,
    /// Limit for each command.
    pub timeout: Duration,
    /// What the commands change, as the author declares it (`touches`), for
    /// `--parallel`: empty means unknown, so the drill runs alone. A
    /// Kubernetes object is named as `kubernetes <Kind> <namespace>/<name>`.
    pub touches: Vec<String>,
}

/// Publish sentinels while the fault is live (e.g. so the platform tries
/// to start a worker, or a backlog builds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    /// A loaded probe's name.
    pub probe: String,
    /// Overrides the probe's `count`.
    pub count: Option<u32>,
}

impl Trigger {
    /// How many sentinels the trigger publishes with `probe`.
    pub fn count_with(&self, probe: &ProbeSpec) -> u32 {
        self.count.unwrap_or(probe.count)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDrill {
    name: Spanned<Name>,
    alert: AlertName,
    #[serde(default)]
    expect_labels: BTreeMap<LabelName, Spanned<String>>,
    deadline: PositiveDuration,
    #[serde(default)]
    resolve_timeout: Option<PositiveDuration>,
    #[serde(default)]
    trials: Option<Ranged<1, 100>>,
    #[serde(default)]
    silence: bool,
    #[serde(default)]
    expect_receiver: Option<Spanned<String>>,
    #[serde(default)]
    regression: Option<Spanned<String>>,
    fault: RawFault,
    #[serde(default)]
    trigger: Option<RawTrigger>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrigger {
    probe: Spanned<String>,
    #[serde(default)]
    count: Option<Ranged<1, 1_000_000>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultFields {
    kind: FaultKind,
    #[serde(default)]
    fault: Option<FleetFault>,
    #[serde(default)]
    api_version: Option<NonEmpty>,
    #[serde(default)]
    object_kind: Option<Spanned<ObjectKind>>,
    #[serde(default)]
    namespace: Option<Spanned<String>>,
    #[serde(default)]
    name: Option<Spanned<String>>,
    #[serde(default)]
    pointer: Option<JsonPointer>,
    #[serde(default)]
    value: Option<JsonValue>,
    #[serde(default)]
    replicas: Option<u32>,
    #[serde(default)]
    inject: Option<Spanned<NonEmptyList<String>>>,
    #[serde(default)]
    revert: Option<Spanned<NonEmptyList<String>>>,
    #[serde(default)]
    check: Option<Spanned<NonEmptyList<String>>>,
    #[serde(default)]
    timeout: Option<PositiveDuration>,
    #[serde(default)]
    touches: Option<Spanned<NonEmptyList<String>>>,
}

/// `[fault]` whose keys match its `kind`.
struct RawFault(FaultFields);

impl<'de> Deserialize<'de> for RawFault {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_checked(d, check_fault)
    }
}

fn check_fault(f: FaultFields) -> Result<RawFault, TableError> {
    let present: [(&'static str, bool); 14] = [
        ("fault", f.fault.is_some()),
        ("api_version", f.api_version.is_some()),
        ("object_kind", f.object_kind.is_some()),
        ("namespace", f.namespace.is_some()),
        ("name", f.name.is_some()),
        ("pointer", f.pointer.is_some()),
        ("value", f.value.is_some()),
        ("replicas", f.replicas.is_some()),
        ("inject", f.inject.is_some()),
        ("revert", f.revert.is_some()),
        ("check", f.check.is_some()),
        ("timeout", f.timeout.is_some()),
        ("touches", f.touches.is_some()),
        ("kind", true),
    ];
    let keys = f.kind.keys();
    let names: Vec<&str> = keys.iter().map(|(k, _)| *k).collect();
    for (key, is_present) in present {
        if is_present && key != "kind" && !names.contains(&key) {
            return Err(TableError::invalid(
                key,
                format!(
                    "\"{key}\" does not apply to kind = \"{}\" (its keys: {}; remove it, or change kind)",
                    f.kind,
                    names.join(", ")
                ),
            ));
        }
    }
    for (key, required) in keys {
        let is_present = present.iter().any(|(k, p)| k == key && *p);
        if *required && !is_present {
            return Err(TableError::missing(
                key,
                format!("kind = \"{}\" needs it; add it to {{table}}", f.kind),
            ));
        }
    }
    Ok(RawFault(f))
}

/// Loads every `*.toml` in `dir` (which must exist), in file-name order.
/// Templates (`{{namespace}}`, target variables) are rendered for `target`;
/// `trigger.probe` must name one of `probes` (NATS or HTTP probes' names).
pub fn load_drills(
    dir: &Path,
    target: &Target,
    probes: &[&str],
) -> Result<Vec<DrillSpec>, SpecError> {
    let mut out = Vec::new();
    for path in toml_files(dir, "induced-failures")? {
        let file = SourceFile::read(&path, "it disappeared while loading; retry")?;
        let raw: RawDrill = file.parse()?;
        out.push(build(&file, raw, target, probes)?);
    }
    Ok(out)
}

fn build(
    file: &SourceFile,
    raw: RawDrill,
    target: &Target,
    probes: &[&str],
) -> Result<DrillSpec, SpecError> {
    let name = raw.name.get_ref().0.clone();
    let stem = file
        .path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name != stem {
        return Err(file.error(
            SpecErrorKind::NameMismatch,
            &raw.name.span(),
            "name",
            format!("drill name \"{name}\" must equal the file name \"{stem}\" (rename the file to {name}.toml, or set name = \"{stem}\")"),
        ));
    }
    let mut expect_labels = BTreeMap::new();
    for (label, value) in raw.expect_labels {
        let key = format!("expect_labels.{}", label.0);
        let rendered = render_at_load(file, Some(&value.span()), &key, value.get_ref(), target)?;
        expect_labels.insert(label.0, rendered);
    }

    let expect_receiver = match &raw.expect_receiver {
        None => None,
        Some(r) => {
            let rendered = render_at_load(
                file,
                Some(&r.span()),
                "expect_receiver",
                r.get_ref(),
                target,
            )?;
            if rendered.trim().is_empty() {
                return Err(file.error(
                    SpecErrorKind::InvalidValue,
                    &r.span(),
                    "expect_receiver",
                    "must name an Alertmanager receiver (as /api/v2/alerts lists it); remove the key to accept any receiver",
                ));
            }
            Some(rendered)
        }
    };

    let fault = build_fault(file, raw.fault.0, target)?;

    let trigger = match raw.trigger {
        None => None,
        Some(t) => {
            let probe = t.probe.get_ref().clone();
            if !probes.contains(&probe.as_str()) {
                let known: Vec<&str> = probes.to_vec();
                let known = if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                };
                return Err(file.error(
                    SpecErrorKind::UnknownReference,
                    &t.probe.span(),
                    "trigger.probe",
                    format!("unknown probe \"{probe}\" (loaded probes: {known})"),
                ));
            }
            Some(Trigger {
                probe,
                count: t.count.map(|c| c.0),
            })
        }
    };

    Ok(DrillSpec {
        name,
        alert: raw.alert.0,
        expect_labels,
        deadline: target.scale_drill_time(raw.deadline.0),
        resolve_timeout: target.scale_drill_time(
            raw.resolve_timeout
                .map(|d| d.0)
                .unwrap_or(DEFAULT_RESOLVE_TIMEOUT),
        ),
        trials: raw.trials.map(|t| t.0).unwrap_or(1),
        silence: raw.silence,
        expect_receiver,
        regression: super::criteria::regression(file, "regression", raw.regression.as_ref())?,
        fault,
        trigger,
        source: file.loc(&raw.name.span()),
        fault_line: file
            .header_line(&["fault"])
            .unwrap_or_else(|| file.line_at(raw.name.span().start)),
    })
}

fn build_fault(file: &SourceFile, f: FaultFields, target: &Target) -> Result<Fault, SpecError> {
    // check_fault guaranteed the keys each kind needs; a missing one here
    // would be a bug, reported rather than panicking.
    let missing = |key: &str| {
        SpecError::new(
            SpecErrorKind::MissingKey,
            &file.path,
            None,
            Some(format!("fault.{key}")),
            "missing required key",
        )
    };
    let render_checked =
        |field: &Spanned<String>, key: &str, check: fn(&str) -> Result<(), String>| {
            let key = format!("fault.{key}");
            let value = render_at_load(file, Some(&field.span()), &key, field.get_ref(), target)?;
            check(&value)
                .map_err(|e| file.error(SpecErrorKind::InvalidValue, &field.span(), &key, e))?;
            Ok::<_, SpecError>(value)
        };
    let render_args = |field: &Spanned<NonEmptyList<String>>, key: &str| {
        let key = format!("fault.{key}");
        let args = field
            .get_ref()
            .0
            .iter()
            .map(|arg| render_at_load(file, Some(&field.span()), &key, arg, target))
            .collect::<Result<Vec<_>, _>>()?;
        if args[0].trim().is_empty() {
            return Err(file.error(
                SpecErrorKind::InvalidValue,
                &field.span(),
                key,
                "the first entry is the program to run and must not be empty",
            ));
        }
        Ok::<_, SpecError>(args)
    };
    // The object a kubernetes-* fault acts on: (namespace, name).
    let object = |namespace: Option<Spanned<String>>, name: Option<Spanned<String>>| {
        let namespace = render_checked(
            &namespace.ok_or_else(|| missing("namespace"))?,
            "namespace",
            check_dns_label,
        )?;
        let name = render_checked(
            &name.ok_or_else(|| missing("name"))?,
            "name",
            check_object_name,
        )?;
        Ok::<_, SpecError>((namespace, name))
    };
    Ok(match f.kind {
        FaultKind::Fleet => Fault::Fleet {
            fault: f.fault.ok_or_else(|| missing("fault"))?,
        },
        FaultKind::KubernetesPatch => {
            let mut value = f.value.ok_or_else(|| missing("value"))?.0;
            render_json_at_load(file, "fault.value", &mut value, target)?;
            let (namespace, name) = object(f.namespace, f.name)?;
            Fault::KubernetesPatch(KubernetesPatch {
                api_version: f.api_version.ok_or_else(|| missing("api_version"))?.0,
                object_kind: f
                    .object_kind
                    .ok_or_else(|| missing("object_kind"))?
                    .into_inner()
                    .0,
                namespace,
                name,
                pointer: f.pointer.ok_or_else(|| missing("pointer"))?.0,
                value,
            })
        }
        FaultKind::KubernetesScale => {
            let kind = f.object_kind.ok_or_else(|| missing("object_kind"))?;
            let object_kind = match kind.get_ref().0.as_str() {
                "Deployment" => ScaleKind::Deployment,
                "StatefulSet" => ScaleKind::StatefulSet,
                other => {
                    return Err(file.error(
                        SpecErrorKind::InvalidValue,
                        &kind.span(),
                        "fault.object_kind",
                        format!("kind = \"kubernetes-scale\" scales a Deployment or StatefulSet, not \"{other}\" (use kubernetes-patch for other objects)"),
                    ))
                }
            };
            let (namespace, name) = object(f.namespace, f.name)?;
            Fault::KubernetesScale(KubernetesScale {
                object_kind,
                namespace,
                name,
                replicas: f.replicas.ok_or_else(|| missing("replicas"))?,
            })
        }
        FaultKind::Exec => Fault::Exec(ExecFault {
            inject: render_args(&f.inject.ok_or_else(|| missing("inject"))?, "inject")?,
            revert: render_args(&f.revert.ok_or_else(|| missing("revert"))?, "revert")?,
            check: f
                .check
                .as_ref()
                .map(|c| render_args(c, "check"))
                .transpose()?,
            timeout: f.timeout.map(|t| t.0).unwrap_or(DEFAULT_EXEC_TIMEOUT),
            touches: match &f.touches {
                None => Vec::new(),
                Some(t) => render_touches(file, t, target)?,
            },
        }),
    })
}

/// `touches`, rendered; an empty entry is refused (it would match nothing
/// and read as "declared").
fn render_touches(
    file: &SourceFile,
    field: &Spanned<NonEmptyList<String>>,
    target: &Target,
) -> Result<Vec<String>, SpecError> {
    let mut out = Vec::new();
    for t in &field.get_ref().0 {
        let v = render_at_load(file, Some(&field.span()), "fault.touches", t, target)?;
        if v.trim().is_empty() {
            return Err(file.error(
                SpecErrorKind::InvalidValue,
                &field.span(),
                "fault.touches",
                "an entry is empty: name each thing the commands change (e.g. \"kubernetes Deployment ns/name\"), or remove the key to run the drill alone",
            ));
        }
        out.push(v.trim().to_string());
    }
    Ok(out)
}

/// Drill-plan time: picks the drills to run (`names`, or all when empty)
/// and checks the target may run them: `drills_allowed`, an
/// `alertmanager_url` for a deployed platform, and fault kinds the target
/// can carry out (`fleet` only on the local stack). With no `names`, the
/// target's `drills` list (or every loaded drill).
pub fn plan_drills<'a>(
    target: &Target,
    drills: &'a [DrillSpec],
    names: &[String],
) -> Result<Vec<&'a DrillSpec>, SpecError> {
    let target_key = format!(
        "targets.{}",
        super::source::join_path(&[target.name.as_str()])
    );
    // Each name must be a loaded drill; `unknown` says where the name came from.
    let pick = |wanted: &[String], unknown: &dyn Fn(&str, String) -> SpecError| {
        wanted
            .iter()
            .map(|name| {
                drills.iter().find(|d| &d.name == name).ok_or_else(|| {
                    let known: Vec<&str> = drills.iter().map(|d| d.name.as_str()).collect();
                    let known = if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    };
                    unknown(name, known)
                })
            })
            .collect::<Result<Vec<&DrillSpec>, SpecError>>()
    };
    let selected: Vec<&DrillSpec> = match (names.is_empty(), &target.drills) {
        (true, None) => drills.iter().collect(),
        (true, Some(chosen)) => pick(chosen, &|name, known| {
            SpecError::new(
                SpecErrorKind::UnknownReference,
                &target.source.file,
                Some(target.source.line),
                Some(format!("{target_key}.drills")),
                format!(
                    "target \"{}\" lists drill \"{name}\", which is not loaded (loaded drills: {known}); fix the list or the drills directory",
                    target.name
                ),
            )
        })?,
        (false, _) => pick(names, &|name, known| {
            SpecError::new(
                SpecErrorKind::UnknownReference,
                "<command line>",
                None,
                None,
                format!("unknown drill \"{name}\" (loaded drills: {known})"),
            )
        })?,
    };
    let at_target = |kind, key: &str, message: String| {
        SpecError::new(
            kind,
            &target.source.file,
            Some(target.source.line),
            Some(format!("{target_key}.{key}")),
            message,
        )
    };
    if !target.drills_allowed {
        return Err(at_target(
            SpecErrorKind::NotAllowed,
            "drills_allowed",
            format!(
                "target \"{}\" does not allow drills: they break things on purpose (set drills_allowed = true in its table once the environment's owners agree)",
                target.name
            ),
        ));
    }
    if let Endpoints::Remote(remote) = &target.endpoints {
        if remote.alertmanager_url.is_none() && !selected.is_empty() {
            return Err(at_target(
                SpecErrorKind::MissingKey,
                "alertmanager_url",
                "missing required key \"alertmanager_url\" (drills time the alert's arrival in Alertmanager; add it to the target's table)".to_string(),
            ));
        }
    }
    for drill in &selected {
        let kind = drill.fault.kind();
        let refused = match (&target.endpoints, kind) {
            (Endpoints::Remote(_), FaultKind::Fleet) => {
                Some("the reference fleet only exists on a local stack with a [fleet] table")
            }
            (Endpoints::Local(local), FaultKind::Fleet) if local.fleet.is_none() => {
                Some("this local-stack target has no [fleet] table, so there is no reference fleet to switch")
            }
            (
                Endpoints::Local(local),
                FaultKind::KubernetesPatch | FaultKind::KubernetesScale,
            ) if local.fleet.is_none() => Some(
                "a local-stack target without a [fleet] table rehearses no Kubernetes API, and a rehearsal must never reach a real cluster",
            ),
            _ => None,
        };
        if let Some(why) = refused {
            return Err(SpecError::new(
                SpecErrorKind::NotAllowed,
                &drill.source.file,
                Some(drill.fault_line),
                Some("fault.kind".into()),
                format!(
                    "drill \"{}\" (kind = \"{kind}\") cannot run against target \"{}\": {why}; \
                     use an exec or kubernetes-* fault for this target, or leave the drill out of its `drills` list",
                    drill.name, target.name
                ),
            ));
        }
    }
    Ok(selected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fleet_fault_names_round_trip() {
        for fault in FleetFault::ALL {
            assert_eq!(fault.as_str().parse::<FleetFault>(), Ok(fault));
            let via_serde: FleetFault = toml::Value::String(fault.as_str().into())
                .try_into()
                .unwrap();
            assert_eq!(via_serde, fault);
        }
        assert!("nope"
            .parse::<FleetFault>()
            .unwrap_err()
            .contains("worker-image-tag"));
    }

    #[test]
    fn every_kind_names_its_keys() {
        for kind in [
            FaultKind::Fleet,
            FaultKind::KubernetesPatch,
            FaultKind::KubernetesScale,
            FaultKind::Exec,
        ] {
            assert!(!kind.keys().is_empty(), "{kind}");
        }
    }

    #[test]
    fn describes_each_kind() {
        let f = Fault::KubernetesScale(KubernetesScale {
            object_kind: ScaleKind::Deployment,
            namespace: "daedalus".into(),
            name: "daedalus-orchestrator".into(),
            replicas: 0,
        });
        assert_eq!(f.kind().as_str(), "kubernetes-scale");
        assert_eq!(
            f.describe(),
            "kubernetes-scale Deployment daedalus/daedalus-orchestrator to 0 replicas"
        );
    }

    #[test]
    fn every_repo_drill_spec_is_ready_to_run() {
        let mut opts = crate::spec::LoadOptions::new("local");
        opts.root = env!("CARGO_MANIFEST_DIR").into();
        let plan = crate::spec::load_plan(&opts).unwrap();
        assert_eq!(plan.drills.len(), 7);
        for d in &plan.drills {
            assert_eq!(d.expect_labels["namespace"], "daedalus", "{}", d.name);
            assert_eq!(
                d.expect_receiver.as_deref(),
                Some("firedrill"),
                "{}",
                d.name
            );
            // Every drill but stream-unhealthy is a Kubernetes operation.
            let kube = matches!(
                d.fault.kind(),
                FaultKind::KubernetesPatch | FaultKind::KubernetesScale
            );
            assert_eq!(kube, d.name != "stream-unhealthy", "{}", d.name);
        }
        let w = plan.drill("worker-image-tag").unwrap();
        assert_eq!(w.alert, "WorkerImagePullBackOff");
        // The seed's 3 minutes, times the local target's drill_time_scale.
        assert_eq!(w.deadline, Duration::from_secs(36));
        assert_eq!(w.trigger.as_ref().unwrap().probe, "sentinel");
        let Fault::KubernetesPatch(p) = &w.fault else {
            panic!("{:?}", w.fault)
        };
        assert_eq!(
            (p.namespace.as_str(), p.name.as_str(), p.value.as_str()),
            (
                "daedalus",
                "daedalus-worker",
                Some("ghcr.io/daedalus/worker:firedrill-no-such-tag")
            )
        );
    }
}
