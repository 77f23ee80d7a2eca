//! A real Kafka cluster on loopback for one test process, started and stopped
//! through `deploy/kafka/kafka.sh`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, Weak};

/// A running cluster; stopped when dropped.
#[derive(Debug)]
pub struct KafkaCluster {
    dir: tempfile::TempDir,
    bootstrap: String,
    brokers: u8,
}

static SHARED: Mutex<Weak<KafkaCluster>> = Mutex::new(Weak::new());

fn script() -> PathBuf {
    crate::repo_root().join("deploy/kafka/kafka.sh")
}

fn run(args: &[&str]) -> Result<String, String> {
    let output = Command::new("bash")
        .arg(script())
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("run {}: {e}", script().display()))?;
    if !output.status.success() {
        return Err(format!(
            "kafka.sh {} failed with {}",
            args.join(" "),
            output.status
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

impl KafkaCluster {
    /// Starts a cluster of `brokers` brokers (1, or 3 for fault tests) on free
    /// loopback ports and waits until it serves.
    pub fn start(brokers: u8) -> Result<KafkaCluster, String> {
        KafkaCluster::start_with(brokers, &[])
    }

    /// A cluster whose clients must authenticate with SASL/SCRAM-SHA-512
    /// (user `baton`, password in [`KafkaCluster::sasl_password_file`]).
    pub fn start_sasl(brokers: u8) -> Result<KafkaCluster, String> {
        KafkaCluster::start_with(brokers, &["--sasl"])
    }

    /// A cluster whose listener requires TLS with a client certificate, the
    /// broker's files from `pki` (`ca.pem`, `kafka.pem`, `kafka.key`); with
    /// `sasl`, SCRAM-SHA-512 as well (SASL_SSL).
    pub fn start_tls(
        brokers: u8,
        pki: &std::path::Path,
        sasl: bool,
    ) -> Result<KafkaCluster, String> {
        let pki = pki.display().to_string();
        let mut args = vec!["--tls", pki.as_str()];
        if sasl {
            args.push("--sasl");
        }
        KafkaCluster::start_with(brokers, &args)
    }

    /// A plaintext cluster whose brokers each have a second listener,
    /// advertised at a port of its own: [`KafkaCluster::detour`] puts
    /// proxies there, so a client bootstrapped through them reaches the
    /// cluster only through proxies the test can cut.
    pub fn start_detoured(brokers: u8) -> Result<KafkaCluster, String> {
        KafkaCluster::start_with(brokers, &["--detour"])
    }

    /// Proxies on the advertised detour ports (see
    /// [`KafkaCluster::start_detoured`]), each to its broker's detour
    /// listener.
    pub fn detour(&self) -> Result<Detour, String> {
        let env = std::fs::read_to_string(self.dir.path().join("cluster.env"))
            .map_err(|e| format!("cluster.env: {e}"))?;
        let ports = |key: &str| -> Result<Vec<u16>, String> {
            let line = env
                .lines()
                .find_map(|line| line.strip_prefix(&format!("{key}=")))
                .ok_or_else(|| format!("cluster.env has no {key}: not a --detour cluster"))?;
            line.trim_matches('"')
                .split_whitespace()
                .map(|p| p.parse().map_err(|e| format!("{key}: {p:?}: {e}")))
                .collect()
        };
        let (listeners, advertised) = (ports("DPORTS")?, ports("APORTS")?);
        let at = |port: u16| std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let proxies = listeners
            .iter()
            .zip(&advertised)
            .map(|(listener, advertised)| {
                crate::Proxy::start_at(at(*advertised), at(*listener))
                    .map_err(|e| format!("a proxy on port {advertised}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let bootstrap = advertised
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(",");
        Ok(Detour { proxies, bootstrap })
    }

    /// The file holding the `baton` user's SCRAM password (a --sasl cluster).
    pub fn sasl_password_file(&self) -> PathBuf {
        self.dir.path().join("sasl/baton.password")
    }

    fn start_with(brokers: u8, more: &[&str]) -> Result<KafkaCluster, String> {
        let dir = tempfile::Builder::new()
            .prefix("baton-kafka-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let dir_arg = dir.path().display().to_string();
        let brokers_arg = brokers.to_string();
        let mut args = vec!["start", "--brokers", &brokers_arg, "--dir", &dir_arg];
        args.extend_from_slice(more);
        let out = run(&args)?;
        let bootstrap = out.lines().last().unwrap_or_default().trim().to_owned();
        if bootstrap.is_empty() {
            return Err("kafka.sh start printed no bootstrap servers".into());
        }
        Ok(KafkaCluster {
            dir,
            bootstrap,
            brokers,
        })
    }

    /// One single-broker cluster shared by the tests of this process that run
    /// at the same time; stopped when the last of them drops it.
    pub fn shared() -> Arc<KafkaCluster> {
        let mut slot = SHARED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(cluster) = slot.upgrade() {
            return cluster;
        }
        let cluster =
            Arc::new(KafkaCluster::start(1).unwrap_or_else(|e| panic!("start kafka: {e}")));
        *slot = Arc::downgrade(&cluster);
        cluster
    }

    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    pub fn brokers(&self) -> u8 {
        self.brokers
    }

    /// SIGKILLs broker `n` (1-based), for fault tests.
    pub fn kill_broker(&self, n: u8) -> Result<(), String> {
        run(&[
            "kill-broker",
            "--dir",
            &self.dir.path().display().to_string(),
            &n.to_string(),
        ])
        .map(drop)
    }

    /// Restarts broker `n` with its data.
    pub fn start_broker(&self, n: u8) -> Result<(), String> {
        run(&[
            "start-broker",
            "--dir",
            &self.dir.path().display().to_string(),
            &n.to_string(),
        ])
        .map(drop)
    }
}

impl Drop for KafkaCluster {
    fn drop(&mut self) {
        if let Err(e) = run(&["stop", "--dir", &self.dir.path().display().to_string()]) {
            eprintln!("stopping kafka: {e}");
        }
    }
}

/// The way to a `--detour` cluster through proxies a test controls.
#[derive(Debug)]
pub struct Detour {
    proxies: Vec<crate::Proxy>,
    bootstrap: String,
}

impl Detour {
    /// Bootstrap servers for a client that must go through the proxies.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// Every connection reset, new ones refused.
    pub fn cut(&self) {
        self.proxies.iter().for_each(crate::Proxy::cut);
    }

    /// Connections stay open and carry nothing: requests time out.
    pub fn stall(&self) {
        self.proxies.iter().for_each(crate::Proxy::stall);
    }

    pub fn restore(&self) {
        self.proxies.iter().for_each(crate::Proxy::restore);
    }
}
