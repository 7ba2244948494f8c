//! Finding the spec files and loading them into one validated [`Plan`].

use std::path::{Path, PathBuf};

use super::criteria::{load_criteria, Criterion};
use super::drill::{load_drills, DrillSpec};
use super::error::{SpecError, SpecErrorKind};
use super::http_probe::{load_http_probes, HttpProbeSpec};
use super::probe::{builtin_probes, load_probes, ProbeSpec};
use super::target::{builtin_local_target, load_target, Target, LOCAL_TARGET};
use super::template::Vars;

/// Default config file name, relative to [`LoadOptions::root`].
pub const CONFIG_FILE: &str = "firedrill.toml";
/// Default probes directory.
pub const PROBES_DIR: &str = "probes";
/// Default acceptance criteria directory.
pub const ACCEPTANCE_DIR: &str = "acceptance";
/// Default drills directory.
pub const DRILLS_DIR: &str = "induced-failures";

/// What to load. A path given explicitly must exist; a default one that is
/// absent means: built-in `local` target / built-in sentinel probe / no
/// criteria / no drills.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadOptions {
    /// Where the default paths are looked up (usually `.`).
    pub root: PathBuf,
    /// `firedrill.toml`; `None` = `<root>/firedrill.toml` if present.
    pub config: Option<PathBuf>,
    /// Target name (`local`, `aks-test`, ...).
    pub target: String,
    /// `None` = `<root>/probes` if present, else the built-in sentinel.
    pub probes_dir: Option<PathBuf>,
    /// `None` = `<root>/acceptance` if present, else no criteria.
    pub acceptance_dir: Option<PathBuf>,
    /// `None` = `<root>/induced-failures` if present, else no drills.
    pub drills_dir: Option<PathBuf>,
    /// Extra target variables (e.g. `--var k=v`), layered over the
    /// target's `variables`.
    pub vars: Vars,
    /// Which spec folders this command uses; the others are not read.
    pub parts: Parts,
}

/// The spec folders a command reads. Drills always bring the probes (their
/// triggers name probes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts {
    pub probes: bool,
    pub criteria: bool,
    pub drills: bool,
}

impl Parts {
    pub const ALL: Parts = Parts {
        probes: true,
        criteria: true,
        drills: true,
    };
    pub const NONE: Parts = Parts {
        probes: false,
        criteria: false,
        drills: false,
    };
}

impl LoadOptions {
    /// Defaults for `target`, rooted at the current directory.
    pub fn new(target: impl Into<String>) -> Self {
        LoadOptions {
            root: PathBuf::from("."),
            config: None,
            target: target.into(),
            probes_dir: None,
            acceptance_dir: None,
            drills_dir: None,
            vars: Vars::new(),
            parts: Parts::ALL,
        }
    }

    fn default_path(&self, name: &str) -> PathBuf {
        // Keep "firedrill.toml" rather than "./firedrill.toml" in messages.
        if self.root.as_os_str().is_empty() || self.root == Path::new(".") {
            PathBuf::from(name)
        } else {
            self.root.join(name)
        }
    }
}

/// Everything a run needs, validated; nothing downstream re-validates.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub target_name: String,
    pub target: Target,
    pub probes: Vec<ProbeSpec>,
    /// `kind = "http"` probes from the same directory.
    pub http_probes: Vec<HttpProbeSpec>,
    /// The probes directory that was read (its `trace-tree.toml`, if any,
    /// is the expected span tree); `None` with the built-in probe.
    pub probes_dir: Option<PathBuf>,
    pub criteria: Vec<Criterion>,
    pub drills: Vec<DrillSpec>,
    /// The `firedrill.toml` that was read, if any (the target itself may
    /// still be the built-in `local`; see `target.source`).
    pub config_path: Option<PathBuf>,
}

impl Plan {
    pub fn probe(&self, name: &str) -> Option<&ProbeSpec> {
        self.probes.iter().find(|p| p.name == name)
    }

    /// The `kind = "http"` probe named `name`.
    pub fn http_probe(&self, name: &str) -> Option<&HttpProbeSpec> {
        self.http_probes.iter().find(|p| p.config.name == name)
    }

    /// The probe named `name`, whichever its kind (names are unique per
    /// kind; a NATS probe wins a clash).
    pub fn any_probe(&self, name: &str) -> Option<AnyProbe<'_>> {
        self.probe(name)
            .map(AnyProbe::Nats)
            .or_else(|| self.http_probe(name).map(AnyProbe::Http))
    }

    /// Every probe's name, NATS probes first.
    pub fn probe_names(&self) -> Vec<&str> {
        probe_names(&self.probes, &self.http_probes)
    }
}

/// A probe of the plan, of either kind: what `run`, `smoke`, drill
/// triggers and `trace-audit` dispatch on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AnyProbe<'a> {
    /// Sentinels over NATS JetStream (`probes/*.toml` without `kind`).
    Nats(&'a ProbeSpec),
    /// Requests over HTTP (`kind = "http"`).
    Http(&'a HttpProbeSpec),
}

impl AnyProbe<'_> {
    pub fn name(&self) -> &str {
        match self {
            AnyProbe::Nats(p) => &p.name,
            AnyProbe::Http(p) => &p.config.name,
        }
    }
}

fn probe_names<'a>(nats: &'a [ProbeSpec], http: &'a [HttpProbeSpec]) -> Vec<&'a str> {
    nats.iter()
        .map(|p| p.name.as_str())
        .chain(http.iter().map(|p| p.config.name.as_str()))
        .collect()
}

