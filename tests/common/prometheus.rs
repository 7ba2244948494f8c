//! A real Prometheus for tests: on a free loopback port, scraping itself
//! every second, killed on drop.

use chrono::Utc;
use firedrill::clients::prometheus::{Prometheus, QueryResult};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A real Prometheus on a free loopback port, killed on drop.
pub struct Prom {
    child: Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prom {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn prometheus_bin() -> PathBuf {
    if let Ok(p) = std::env::var("FIREDRILL_PROMETHEUS_BIN") {
        return p.into();
    }
    for p in ["/usr/bin/prometheus", "/usr/local/bin/prometheus"] {
        if std::path::Path::new(p).exists() {
            return p.into();
        }
    }
    "prometheus".into()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub async fn start_prometheus() -> Prom {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: prometheus\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        ),
    )
    .unwrap();
    let child = Command::new(prometheus_bin())
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect(
            "prometheus runs (scripts/install-deps installs it; or set FIREDRILL_PROMETHEUS_BIN)",
        );
    let prom = Prom {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    };
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = http
            .get(format!("{}/-/ready", prom.url))
            .send()
            .await
            .map(|r| r.status().is_success())
            .unwrap_or(false);
        if ready {
            break;
        }
        assert!(Instant::now() < deadline, "prometheus did not become ready");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    prom
}

/// Waits until Prometheus has scraped itself `n` times.
pub async fn wait_for_scrapes(prom: &Prom, n: usize) {
    let p = Prometheus::new(&prom.url);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = p
            .query(r#"count_over_time(up{job="prometheus"}[1m])"#, Utc::now())
            .await
            .unwrap();
        if let QueryResult::Vector(v) = r {
            if v.first().map(|s| s.value.value()).unwrap_or(0.0) >= n as f64 {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "prometheus did not scrape itself"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
