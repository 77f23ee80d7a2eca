//! `baton-bench-connections`: what idle anonymous connections cost a checker.
//!
//! Starts `baton serve` (the binary given) with mTLS on loopback, then times
//! a checker's call the way a gateway makes one after a reconnect — a fresh
//! connection, the TLS handshake with its certificate, one `Check` — first
//! with nothing else connected (the baseline), then while `--idle` TLS
//! connections without a certificate (from five other loopback addresses,
//! so the per-address cap is not what stops them) sit open doing nothing,
//! then with nothing connected again (the baseline's spread). The node runs
//! with its default limits. Prints one JSON object and a Markdown table.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use baton_proto::v1;
use clap::Parser;
use tokio_rustls::rustls;

#[derive(Parser)]
struct Args {
    /// The `baton` binary.
    #[arg(long, default_value = "target/release/baton")]
    baton: PathBuf,
    /// Idle anonymous connections held open during the loaded phase.
    #[arg(long, default_value_t = 1100)]
    idle: usize,
    /// Timed calls per phase.
    #[arg(long, default_value_t = 300)]
    calls: usize,
    /// A call not done within this counts as timed out (and at this time).
    #[arg(long, default_value_t = 5000)]
    call_timeout_ms: u64,
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(Args::parse()))
}

struct Phase {
    p50_ms: f64,
    p99_ms: f64,
    timeouts: usize,
}

async fn run(args: Args) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let pki = dir.path().join("pki");
    baton::pki::init(&pki, &[])?;
    baton::pki::issue(&pki, "checker", "spiffe://bench.test/checker", 1)?;
    let node = Node::start(&args.baton, dir.path(), &pki)?;
    // Warm-up: the node's first connections are not what is measured.
    phase(&args, 20, node.address, &pki).await?;
    let unloaded = phase(&args, args.calls, node.address, &pki).await?;
    let (held, mut idle) = hold_idle(args.idle, node.address, &pki.join("ca.pem")).await;
    // The node has sorted the handshakes out once the count of open ones
    // holds still (at most 10 s).
    let mut still_open = count_open(&mut idle).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let now = count_open(&mut idle).await;
        if now == still_open {
            break;
        }
        still_open = now;
    }
    let loaded = phase(&args, args.calls, node.address, &pki).await?;
    drop(idle);
    let after = phase(&args, args.calls, node.address, &pki).await?;
    node.stop();
    let ratio = loaded.p99_ms / unloaded.p99_ms;
    let json = |p: &Phase| serde_json::json!({"p50_ms": p.p50_ms, "p99_ms": p.p99_ms, "timeouts": p.timeouts});
    println!(
        "{}",
        serde_json::json!({
            "idle_attempted": args.idle,
            "idle_handshaken": held,
            "idle_still_open": still_open,
            "calls_per_phase": args.calls,
            "unloaded": json(&unloaded),
            "loaded": json(&loaded),
            "unloaded_again": json(&after),
            "p99_ratio_loaded_to_unloaded": ratio,
        })
    );
    println!(
        "\n| phase | checker call (fresh mTLS connection + Check) p50 / p99 ms | timed out (at {} ms) |",
        args.call_timeout_ms
    );
    println!("| --- | --- | --- |");
    for (name, p) in [
        ("nothing else connected (baseline)".to_owned(), &unloaded),
        (
            format!("{held} anonymous TLS peers handshaken, {still_open} still open once settled"),
            &loaded,
        ),
        ("nothing else connected, again".to_owned(), &after),
    ] {
        println!(
            "| {name} | {:.2} / {:.2} | {} of {} |",
            p.p50_ms, p.p99_ms, p.timeouts, args.calls
        );
    }
    println!("\np99 with the idle peers / baseline p99: {ratio:.2}");
    Ok(())
}

