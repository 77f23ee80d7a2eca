//! The `baton` command: parse arguments, initialise tracing, dispatch.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod admin;
mod client;
mod config;
mod eventlog;
pub use baton_client::keys;
pub mod pki;
mod project;
mod serve;
mod telemetry;

#[derive(Debug, Parser)]
#[command(
    name = "baton",
    version,
    about = "A ledger of OAuth delegation for MCP"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a ledger node: the embedded log by default, Kafka when brokers are configured.
    #[command(
        after_help = "Example:\n  baton serve --data-dir data --trust-root \"$(baton pubkey root.key)\" --loopback-admin"
    )]
    Serve(config::Flags),
    /// Create a signing key file (mode 0600) and print its public key.
    #[command(after_help = "Example:\n  baton keygen --out auth.key")]
    Keygen {
        /// Where to write the key (never overwritten).
        #[arg(long)]
        out: std::path::PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print the public key (64 hex digits) of a key file; with
    /// `--proof-for CLIENT_ID` and `--registrar REGISTRAR_ID` (or
    /// `--by-trust-root`), `PUBLIC:PROOF`: the key and its proof of
    /// possession for that client registered by that registrar, for the
    /// registrar to pass as `--client-key` (the proof is no good to anyone
    /// else). `--proof-for` alone proves it for a key rotation.
    #[command(after_help = "Example:\n  baton pubkey root.key")]
    Pubkey {
        /// The key file (from `baton keygen`).
        key: std::path::PathBuf,
        /// Prove possession of the key for this client id.
        #[arg(long = "proof-for")]
        proof_for: Option<String>,
        /// The authorization server that will register the client.
        #[arg(long, requires = "proof_for", conflicts_with = "by_trust_root")]
        registrar: Option<String>,
        /// A trust root will register the client.
        #[arg(long = "by-trust-root", requires = "proof_for")]
        by_trust_root: bool,
    },
    /// Register a client: its kind, role, keys and ceiling of scopes and tools.
    #[command(
        after_help = "Example:\n  baton register --key root.key --client-id auth.example --kind authorization-server --role delegating-layer --client-key auth.key --scopes repo:read --tools github/search"
    )]
    Register(client::Register),
    /// Record a root grant issued by an authorization server.
    #[command(
        after_help = "Example:\n  baton issue --key auth.key --issuer auth.example --token jti:alice-1 --subject user:alice@example.com --holder gateway --audience https://gateway.example/mcp --scopes repo:read --tools github/search"
    )]
    Issue(client::Issue),
    /// Record one delegation hop: a narrower token for the next hop.
    #[command(
        after_help = "Example:\n  baton narrow --key gateway.key --parent jti:alice-1 --token jti:alice-2 --performed-by gateway --holder mcp-github --audience https://github.example/mcp --scopes repo:read --tools github/search"
    )]
    Narrow(client::Narrow),
    /// Revoke a token, a client, a subject or a key.
    #[command(
        after_help = "Example:\n  baton revoke --key gateway.key --revoked-by gateway --token jti:alice-2 --reason session-ended"
    )]
    Revoke(client::Revoke),
    /// Check a token: exit 0 ACTIVE, 3 REVOKED, 4 EXPIRED, 5 UNKNOWN, 6 AUDIENCE_MISMATCH.
    #[command(
        after_help = "Example:\n  baton check jti:alice-2 --presented-to https://github.example/mcp"
    )]
    Check(client::Check),
    /// Show a token's chain, root to leaf.
    #[command(after_help = "Example:\n  baton chain jti:alice-2")]
    Chain(client::Chain),
    /// Export a token's chain as a bundle for offline verification.
    #[command(after_help = "Example:\n  baton export jti:alice-2 --out alice-2.bundle")]
    Export(client::Export),
    /// Verify an exported bundle offline: exit 0 verified, 3 not.
    #[command(after_help = "Example:\n  baton verify alice-2.bundle --trust-root root.key")]
    Verify(client::Verify),
    /// Print the reference (`b3:…`) of a bearer token read from standard
    /// input: the digest of its exact bytes (one trailing newline ignored),
    /// which is how writers record a token and bridges look it up.
    #[command(after_help = "Example:\n  printf %s \"$TOKEN\" | baton digest")]
    Digest,
    /// Run only a projector: apply the log to a projection and keep following it.
    #[command(after_help = "Example:\n  baton project --config baton.toml")]
    Project(project::Args),
    /// Where a live node stands: readiness, position and lag per partition,
    /// counts, and (with --digest) its projection's state digest. Admin role.
    #[command(
        after_help = "Example:\n  baton status --server https://node-a:7700 --ca ca.pem --cert admin.pem --cert-key admin.key"
    )]
    Status(admin::Status),
    /// The log records a live node quarantined (attempted forgeries,
    /// garbage): `list`, `show POSITION`. Admin role.
    #[command(subcommand)]
    Quarantine(admin::Quarantine),
    /// Snapshots of a projection: `create` from a live node, `verify` a
    /// file, `restore` into a new node's data directory.
    #[command(subcommand)]
    Snapshot(admin::Snapshot),
    /// A development PKI: a throwaway CA, server and client certificates.
    #[command(subcommand)]
    Pki(Pki),
    /// Client secrets for the HTTP bridges (RFC 7662 callers): configuration
    /// keeps only their hashes.
    #[command(subcommand)]
    Secret(Secret),
}

