//! The local real stack: `nats-server -js`, `alertmanager` and `prometheus`
//! as child processes on ephemeral loopback ports, with configs generated
//! into a temp dir, plus firedrill's own Alertmanager webhook receiver.
//!
//! Every exit path kills the children: `shutdown()` (SIGTERM, then SIGKILL
//! after 5 s), `Drop` (SIGKILL at once, also on panic), a failed `start()`
//! (whatever was already started is dropped, hence killed), and the death
//! of the thread that spawned them (`PR_SET_PDEATHSIG`), which covers
//! firedrill itself being SIGKILLed. The temp dir such a firedrill leaves
//! is removed by the next stack start ([`stale`]).

pub mod binaries;
pub mod config;
mod process;
pub mod rules;
pub mod stale;
pub mod webhook;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub use binaries::Tool;
pub use rules::render_local_rules;
pub use webhook::{
    AlertStatus, WebhookAlert, WebhookNotification, WebhookPayload, WebhookReceiver,
};

use process::{ManagedChild, NotReady};

/// How often the local stack scrapes (and evaluates rules) by default.
pub const SCRAPE_INTERVAL: Duration = Duration::from_millis(500);
/// Two scrape intervals: long enough for every target to have had a whole
/// scrape that started after now, so a series has a second sample.
pub const TWO_SCRAPES: Duration = SCRAPE_INTERVAL.saturating_mul(2);
/// How many times a child is started with fresh ports when it lost a bind race.
const START_ATTEMPTS: usize = 3;
/// How long `shutdown()` waits after SIGTERM before it sends SIGKILL.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// How many log lines an error quotes.
const LOG_TAIL_LINES: usize = 20;
/// How often startup asks Prometheus whether it is wired up yet.
const WIRING_POLL: Duration = Duration::from_millis(100);
/// A reload re-parses every rule; generous next to the readiness polls.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Opening the stack waits for one evaluation of each rule group that runs
/// at least this often; a slower group (its own `interval:`) would hold
/// the start for its whole interval.
const EVALUATION_WAIT_LIMIT: Duration = Duration::from_secs(5);
/// Where the rule files go, relative to the stack's dir; Prometheus reads
/// `rules/*.yml`.
const RULES_DIR: &str = "rules";

/// One extra Prometheus scrape job (the fleet, an OTel collector stand-in...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrapeJob {
    pub job_name: String,
    /// `"127.0.0.1:port"` each.
    pub targets: Vec<String>,
    pub metrics_path: String,
}

#[derive(Debug, Clone)]
pub struct StackOptions {
    /// Prometheus also always scrapes itself as job `prometheus`.
    pub scrape_jobs: Vec<ScrapeJob>,
    /// Already-rendered rule files: (file name, contents), each checked by
    /// `promtool check rules` before Prometheus reads it.
    pub rules: Vec<(String, String)>,
    /// Start nats-server (with JetStream) too.
    pub nats: bool,
    /// Jobs whose every target must have answered a scrape (health `up`)
    /// before the stack opens, e.g. the fleet, whose metrics the rules'
    /// `absent()` legs watch. Other jobs only need to have been tried.
    pub healthy_jobs: Vec<String>,
    /// Per step: how long each child may take to answer its readiness
    /// endpoint, and how long Prometheus may take to find the
    /// Alertmanager and scrape every job once.
    pub startup_timeout: Duration,
    pub scrape_interval: Duration,
    pub evaluation_interval: Duration,
}

impl Default for StackOptions {
    fn default() -> Self {
        StackOptions {
            scrape_jobs: Vec::new(),
            rules: Vec::new(),
            nats: true,
            healthy_jobs: Vec::new(),
            startup_timeout: Duration::from_secs(20),
            scrape_interval: SCRAPE_INTERVAL,
            evaluation_interval: SCRAPE_INTERVAL,
        }
    }
}

