//! `baton serve` configuration, in layers: defaults, then a TOML file, then
//! `BATON_*` environment variables, then command-line flags. Unknown keys in
//! the file and unknown `BATON_*` variables are errors, so a typo never
//! silently falls back to a default. The environment is a parameter, so tests
//! pass their own.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use serde::Deserialize;

/// Everything `baton serve` can be told.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to serve gRPC on.
    pub listen: SocketAddr,
    /// Address to serve the HTTP bridges on (forward-auth, RFC 7662
    /// introspection); unset: none.
    pub http_listen: Option<SocketAddr>,
    /// Address to serve Prometheus metrics on (`/metrics`, plain HTTP:
    /// counts and positions only, no token or chain); unset: none, and
    /// nothing is recorded.
    pub metrics_listen: Option<SocketAddr>,
    /// A Unix socket to serve gRPC on as well, for local callers: each is
    /// the user id the kernel reports for it, with the roles of the
    /// `[[access]]` grants for that `uid`; unset: none.
    pub unix_listen: Option<PathBuf>,
    /// On a plaintext listener, every caller is admin: every local process,
    /// and in a container every container sharing its network. Off: a
    /// plaintext caller is nobody (health only). Plaintext needs this, or
    /// `unix_listen`, or `insecure`.
    pub loopback_admin: bool,
    /// Data directory: the projection, and the embedded log when Kafka is not configured.
    pub data_dir: PathBuf,
    /// Trust-root ed25519 public keys (64 hex digits each): the keys allowed to
    /// register authorization servers.
    pub trust_roots: Vec<String>,
    /// Deepest delegation chain accepted (root grant: depth 0).
    pub depth_max: u32,
    pub rules: Rules,
    pub kafka: Kafka,
    pub limits: Limits,
    /// How fresh the node's view of the log must be for it to vouch for it.
    pub freshness: Freshness,
    /// What the projector keeps in memory.
    pub memory: Memory,
    /// TLS on the listener, with client certificates identifying callers.
    pub tls: Tls,
    /// Roles granted to principals (needs `tls`) and to HTTP clients.
    pub access: Vec<AccessGrant>,
    /// What the gateway bridges map requests to (`[[resource]]`).
    pub resource: Vec<ResourceConfig>,
    /// The gateway in front of forward-auth (`/authz`): generic, nginx,
    /// traefik, caddy or envoy. It fixes which headers carry the original
    /// request; the other family is refused when present.
    pub gateway: String,
    /// The identity RFC 7009 revocations are signed with.
    pub revocation: Revocation,
    /// Issuers whose JWTs the bridges verify (`[[jwt_issuer]]`).
    pub jwt_issuer: Vec<JwtIssuerConfig>,
    /// Serve plaintext on a non-loopback address: anyone who can reach the
    /// port may do anything. Off by default; logged loudly when on.
    pub insecure: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Tls {
    /// The server's certificate chain (PEM).
    pub cert: Option<PathBuf>,
    /// Its private key (PEM).
    pub key: Option<PathBuf>,
    /// CA bundles (PEM) client certificates must chain to: a file, or
    /// `{ file = "…", principals = ["spiffe://partner.example/*"] }` naming
    /// the principals it may vouch for (required of each when there are
    /// several).
    pub client_ca: Vec<ClientCa>,
    /// How often the files are looked at for changes (milliseconds; a
    /// change is loaded once it has held still for one interval); 0: only
    /// on SIGHUP.
    pub poll_ms: u64,
}

/// A client CA bundle: its file, or its file and the principals it may
/// vouch for.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum ClientCa {
    File(PathBuf),
    Bound(BoundCa),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoundCa {
    pub file: PathBuf,
    pub principals: Vec<String>,
}

impl ClientCa {
    fn file(&self) -> &PathBuf {
        match self {
            ClientCa::File(file) | ClientCa::Bound(BoundCa { file, .. }) => file,
        }
    }
}

/// `[[access]]`: roles for the principals `principal` matches, or for the
/// local user `uid`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessGrant {
    /// A principal (URI or DNS SAN of a client certificate), or a prefix
    /// ending in `*`.
    #[serde(default)]
    pub principal: Option<String>,
    /// A local user id: processes running as it, calling on the Unix
    /// socket (`unix_listen`). Instead of `principal`.
    #[serde(default)]
    pub uid: Option<u32>,
    /// Any of writer, checker, auditor, admin.
    pub roles: Vec<String>,
    /// The resources this principal serves: as a checker it learns token
    /// details only for tokens addressed to one of them. Empty: all.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Set: the grant is for an HTTP client authenticating with HTTP Basic
    /// credentials (client id `principal`), whose secret hashes to this
    /// (`baton secret new` makes both). Never the secret itself.
    #[serde(default)]
    pub secret_hash: Option<String>,
    /// The ledger client this principal is: RFC 7009 revocations it asks
    /// for may revoke what that client could revoke itself.
    #[serde(default)]
    pub client_id: Option<String>,
}

/// `[revocation]`: the registered client (one of `rules.revocation_delegates`)
/// whose key signs the revocations RFC 7009 callers ask for.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Revocation {
    pub client_id: Option<String>,
    /// Its signing key (`baton keygen`; mode 0600).
    pub key_file: Option<PathBuf>,
}

/// `[[jwt_issuer]]`: an issuer whose JWTs the bridges verify, so that a
/// token recorded by `jti` can be answered for when presented whole.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtIssuerConfig {
    /// The `iss` its tokens carry.
    pub iss: String,
    /// The authorization server (ledger client id) that records its tokens.
    pub client_id: String,
    /// Its keys, as a JWKS document (the issuer's `jwks_uri`, saved to a file).
    pub jwks_file: PathBuf,
}

/// `[[resource]]`: a resource the gateway bridges decide for.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceConfig {
    /// `http(s)://host[:port][/path]`: the requests it covers.
    pub url: String,
    /// The audience tokens presented there must have.
    pub audience: String,
    /// Scopes every request there needs.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// An MCP endpoint (default true): requests other than GET, HEAD,
    /// DELETE and OPTIONS must carry Mcp-Method and MCP-Protocol-Version
    /// 2026-07-28 or later, or they are refused.
    #[serde(default = "yes")]
    pub mcp: bool,
    /// Its RFC 9728 protected-resource metadata URL, named in 401 answers.
    #[serde(default)]
    pub metadata_url: Option<String>,
}

fn yes() -> bool {
    true
}

/// `[freshness]`: past `max_staleness_ms` without a confirmed end of the
/// log, or knowing of records it has not applied for longer, a node answers
/// only REVOKED, EXPIRED and AUDIENCE_MISMATCH, and is NOT_SERVING.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Freshness {
    pub max_staleness_ms: u64,
    /// How often the node confirms the log's end.
    pub confirm_interval_ms: u64,
}

