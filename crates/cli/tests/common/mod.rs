//! `baton serve` as a child process on a free loopback port, stopped with
//! SIGTERM (and checked to exit cleanly) when the test is done with it.

#![allow(clippy::unwrap_used, dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use baton_core::Envelope;
use baton_proto::v1;
use baton_testkit::Fixture;

pub fn baton() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_baton"));
    command.env("BATON_LOG", "warn").env_remove("BATON_SERVER");
    command
}

/// Runs `baton serve` with `args` (plaintext callers admin, as in
/// [`Served::start`]), which must refuse to start: it must exit non-zero
/// within a minute (a node that starts instead is killed and the test
/// fails). Returns its stderr.
pub fn serve_refused<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> String {
    serve_refused_with_env(args, &[("BATON_LOOPBACK_ADMIN", "true")])
}

/// [`serve_refused`] with `env` instead.
pub fn serve_refused_with_env<S: AsRef<std::ffi::OsStr>>(
    args: &[S],
    env: &[(&str, &str)],
) -> String {
    let mut command = baton();
    command.envs(env.iter().copied()).arg("serve").args(args);
    refused_within_a_minute(command)
}

/// Runs `command` (a `baton` that must refuse to start): it must exit
/// non-zero within a minute (one that runs on instead is killed and the
/// test fails). Returns its stderr.
pub fn refused_within_a_minute(mut command: Command) -> String {
    let what = format!("{command:?}");
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    // Its output is drained while it runs (a full pipe must not look like
    // a node that does not stop).
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = send.send(child.wait_with_output());
    });
    let out = match receive.recv_timeout(Duration::from_secs(60)) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
            let out = receive.recv().unwrap().unwrap();
            panic!(
                "{what} did not refuse to start within 60 s: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    };
    assert!(!out.status.success(), "{out:?}");
    // A node that refuses to start never said it was listening first.
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("baton listening on"),
        "said it was listening, then refused: {out:?}"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub struct Served {
    child: Option<Child>,
    pub address: String,
    /// The HTTP bridges' address, when it serves them.
    pub http_address: Option<String>,
    /// Its `/metrics` address, when it serves metrics.
    pub metrics_address: Option<String>,
    /// Its Unix socket, when it serves one.
    pub unix_path: Option<String>,
    /// Whether it serves TLS (https:// URLs).
    pub tls: bool,
    /// Its log lines so far (also passed on to this process's stderr).
    log: std::sync::Arc<(std::sync::Mutex<Vec<String>>, std::sync::Condvar)>,
}

/// A development PKI (`baton pki init`) in `dir`, and a config file for
/// `baton serve` that turns on mTLS, with `tls` lines added to its `[tls]`
/// table and `grants` (TOML `[[access]]` tables) appended. Returns the
/// config file.
pub fn mtls_config(dir: &Path, tls: &str, grants: &str) -> std::path::PathBuf {
    baton::pki::init(dir, &[]).unwrap();
    let config = dir.join("baton.toml");
    std::fs::write(
        &config,
        format!(
            "[tls]\ncert = {:?}\nkey = {:?}\nclient_ca = [{:?}]\n{tls}\n{grants}",
            dir.join("server.pem"),
            dir.join("server.key"),
            dir.join("ca.pem"),
        ),
    )
    .unwrap();
    config
}

impl Served {
    /// Starts `baton serve` with `args` and waits for its listening line.
    pub fn start(data: &Path, trust_root: &str, args: &[&str]) -> Served {
        Served::start_logging(data, trust_root, args, "warn")
    }

    /// [`Served::start`], logging what `filter` (`BATON_LOG`) lets through.
    pub fn start_logging(data: &Path, trust_root: &str, args: &[&str], filter: &str) -> Served {
        Served::start_with_env(data, trust_root, args, filter, &[])
    }

    /// [`Served::start_logging`], with more environment variables. On
    /// plaintext its callers are admin (`BATON_LOOPBACK_ADMIN=true`) unless
    /// `env` says otherwise.
    pub fn start_with_env(
        data: &Path,
        trust_root: &str,
        args: &[&str],
        filter: &str,
        env: &[(&str, &str)],
    ) -> Served {
        let mut child = baton()
            .env("BATON_LOG", filter)
            .env("BATON_LOOPBACK_ADMIN", "true")
            .envs(env.iter().copied())
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--trust-root",
                trust_root,
                "--data-dir",
            ])
            .arg(data)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        // From here on, a failure drops `served`, which kills and reaps the child.
        let mut served = Served {
            child: Some(child),
            address: String::new(),
            http_address: None,
            metrics_address: None,
            unix_path: None,
            tls: false,
            log: Default::default(),
        };
        let log = served.log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("{line}");
                log.0.lock().unwrap().push(line);
                log.1.notify_all();
            }
        });
        let (send, receive) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = send.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline
                .checked_duration_since(Instant::now())
                .expect("baton serve did not announce its address");
            let line = receive
                .recv_timeout(left)
                .expect("baton serve exited before listening");
            if let Some(rest) = line.strip_prefix("baton http listening on ") {
                served.http_address = Some(rest.trim().to_owned());
            }
            if let Some(rest) = line.strip_prefix("baton metrics listening on ") {
                served.metrics_address = Some(rest.trim().to_owned());
            }
            if let Some(rest) = line.strip_prefix("baton unix listening on ") {
                served.unix_path = Some(rest.trim().to_owned());
            }
            if let Some(rest) = line.strip_prefix("baton listening on ") {
                served.address = rest.split_whitespace().next().unwrap().to_owned();
                served.tls = rest.ends_with(", tls)");
                return served;
            }
        }
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.address)
    }

    /// Waits (at most `within`) until the node has logged a line containing
    /// `needle`; panics if it does not.
    pub fn wait_for_log(&self, needle: &str, within: Duration) {
        let (lines, logged) = &*self.log;
        let (lines, waited) = logged
            .wait_timeout_while(lines.lock().unwrap(), within, |lines| {
                !lines.iter().any(|line| line.contains(needle))
            })
            .unwrap();
        assert!(
            !waited.timed_out(),
            "the node did not log {needle:?} within {within:?}; it logged:\n{}",
            lines.join("\n")
        );
    }

    /// Every line the node has logged so far.
    pub fn logs(&self) -> Vec<String> {
        self.log.0.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// SIGKILL: the node dies wherever it is.
    pub fn kill(mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// SIGTERM, and the node must exit cleanly.
    pub fn stop(mut self) {
        let mut child = self.child.take().unwrap();
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = child.wait().unwrap();
        assert!(exit.success(), "baton serve exited with {exit} on SIGTERM");
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Appends `events` in one batch; panics on refusal.
pub async fn append(url: &str, events: &[Envelope]) -> v1::AppendResponse {
    let mut client = v1::ledger_service_client::LedgerServiceClient::connect(url.to_owned())
        .await
        .unwrap();
    let request = v1::AppendRequest {
        events: events.iter().map(v1::SignedEvent::from).collect(),
        ..Default::default()
    };
    client.append(request).await.unwrap().into_inner()
}

/// Checks fixture token `jti`, once the node has applied `consistency_token`.
/// A Watch on node `url` from the start of the log.
#[allow(dead_code)]
pub async fn watch(url: &str) -> tonic::Streaming<v1::WatchResponse> {
    v1::revocation_service_client::RevocationServiceClient::connect(url.to_owned())
        .await
        .unwrap()
        .watch(v1::WatchRequest::default())
        .await
        .unwrap()
        .into_inner()
}

pub async fn check(
    url: &str,
    jti: &str,
    consistency_token: &str,
) -> Result<v1::TokenStatus, tonic::Status> {
    let mut client =
        v1::revocation_service_client::RevocationServiceClient::connect(url.to_owned())
            .await
            .unwrap();
    let request = v1::CheckRequest {
        token: Some(baton_proto::token_ref_to_wire(&Fixture::token(jti))),
        presented_to: String::new(),
        consistency_token: consistency_token.to_owned(),
        with_dependencies: false,
    };
    let answer = client.check(request).await?.into_inner();
    Ok(v1::TokenStatus::try_from(answer.status).unwrap())
}

/// A gRPC health client of the node at `url`.
pub async fn health_client(
    url: &str,
) -> tonic_health::pb::health_client::HealthClient<tonic::transport::Channel> {
    let channel = tonic::transport::Channel::from_shared(url.to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap();
    tonic_health::pb::health_client::HealthClient::new(channel)
}

/// The whole node (every service) as gRPC health names it.
pub fn whole_node() -> tonic_health::pb::HealthCheckRequest {
    tonic_health::pb::HealthCheckRequest {
        service: String::new(),
    }
}

/// What gRPC health says of the whole node now.
pub async fn health(url: &str) -> tonic_health::pb::health_check_response::ServingStatus {
    let answer = health_client(url).await.check(whole_node()).await.unwrap();
    tonic_health::pb::health_check_response::ServingStatus::try_from(answer.into_inner().status)
        .unwrap()
}

/// Polls `condition` (every 100 ms, at most 60 s); panics naming `what`.
pub fn eventually<T>(what: &str, mut condition: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(done) = condition() {
            return done;
        }
        assert!(Instant::now() < deadline, "not within 60 s: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `baton status --digest --json` once every partition is applied to its end.
pub fn settled_status(url: &str) -> serde_json::Value {
    eventually("applied to the log's end", || {
        let out = baton()
            .args(["status", "--digest", "--json", "--server", url])
            .output()
            .unwrap();
        let now: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let at_end = now["partitions"]
            .as_array()?
            .iter()
            .all(|p| p["applied"] == p["log_end"]);
        (now["ready"] == true && at_end && now["digest_settled"] == true).then_some(now)
    })
}

/// The node's `/metrics` exposition, fetched over a plain socket (a sized
/// body in Prometheus' text format, checked).
pub fn metrics_text(address: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    assert!(
        !head.to_ascii_lowercase().contains("chunked"),
        "expected a sized body: {head}"
    );
    body.to_owned()
}

/// One sample: name, labels, value.
pub type Sample = (String, std::collections::BTreeMap<String, String>, f64);

/// The node's `/metrics`, fetched over a plain socket and parsed by
/// `prometheus_client.parser` (tests/interop/scrape.py).
pub fn scrape(address: &str) -> Vec<Sample> {
    use std::io::Write as _;
    let body = metrics_text(address);
    let python = baton_testkit::tools::interop_python().unwrap();
    let mut parser = std::process::Command::new(python)
        .arg(baton_testkit::repo_root().join("tests/interop/scrape.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    parser
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = parser.wait_with_output().unwrap();
    assert!(out.status.success(), "the parser refused the exposition");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The value of the sample `name` whose labels include `labels` (0 if none).
pub fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let matching: Vec<f64> = samples
        .iter()
        .filter(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| *v)
        .collect();
    assert!(matching.len() <= 1, "{name} {labels:?}: {matching:?}");
    matching.first().copied().unwrap_or(0.0)
}

/// How much `name{labels}` moved between two scrapes.
pub fn moved(before: &[Sample], after: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    value(after, name, labels) - value(before, name, labels)
}