/// Everything that can go wrong bringing the stack up or down. Each message
/// says what failed, where, and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error(
        "{tool} not found: {detail}. Install it with `sudo apt-get install {package}` \
         (Debian/Ubuntu package `{package}`), or set {env_var} to the path of the binary"
    )]
    MissingBinary {
        tool: &'static str,
        package: &'static str,
        env_var: &'static str,
        detail: String,
    },

    #[error("invalid local stack options: {0}")]
    InvalidOptions(String),

    #[error("{file}: {detail}")]
    RulesTemplate { file: String, detail: String },

    #[error(
        "{file}: `promtool check rules` rejects it:\n{output}\nFix the rule file (run `promtool check rules` on it to check again)"
    )]
    RulesInvalid { file: String, output: String },

    #[error("could not create the local stack's temp dir under {dir}: {source}. Check that the temp dir (TMPDIR) is writable and has free space")]
    TempDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "could not write {path}: {source}. Check that the temp dir is writable and has free space"
    )]
    WriteFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("could not reserve a free port on 127.0.0.1: {source}. Check that the loopback interface is up and that ephemeral ports are not exhausted")]
    Port {
        #[source]
        source: std::io::Error,
    },

    #[error("could not start {name} ({program}): {source}. Check that the file is an executable for this machine, or point {env_var} at one that is")]
    Spawn {
        name: &'static str,
        program: PathBuf,
        env_var: &'static str,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "{name} exited during startup ({status}) on attempt {attempt} of {attempts}. \
         Last lines of its log:\n{log_tail}\n\
         Fix what the log reports (a bad generated config or rules file shows up here), then retry"
    )]
    ChildExited {
        name: &'static str,
        status: String,
        attempt: usize,
        attempts: usize,
        log_tail: String,
    },

    #[error(
        "{name} did not become ready within {timeout:?}: {url} never answered 200. \
         Last lines of its log:\n{log_tail}\n\
         If the machine is just slow, raise StackOptions::startup_timeout; otherwise fix what the log reports"
    )]
    StartupTimeout {
        name: &'static str,
        url: String,
        timeout: Duration,
        log_tail: String,
    },

    #[error(
        "prometheus did not {what} within {timeout:?} (polled {url}). \
         Last lines of its log:\n{log_tail}\n\
         If a scrape target is slow to answer, raise StackOptions::startup_timeout; otherwise fix what the log reports"
    )]
    NotWired {
        what: String,
        url: String,
        timeout: Duration,
        log_tail: String,
    },

    #[error(
        "prometheus rejected the rules ({detail}). Last lines of its log:\n{log_tail}\n\
         Check the rules with `promtool check rules <file>` and fix what it reports"
    )]
    RulesRejected { detail: String, log_tail: String },

    #[error(
        "alertmanager did not take its config when the stack opened ({detail}). Last lines of its log:\n{log_tail}\n\
         This is firedrill's generated config: report it as a firedrill bug, with the log"
    )]
    AlertmanagerReload { detail: String, log_tail: String },

    #[error("firedrill's webhook receiver could not {what}: {source}. Check that 127.0.0.1 is available to bind")]
    Webhook {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },

    #[error("could not build the HTTP client used for readiness checks: {0}. The TLS backend failed to initialise; report this as a firedrill bug")]
    HttpClient(#[source] reqwest::Error),

    #[error("{name} (pid {pid}) did not exit even after SIGKILL: {detail}. Kill it by hand (`kill -9 -{pid}`)")]
    StopFailed {
        name: &'static str,
        pid: u32,
        detail: String,
    },

    #[error("could not remove the local stack's temp dir {dir}: {source}. Remove it by hand (`rm -rf {dir}`)")]
    RemoveDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A running local stack. Dropping it kills every child; prefer
/// [`LocalStack::shutdown`], which lets them exit cleanly first.
pub struct LocalStack {
    /// `nats://127.0.0.1:<port>`; `None` when started without NATS.
    pub nats_url: Option<String>,
    /// `http://127.0.0.1:<port>`.
    pub prometheus_url: String,
    /// `http://127.0.0.1:<port>`.
    pub alertmanager_url: String,
    /// Where Alertmanager sends every notification (route receiver `firedrill`).
    pub webhook: WebhookReceiver,
    /// (the path Prometheus loaded a rule file from, the name it was given
    /// in [`StackOptions::rules`]): reports show the user's name.
    pub rule_files: Vec<(String, String)>,
    /// Start order; shut down together. Emptied by `shutdown()`.
    children: Vec<ManagedChild>,
    dir_path: PathBuf,
    /// `None` once `shutdown()` has removed it.
    dir: Option<TempDir>,
}

impl std::fmt::Debug for LocalStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalStack")
            .field("nats_url", &self.nats_url)
            .field("prometheus_url", &self.prometheus_url)
            .field("alertmanager_url", &self.alertmanager_url)
            .field("webhook", &self.webhook.url)
            .field("child_pids", &self.child_pids())
            .field("dir", &self.dir_path)
            .finish()
    }
}