impl Default for Freshness {
    fn default() -> Self {
        let d = baton_server::Limits::default();
        Freshness {
            max_staleness_ms: d.max_staleness.as_millis() as u64,
            confirm_interval_ms: d.confirm_interval.as_millis() as u64,
        }
    }
}

/// `[memory]`: the projector's caches, each bounded whatever the ledger's
/// size. Smaller caches hold less memory and read the store more often.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Memory {
    /// The projection store's page cache (sled's), MiB.
    pub store_cache_mib: u64,
    /// Most decoded records of each kind (tokens, token references,
    /// clients, keys, key trust) kept in memory.
    pub records_cached_max: usize,
}

/// Largest `memory.store_cache_mib`: 1 TiB (a bound, not a default).
const STORE_CACHE_MIB_MAX: u64 = 1 << 20;
/// Largest `memory.records_cached_max`: 10 million records of each kind
/// (a bound, not a default: about 10 GB of token records).
const RECORDS_CACHED_MAX: usize = 10_000_000;

impl Default for Memory {
    fn default() -> Self {
        let d = baton_server::Limits::default();
        Memory {
            store_cache_mib: d.store_cache_bytes >> 20,
            records_cached_max: d.records_cached_max,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rules {
    pub require_delegating_role: bool,
    pub static_grants_client_only: bool,
    pub enforce_ceiling: bool,
    /// How far ahead of this node's clock an appended event (or the token it
    /// issues) may be dated.
    pub created_at_skew_max_ms: i64,
    /// How far behind this node's clock an appended event may be dated.
    pub created_at_age_max_ms: i64,
    /// Authorization servers (client ids) whose authority spans the whole
    /// ledger: a federation.
    pub federated_authorization_servers: Vec<String>,
    /// Clients that may sign revocations for other clients (a node's RFC
    /// 7009 endpoint signs as one): every node must list the same.
    pub revocation_delegates: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Kafka {
    /// Bootstrap servers; empty means the embedded log.
    pub brokers: String,
    pub topic: String,
    pub partitions: u32,
    pub replication: i32,
    pub min_insync_replicas: Option<i32>,
    /// librdkafka's `security.protocol`: PLAINTEXT (default), SSL,
    /// SASL_PLAINTEXT or SASL_SSL.
    pub security_protocol: Option<String>,
    /// CA bundle (PEM) the brokers' certificates chain to.
    pub ssl_ca: Option<PathBuf>,
    /// Client certificate and key (PEM) for brokers that ask for one.
    pub ssl_cert: Option<PathBuf>,
    pub ssl_key: Option<PathBuf>,
    /// A file holding the client key's password.
    pub ssl_key_password_file: Option<PathBuf>,
    /// SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN.
    pub sasl_mechanism: Option<String>,
    pub sasl_username: Option<String>,
    /// A file holding the SASL password (or BATON_KAFKA_SASL_PASSWORD);
    /// never inline in the configuration.
    pub sasl_password_file: Option<PathBuf>,
    /// From BATON_KAFKA_SASL_PASSWORD.
    #[serde(skip)]
    pub sasl_password_env: Option<baton_kafka::Secret>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub message_bytes_max: usize,
    pub batch_events_max: usize,
    pub check_batch_max: usize,
    pub streams_max: usize,
    pub request_timeout_ms: u64,
    pub connections_max: usize,
    pub connection_idle_ms: u64,
    pub anonymous_connections_max: usize,
    pub anonymous_idle_ms: u64,
    pub connections_per_peer_max: usize,
    pub requests_per_connection_max: usize,
    pub consistency_wait_ms: u64,
    pub apply_wait_ms: u64,
    pub descendants_max: u32,
    pub page_size_max: u32,
    pub park_grace_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 7700)),
            http_listen: None,
            metrics_listen: None,
            unix_listen: None,
            loopback_admin: false,
            data_dir: PathBuf::from("baton-data"),
            trust_roots: Vec::new(),
            depth_max: baton_core::limits::DEPTH_MAX_DEFAULT,
            rules: Rules::default(),
            kafka: Kafka {
                topic: "baton.events.v1".into(),
                partitions: 8,
                replication: 1,
                ..Kafka::default()
            },
            limits: Limits::default(),
            freshness: Freshness::default(),
            memory: Memory::default(),
            tls: Tls::default(),
            access: Vec::new(),
            resource: Vec::new(),
            gateway: "generic".into(),
            revocation: Revocation::default(),
            jwt_issuer: Vec::new(),
            insecure: false,
        }
    }
}

impl Default for Kafka {
    fn default() -> Self {
        Kafka {
            brokers: String::new(),
            topic: "baton.events.v1".into(),
            partitions: 8,
            replication: 1,
            min_insync_replicas: None,
            security_protocol: None,
            ssl_ca: None,
            ssl_cert: None,
            ssl_key: None,
            ssl_key_password_file: None,
            sasl_mechanism: None,
            sasl_username: None,
            sasl_password_file: None,
            sasl_password_env: None,
        }
    }
}

impl Default for Tls {
    fn default() -> Self {
        Tls {
            cert: None,
            key: None,
            client_ca: Vec::new(),
            poll_ms: 5000,
        }
    }
}