#[derive(Debug, Subcommand)]
enum Secret {
    /// Make a random 256-bit client secret, write it to OUT (mode 0600,
    /// never overwritten) and print its hash for an `[[access]]` grant's
    /// `secret_hash`.
    #[command(after_help = "Example:\n  baton secret new mcp-a.secret")]
    New {
        /// Where to write the secret (mode 0600, never overwritten).
        out: std::path::PathBuf,
    },
    /// Print the hash of the secret in FILE (a trailing newline ignored).
    #[command(after_help = "Example:\n  baton secret hash mcp-a.secret")]
    Hash {
        /// The file holding the secret.
        file: std::path::PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum Pki {
    /// Make a CA (ca.pem, ca.key) and a server certificate (server.pem,
    /// server.key) for localhost, 127.0.0.1, ::1 and every --host, in DIR.
    #[command(after_help = "Example:\n  baton pki init pki --host node-a.example")]
    Init {
        /// Where to write the CA and the server certificate (created).
        dir: std::path::PathBuf,
        /// Another DNS name or IP address of the node; repeatable.
        #[arg(long = "host")]
        hosts: Vec<String>,
    },
    /// Issue a client certificate (NAME.pem, NAME.key) naming a principal:
    /// a URI (spiffe://…) or a DNS name; or, with --host instead, a
    /// certificate for a server that is also a client of its peers (a Kafka
    /// broker).
    #[command(
        after_help = "Example:\n  baton pki issue --dir pki --principal spiffe://example/admin --name admin"
    )]
    Issue {
        /// The directory `pki init` made.
        #[arg(long)]
        dir: std::path::PathBuf,
        /// The principal the certificate names: a URI (spiffe://...) or a DNS
        /// name.
        #[arg(long, required_unless_present = "hosts", conflicts_with = "hosts")]
        principal: Option<String>,
        /// A DNS name or IP address of a server; repeatable.
        #[arg(long = "host")]
        hosts: Vec<String>,
        /// The files' name.
        #[arg(long)]
        name: String,
        /// Days it is valid.
        #[arg(long, default_value_t = pki::DAYS_DEFAULT)]
        days: i64,
    },
}

/// Parses and checks a configuration file's text (for the fuzz target).
pub fn check_config(text: &str) -> anyhow::Result<()> {
    config::Config::from_toml(text).map(drop)
}

