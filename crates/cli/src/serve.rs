//! `baton serve`: one ledger node — the embedded log by default, Kafka when
//! brokers are configured — until SIGTERM or Ctrl-C.

use std::collections::BTreeMap;

use anyhow::Context as _;
use baton_log::EventLog;
use baton_server::ServerOptions;

use crate::config::{Config, Flags};

pub async fn run(flags: Flags, env: &BTreeMap<String, String>, traces: bool) -> anyhow::Result<()> {
    let config = Config::load(&flags, env)?;
    config.check_serving()?;
    let access = baton_server::auth::AccessHandle::new(config.access()?);
    let tls = match config.tls_files()? {
        Some(files) => {
            let tls = baton_server::tls::Tls::load(files).map_err(|e| anyhow::anyhow!(e))?;
            reload_on_sighup(tls.clone(), access.clone(), flags.clone(), env.clone());
            if config.tls.poll_ms > 0 {
                let every = std::time::Duration::from_millis(config.tls.poll_ms);
                reload_on_change(tls.clone(), every);
            }
            Some(tls)
        }
        None => {
            if config.loopback_admin || config.insecure {
                tracing::warn!(
                    listen = %config.listen,
                    "plaintext callers are admin (loopback_admin, insecure): every process that can reach the address may do everything, and in a container every container sharing its network"
                );
            }
            if !config.listen.ip().is_loopback() {
                tracing::warn!(
                    listen = %config.listen,
                    "INSECURE: serving plaintext on a non-loopback address; anyone who can reach it may read every chain and append"
                );
            }
            if let Some(http) = config.http_listen.filter(|at| !at.ip().is_loopback()) {
                tracing::warn!(
                    http_listen = %http,
                    "INSECURE: serving the HTTP bridges in plaintext on a non-loopback address; client secrets and bearer tokens cross the network in the clear, and anyone who can reach it may ask forward-auth"
                );
            }
            None
        }
    };
    let options = ServerOptions {
        policy: config.policy()?,
        limits: config.limits(),
        projection_dir: config.data_dir.join("projection"),
        plaintext_admin: tls.is_none() && (config.loopback_admin || config.insecure),
        tls,
        access,
        resources: config.resources()?,
        gateway: config.gateway()?,
        revocation_delegate: config.revocation_delegate()?,
        jwt_issuers: config.jwt_issuers()?,
        traces,
    };
    let secured = if options.tls.is_some() { ", tls" } else { "" };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listen on {}", config.listen))?;
    let address = listener.local_addr()?;
    let http = match config.http_listen {
        Some(at) => Some(
            tokio::net::TcpListener::bind(at)
                .await
                .with_context(|| format!("http_listen on {at}"))?,
        ),
        None => None,
    };
    let metrics = match config.metrics_listen {
        Some(at) => Some(
            tokio::net::TcpListener::bind(at)
                .await
                .with_context(|| format!("metrics_listen on {at}"))?,
        ),
        None => None,
    };
    // Before the line scripts wait for, so every address is known then.
    if let Some(http) = &http {
        println!("baton http listening on {}", http.local_addr()?);
    }
    if let Some(metrics) = &metrics {
        println!("baton metrics listening on {}", metrics.local_addr()?);
    }
    let unix = match &config.unix_listen {
        Some(path) => Some(
            baton_server::bind_unix(path)
                .with_context(|| format!("unix_listen on {}", path.display()))?,
        ),
        None => None,
    };
    if let Some(path) = &config.unix_listen {
        println!("baton unix listening on {}", path.display());
    }
    let listeners = baton_server::Listeners {
        grpc: listener,
        unix,
        http,
        metrics,
    };
    let served = crate::eventlog::open_log(
        &config,
        Serving {
            options,
            listeners,
            address,
            secured,
        },
    )
    .await;
    // The socket file is this node's: gone with it (a node killed before
    // this leaves it, and the next one replaces it).
    if let Some(path) = &config.unix_listen {
        let _ = std::fs::remove_file(path);
    }
    served
}

/// Reads the TLS files again on every SIGHUP: new connections get the new
/// certificate; a file that does not load leaves the old one serving.
/// On SIGHUP, reads the TLS files and the configuration's `[[access]]`
/// grants again (other settings need a restart). What does not load leaves
/// what was serving in place, and says why.
fn reload_on_sighup(
    tls: baton_server::tls::Tls,
    access: baton_server::auth::AccessHandle,
    flags: Flags,
    env: BTreeMap<String, String>,
) {
    // Registered before anything else runs: a SIGHUP with no handler
    // would end the process.
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP; TLS files and grants are read only at start");
        return;
    };
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            reload_tls(&tls, "SIGHUP");
            match Config::load(&flags, &env).and_then(|config| config.access()) {
                Ok(grants) => {
                    access.set(grants);
                    tracing::info!("SIGHUP: access grants reloaded");
                }
                Err(e) => tracing::error!(
                    error = format!("{e:#}"),
                    "SIGHUP: configuration not reloaded; the previous access grants stay"
                ),
            }
        }
    });
}

fn reload_tls(tls: &baton_server::tls::Tls, why: &str) {
    match tls.reload() {
        Ok(()) => {
            tracing::info!(cert = %tls.files().cert.display(), "{why}: TLS certificate and client CAs reloaded")
        }
        Err(e) => {
            tracing::error!(error = %e, "{why}: TLS files not reloaded; still serving the previous ones")
        }
    }
}

/// Reloads the TLS files when any of them changes (modification time, size
/// or identity), looked at `every` so often, once the change has held still
/// for one look (a file being written in place is not read half-way; a
/// certificate manager replacing them needs no signal).
fn reload_on_change(tls: baton_server::tls::Tls, every: std::time::Duration) {
    fn stamp(
        files: &baton_server::tls::TlsFiles,
    ) -> Vec<Option<(std::time::SystemTime, u64, u64)>> {
        use std::os::unix::fs::MetadataExt as _;
        std::iter::once(&files.cert)
            .chain(std::iter::once(&files.key))
            .chain(files.client_ca.iter().map(|ca| &ca.file))
            .map(|path| {
                let meta = std::fs::metadata(path).ok()?;
                Some((meta.modified().ok()?, meta.len(), meta.ino()))
            })
            .collect()
    }
    tokio::spawn(async move {
        let mut loaded = stamp(tls.files());
        let mut seen = loaded.clone();
        loop {
            tokio::time::sleep(every).await;
            let now = stamp(tls.files());
            if now != loaded && now == seen {
                loaded = now.clone();
                reload_tls(&tls, "TLS files changed");
            }
            seen = now;
        }
    });
}

/// One line on stdout that scripts and tests can wait for.
fn announce(address: std::net::SocketAddr, log: &str) {
    println!("baton listening on {address} ({log})");
}

/// What `serve` does with the log the configuration names.
struct Serving {
    options: ServerOptions,
    listeners: baton_server::Listeners,
    address: std::net::SocketAddr,
    secured: &'static str,
}

impl crate::eventlog::OnLog for Serving {
    type Output = ();

    async fn run<L: EventLog>(self, log: L, described: String) -> anyhow::Result<()> {
        let (address, said) = (self.address, format!("{described}{}", self.secured));
        baton_server::run_announced(
            self.options,
            log,
            self.listeners,
            crate::shutdown_signal(),
            move || announce(address, &said),
        )
        .await
        .map_err(|e| anyhow::anyhow!(e))
    }
}