impl Kafka {
    /// The security settings hang together (checked before anything connects).
    fn check(&self) -> anyhow::Result<()> {
        const PROTOCOLS: [&str; 4] = ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"];
        const MECHANISMS: [&str; 3] = ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"];
        let protocol = self.security_protocol.as_deref().unwrap_or("PLAINTEXT");
        if !PROTOCOLS.contains(&protocol) {
            bail!(
                "kafka.security_protocol: {:?} is not one of {}",
                baton_core::echo(protocol),
                PROTOCOLS.join(", ")
            );
        }
        let sasl = protocol.starts_with("SASL_");
        if sasl {
            let mechanism = self.sasl_mechanism.as_deref().unwrap_or_default();
            if !MECHANISMS.contains(&mechanism) {
                bail!(
                    "kafka.sasl_mechanism: {protocol} needs one of {}",
                    MECHANISMS.join(", ")
                );
            }
            if self.sasl_username.as_deref().unwrap_or_default().is_empty() {
                bail!("kafka.sasl_username: {protocol} needs a username");
            }
            if self.sasl_password_file.is_none() && self.sasl_password_env.is_none() {
                bail!(
                    "kafka.sasl_password_file: {protocol} needs a password, from a file (kafka.sasl_password_file) or BATON_KAFKA_SASL_PASSWORD; never inline"
                );
            }
        } else if self.sasl_mechanism.is_some()
            || self.sasl_username.is_some()
            || self.sasl_password_file.is_some()
        {
            bail!(
                "kafka.security_protocol: SASL settings are given, but {protocol} does not use them (SASL_PLAINTEXT or SASL_SSL)"
            );
        }
        let tls = protocol == "SSL" || protocol == "SASL_SSL";
        if !tls && (self.ssl_ca.is_some() || self.ssl_cert.is_some() || self.ssl_key.is_some()) {
            bail!(
                "kafka.security_protocol: TLS files are given, but {protocol} does not use TLS (SSL or SASL_SSL)"
            );
        }
        if self.ssl_cert.is_some() != self.ssl_key.is_some() {
            bail!("kafka.ssl_cert, kafka.ssl_key: a client certificate needs both");
        }
        Ok(())
    }
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            require_delegating_role: true,
            static_grants_client_only: true,
            enforce_ceiling: true,
            created_at_skew_max_ms: baton_core::limits::CREATED_AT_SKEW_MAX_MS_DEFAULT,
            created_at_age_max_ms: baton_core::limits::CREATED_AT_AGE_MAX_MS_DEFAULT,
            federated_authorization_servers: Vec::new(),
            revocation_delegates: Vec::new(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        let d = baton_server::Limits::default();
        Limits {
            message_bytes_max: d.message_bytes_max,
            batch_events_max: d.batch_events_max,
            check_batch_max: d.check_batch_max,
            streams_max: d.streams_max,
            request_timeout_ms: d.request_timeout.as_millis() as u64,
            connections_max: d.connections_max,
            connection_idle_ms: d.connection_idle_max.as_millis() as u64,
            anonymous_connections_max: d.anonymous_connections_max,
            anonymous_idle_ms: d.anonymous_idle_max.as_millis() as u64,
            connections_per_peer_max: d.connections_per_peer_max,
            requests_per_connection_max: d.requests_per_connection_max,
            consistency_wait_ms: d.consistency_wait_max.as_millis() as u64,
            apply_wait_ms: d.apply_wait_max.as_millis() as u64,
            descendants_max: d.descendants_max,
            page_size_max: d.page_size_max,
            park_grace_ms: d.park_grace.as_millis() as u64,
        }
    }
}

/// The flags of `baton serve` that override configuration.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Flags {
    /// A TOML configuration file.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Address to serve gRPC on [default: 127.0.0.1:7700].
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Address to serve the HTTP bridges on (forward-auth, RFC 7662
    /// introspection) [default: none].
    #[arg(long)]
    pub http_listen: Option<SocketAddr>,
    /// Address to serve Prometheus metrics on (`/metrics`) [default: none].
    #[arg(long)]
    pub metrics_listen: Option<SocketAddr>,
    /// A Unix socket to serve gRPC on for local callers, each named by its
    /// user id (`[[access]] uid = …` grants roles) [default: none].
    #[arg(long)]
    pub unix_listen: Option<PathBuf>,
    /// Make every caller on a plaintext listener admin: every local
    /// process (in a container, every container in its network) may do
    /// everything. Plaintext needs this, --unix-listen or --insecure.
    #[arg(long)]
    pub loopback_admin: bool,
    /// Data directory [default: ./baton-data].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// A trust-root public key (64 hex digits); repeatable.
    #[arg(long = "trust-root")]
    pub trust_roots: Vec<String>,
    /// Kafka bootstrap servers; without them, the embedded log.
    #[arg(long)]
    pub kafka_brokers: Option<String>,
    /// The Kafka topic of the ledger [default: baton.events.v1].
    #[arg(long)]
    pub kafka_topic: Option<String>,
    /// Partitions of the topic when the node creates it [default: 8].
    #[arg(long)]
    pub kafka_partitions: Option<u32>,
    /// Replication factor of the topic when the node creates it [default: 1].
    #[arg(long)]
    pub kafka_replication: Option<i32>,
    /// The deepest a delegation chain may be (hops below the root grant)
    /// [default: 16].
    #[arg(long)]
    pub depth_max: Option<u32>,
    /// The server's TLS certificate chain (PEM).
    #[arg(long)]
    pub tls_cert: Option<PathBuf>,
    /// The server certificate's private key (PEM).
    #[arg(long)]
    pub tls_key: Option<PathBuf>,
    /// A CA bundle (PEM) client certificates must chain to; repeatable.
    #[arg(long = "tls-client-ca")]
    pub tls_client_ca: Vec<PathBuf>,
    /// Serve plaintext on a non-loopback address (anyone who can reach the
    /// port may do anything).
    #[arg(long)]
    pub insecure: bool,
    /// The gateway in front of forward-auth: generic, nginx, traefik, caddy
    /// or envoy [default: generic].
    #[arg(long)]
    pub gateway: Option<String>,
}

/// The `BATON_*` variables `serve` reads, then those other Baton tools read
/// (the log filter, the CLI's node address, the scripts' caches), which serve
/// accepts and ignores. Anything else starting with `BATON_` is a typo.
/// Whether `name=value` is one of the variables Kubernetes puts in every
/// container for each Service (`{SERVICE}_SERVICE_HOST`,
/// `{SERVICE}_SERVICE_PORT[_{PORT}]`, `{SERVICE}_PORT[_{N}_{PROTO}[_PROTO|_PORT|_ADDR]]`):
/// a Service named `baton` makes `BATON_PORT=tcp://…`, which is no setting.
fn service_link(name: &str, value: &str) -> bool {
    if name.ends_with("_SERVICE_HOST") {
        return value.parse::<std::net::IpAddr>().is_ok();
    }
    if name.contains("_SERVICE_PORT") {
        return value.parse::<u16>().is_ok();
    }
    let is_url = ["tcp://", "udp://", "sctp://"]
        .iter()
        .any(|scheme| value.starts_with(scheme));
    if name.ends_with("_PORT") && is_url {
        return true;
    }
    // {SERVICE}_PORT_{N}_{PROTO}[_PROTO|_PORT|_ADDR]
    let Some((_, tail)) = name
        .rsplit_once("_PORT_")
        .filter(|_| name.contains("_PORT_"))
    else {
        return false;
    };
    let mut parts = tail.split('_');
    let number = parts.next().is_some_and(|n| n.parse::<u16>().is_ok());
    let proto = parts
        .next()
        .is_some_and(|p| matches!(p, "TCP" | "UDP" | "SCTP"));
    let rest: Vec<&str> = parts.collect();
    number
        && proto
        && match rest.as_slice() {
            [] => is_url,
            ["PROTO"] => matches!(value, "tcp" | "udp" | "sctp"),
            ["PORT"] => value.parse::<u16>().is_ok(),
            ["ADDR"] => value.parse::<std::net::IpAddr>().is_ok(),
            _ => false,
        }
}