pub fn main() -> ExitCode {
    // Usage errors are clap's own (text, exit code 2).
    let matches = <Cli as clap::CommandFactory>::command().get_matches();
    // Errors as JSON when the verb was asked for JSON.
    let json_errors = json_flag(&matches);
    let cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let env: std::collections::BTreeMap<String, String> = std::env::vars().collect();
    let filter = tracing_subscriber::EnvFilter::try_from_env("BATON_LOG")
        .unwrap_or_else(|_| default_filter(&cli.command).into());
    // Traces are for a node; the other verbs only log.
    let traces = matches!(cli.command, Command::Serve(_)) && telemetry::wanted(&env);
    let service_name_set = env.contains_key("OTEL_SERVICE_NAME");
    let provider = match telemetry::init(filter, traces, service_name_set, &runtime) {
        Ok(provider) => provider,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(1);
        }
    };
    let result: anyhow::Result<u8> = runtime.block_on(async {
        match cli.command {
            Command::Serve(flags) => serve::run(flags, &env, traces).await.map(|()| 0),
            Command::Keygen { out, json } => {
                let key = keys::generate(&out)?;
                let public = hex::encode(key.public_key().to_bytes());
                if json {
                    println!("{}", serde_json::json!({"key_file": out, "public_key": public, "key_id": key.key_id().to_string()}));
                } else {
                    println!("wrote {} (public key {public}, {})", out.display(), key.key_id());
                }
                Ok(0)
            }
            Command::Pubkey {
                key,
                proof_for,
                registrar,
                by_trust_root,
            } => {
                let key = keys::load(&key)?;
                let public = hex::encode(key.public_key().to_bytes());
                match proof_for {
                    None => println!("{public}"),
                    Some(client) => {
                        let client = baton_core::ClientId::new("proof-for", &client)?;
                        let proof = match (registrar, by_trust_root) {
                            (Some(registrar), _) => {
                                let registrar = baton_core::ClientId::new("registrar", &registrar)?;
                                key.prove_registration(&client, Some(&registrar))
                            }
                            (None, true) => key.prove_registration(&client, None),
                            (None, false) => key.prove_possession(&client),
                        };
                        println!("{public}:{}", hex::encode(proof));
                    }
                }
                Ok(0)
            }
            Command::Register(args) => client::register(args).await.map(|()| 0),
            Command::Issue(args) => client::issue(args).await.map(|()| 0),
            Command::Narrow(args) => client::narrow(args).await.map(|()| 0),
            Command::Revoke(args) => client::revoke(args).await.map(|()| 0),
            Command::Check(args) => client::check(args).await,
            Command::Chain(args) => client::chain(args).await.map(|()| 0),
            Command::Export(args) => client::export(args).await.map(|()| 0),
            Command::Verify(args) => client::verify(args),
            Command::Digest => {
                let mut token = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut token)?;
                let token = token.strip_suffix(b"\n").unwrap_or(&token);
                let token = token.strip_suffix(b"\r").unwrap_or(token);
                if token.is_empty() {
                    anyhow::bail!("standard input: no token");
                }
                println!("{}", baton_core::token_digest(token));
                Ok(0)
            }
            Command::Project(args) => project::run(args, &env).await.map(|()| 0),
            Command::Status(args) => admin::status(args).await.map(|()| 0),
            Command::Quarantine(command) => admin::quarantine(command).await.map(|()| 0),
            Command::Snapshot(command) => admin::snapshot(command, &env).await.map(|()| 0),
            Command::Secret(Secret::New { out }) => {
                let mut secret = [0u8; 32];
                rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut secret);
                let secret = hex::encode(secret);
                keys::write_private(&out, format!("{secret}\n").as_bytes())?;
                let hash = baton_server::identity::SecretHash::of(secret.as_bytes());
                println!("{hash}");
                eprintln!("wrote the secret to {}; its hash is above", out.display());
                Ok(0)
            }
            Command::Secret(Secret::Hash { file }) => {
                let text = std::fs::read_to_string(&file)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
                let secret = text.trim_end_matches(['\n', '\r']);
                if secret.len() < 16 {
                    anyhow::bail!(
                        "{}: a secret of {} bytes is too short to be stored as a fast hash; make one with `baton secret new`",
                        file.display(),
                        secret.len()
                    );
                }
                println!("{}", baton_server::identity::SecretHash::of(secret.as_bytes()));
                Ok(0)
            }
            Command::Pki(Pki::Init { dir, hosts }) => {
                let server = pki::init(&dir, &hosts)?;
                println!(
                    "wrote {0}/ca.pem, {0}/ca.key, {1} and {2}",
                    dir.display(),
                    server.cert.display(),
                    server.key.display()
                );
                Ok(0)
            }
            Command::Pki(Pki::Issue {
                dir,
                principal,
                hosts,
                name,
                days,
            }) => {
                let (leaf, named) = match principal {
                    Some(principal) => (pki::Leaf::Client(principal.clone()), principal),
                    None => (pki::Leaf::Peer(hosts.clone()), hosts.join(", ")),
                };
                let issued = pki::issue_leaf(&dir, &name, leaf, days)?;
                println!(
                    "wrote {} and {} for {named}",
                    issued.cert.display(),
                    issued.key.display()
                );
                Ok(0)
            }
        }
    });
    if let Some(provider) = provider {
        // What is buffered goes out before the runtime stops.
        if let Err(e) = provider.shutdown() {
            eprintln!("warning: traces: {e}");
        }
    }
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if json_errors {
                eprintln!("{}", error_json(&e));
            } else {
                eprintln!("error: {e:#}");
            }
            ExitCode::from(1)
        }
    }
}