impl LocalStack {
    /// Starts the stack and returns once it is open: [`LocalStack::launch`]
    /// then [`StartingStack::ready`]. About 6 s, one of Prometheus' 5 s
    /// discovery ticks.
    pub async fn start(opts: StackOptions) -> Result<LocalStack, StackError> {
        Self::launch(opts).await?.ready().await
    }

    /// Starts nats-server, alertmanager and prometheus together, with the
    /// rules and the Alertmanager already in the first configuration
    /// Prometheus reads (a reload would empty its Alertmanager list until
    /// the next 5 s discovery tick). Returns once each child answers its
    /// readiness endpoint, well before Prometheus has scraped anything:
    /// start what the scrape jobs point at (the fleet) and then call
    /// [`StartingStack::ready`].
    ///
    /// Until the stack is open, Alertmanager routes every alert to a
    /// receiver with no integration: an `absent()` leg is true until the
    /// first scrape, and whatever it fires then must reach nobody.
    pub async fn launch(opts: StackOptions) -> Result<StartingStack, StackError> {
        config::validate(&opts)?;
        // Find every binary before starting anything, so a missing one
        // costs nothing and names all it needs.
        let nats_bin = if opts.nats {
            Some(binaries::find(Tool::NatsServer)?)
        } else {
            None
        };
        let am_bin = binaries::find(Tool::Alertmanager)?;
        let prom_bin = binaries::find(Tool::Prometheus)?;
        let promtool = if opts.rules.is_empty() {
            None
        } else {
            Some(binaries::find(Tool::Promtool)?)
        };

        // Dirs left by stacks whose firedrill was SIGKILLed.
        stale::sweep(&std::env::temp_dir());
        let dir = tempfile::Builder::new()
            .prefix(stale::DIR_PREFIX)
            .tempdir()
            .map_err(|source| StackError::TempDir {
                dir: std::env::temp_dir(),
                source,
            })?;
        let dir_path = dir.path().to_path_buf();
        write_file(
            &dir_path.join(stale::OWNER_FILE),
            &std::process::id().to_string(),
        )?;
        for sub in ["nats", "am", "prom", RULES_DIR] {
            let p = dir_path.join(sub);
            std::fs::create_dir(&p).map_err(|source| StackError::WriteFile { path: p, source })?;
        }

        let webhook = WebhookReceiver::start().await?;
        let http = reqwest::Client::builder()
            // A proxy from the environment must never see loopback traffic.
            .no_proxy()
            .timeout(Duration::from_millis(500))
            .build()
            .map_err(StackError::HttpClient)?;

        // In place before Prometheus reads its first configuration, and
        // checked by promtool while the children start (a rejection wins
        // over whatever Prometheus makes of the same file).
        let rules_dir = dir_path.join(RULES_DIR);
        let staged = rules::stage(&opts.rules, &dir_path.join("rules-check"))?;
        for (name, text) in staged.files() {
            write_file(&rules_dir.join(name), text)?;
        }
        let rule_names: Vec<(String, String)> = staged
            .files()
            .zip(&opts.rules)
            .map(|((staged, _), (name, _))| {
                (rules_dir.join(staged).display().to_string(), name.clone())
            })
            .collect();
        let check = async {
            match promtool {
                Some(promtool) => tokio::task::spawn_blocking(move || staged.check(&promtool))
                    .await
                    .unwrap_or_else(|e| {
                        Err(StackError::InvalidOptions(format!(
                            "the rules check did not finish: {e}"
                        )))
                    }),
                None => Ok(()),
            }
        };
        let am_config_path = dir_path.join("alertmanager.yml");
        write_file(&am_config_path, &config::alertmanager_yml(None))?;

        let launcher = Launcher {
            dir: &dir_path,
            http: &http,
            timeout: opts.startup_timeout,
        };

        // Prometheus' first discovery tick comes 5 s after it starts, so it
        // starts at once, with the Alertmanager's port reserved for it.
        let planned_am_port = process::free_ports(1)?;
        let planned_am_addr = format!("127.0.0.1:{}", planned_am_port[0]);
        let nats = async {
            let Some(nats_bin) = &nats_bin else {
                return Ok(None);
            };
            launcher
                .start(Tool::NatsServer, nats_bin, 2, None, |ports| {
                    let (client, monitor) = (ports[0], ports[1]);
                    let args = vec![
                        "-js".into(),
                        "-a".into(),
                        "127.0.0.1".into(),
                        "-p".into(),
                        client.to_string().into(),
                        "-m".into(),
                        monitor.to_string().into(),
                        "-sd".into(),
                        dir_path.join("nats").into_os_string(),
                    ];
                    let ready = format!("http://127.0.0.1:{monitor}/healthz?js-enabled-only=true");
                    Ok((args, ready))
                })
                .await
                .map(Some)
        };
        let alertmanager = launcher.start(
            Tool::Alertmanager,
            &am_bin,
            1,
            Some(planned_am_port),
            |ports| {
                let listen = format!("127.0.0.1:{}", ports[0]);
                let args = vec![
                    flag("--config.file=", &am_config_path),
                    flag("--storage.path=", &dir_path.join("am")),
                    format!("--web.listen-address={listen}").into(),
                    format!("--web.external-url=http://{listen}/").into(),
                    // Empty disables gossip: no cluster port, no mesh to wait for.
                    "--cluster.listen-address=".into(),
                ];
                Ok((args, format!("http://{listen}/-/ready")))
            },
        );
        let prom_config_path = dir_path.join("prometheus.yml");
        let rules_glob = format!("{RULES_DIR}/*.yml");
        let prometheus = launcher.start(Tool::Prometheus, &prom_bin, 1, None, |ports| {
            let listen = format!("127.0.0.1:{}", ports[0]);
            // Regenerated per attempt: the self-scrape target is this port.
            write_file(
                &prom_config_path,
                &config::prometheus_yml(&opts, &listen, &planned_am_addr, &rules_glob),
            )?;
            let args = vec![
                flag("--config.file=", &prom_config_path),
                flag("--storage.tsdb.path=", &dir_path.join("prom")),
                format!("--web.listen-address={listen}").into(),
                format!("--web.external-url=http://{listen}/").into(),
                "--web.enable-lifecycle".into(),
                "--storage.tsdb.retention.time=1d".into(),
                // Resend firing alerts every second, like the rest of the
                // time-scaled stack, so a send lost to a notifier that is
                // being rebuilt costs a second rather than a minute.
                "--rules.alert.resend-delay=1s".into(),
            ];
            Ok((args, format!("http://{listen}/-/ready")))
        });
        let (check, nats, alertmanager, prometheus) =
            tokio::join!(check, nats, alertmanager, prometheus);
        // A failure of one drops (kills) the others.
        check?;
        let (nats, (alertmanager, am_ports), (mut prometheus, prom_ports)) =
            match (nats, alertmanager, prometheus) {
                (Ok(n), Ok(a), Ok(p)) => (n, a, p),
                (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return Err(e),
            };
        let am_addr = format!("127.0.0.1:{}", am_ports[0]);
        let prometheus_url = format!("http://127.0.0.1:{}", prom_ports[0]);
        if am_addr != planned_am_addr {
            // Alertmanager lost a port race and moved: point Prometheus at
            // it. The reload costs one more discovery tick.
            tracing::warn!(%planned_am_addr, %am_addr, "alertmanager moved ports; reloading prometheus");
            write_file(
                &prom_config_path,
                &config::prometheus_yml(
                    &opts,
                    &format!("127.0.0.1:{}", prom_ports[0]),
                    &am_addr,
                    &rules_glob,
                ),
            )?;
            reload(
                &http,
                &mut prometheus,
                &prometheus_url,
                |detail, log_tail| StackError::RulesRejected { detail, log_tail },
            )
            .await?;
        }
        let mut children = vec![alertmanager];
        let nats_url = nats.map(|(nats, ports)| {
            children.push(nats);
            format!("nats://127.0.0.1:{}", ports[0])
        });
        children.push(prometheus);

        let jobs = std::iter::once(config::SELF_JOB.to_string())
            .chain(opts.scrape_jobs.iter().map(|j| j.job_name.clone()))
            .collect();
        Ok(StartingStack {
            stack: LocalStack {
                nats_url,
                rule_files: rule_names,
                prometheus_url,
                alertmanager_url: format!("http://{am_addr}"),
                webhook,
                children,
                dir_path,
                dir: Some(dir),
            },
            http,
            am_addr,
            am_config_path,
            jobs,
            healthy_jobs: opts.healthy_jobs.clone(),
            timeout: opts.startup_timeout,
        })
    }

    /// SIGTERM to every child's process group, up to 5 s for them to exit,
    /// SIGKILL for any that did not; then the webhook receiver stops and the
    /// temp dir is removed. Everything is attempted even if a step fails;
    /// the first failure is returned.
    pub async fn shutdown(mut self) -> Result<(), StackError> {
        let children = std::mem::take(&mut self.children);
        for child in &children {
            child.signal_group(nix::sys::signal::Signal::SIGTERM);
        }
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        let results =
            futures::future::join_all(children.into_iter().map(|c| c.terminate(deadline))).await;
        let mut first_err = results.into_iter().find_map(Result::err);

        self.webhook.stop().await;

        if let Some(dir) = self.dir.take() {
            if let Err(source) = dir.close() {
                first_err.get_or_insert(StackError::RemoveDir {
                    dir: self.dir_path.clone(),
                    source,
                });
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Children that exited while the stack was meant to be up, one line
    /// each naming the process and its exit status: a dependency the run
    /// lost.
    pub fn exited_children(&mut self) -> Vec<String> {
        self.children
            .iter_mut()
            .filter_map(|c| {
                c.exited().map(|status| {
                    // The stack's temp dir goes with the run: quote the log.
                    let tail = c.log_tail(5);
                    format!(
                        "{} (pid {}) exited during the run ({status}); the last lines of its log:\n{}",
                        c.name(),
                        c.pid(),
                        if tail.trim().is_empty() { "(empty)".to_string() } else { tail }
                    )
                })
            })
            .collect()
    }

    /// Pids of the running children (each also leads its own process group).
    pub fn child_pids(&self) -> Vec<u32> {
        self.children.iter().map(ManagedChild::pid).collect()
    }

    /// The temp dir holding the generated configs, logs and data.
    pub fn dir(&self) -> &Path {
        &self.dir_path
    }
}

impl Drop for LocalStack {
    fn drop(&mut self) {
        // Signal every group first and reap afterwards, so the children die
        // in parallel rather than one after another.
        for child in &self.children {
            child.signal_group(nix::sys::signal::Signal::SIGKILL);
        }
        for mut child in self.children.drain(..) {
            child.reap_blocking();
        }
        // Only now, with nobody left writing into it, can the dir go.
        if let Some(dir) = self.dir.take() {
            if let Err(e) = dir.close() {
                tracing::warn!(dir = %self.dir_path.display(), error = %e, "could not remove the local stack's temp dir");
            }
        }
    }
}

/// A stack whose children are up but which is not open yet: see
/// [`LocalStack::launch`]. Dropping it kills every child.
pub struct StartingStack {
    stack: LocalStack,
    http: reqwest::Client,
    am_addr: String,
    am_config_path: PathBuf,
    /// Every scrape job, the self-scrape included.
    jobs: Vec<String>,
    healthy_jobs: Vec<String>,
    timeout: Duration,
}

impl StartingStack {
    /// `nats://127.0.0.1:<port>`; `None` when started without NATS.
    pub fn nats_url(&self) -> Option<&str> {
        self.stack.nats_url.as_deref()
    }

    /// Opens the stack: waits until Prometheus has found the Alertmanager,
    /// scraped every job once (the [`StackOptions::healthy_jobs`]
    /// successfully) and evaluated every rule group after that scrape, so
    /// an `absent()` leg has seen the data; then points Alertmanager's
    /// route at firedrill's webhook. An alert firing from now on is
    /// delivered; one that fired before the first scrape reached nobody.
    pub async fn ready(mut self) -> Result<LocalStack, StackError> {
        let prometheus_url = self.stack.prometheus_url.clone();
        let prometheus = self
            .stack
            .children
            .last_mut()
            .expect("launch() puts prometheus last");
        let jobs: Vec<&str> = self.jobs.iter().map(String::as_str).collect();
        let healthy: Vec<&str> = self.healthy_jobs.iter().map(String::as_str).collect();
        let scraped_by = wait_until_wired(
            &self.http,
            prometheus,
            &prometheus_url,
            &self.am_addr,
            &jobs,
            &healthy,
            self.timeout,
        )
        .await?;
        tracing::debug!(%scraped_by, "prometheus found the alertmanager and scraped every job");
        if !self.stack.rule_files.is_empty() {
            wait_for_evaluation(
                &self.http,
                prometheus,
                &prometheus_url,
                scraped_by,
                self.timeout,
            )
            .await?;
            tracing::debug!("every rule group evaluated after those scrapes");
        }
        write_file(
            &self.am_config_path,
            &config::alertmanager_yml(Some(&self.stack.webhook.url)),
        )?;
        let alertmanager = self
            .stack
            .children
            .first_mut()
            .expect("launch() puts alertmanager first");
        reload(
            &self.http,
            alertmanager,
            &self.stack.alertmanager_url,
            |detail, log_tail| StackError::AlertmanagerReload { detail, log_tail },
        )
        .await?;
        tracing::debug!("stack open: alertmanager routes to the webhook");
        Ok(self.stack)
    }
}

/// Starts one kind of child with retries on bind races.
struct Launcher<'a> {
    dir: &'a Path,
    http: &'a reqwest::Client,
    timeout: Duration,
}

impl Launcher<'_> {
    /// `args_for` builds the child's arguments and readiness URL from its
    /// freshly reserved ports (called again on every attempt). The first
    /// attempt uses `first_ports` when given (ports another child's
    /// configuration already names).
    async fn start<F>(
        &self,
        tool: Tool,
        program: &Path,
        n_ports: usize,
        mut first_ports: Option<Vec<u16>>,
        mut args_for: F,
    ) -> Result<(ManagedChild, Vec<u16>), StackError>
    where
        F: FnMut(&[u16]) -> Result<(Vec<OsString>, String), StackError>,
    {
        let name = tool.display_name();
        let log_path = self.dir.join(format!("{name}.log"));
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let ports = match first_ports.take() {
                Some(ports) => ports,
                None => process::free_ports(n_ports)?,
            };
            let (args, ready_url) = args_for(&ports)?;
            let mut child = ManagedChild::spawn(tool, program, &args, &log_path, self.dir)?;
            match child.wait_ready(self.http, &ready_url, self.timeout).await {
                Ok(()) => {
                    tracing::debug!(
                        child = name,
                        pid = child.pid(),
                        ?ports,
                        elapsed = ?started.elapsed(),
                        "ready"
                    );
                    return Ok((child, ports));
                }
                Err(NotReady::TimedOut) => {
                    // A child that runs but never gets ready will not be
                    // helped by new ports: report it now.
                    return Err(StackError::StartupTimeout {
                        name,
                        url: ready_url,
                        timeout: self.timeout,
                        log_tail: child.log_tail(LOG_TAIL_LINES),
                    });
                }
                Err(NotReady::Exited(status)) => {
                    let log_tail = child.log_tail(LOG_TAIL_LINES);
                    // Another process took a reserved port between our probe
                    // bind and the child's bind: retry with new ports. Any
                    // other exit (bad config, bad rules) would just repeat.
                    if child.log_since_spawn().contains("address already in use")
                        && attempt < START_ATTEMPTS
                    {
                        tracing::warn!(
                            child = name,
                            attempt,
                            ?ports,
                            "lost a port race; retrying with new ports"
                        );
                        continue;
                    }
                    return Err(StackError::ChildExited {
                        name,
                        status: status.to_string(),
                        attempt,
                        attempts: START_ATTEMPTS,
                        log_tail,
                    });
                }
            }
        }
    }
}

/// Waits until Prometheus has an active Alertmanager at `am_addr` and has
/// scraped every one of `jobs` at least once (those in `healthy`
/// successfully). Returns the time by which those scrapes were done.
async fn wait_until_wired(
    http: &reqwest::Client,
    prometheus: &mut ManagedChild,
    prometheus_url: &str,
    am_addr: &str,
    jobs: &[&str],
    healthy: &[&str],
    timeout: Duration,
) -> Result<chrono::DateTime<chrono::Utc>, StackError> {
    let ams_url = format!("{prometheus_url}/api/v1/alertmanagers");
    let targets_url = format!("{prometheus_url}/api/v1/targets?state=active");
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let am_ok = get_json(http, &ams_url)
            .await
            .is_some_and(|a| config::alertmanager_active(&a, am_addr));
        let answer = get_json(http, &targets_url).await;
        let unscraped = match &answer {
            Some(answer) => config::unscraped_jobs(answer, jobs, healthy),
            None => jobs.to_vec(),
        };
        if let (true, true, Some(answer)) = (am_ok, unscraped.is_empty(), &answer) {
            return Ok(config::scrapes_done_by(answer));
        }
        give_up_if(prometheus, deadline, timeout, || {
            if am_ok {
                (
                    format!("scrape job(s) {} even once", unscraped.join(", ")),
                    targets_url.clone(),
                )
            } else {
                (
                    format!("discover the alertmanager at {am_addr}"),
                    ams_url.clone(),
                )
            }
        })?;
        tokio::time::sleep(WIRING_POLL).await;
    }
}