/// The variables a node reads (and the client verbs' own), listed in the
/// refusal of an unknown one.
const ENV_KEYS: [&str; 26] = [
    "BATON_LISTEN",
    "BATON_UNIX_LISTEN",
    "BATON_LOOPBACK_ADMIN",
    "BATON_GATEWAY",
    "BATON_HTTP_LISTEN",
    "BATON_METRICS_LISTEN",
    "BATON_DATA_DIR",
    "BATON_TRUST_ROOTS",
    "BATON_DEPTH_MAX",
    "BATON_KAFKA_BROKERS",
    "BATON_KAFKA_TOPIC",
    "BATON_KAFKA_PARTITIONS",
    "BATON_KAFKA_REPLICATION",
    "BATON_KAFKA_SECURITY_PROTOCOL",
    "BATON_KAFKA_SASL_MECHANISM",
    "BATON_KAFKA_SASL_USERNAME",
    "BATON_KAFKA_SASL_PASSWORD",
    "BATON_TLS_CERT",
    "BATON_TLS_KEY",
    "BATON_TLS_CLIENT_CA",
    "BATON_INSECURE",
    "BATON_LOG",
    "BATON_SERVER",
    "BATON_CA",
    "BATON_CERT",
    "BATON_CERT_KEY",
];

/// Variables of the repository's own tooling (tests, benchmarks, the Kafka
/// script): accepted where they are set, never suggested to a user.
const TOOLING_ENV_KEYS: [&str; 7] = [
    "BATON_CACHE",
    "BATON_KAFKA_CACHE",
    "BATON_KAFKA_VERSION",
    "BATON_KAFKA_START_TIMEOUT",
    "BATON_KAFKA_STOP_TIMEOUT",
    "BATON_REGENERATE_VECTORS",
    "BATON_RECORD_CHECKER_SCENARIOS",
];

fn parse<T: std::str::FromStr>(name: &str, value: &str) -> anyhow::Result<T>
where
    T::Err: std::fmt::Display,
{
    value
        .parse()
        .map_err(|e| anyhow::anyhow!("{name}: {value:?} is not valid: {e}"))
}

impl Config {
    /// Reads a configuration file's text (the TOML layer alone), checked as
    /// `load` checks it. What the config fuzz target drives.
    pub fn from_toml(text: &str) -> anyhow::Result<Config> {
        let config: Config = toml::from_str(text)?;
        config.validate()?;
        config.policy()?;
        Ok(config)
    }