/// Whether the verb was given `--json` (as its flag, not as another flag's
/// value).
fn json_flag(matches: &clap::ArgMatches) -> bool {
    matches
        .try_get_one::<bool>("json")
        .ok()
        .flatten()
        .copied()
        .unwrap_or(false)
        || matches
            .subcommand()
            .is_some_and(|(_, verb)| json_flag(verb))
}

/// An error as `--json` prints it (on stderr, one line): the message, the
/// node's gRPC code when a node refused (`null` otherwise: bad input, an
/// unreachable node), the rule it cited, and the exit code.
fn error_json(error: &anyhow::Error) -> serde_json::Value {
    let status = error.chain().find_map(|cause| match cause.downcast_ref() {
        Some(baton_client::Error::Status(status)) => Some(status),
        _ => None,
    });
    let code = status.map(|status| {
        baton_client::status_text(status)
            .split(':')
            .next()
            .unwrap_or_default()
            .to_owned()
    });
    let rule = status.and_then(|status| {
        status
            .metadata()
            .get("baton-rule")
            .and_then(|rule| rule.to_str().ok())
            .map(str::to_owned)
    });
    serde_json::json!({
        "error": format!("{error:#}"),
        "code": code,
        "rule": rule,
        "exit_code": 1,
    })
}

/// Nodes log progress; client verbs log only problems, so their output stays clean.
fn default_filter(command: &Command) -> &'static str {
    match command {
        Command::Serve(_) | Command::Project(_) => "info",
        _ => "warn",
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

#[cfg(test)]
mod help {
    use clap::CommandFactory as _;

    /// Every argument of every verb says what it is, and every verb's
    /// `--help` ends with an example.
    #[test]
    fn every_argument_has_help_and_every_verb_an_example() {
        let mut missing = Vec::new();
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let path = format!("{path} {}", command.get_name());
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path}: --{id} has no help"));
                }
            }
            let leaves: Vec<&clap::Command> = command.get_subcommands().collect();
            if leaves.is_empty() {
                let example = command
                    .get_after_help()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                match example.split_once("Example:\n  ") {
                    None => missing.push(format!("{path}: --help ends with no example")),
                    // An example the parser refuses is no example (those
                    // with shell substitutions or pipes are read by people).
                    Some((_, line)) if !line.contains('$') && !line.contains('|') => {
                        let words = line.split_whitespace().map(|w| w.trim_matches('"'));
                        if let Err(e) = <super::Cli as clap::Parser>::try_parse_from(words) {
                            missing.push(format!("{path}: example {line:?} does not parse: {e}"));
                        }
                    }
                    Some(_) => {}
                }
            }
            for sub in leaves {
                walk(sub, &path, missing);
            }
        }
        for verb in super::Cli::command().get_subcommands() {
            walk(verb, "baton", &mut missing);
        }
        assert!(missing.is_empty(), "{}", missing.join("\n"));
    }
}