/// Waits until every rule group that runs at least every
/// [`EVALUATION_WAIT_LIMIT`] has started an evaluation after `after`.
async fn wait_for_evaluation(
    http: &reqwest::Client,
    prometheus: &mut ManagedChild,
    prometheus_url: &str,
    after: chrono::DateTime<chrono::Utc>,
    timeout: Duration,
) -> Result<(), StackError> {
    let rules_url = format!("{prometheus_url}/api/v1/rules");
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if get_json(http, &rules_url)
            .await
            .is_some_and(|answer| config::evaluated_since(&answer, after, EVALUATION_WAIT_LIMIT))
        {
            return Ok(());
        }
        give_up_if(prometheus, deadline, timeout, || {
            (
                format!("evaluate every rule group after the first scrapes (done by {after})"),
                rules_url.clone(),
            )
        })?;
        tokio::time::sleep(WIRING_POLL).await;
    }
}

/// The error that ends a wait on Prometheus: it exited, or `deadline`
/// passed (`what` then names what never happened and the URL polled).
fn give_up_if(
    prometheus: &mut ManagedChild,
    deadline: tokio::time::Instant,
    timeout: Duration,
    what: impl FnOnce() -> (String, String),
) -> Result<(), StackError> {
    if let Some(status) = prometheus.exited() {
        return Err(StackError::ChildExited {
            name: prometheus.name(),
            status: status.to_string(),
            attempt: 1,
            attempts: 1,
            log_tail: prometheus.log_tail(LOG_TAIL_LINES),
        });
    }
    if tokio::time::Instant::now() >= deadline {
        let (what, url) = what();
        return Err(StackError::NotWired {
            what,
            url,
            timeout,
            log_tail: prometheus.log_tail(LOG_TAIL_LINES),
        });
    }
    Ok(())
}