/// `calls` checker calls, each on a fresh mTLS connection.
async fn phase(
    args: &Args,
    calls: usize,
    address: SocketAddr,
    pki: &Path,
) -> anyhow::Result<Phase> {
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(std::fs::read(
            pki.join("ca.pem"),
        )?))
        .identity(tonic::transport::Identity::from_pem(
            std::fs::read(pki.join("checker.pem"))?,
            std::fs::read(pki.join("checker.key"))?,
        ))
        .domain_name("localhost");
    let limit = Duration::from_millis(args.call_timeout_ms);
    let mut times = Vec::with_capacity(calls);
    let mut timeouts = 0;
    for i in 0..calls {
        let started = Instant::now();
        let call = async {
            let channel = tonic::transport::Endpoint::from_shared(format!("https://{address}"))?
                .tls_config(tls.clone())?
                .connect()
                .await?;
            v1::revocation_service_client::RevocationServiceClient::new(channel)
                .check(v1::CheckRequest {
                    token: Some(v1::TokenRef {
                        r#ref: Some(v1::token_ref::Ref::Jti(format!("bench-{i}"))),
                    }),
                    ..Default::default()
                })
                .await?;
            anyhow::Ok(())
        };
        match tokio::time::timeout(limit, call).await {
            Ok(result) => {
                result?;
                times.push(started.elapsed());
            }
            Err(_) => {
                timeouts += 1;
                times.push(limit);
            }
        }
    }
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    Ok(Phase {
        p50_ms: at(0.50).as_secs_f64() * 1e3,
        p99_ms: at(0.99).as_secs_f64() * 1e3,
        timeouts,
    })
}

type Idle = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// `count` TLS connections without a certificate from 127.0.0.2–6, opened
/// 64 at a time; how many finished their handshake, and those.
async fn hold_idle(count: usize, address: SocketAddr, ca: &Path) -> (usize, Vec<Idle>) {
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject as _};
    for cert in CertificateDer::pem_file_iter(ca).expect("the CA").flatten() {
        let _ = roots.add(cert);
    }
    let config = Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth(),
    );
    let mut held = Vec::new();
    let indexes: Vec<usize> = (0..count).collect();
    for chunk in indexes.chunks(64) {
        let mut tasks = Vec::new();
        for i in chunk {
            let config = config.clone();
            let from = SocketAddr::from(([127, 0, 0, 2 + (i % 5) as u8], 0));
            tasks.push(tokio::spawn(async move {
                let socket = tokio::net::TcpSocket::new_v4().ok()?;
                socket.bind(from).ok()?;
                let connect = async {
                    let tcp = socket.connect(address).await.ok()?;
                    tokio_rustls::TlsConnector::from(config)
                        .connect(ServerName::try_from("localhost").ok()?, tcp)
                        .await
                        .ok()
                };
                tokio::time::timeout(Duration::from_secs(2), connect)
                    .await
                    .ok()
                    .flatten()
            }));
        }
        for task in tasks {
            if let Ok(Some(stream)) = task.await {
                held.push(stream);
            }
        }
    }
    (held.len(), held)
}

/// How many of `idle` the node has not closed (a read that neither ends
/// nor fails within 20 ms).
async fn count_open(idle: &mut [Idle]) -> usize {
    use tokio::io::AsyncReadExt as _;
    let mut open = 0;
    for stream in idle {
        let mut buf = [0u8; 1];
        match tokio::time::timeout(Duration::from_millis(20), stream.read(&mut buf)).await {
            Err(_) | Ok(Ok(1..)) => open += 1,
            Ok(Ok(0)) | Ok(Err(_)) => {}
        }
    }
    open
}

/// A `baton serve` child with mTLS and a checker grant.
struct Node {
    child: std::process::Child,
    address: SocketAddr,
}

impl Node {
    fn start(baton: &Path, dir: &Path, pki: &Path) -> anyhow::Result<Node> {
        let port = baton_testkit::tools::free_port();
        let data = dir.join("data");
        let config = dir.join("baton.toml");
        let root = baton_core::SigningKey::generate().public_key();
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:{port}\"\ntrust_roots = [\"{}\"]\n[tls]\ncert = {:?}\nkey = {:?}\nclient_ca = [{:?}]\n[[access]]\nprincipal = \"spiffe://bench.test/checker\"\nroles = [\"checker\"]\n",
                hex::encode(root.to_bytes()),
                pki.join("server.pem"),
                pki.join("server.key"),
                pki.join("ca.pem"),
            ),
        )?;
        let child = std::process::Command::new(baton)
            .args(["serve", "--config"])
            .arg(&config)
            .arg("--data-dir")
            .arg(&data)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", baton.display()))?;
        baton_testkit::tools::wait_for_port(port, Duration::from_secs(60))
            .map_err(anyhow::Error::msg)?;
        Ok(Node {
            child,
            address: SocketAddr::from(([127, 0, 0, 1], port)),
        })
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