impl Plan {
    pub fn drill(&self, name: &str) -> Option<&DrillSpec> {
        self.drills.iter().find(|d| d.name == name)
    }

    pub fn criterion(&self, id: &str) -> Option<&Criterion> {
        self.criteria.iter().find(|c| c.id == id)
    }
}

/// Loads and validates the target, probes, criteria and drills.
pub fn load_plan(opts: &LoadOptions) -> Result<Plan, SpecError> {
    let default_config = opts.default_path(CONFIG_FILE);
    let (target, config_path) = match &opts.config {
        Some(path) => (load_target(path, &opts.target, &opts.vars)?, Some(path.clone())),
        None if default_config.exists() => (
            load_target(&default_config, &opts.target, &opts.vars)?,
            Some(default_config),
        ),
        None if opts.target == LOCAL_TARGET => (builtin_local_target(&opts.vars)?, None),
        None => {
            return Err(SpecError::file(
                SpecErrorKind::UnknownTarget,
                &default_config,
                format!(
                    "unknown target \"{}\": there is no {} here, so only the built-in \"{LOCAL_TARGET}\" target exists \
                     (create it with a [targets.{}] table, or point the config option at the right file)",
                    opts.target,
                    default_config.display(),
                    opts.target
                ),
            ))
        }
    };

    let parts = opts.parts;
    // The command line's directory, else the target's own, else the default.
    let explicit = |cli: &Option<PathBuf>, own: &Option<PathBuf>| cli.clone().or(own.clone());
    // A target that brings any spec folder of its own brings them all: the
    // default folders (another platform's, perhaps) are not read for it.
    let own_specs = target.dirs.probes.is_some()
        || target.dirs.acceptance.is_some()
        || target.dirs.drills.is_some();
    let default_path = |name: &str| (!own_specs).then(|| opts.default_path(name));
    let (probes, http_probes, probes_dir) = if parts.probes || parts.drills {
        match dir_to_load(
            explicit(&opts.probes_dir, &target.dirs.probes).as_deref(),
            default_path(PROBES_DIR),
            "probes",
        )? {
            Some(dir) => (
                load_probes(&dir, &target)?,
                load_http_probes(&dir, &target)?,
                Some(dir),
            ),
            None if target.has_nats() => (builtin_probes(&target)?, Vec::new(), None),
            None => (Vec::new(), Vec::new(), None),
        }
    } else {
        (Vec::new(), Vec::new(), None)
    };
    if !target.has_nats() {
        if let Some(p) = probes.first() {
            return Err(SpecError::new(
                SpecErrorKind::NotAllowed,
                p.source.file.clone(),
                Some(p.source.line),
                Some("stream".into()),
                format!(
                    "probe \"{}\" publishes over NATS, but target \"{}\" has no NATS; add {} to {}, or give the target its own probes_dir without NATS probes",
                    p.name,
                    target.name,
                    if target.is_local() { "a [fleet] table" } else { "nats_url" },
                    target.table()
                ),
            ));
        }
    }
    let criteria = if parts.criteria {
        match dir_to_load(
            explicit(&opts.acceptance_dir, &target.dirs.acceptance).as_deref(),
            default_path(ACCEPTANCE_DIR),
            "acceptance",
        )? {
            Some(dir) => load_criteria(&dir, &target)?,
            None => Vec::new(),
        }
    } else {
        Vec::new()
    };
    let drills = if parts.drills {
        match dir_to_load(
            explicit(&opts.drills_dir, &target.dirs.drills).as_deref(),
            default_path(DRILLS_DIR),
            "drills",
        )? {
            Some(dir) => load_drills(&dir, &target, &probe_names(&probes, &http_probes))?,
            None => Vec::new(),
        }
    } else {
        Vec::new()
    };

    Ok(Plan {
        target_name: target.name.clone(),
        target,
        probes,
        http_probes,
        probes_dir,
        criteria,
        drills,
        config_path,
    })
}

/// The explicit directory (which must exist), else the default one if it
/// exists (and is to be read at all), else `None`.
fn dir_to_load(
    explicit: Option<&Path>,
    default: Option<PathBuf>,
    what: &str,
) -> Result<Option<PathBuf>, SpecError> {
    match explicit {
        Some(dir) if dir.is_dir() => Ok(Some(dir.to_path_buf())),
        Some(dir) if dir.exists() => Err(SpecError::file(
            SpecErrorKind::MissingFile,
            dir,
            format!("not a directory (the {what} option takes a directory of *.toml specs)"),
        )),
        Some(dir) => Err(SpecError::file(
            SpecErrorKind::MissingFile,
            dir,
            format!("{what} directory not found (create it, or point the {what} directory option at the right place)"),
        )),
        None => Ok(default.filter(|d| d.is_dir())),
    }
}

/// The `*.toml` files directly in `dir`, sorted by name.
pub(crate) fn toml_files(dir: &Path, what: &str) -> Result<Vec<PathBuf>, SpecError> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        let kind = if e.kind() == std::io::ErrorKind::NotFound {
            SpecErrorKind::MissingFile
        } else {
            SpecErrorKind::Unreadable
        };
        SpecError::file(kind, dir, format!("cannot read the {what} directory: {e}"))
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| {
                SpecError::file(
                    SpecErrorKind::Unreadable,
                    dir,
                    format!("cannot list the {what} directory: {e}"),
                )
            })?
            .path();
        if path.is_file() && path.extension().is_some_and(|ext| ext == "toml") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}