/// `POST <base_url>/-/reload` on Prometheus or Alertmanager: both answer
/// once the new config is in force, with 500 if it was rejected. A failure
/// is `error(detail, the child's log tail)`.
async fn reload(
    http: &reqwest::Client,
    child: &mut ManagedChild,
    base_url: &str,
    error: fn(String, String) -> StackError,
) -> Result<(), StackError> {
    let url = format!("{base_url}/-/reload");
    let detail = match http.post(&url).timeout(RELOAD_TIMEOUT).send().await {
        Ok(resp) if resp.status().is_success() => return Ok(()),
        Ok(resp) => {
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            format!("POST {url} answered {status}: {}", body.trim())
        }
        Err(e) => format!("POST {url} failed: {e}"),
    };
    Err(error(detail, child.log_tail(LOG_TAIL_LINES)))
}

async fn get_json(http: &reqwest::Client, url: &str) -> Option<serde_json::Value> {
    let resp = http.get(url).send().await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    resp.json().await.ok()
}

fn flag(prefix: &str, path: &Path) -> OsString {
    let mut s = OsString::from(prefix);
    s.push(path.as_os_str());
    s
}

fn write_file(path: &Path, contents: &str) -> Result<(), StackError> {
    std::fs::write(path, contents).map_err(|source| StackError::WriteFile {
        path: path.to_path_buf(),
        source,
    })
}