    /// Builds the configuration from its layers.
    pub fn load(flags: &Flags, env: &BTreeMap<String, String>) -> anyhow::Result<Config> {
        let mut config = match &flags.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading config file {}", path.display()))?;
                // The error names the line, not its text: a misplaced
                // secret (`sasl_password = …`) must not reach the log.
                toml::from_str(&text).map_err(|e: toml::de::Error| {
                    let line = e.span().map_or(0, |span| {
                        text[..span.start.min(text.len())].matches('\n').count() + 1
                    });
                    anyhow::anyhow!(
                        "config file {}: line {line}: {}",
                        path.display(),
                        e.message()
                    )
                })?
            }
            None => Config::default(),
        };
        for (name, value) in env.iter().filter(|(k, _)| k.starts_with("BATON_")) {
            match name.as_str() {
                "BATON_LISTEN" => config.listen = parse(name, value)?,
                "BATON_HTTP_LISTEN" => config.http_listen = Some(parse(name, value)?),
                "BATON_METRICS_LISTEN" => config.metrics_listen = Some(parse(name, value)?),
                "BATON_UNIX_LISTEN" => config.unix_listen = Some(PathBuf::from(value)),
                "BATON_LOOPBACK_ADMIN" => config.loopback_admin = parse(name, value)?,
                "BATON_DATA_DIR" => config.data_dir = PathBuf::from(value),
                "BATON_TRUST_ROOTS" => {
                    config.trust_roots = value
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect()
                }
                "BATON_DEPTH_MAX" => config.depth_max = parse(name, value)?,
                "BATON_KAFKA_BROKERS" => config.kafka.brokers = value.clone(),
                "BATON_KAFKA_TOPIC" => config.kafka.topic = value.clone(),
                "BATON_KAFKA_PARTITIONS" => config.kafka.partitions = parse(name, value)?,
                "BATON_KAFKA_REPLICATION" => config.kafka.replication = parse(name, value)?,
                "BATON_KAFKA_SECURITY_PROTOCOL" => {
                    config.kafka.security_protocol = Some(value.clone())
                }
                "BATON_KAFKA_SASL_MECHANISM" => config.kafka.sasl_mechanism = Some(value.clone()),
                "BATON_KAFKA_SASL_USERNAME" => config.kafka.sasl_username = Some(value.clone()),
                "BATON_KAFKA_SASL_PASSWORD" => {
                    config.kafka.sasl_password_env = Some(baton_kafka::Secret::new(value.clone()))
                }
                "BATON_TLS_CERT" => config.tls.cert = Some(PathBuf::from(value)),
                "BATON_TLS_KEY" => config.tls.key = Some(PathBuf::from(value)),
                "BATON_TLS_CLIENT_CA" => {
                    config.tls.client_ca = value
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|file| ClientCa::File(PathBuf::from(file)))
                        .collect()
                }
                "BATON_INSECURE" => config.insecure = parse(name, value)?,
                "BATON_GATEWAY" => config.gateway = value.clone(),
                known if ENV_KEYS.contains(&known) || TOOLING_ENV_KEYS.contains(&known) => {}
                link if service_link(link, value) => {}
                unknown => bail!(
                    "unknown environment variable {unknown}; known: {}",
                    ENV_KEYS.join(", ")
                ),
            }
        }
        if let Some(listen) = flags.listen {
            config.listen = listen;
        }
        if let Some(listen) = flags.http_listen {
            config.http_listen = Some(listen);
        }
        if let Some(listen) = flags.metrics_listen {
            config.metrics_listen = Some(listen);
        }
        if let Some(path) = &flags.unix_listen {
            config.unix_listen = Some(path.clone());
        }
        config.loopback_admin |= flags.loopback_admin;
        if let Some(dir) = &flags.data_dir {
            config.data_dir = dir.clone();
        }
        if !flags.trust_roots.is_empty() {
            config.trust_roots = flags.trust_roots.clone();
        }
        if let Some(brokers) = &flags.kafka_brokers {
            config.kafka.brokers = brokers.clone();
        }
        if let Some(topic) = &flags.kafka_topic {
            config.kafka.topic = topic.clone();
        }
        if let Some(partitions) = flags.kafka_partitions {
            config.kafka.partitions = partitions;
        }
        if let Some(replication) = flags.kafka_replication {
            config.kafka.replication = replication;
        }
        if let Some(depth) = flags.depth_max {
            config.depth_max = depth;
        }
        if let Some(cert) = &flags.tls_cert {
            config.tls.cert = Some(cert.clone());
        }
        if let Some(key) = &flags.tls_key {
            config.tls.key = Some(key.clone());
        }
        if !flags.tls_client_ca.is_empty() {
            config.tls.client_ca = flags
                .tls_client_ca
                .iter()
                .map(|file| ClientCa::File(file.clone()))
                .collect();
        }
        config.insecure |= flags.insecure;
        if let Some(gateway) = &flags.gateway {
            config.gateway = gateway.clone();
        }
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.trust_roots.is_empty() {
            bail!(
                "trust_roots: at least one trust-root public key is required (--trust-root, BATON_TRUST_ROOTS or the config file); create one with `baton keygen`"
            );
        }
        for (i, root) in self.trust_roots.iter().enumerate() {
            if root.len() != 64 || !root.bytes().all(|b| b.is_ascii_hexdigit()) {
                bail!(
                    "trust_roots[{i}]: expected a public key of 64 hex digits, not a private key or a file name"
                );
            }
        }
        if self.depth_max == 0 || self.depth_max > baton_core::limits::DEPTH_MAX_CEILING {
            bail!(
                "depth_max: {} is not in 1..={}",
                self.depth_max,
                baton_core::limits::DEPTH_MAX_CEILING
            );
        }
        for (name, value) in [
            ("created_at_skew_max_ms", self.rules.created_at_skew_max_ms),
            ("created_at_age_max_ms", self.rules.created_at_age_max_ms),
        ] {
            if value < 0 {
                bail!("rules.{name}: {value} is negative");
            }
        }
        for (name, value) in [
            ("message_bytes_max", self.limits.message_bytes_max),
            ("check_batch_max", self.limits.check_batch_max),
            ("streams_max", self.limits.streams_max),
            ("connections_max", self.limits.connections_max),
            (
                "anonymous_connections_max",
                self.limits.anonymous_connections_max,
            ),
            (
                "connections_per_peer_max",
                self.limits.connections_per_peer_max,
            ),
            (
                "requests_per_connection_max",
                self.limits.requests_per_connection_max,
            ),
            ("descendants_max", self.limits.descendants_max as usize),
            ("page_size_max", self.limits.page_size_max as usize),
            (
                "request_timeout_ms",
                self.limits.request_timeout_ms as usize,
            ),
            (
                "connection_idle_ms",
                self.limits.connection_idle_ms as usize,
            ),
            ("anonymous_idle_ms", self.limits.anonymous_idle_ms as usize),
            ("park_grace_ms", self.limits.park_grace_ms as usize),
        ] {
            if value == 0 {
                bail!("limits.{name}: must be at least 1");
            }
        }
        let batch_max = baton_core::limits::BATCH_EVENTS_MAX;
        if self.limits.batch_events_max == 0 || self.limits.batch_events_max > batch_max {
            bail!(
                "limits.batch_events_max: {} is not in 1..={batch_max} (a batch is one log record)",
                self.limits.batch_events_max
            );
        }
        if !(1..=STORE_CACHE_MIB_MAX).contains(&self.memory.store_cache_mib) {
            bail!(
                "memory.store_cache_mib: {} is not in 1..={STORE_CACHE_MIB_MAX}",
                self.memory.store_cache_mib
            );
        }
        if !(2..=RECORDS_CACHED_MAX).contains(&self.memory.records_cached_max) {
            bail!(
                "memory.records_cached_max: {} is not in 2..={RECORDS_CACHED_MAX}",
                self.memory.records_cached_max
            );
        }
        let freshness = &self.freshness;
        if freshness.confirm_interval_ms == 0
            || freshness.confirm_interval_ms.saturating_mul(2) > freshness.max_staleness_ms
        {
            bail!(
                "freshness.confirm_interval_ms: {} must be at least 1 and at most half of max_staleness_ms ({}), or the node turns stale between two confirmations",
                freshness.confirm_interval_ms,
                freshness.max_staleness_ms
            );
        }
        if self.kafka.partitions == 0 {
            bail!("kafka.partitions: must be at least 1");
        }
        self.kafka.check()?;
        let tls = self.tls_files()?;
        self.access()?;
        if let Some(i) = self
            .access
            .iter()
            .position(|g| g.secret_hash.is_none() && g.uid.is_none())
            && tls.is_none()
        {
            bail!(
                "access[{i}]: roles for certificate principals need [tls] (cert, key, client_ca): on plaintext no caller has a certificate"
            );
        }
        if let Some(i) = self.access.iter().position(|g| g.uid.is_some())
            && self.unix_listen.is_none()
        {
            bail!(
                "access[{i}].uid: roles for a local user need a Unix socket to call on (unix_listen, --unix-listen)"
            );
        }
        self.resources()?;
        self.gateway()?;
        for (field, address) in [
            ("listen", Some(self.listen)),
            ("http_listen", self.http_listen),
        ] {
            let Some(address) = address else { continue };
            if tls.is_none() && !self.insecure && !address.ip().is_loopback() {
                bail!(
                    "{field}: refusing to serve plaintext on {address}, which is not a loopback address: anyone who reaches it could read every chain and append. Configure TLS with client certificates ([tls] cert, key and client_ca in the config file, or --tls-cert, --tls-key, --tls-client-ca; `baton pki init DIR` makes a development set), or pass --insecure (BATON_INSECURE=true) to serve everyone anyway"
                );
            }
        }
        Ok(())
    }

    /// What only serving needs (the offline tools read the same
    /// configuration): a plaintext node must say who its callers are.
    pub fn check_serving(&self) -> anyhow::Result<()> {
        if self.tls_files()?.is_none()
            && !self.loopback_admin
            && !self.insecure
            && self.unix_listen.is_none()
        {
            bail!(
                "listen: plaintext names no caller, so nobody could call anything but health on {}. Choose: --loopback-admin (loopback_admin = true) makes every local process admin (in a container, every container in its network); --unix-listen PATH serves local callers by user id ([[access]] uid = …); or TLS with client certificates ([tls] cert, key, client_ca)",
                self.listen
            );
        }
        Ok(())
    }

    /// How to reach Kafka, secrets read from their files.
    pub fn kafka_options(&self) -> anyhow::Result<baton_kafka::KafkaOptions> {
        let kafka = &self.kafka;
        let mut options = baton_kafka::KafkaOptions::new(kafka.brokers.clone());
        options.topic = kafka.topic.clone();
        options.partitions = kafka.partitions;
        options.replication = kafka.replication;
        options.min_insync_replicas = kafka.min_insync_replicas;
        let secret = |field: &str,
                      path: &Option<PathBuf>|
         -> anyhow::Result<Option<baton_kafka::Secret>> {
            path.as_ref()
                .map(|path| {
                    let text = std::fs::read_to_string(path)
                        .with_context(|| format!("kafka.{field}: reading {}", path.display()))?;
                    let secret = text.trim_end_matches(['\n', '\r']);
                    if secret.is_empty() {
                        bail!("kafka.{field}: {} is empty", path.display());
                    }
                    Ok(baton_kafka::Secret::new(secret))
                })
                .transpose()
        };
        options.security = baton_kafka::Security {
            protocol: kafka.security_protocol.clone(),
            ssl_ca: kafka.ssl_ca.clone(),
            ssl_cert: kafka.ssl_cert.clone(),
            ssl_key: kafka.ssl_key.clone(),
            ssl_key_password: secret("ssl_key_password_file", &kafka.ssl_key_password_file)?,
            sasl_mechanism: kafka.sasl_mechanism.clone(),
            sasl_username: kafka.sasl_username.clone(),
            sasl_password: match secret("sasl_password_file", &kafka.sasl_password_file)? {
                Some(secret) => Some(secret),
                None => kafka.sasl_password_env.clone(),
            },
        };
        Ok(options)
    }

    /// The TLS files, if TLS is configured; all three parts or none.
    pub fn tls_files(&self) -> anyhow::Result<Option<baton_server::tls::TlsFiles>> {
        let tls = &self.tls;
        match (&tls.cert, &tls.key, tls.client_ca.is_empty()) {
            (None, None, true) => Ok(None),
            (Some(cert), Some(key), false) => Ok(Some(baton_server::tls::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: tls
                    .client_ca
                    .iter()
                    .map(|ca| baton_server::tls::ClientCa {
                        file: ca.file().clone(),
                        principals: match ca {
                            ClientCa::File(_) => None,
                            ClientCa::Bound(bound) => Some(bound.principals.clone()),
                        },
                    })
                    .collect(),
            })),
            _ => {
                let missing: Vec<&str> = [
                    ("tls.cert", tls.cert.is_none()),
                    ("tls.key", tls.key.is_none()),
                    ("tls.client_ca", tls.client_ca.is_empty()),
                ]
                .into_iter()
                .filter_map(|(name, missing)| missing.then_some(name))
                .collect();
                bail!(
                    "{}: TLS needs a certificate, its key and the CA bundle(s) of client certificates; missing",
                    missing.join(", ")
                )
            }
        }
    }

    /// The roles by principal.
    pub fn access(&self) -> anyhow::Result<baton_server::auth::Access> {
        let mut grants = Vec::with_capacity(self.access.len());
        for (i, grant) in self.access.iter().enumerate() {
            let mut roles = std::collections::BTreeSet::new();
            for (j, role) in grant.roles.iter().enumerate() {
                roles.insert(
                    role.parse()
                        .map_err(|e| anyhow::anyhow!("access[{i}].roles[{j}]: {e}"))?,
                );
            }
            let secret = match &grant.secret_hash {
                None => None,
                Some(hash) => Some(
                    hash.parse()
                        .map_err(|e| anyhow::anyhow!("access[{i}].secret_hash: {e}"))?,
                ),
            };
            let client = match &grant.client_id {
                None => None,
                Some(id) => Some(baton_core::ClientId::new(
                    &format!("access[{i}].client_id"),
                    id,
                )?),
            };
            let principal = match (&grant.principal, grant.uid) {
                (Some(principal), None) => principal.clone(),
                (None, Some(uid)) => baton_server::auth::local_principal(uid),
                _ => bail!("access[{i}]: names a principal or a uid, exactly one"),
            };
            grants.push(baton_server::auth::Grant {
                principal,
                roles,
                audiences: grant.audiences.iter().cloned().collect(),
                secret,
                client,
                uid: grant.uid,
            });
        }
        baton_server::auth::Access::new(grants).map_err(|e| anyhow::anyhow!(e))
    }

    /// The RFC 7009 signing identity, its key read (and checked private).
    pub fn revocation_delegate(
        &self,
    ) -> anyhow::Result<Option<baton_server::http::RevocationDelegate>> {
        let (id, key_file) = match (&self.revocation.client_id, &self.revocation.key_file) {
            (None, None) => return Ok(None),
            (Some(id), Some(key)) => (id, key),
            _ => bail!("revocation: needs both client_id and key_file"),
        };
        let client = baton_core::ClientId::new("revocation.client_id", id)?;
        if !self.rules.revocation_delegates.contains(id) {
            bail!(
                "revocation.client_id: {id:?} is not in rules.revocation_delegates: every revocation it signed would be refused"
            );
        }
        let key = crate::keys::load(key_file)?;
        Ok(Some(baton_server::http::RevocationDelegate { client, key }))
    }

    /// The JWT issuers, their JWKS files read.
    pub fn jwt_issuers(&self) -> anyhow::Result<baton_server::jwt::JwtIssuers> {
        let mut issuers = Vec::with_capacity(self.jwt_issuer.len());
        for (i, issuer) in self.jwt_issuer.iter().enumerate() {
            let client = baton_core::ClientId::new(
                &format!("jwt_issuer[{i}].client_id"),
                &issuer.client_id,
            )?;
            let jwks = std::fs::read_to_string(&issuer.jwks_file).with_context(|| {
                format!("jwt_issuer[{i}].jwks_file: {}", issuer.jwks_file.display())
            })?;
            issuers.push(
                baton_server::jwt::JwtIssuer::from_jwks(&issuer.iss, client, &jwks).map_err(
                    |e| {
                        anyhow::anyhow!(
                            "jwt_issuer[{i}].jwks_file {}: {e}",
                            issuer.jwks_file.display()
                        )
                    },
                )?,
            );
        }
        baton_server::jwt::JwtIssuers::new(issuers).map_err(|e| anyhow::anyhow!(e))
    }

    /// The gateway profile of forward-auth.
    pub fn gateway(&self) -> anyhow::Result<baton_server::bridge::Gateway> {
        self.gateway
            .parse()
            .map_err(|e| anyhow::anyhow!("gateway: {e}"))
    }

    /// The resources the gateway bridges decide for.
    pub fn resources(&self) -> anyhow::Result<baton_server::bridge::Resources> {
        let mut resources = Vec::with_capacity(self.resource.len());
        for (i, resource) in self.resource.iter().enumerate() {
            let mut built = baton_server::bridge::Resource::new(&resource.url, &resource.audience)
                .map_err(|e| anyhow::anyhow!("resource[{i}].{e}"))?;
            built.scopes = resource.scopes.iter().cloned().collect();
            built.mcp = resource.mcp;
            built.metadata_url = resource.metadata_url.clone();
            resources.push(built);
        }
        Ok(baton_server::bridge::Resources::new(resources))
    }

    pub fn policy(&self) -> anyhow::Result<baton_core::Policy> {
        let mut policy = baton_core::Policy::new(trust_roots(&self.trust_roots)?);
        policy.depth_max = self.depth_max;
        policy.require_delegating_role = self.rules.require_delegating_role;
        policy.static_grants_client_only = self.rules.static_grants_client_only;
        policy.enforce_ceiling = self.rules.enforce_ceiling;
        policy.created_at_skew_max_ms = self.rules.created_at_skew_max_ms;
        policy.created_at_age_max_ms = self.rules.created_at_age_max_ms;
        for (i, id) in self
            .rules
            .federated_authorization_servers
            .iter()
            .enumerate()
        {
            let field = format!("rules.federated_authorization_servers[{i}]");
            policy
                .federated
                .insert(baton_core::ClientId::new(&field, id)?);
        }
        for (i, id) in self.rules.revocation_delegates.iter().enumerate() {
            let field = format!("rules.revocation_delegates[{i}]");
            policy
                .revocation_delegates
                .insert(baton_core::ClientId::new(&field, id)?);
        }
        Ok(policy)
    }

    pub fn limits(&self) -> baton_server::Limits {
        baton_server::Limits {
            message_bytes_max: self.limits.message_bytes_max,
            batch_events_max: self.limits.batch_events_max,
            check_batch_max: self.limits.check_batch_max,
            streams_max: self.limits.streams_max,
            request_timeout: std::time::Duration::from_millis(self.limits.request_timeout_ms),
            connections_max: self.limits.connections_max,
            connection_idle_max: std::time::Duration::from_millis(self.limits.connection_idle_ms),
            anonymous_connections_max: self.limits.anonymous_connections_max,
            anonymous_idle_max: std::time::Duration::from_millis(self.limits.anonymous_idle_ms),
            connections_per_peer_max: self.limits.connections_per_peer_max,
            requests_per_connection_max: self.limits.requests_per_connection_max,
            consistency_wait_max: std::time::Duration::from_millis(self.limits.consistency_wait_ms),
            apply_wait_max: std::time::Duration::from_millis(self.limits.apply_wait_ms),
            descendants_max: self.limits.descendants_max,
            page_size_max: self.limits.page_size_max,
            max_staleness: std::time::Duration::from_millis(self.freshness.max_staleness_ms),
            confirm_interval: std::time::Duration::from_millis(self.freshness.confirm_interval_ms),
            park_grace: std::time::Duration::from_millis(self.limits.park_grace_ms),
            store_cache_bytes: self.memory.store_cache_mib << 20,
            records_cached_max: self.memory.records_cached_max,
        }
    }
}

