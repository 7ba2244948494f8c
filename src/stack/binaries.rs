//! Finding the stack's executables: the `FIREDRILL_*_BIN` override first,
//! then `PATH`, then the usual system directories (Debian installs
//! nats-server in `/usr/sbin`, which is not on every user's `PATH`).

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::StackError;

/// Searched after `PATH`, in this order.
pub const FALLBACK_DIRS: [&str; 3] = ["/usr/sbin", "/usr/local/bin", "/usr/bin"];

/// An external program the local stack (or its tests) needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tool {
    NatsServer,
    Prometheus,
    Alertmanager,
    Promtool,
}

impl Tool {
    pub const ALL: [Tool; 4] = [
        Tool::NatsServer,
        Tool::Prometheus,
        Tool::Alertmanager,
        Tool::Promtool,
    ];

    /// The name used in logs and errors.
    pub fn display_name(self) -> &'static str {
        match self {
            Tool::NatsServer => "nats-server",
            Tool::Prometheus => "prometheus",
            Tool::Alertmanager => "alertmanager",
            Tool::Promtool => "promtool",
        }
    }

    /// Executable names to look for, in order of preference.
    pub fn file_names(self) -> &'static [&'static str] {
        match self {
            Tool::NatsServer => &["nats-server"],
            Tool::Prometheus => &["prometheus"],
            // Debian and Ubuntu rename it.
            Tool::Alertmanager => &["alertmanager", "prometheus-alertmanager"],
            Tool::Promtool => &["promtool"],
        }
    }

    /// The env var that overrides the lookup.
    pub fn env_var(self) -> &'static str {
        match self {
            Tool::NatsServer => "FIREDRILL_NATS_SERVER_BIN",
            Tool::Prometheus => "FIREDRILL_PROMETHEUS_BIN",
            Tool::Alertmanager => "FIREDRILL_ALERTMANAGER_BIN",
            Tool::Promtool => "FIREDRILL_PROMTOOL_BIN",
        }
    }

    /// The Debian/Ubuntu package that ships it.
    pub fn package(self) -> &'static str {
        match self {
            Tool::NatsServer => "nats-server",
            Tool::Prometheus | Tool::Promtool => "prometheus",
            Tool::Alertmanager => "prometheus-alertmanager",
        }
    }
}

/// Finds `tool` using this process's environment.
pub fn find(tool: Tool) -> Result<PathBuf, StackError> {
    locate(
        tool,
        std::env::var_os(tool.env_var()).as_deref(),
        std::env::var_os("PATH").as_deref(),
    )
}

/// The lookup itself, with the override value and `PATH` passed in.
///
/// A non-empty override wins outright: if it names a path that is not an
/// executable file, that is an error rather than a silent fallback to some
/// other binary. An override without a `/` is treated as a command name and
/// searched like the default names.
pub fn locate(
    tool: Tool,
    env_override: Option<&OsStr>,
    path_var: Option<&OsStr>,
) -> Result<PathBuf, StackError> {
    locate_in(tool, env_override, path_var, &FALLBACK_DIRS)
}

