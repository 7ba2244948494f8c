//! A real `nats-server -js` per test, killed when dropped.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `nats-server` with JetStream on a free loopback port.
pub struct NatsServer {
    child: Child,
    pub port: u16,
    pub url: String,
    // Held so the store directory lives as long as the server.
    _store: tempfile::TempDir,
}

/// `FIREDRILL_NATS_BIN`, else `nats-server` on PATH, else `/usr/sbin/nats-server`.
pub fn nats_server_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("FIREDRILL_NATS_BIN") {
        return PathBuf::from(bin);
    }
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("nats-server"))
            .find(|p| p.is_file())
    });
    on_path.unwrap_or_else(|| PathBuf::from("/usr/sbin/nats-server"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

impl NatsServer {
    /// Starts a server and waits until it accepts connections.
    /// Panics (failing the test) if it cannot.
    pub fn start() -> NatsServer {
        let bin = nats_server_bin();
        let mut last_err = String::new();
        // The free port can be taken between probing and binding; retry.
        for _ in 0..3 {
            let store = tempfile::tempdir().expect("temp dir for the JetStream store");
            let port = free_port();
            let mut child = Command::new(&bin)
                .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
                .arg(store.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot run {}: {e}; install nats-server (apt install nats-server) or set FIREDRILL_NATS_BIN", bin.display())
                });
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    last_err = format!("nats-server exited early with {status}");
                    break;
                }
                if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                    return NatsServer {
                        child,
                        port,
                        url: format!("nats://127.0.0.1:{port}"),
                        _store: store,
                    };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_err = "nats-server did not accept connections within 10 s".into();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("cannot start nats-server ({}): {last_err}", bin.display());
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