/// Trust-root public keys from their hex text, each error naming its index.
fn trust_roots(hex_keys: &[String]) -> anyhow::Result<Vec<baton_core::PublicKey>> {
    hex_keys
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let bytes = hex::decode(text).with_context(|| format!("trust_roots[{i}]: not hex"))?;
            baton_core::PublicKey::from_slice(&format!("trust_roots[{i}]"), &bytes)
                .map_err(anyhow::Error::from)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "5f3a5d0a0c8c2e1bbb1e4c0f1e5a4b7a9d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a";

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn layers_apply_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("baton.toml");
        std::fs::write(&file, format!("listen = \"127.0.0.1:9000\"\ntrust_roots = [\"{ROOT}\"]\n[kafka]\ntopic = \"from-file\"\n")).unwrap();
        let flags = Flags {
            config: Some(file),
            kafka_topic: Some("from-flag".into()),
            loopback_admin: true,
            ..Flags::default()
        };
        let config = Config::load(
            &flags,
            &env(&[
                ("BATON_LISTEN", "127.0.0.1:9100"),
                ("BATON_KAFKA_TOPIC", "from-env"),
            ]),
        )
        .unwrap();
        assert_eq!(config.listen, "127.0.0.1:9100".parse().unwrap());
        assert_eq!(config.kafka.topic, "from-flag");
        assert_eq!(config.trust_roots, vec![ROOT.to_string()]);
        assert_eq!(config.kafka.partitions, 8);
    }

    /// The configuration in a file of `text` under `dir`, with a trust root.
    fn load_file(dir: &std::path::Path, text: &str) -> anyhow::Result<Config> {
        let file = dir.join("baton.toml");
        std::fs::write(&file, text).unwrap();
        let flags = Flags {
            config: Some(file),
            trust_roots: vec![ROOT.into()],
            ..Flags::default()
        };
        Config::load(&flags, &env(&[]))
    }

    #[test]
    fn the_park_grace_reaches_the_node_and_zero_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let load = |text: &str| load_file(dir.path(), text);
        let config = load("[limits]\npark_grace_ms = 600000\n").unwrap();
        assert_eq!(
            config.limits().park_grace,
            std::time::Duration::from_secs(600)
        );
        assert_eq!(
            load("").unwrap().limits().park_grace,
            baton_server::Limits::default().park_grace
        );
        let err = load("[limits]\npark_grace_ms = 0\n")
            .unwrap_err()
            .to_string();
        assert_eq!(err, "limits.park_grace_ms: must be at least 1");
    }

    #[test]
    fn the_memory_bounds_reach_the_projector_and_out_of_range_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let load = |text: &str| load_file(dir.path(), text);
        let config = load("[memory]\nstore_cache_mib = 96\nrecords_cached_max = 5000\n").unwrap();
        let options =
            baton_server::projector_options(baton_core::Policy::new([]), &config.limits());
        assert_eq!(options.cache_bytes, 96 << 20);
        assert_eq!(options.memo_records_max, 5000);
        let defaults = baton_server::projector_options(
            baton_core::Policy::new([]),
            &load("").unwrap().limits(),
        );
        assert_eq!(defaults.cache_bytes, baton_projector::CACHE_BYTES);
        assert_eq!(defaults.memo_records_max, baton_projector::MEMO_RECORDS_MAX);
        for (text, message) in [
            (
                "[memory]\nstore_cache_mib = 0\n",
                "memory.store_cache_mib: 0 is not in 1..=1048576",
            ),
            (
                "[memory]\nstore_cache_mib = 1048577\n",
                "memory.store_cache_mib: 1048577 is not in 1..=1048576",
            ),
            (
                "[memory]\nrecords_cached_max = 1\n",
                "memory.records_cached_max: 1 is not in 2..=10000000",
            ),
            (
                "[memory]\nrecords_cached_max = 10000001\n",
                "memory.records_cached_max: 10000001 is not in 2..=10000000",
            ),
        ] {
            assert_eq!(load(text).unwrap_err().to_string(), message, "{text}");
        }
    }

    #[test]
    fn a_misplaced_secret_is_not_echoed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("baton.toml");
        std::fs::write(&file, "[kafka]\nsasl_password = \"hunter2-secret\"\n").unwrap();
        let flags = Flags {
            config: Some(file),
            trust_roots: vec![ROOT.into()],
            ..Flags::default()
        };
        let err = format!("{:#}", Config::load(&flags, &env(&[])).unwrap_err());
        assert!(
            err.contains("line 2") && err.contains("sasl_password") && !err.contains("hunter2"),
            "{err}"
        );
    }

    #[test]
    fn plaintext_off_loopback_and_half_configured_security_are_refused() {
        let load = |flags: Flags, pairs: &[(&str, &str)]| {
            Config::load(
                &Flags {
                    trust_roots: vec![ROOT.into()],
                    ..flags
                },
                &env(pairs),
            )
        };
        // Plaintext on loopback: callers are admin only when the operator
        // says so, or local callers use the Unix socket.
        // (The offline tools read the same configuration: only serving
        // refuses it.)
        let err = load(Flags::default(), &[])
            .unwrap()
            .check_serving()
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("listen: plaintext names no caller")
                && err.contains("--loopback-admin"),
            "{err}"
        );
        let serves = |flags: Flags, pairs: &[(&str, &str)]| {
            load(flags, pairs).and_then(|config| config.check_serving())
        };
        assert!(serves(Flags::default(), &[("BATON_LOOPBACK_ADMIN", "true")]).is_ok());
        let unix = Flags {
            unix_listen: Some("baton.sock".into()),
            ..Flags::default()
        };
        assert!(serves(unix.clone(), &[]).is_ok());
        let dir = tempfile::tempdir().unwrap();
        let grants = |text: &str| {
            let file = dir.path().join("grants.toml");
            std::fs::write(&file, text).unwrap();
            Some(file)
        };
        let uid = grants("[[access]]\nuid = 1000\nroles = [\"checker\"]\n");
        let config = load(
            Flags {
                config: uid.clone(),
                ..unix.clone()
            },
            &[],
        )
        .unwrap();
        let caller = config
            .access()
            .unwrap()
            .caller(&baton_server::identity::Identity::Local { uid: 1000 });
        assert!(caller.may(baton_server::auth::Role::Checker));
        let err = load(
            Flags {
                config: uid,
                loopback_admin: true,
                ..Flags::default()
            },
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("access[0].uid:"), "{err}");
        for both_or_neither in [
            "[[access]]\nuid = 1000\nprincipal = \"unix:uid:1000\"\nroles = [\"checker\"]\n",
            "[[access]]\nroles = [\"checker\"]\n",
        ] {
            let err = load(
                Flags {
                    config: grants(both_or_neither),
                    ..unix.clone()
                },
                &[],
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains("a principal or a uid, exactly one"), "{err}");
        }
        let load = |flags: Flags, pairs: &[(&str, &str)]| {
            load(
                Flags {
                    loopback_admin: true,
                    ..flags
                },
                pairs,
            )
        };
        let open = Flags {
            listen: Some("0.0.0.0:7700".parse().unwrap()),
            ..Flags::default()
        };
        let err = load(open.clone(), &[]).unwrap_err().to_string();
        assert!(
            err.starts_with("listen: refusing to serve plaintext"),
            "{err}"
        );
        assert!(load(open, &[("BATON_INSECURE", "true")]).is_ok());
        let half = Flags {
            tls_cert: Some("server.pem".into()),
            ..Flags::default()
        };
        let err = load(half, &[]).unwrap_err().to_string();
        assert!(err.starts_with("tls.key, tls.client_ca:"), "{err}");
        let err = load(
            Flags::default(),
            &[("BATON_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")],
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("kafka.sasl_mechanism:"), "{err}");
        let err = load(
            Flags::default(),
            &[
                ("BATON_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT"),
                ("BATON_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"),
                ("BATON_KAFKA_SASL_USERNAME", "baton"),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("kafka.sasl_password_file:"), "{err}");
    }

    #[test]
    fn unknown_keys_and_variables_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("baton.toml");
        std::fs::write(&file, "listne = \"127.0.0.1:1\"\n").unwrap();
        let flags = Flags {
            config: Some(file),
            ..Flags::default()
        };
        let err = format!("{:#}", Config::load(&flags, &env(&[])).unwrap_err());
        assert!(err.contains("unknown field `listne`"), "{err}");
        let flags = Flags {
            trust_roots: vec![ROOT.into()],
            loopback_admin: true,
            ..Flags::default()
        };
        let err = Config::load(&flags, &env(&[("BATON_LISTNE", "x")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown environment variable BATON_LISTNE"),
            "{err}"
        );
        // The list it suggests is a user's: the repository's own tooling
        // variables are accepted, never suggested.
        assert!(
            err.contains("BATON_LISTEN") && !err.contains("BATON_CACHE"),
            "{err}"
        );
        Config::load(&flags, &env(&[("BATON_KAFKA_CACHE", "/tmp/k")])).unwrap();
        // What Kubernetes sets for Services named `baton` and `baton-headless`
        // is no setting, and is not refused; look-alikes still are.
        let links = [
            ("BATON_SERVICE_HOST", "10.96.0.12"),
            ("BATON_SERVICE_PORT", "7700"),
            ("BATON_SERVICE_PORT_GRPC", "7700"),
            ("BATON_PORT", "tcp://10.96.0.12:7700"),
            ("BATON_PORT_7700_TCP", "tcp://10.96.0.12:7700"),
            ("BATON_PORT_7700_TCP_PROTO", "tcp"),
            ("BATON_PORT_7700_TCP_PORT", "7700"),
            ("BATON_PORT_7700_TCP_ADDR", "10.96.0.12"),
            ("BATON_HEADLESS_SERVICE_HOST", "10.96.0.13"),
        ];
        let config = Config::load(&flags, &env(&links)).unwrap();
        assert_eq!(config, Config::load(&flags, &env(&[])).unwrap());
        for (name, value) in [
            ("BATON_SERVICE_HOST", "not-an-address"),
            ("BATON_PORT", "7700"),
            ("BATON_PORT_7700_TCP_ADDR", "somewhere"),
            ("BATON_METRICS_PORT", "9464"),
        ] {
            let err = Config::load(&flags, &env(&[(name, value)]))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(&format!("unknown environment variable {name}")),
                "{err}"
            );
        }
        let err = Config::load(&Flags::default(), &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("trust_roots:"), "{err}");
    }
}