/// [`locate`] with the fallback directories passed in too.
fn locate_in(
    tool: Tool,
    env_override: Option<&OsStr>,
    path_var: Option<&OsStr>,
    fallback_dirs: &[&str],
) -> Result<PathBuf, StackError> {
    let missing = |detail: String| StackError::MissingBinary {
        tool: tool.display_name(),
        package: tool.package(),
        env_var: tool.env_var(),
        detail,
    };
    let dirs: Vec<PathBuf> = path_var
        .map(|p| std::env::split_paths(p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter(|d| !d.as_os_str().is_empty())
        .chain(fallback_dirs.iter().map(PathBuf::from))
        .collect();

    if let Some(value) = env_override.filter(|v| !v.is_empty()) {
        let as_path = Path::new(value);
        if value.as_encoded_bytes().contains(&b'/') {
            return if is_executable(as_path) {
                Ok(as_path.to_path_buf())
            } else {
                Err(missing(format!(
                    "{}={} is not an executable file",
                    tool.env_var(),
                    as_path.display()
                )))
            };
        }
        return search(&dirs, &[value]).ok_or_else(|| {
            missing(format!(
                "{}={} was not found on PATH nor in {}",
                tool.env_var(),
                as_path.display(),
                fallback_dirs.join(", ")
            ))
        });
    }

    let names: Vec<&OsStr> = tool.file_names().iter().map(OsStr::new).collect();
    search(&dirs, &names).ok_or_else(|| {
        let looked_for = tool
            .file_names()
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(" or ");
        missing(format!(
            "looked for {looked_for} on PATH and in {}",
            fallback_dirs.join(", ")
        ))
    })
}

/// First executable `dir/name`, trying every name in a directory before
/// moving to the next directory (PATH order decides, as in a shell).
fn search(dirs: &[PathBuf], names: &[&OsStr]) -> Option<PathBuf> {
    dirs.iter()
        .flat_map(|d| names.iter().map(move |n| d.join(n)))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn make_exe(dir: &Path, name: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    fn path_of(dirs: &[&Path]) -> OsString {
        std::env::join_paths(dirs).unwrap()
    }

    #[test]
    fn override_path_wins_over_path() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        make_exe(a.path(), "prometheus");
        let custom = make_exe(b.path(), "my-prom");
        let got = locate(
            Tool::Prometheus,
            Some(custom.as_os_str()),
            Some(&path_of(&[a.path()])),
        )
        .unwrap();
        assert_eq!(got, custom);
    }

    #[test]
    fn bad_override_is_an_error_not_a_fallback() {
        let a = tempfile::tempdir().unwrap();
        make_exe(a.path(), "prometheus");
        let err = locate(
            Tool::Prometheus,
            Some(OsStr::new("/nonexistent/prometheus")),
            Some(&path_of(&[a.path()])),
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(
            err,
            StackError::MissingBinary {
                package: "prometheus",
                ..
            }
        ));
        assert!(
            msg.contains("FIREDRILL_PROMETHEUS_BIN=/nonexistent/prometheus"),
            "{msg}"
        );
        assert!(msg.contains("sudo apt-get install prometheus"), "{msg}");
    }

    #[test]
    fn override_without_slash_is_searched_as_a_name() {
        let a = tempfile::tempdir().unwrap();
        let exe = make_exe(a.path(), "nats-server-2.10");
        let got = locate(
            Tool::NatsServer,
            Some(OsStr::new("nats-server-2.10")),
            Some(&path_of(&[a.path()])),
        )
        .unwrap();
        assert_eq!(got, exe);
    }

    #[test]
    fn empty_override_is_ignored() {
        let a = tempfile::tempdir().unwrap();
        let exe = make_exe(a.path(), "nats-server");
        let got = locate(
            Tool::NatsServer,
            Some(OsStr::new("")),
            Some(&path_of(&[a.path()])),
        )
        .unwrap();
        assert_eq!(got, exe);
    }

    #[test]
    fn path_order_decides_and_non_executables_are_skipped() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        std::fs::write(a.path().join("promtool"), "not executable").unwrap();
        let exe = make_exe(b.path(), "promtool");
        let got = locate(Tool::Promtool, None, Some(&path_of(&[a.path(), b.path()]))).unwrap();
        assert_eq!(got, exe);
    }

    #[test]
    fn alertmanager_is_found_under_its_debian_name() {
        let a = tempfile::tempdir().unwrap();
        let exe = make_exe(a.path(), "prometheus-alertmanager");
        let got = locate(Tool::Alertmanager, None, Some(&path_of(&[a.path()]))).unwrap();
        assert_eq!(got, exe);
    }

    #[test]
    fn upstream_alertmanager_name_is_preferred_in_the_same_dir() {
        let a = tempfile::tempdir().unwrap();
        make_exe(a.path(), "prometheus-alertmanager");
        let exe = make_exe(a.path(), "alertmanager");
        let got = locate(Tool::Alertmanager, None, Some(&path_of(&[a.path()]))).unwrap();
        assert_eq!(got, exe);
    }

    #[test]
    fn missing_error_names_package_apt_line_and_override() {
        let empty = tempfile::tempdir().unwrap();
        let empty_dir = empty.path().to_str().unwrap();
        for tool in Tool::ALL {
            let err =
                locate_in(tool, None, Some(&path_of(&[empty.path()])), &[empty_dir]).unwrap_err();
            let msg = err.to_string();
            assert!(msg.starts_with(tool.display_name()), "{msg}");
            assert!(
                msg.contains(&format!("sudo apt-get install {}", tool.package())),
                "{msg}"
            );
            assert!(msg.contains(tool.env_var()), "{msg}");
            assert!(
                msg.contains(&format!("`{}`", tool.file_names()[0])),
                "{msg}"
            );
        }
    }

    #[test]
    fn missing_alertmanager_names_both_binary_names() {
        let empty = tempfile::tempdir().unwrap();
        let empty_dir = empty.path().to_str().unwrap();
        let msg = locate_in(Tool::Alertmanager, None, None, &[empty_dir])
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("`alertmanager` or `prometheus-alertmanager`"),
            "{msg}"
        );
        assert!(
            msg.contains("sudo apt-get install prometheus-alertmanager"),
            "{msg}"
        );
        assert!(msg.contains("FIREDRILL_ALERTMANAGER_BIN"), "{msg}");
    }

    #[test]
    fn packages_match_debian() {
        assert_eq!(Tool::NatsServer.package(), "nats-server");
        assert_eq!(Tool::Prometheus.package(), "prometheus");
        assert_eq!(Tool::Promtool.package(), "prometheus");
        assert_eq!(Tool::Alertmanager.package(), "prometheus-alertmanager");
    }
}
