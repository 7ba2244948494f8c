//! Spec files -> validated [`Plan`] (pure: reads files, no other I/O).
//!
//! Two stages: TOML is deserialised into private raw structs (unknown keys
//! rejected, single values checked by small newtypes as they are read),
//! then the rules that span several keys or files build the public types
//! here. Every failure is one [`SpecError`] naming file, line and dotted key;
//! the binary maps it to exit code 2.
//!
//! Templates: probe and drill fields are rendered while loading (target
//! variables and `namespace` only); criterion queries and evidence links
//! stay templates, checked now against the variables the run will provide
//! (see [`vars`] and [`Target::run_vars`]).

pub mod criteria;
pub mod drill;
pub mod duration;
pub mod error;
pub mod http_probe;
pub mod load;
pub mod probe;
mod source;
pub mod target;
pub mod template;
pub mod trace_tree;
mod value;
pub mod vars;

pub use criteria::{load_criteria, CmpOp, Condition, Criterion, CriterionKind, Evidence, OnEmpty};
pub use drill::{
    load_drills, plan_drills, DrillSpec, ExecFault, Fault, FaultKind, FleetFault, KubernetesPatch,
    KubernetesScale, ScaleKind, Trigger,
};
pub use duration::{format_duration, parse_duration, MAX_DURATION, MAX_DURATION_TEXT};
pub use error::{SourceLoc, SpecError, SpecErrorKind};
pub use load::{load_plan, AnyProbe, LoadOptions, Parts, Plan};
pub use probe::{builtin_probes, load_probes, ProbeSpec};
pub use target::{
    builtin_local_target, load_target, Endpoints, FleetSpec, LocalSpec, RemoteEndpoints, RuleFile,
    ScrapeSpec, SpecDirs, Target,
};
pub use template::Vars;
pub use trace_tree::{builtin_trace_tree, load_trace_tree, parse_trace_tree, TREE_FILE};
pub use value::is_env_var_name;
pub(crate) use value::parse_url;
