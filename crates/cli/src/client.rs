//! The client verbs: sign events with a key file and append them, check
//! tokens, fetch and export chains, and verify exported chains offline.
//!
//! Exit codes scripts can rely on: 0 success (for `check`: ACTIVE; for
//! `verify`: the bundle verifies); 1 error (bad input, unreachable node, a
//! refused append); 2 usage; `check`: 3 REVOKED, 4 EXPIRED, 5 UNKNOWN,
//! 6 AUDIENCE_MISMATCH; `verify`: 3 the bundle does not verify.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use baton_client::events::{self, Hop, Signer as KeySigner, now};
use baton_client::{Endpoint, keys};
use baton_core::{Body, ClientId, KeyId, RevocationTarget, Subject, TokenIssued, TokenRef};
use baton_proto::v1;
use prost::Message as _;
use serde_json::json;

#[derive(Debug, Clone, clap::Args)]
pub struct Connection {
    /// The node to talk to.
    #[arg(long, env = "BATON_SERVER", default_value = "http://127.0.0.1:7700")]
    pub server: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// CA bundle (PEM) the node's certificate must chain to; needs an
    /// https:// server.
    #[arg(long, env = "BATON_CA")]
    pub ca: Option<PathBuf>,
    /// Client certificate (PEM) naming this caller's principal.
    #[arg(long, env = "BATON_CERT", requires = "cert_key")]
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (PEM). (`--key` is the event
    /// signing key.)
    #[arg(long, env = "BATON_CERT_KEY", requires = "cert")]
    pub cert_key: Option<PathBuf>,
}

impl Connection {
    /// The SDK's client for this node.
    pub async fn client(&self) -> anyhow::Result<baton_client::Client> {
        let endpoint = Endpoint {
            server: self.server.clone(),
            ca: self.ca.clone(),
            identity: self.cert.clone().zip(self.cert_key.clone()),
        };
        Ok(endpoint.connect().await?)
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct Signer {
    /// The signing key file (from `baton keygen`).
    #[arg(long)]
    pub key: PathBuf,
}

fn client(field: &str, value: &str) -> anyhow::Result<ClientId> {
    Ok(ClientId::new(field, value)?)
}

pub fn token(field: &str, value: &str) -> anyhow::Result<TokenRef> {
    Ok(TokenRef::parse(field, value)?)
}

/// A token reference from its text form (`jti:…`, `b3:…`), for a request.
fn wire_token(field: &str, value: &str) -> anyhow::Result<Option<v1::TokenRef>> {
    Ok(Some(baton_proto::token_ref_to_wire(&token(field, value)?)))
}

/// A node error as `CODE_NAME: message`, the way the node phrased it.
pub fn status_text(status: tonic::Status) -> anyhow::Error {
    // Kept as the SDK's error (displayed the same), so `--json` errors can
    // name its code.
    baton_client::Error::from(status).into()
}

/// Signs `body` with the key file and appends it; prints the outcome.
async fn sign_and_append(
    connection: &Connection,
    signer: &Signer,
    body: Body,
    after: &Option<String>,
) -> anyhow::Result<()> {
    let kind = body.kind().as_str();
    let envelope = KeySigner::from_key_file(&signer.key)?.sign(body)?;
    let appended = connection
        .client()
        .await?
        .append(std::slice::from_ref(&envelope), after.as_deref())
        .await?;
    let result = appended
        .events
        .first()
        .context("the node returned no result")?;
    print_appended(connection, kind, result, &appended.consistency_token);
    Ok(())
}

/// Prints an appended event's outcome.
fn print_appended(
    connection: &Connection,
    kind: &str,
    result: &baton_client::Appended,
    consistency_token: &str,
) {
    let outcome = if result.accepted {
        "accepted"
    } else {
        "duplicate"
    };
    let (id, position) = (result.event_id, &result.position);
    if connection.json {
        println!(
            "{}",
            json!({"outcome": outcome, "event_id": id.to_string(), "position": position, "consistency_token": consistency_token})
        );
    } else {
        println!("{outcome} {kind} {id} at {position}");
        println!("consistency token {consistency_token}");
    }
}

#[derive(Debug, clap::Args)]
pub struct Register {
    #[command(flatten)]
    connection: Connection,
    #[command(flatten)]
    signer: Signer,
    /// The new client's id.
    #[arg(long)]
    client_id: String,
    /// mcp-client, gateway, mcp-server, authorization-server or service.
    #[arg(long)]
    kind: String,
    /// tool-endpoint, delegating-layer or mixed-trust-boundary.
    #[arg(long, default_value = "tool-endpoint")]
    role: String,
    /// pre-registered, dynamic, metadata-document or static-api-key.
    #[arg(long, default_value = "pre-registered")]
    registration: String,
    /// The URL of the client's metadata document (CIMD), recorded with it.
    #[arg(long)]
    metadata_url: Option<String>,
    /// The client's key: its key file, or `PUBLIC:PROOF` as `baton pubkey
    /// KEYFILE --proof-for CLIENT_ID` prints it; repeatable.
    #[arg(long = "client-key", required = true)]
    client_keys: Vec<String>,
    /// The scope ceiling, comma-separated.
    #[arg(long, default_value = "")]
    scopes: Vec<String>,
    /// The tool ceiling, comma-separated.
    #[arg(long, default_value = "")]
    tools: Vec<String>,
    /// The registering authorization server; omit when a trust-root key signs.
    #[arg(long)]
    registered_by: Option<String>,
    /// Apply only after this consistency token.
    #[arg(long)]
    after: Option<String>,
}

pub async fn register(args: Register) -> anyhow::Result<()> {
    let client_id = client("client_id", &args.client_id)?;
    let registrar = args
        .registered_by
        .as_deref()
        .map(|c| client("registered_by", c))
        .transpose()?;
    let bound: Vec<(baton_core::PublicKey, [u8; 64])> = args
        .client_keys
        .iter()
        .map(|k| keys::bound(k, &client_id, registrar.as_ref()))
        .collect::<Result<_, _>>()?;
    let mut body = events::register(
        client_id,
        events::client_kind(&args.kind)?,
        events::client_role(&args.role)?,
        &bound,
        events::names("scopes", &args.scopes)?,
        events::names("tools", &args.tools)?,
        registrar,
    );
    if let Body::ClientRegistered(registration) = &mut body {
        registration.registration = events::registration_method(&args.registration)?;
        registration.metadata_document_url = args.metadata_url.clone();
    }
    sign_and_append(&args.connection, &args.signer, body, &args.after).await
}

#[derive(Debug, clap::Args)]
pub struct Issue {
    #[command(flatten)]
    connection: Connection,
    #[command(flatten)]
    signer: Signer,
    /// The new token: jti:<jti> or b3:<digest>.
    #[arg(long)]
    token: String,
    /// The issuing authorization server.
    #[arg(long)]
    issuer: String,
    /// The user the token acts for (user:NAME, or a client id for a static
    /// grant).
    #[arg(long)]
    subject: String,
    /// The client the token is issued to.
    #[arg(long)]
    holder: String,
    /// The RFC 8707 resource the token is for.
    #[arg(long)]
    audience: String,
    /// Scopes granted, comma-separated (within the issuer's ceiling).
    #[arg(long, default_value = "")]
    scopes: Vec<String>,
    /// MCP tools granted, comma-separated (within the issuer's ceiling).
    #[arg(long, default_value = "")]
    tools: Vec<String>,
    /// authorization-code-pkce, device-code, client-credentials, api-key or refresh-token.
    #[arg(long, default_value = "authorization-code-pkce")]
    grant: String,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    ttl: i64,
    /// The login session (sid) the token belongs to, recorded with it.
    #[arg(long)]
    session_id: Option<String>,
    /// Answer only once the node has applied this consistency token (from
    /// an earlier answer, any node's).
    #[arg(long)]
    after: Option<String>,
}

pub async fn issue(args: Issue) -> anyhow::Result<()> {
    let (now_s, _) = now();
    let body = Body::TokenIssued(TokenIssued {
        token: token("token", &args.token)?,
        subject: Subject::new("subject", &args.subject)?,
        issuer: client("issuer", &args.issuer)?,
        holder: client("holder", &args.holder)?,
        audience: baton_core::audience("audience", &args.audience)?,
        scopes: events::names("scopes", &args.scopes)?,
        tools: events::names("tools", &args.tools)?,
        grant: events::grant_type(&args.grant)?,
        issued_at_s: now_s,
        expires_at_s: now_s + args.ttl,
        session_id: args.session_id.clone(),
        transaction_id: None,
    });
    sign_and_append(&args.connection, &args.signer, body, &args.after).await
}

#[derive(Debug, clap::Args)]
pub struct Narrow {
    #[command(flatten)]
    connection: Connection,
    #[command(flatten)]
    signer: Signer,
    /// The upstream token being exchanged.
    #[arg(long)]
    parent: String,
    /// The new, narrower token.
    #[arg(long)]
    token: String,
    /// The client performing the exchange (it signs).
    #[arg(long)]
    performed_by: String,
    /// The next hop that will hold the new token.
    #[arg(long)]
    holder: String,
    /// The RFC 8707 resource the new token is for.
    #[arg(long)]
    audience: String,
    /// Scopes kept, comma-separated (a subset of the parent's).
    #[arg(long, default_value = "")]
    scopes: Vec<String>,
    /// MCP tools kept, comma-separated (a subset of the parent's).
    #[arg(long, default_value = "")]
    tools: Vec<String>,
    /// Lifetime in seconds, capped at the parent's expiry.
    #[arg(long, default_value_t = 900)]
    ttl: i64,
    /// Answer only once the node has applied this consistency token (from
    /// an earlier answer, any node's).
    #[arg(long)]
    after: Option<String>,
}

pub async fn narrow(args: Narrow) -> anyhow::Result<()> {
    let exchange = baton_client::Exchange {
        parent: token("parent", &args.parent)?,
        hop: Hop {
            token: token("token", &args.token)?,
            performed_by: client("performed_by", &args.performed_by)?,
            holder: client("holder", &args.holder)?,
            audience: baton_core::audience("audience", &args.audience)?,
            scopes: events::names("scopes", &args.scopes)?,
            tools: events::names("tools", &args.tools)?,
        },
        ttl_s: args.ttl,
        after: args.after.clone(),
    };
    let signer = KeySigner::from_key_file(&args.signer.key)?;
    let client = args.connection.client().await?;
    let done = baton_client::exchange(&client, &signer, exchange).await?;
    let appended = baton_client::Appended {
        event_id: done.event_id,
        accepted: done.accepted,
        position: done.position,
    };
    print_appended(
        &args.connection,
        "scope_narrowed",
        &appended,
        &done.consistency_token,
    );
    Ok(())
}

#[derive(Debug, clap::Args)]
#[group(id = "target", required = true, multiple = false, args = ["token", "client", "subject", "key_id"])]
pub struct Revoke {
    #[command(flatten)]
    connection: Connection,
    #[command(flatten)]
    signer: Signer,
    /// Revoke a token (and everything derived from it).
    #[arg(long)]
    token: Option<String>,
    /// Revoke a client (every token it holds or delegated).
    #[arg(long)]
    client: Option<String>,
    /// Revoke a subject (every chain acting for it).
    #[arg(long)]
    subject: Option<String>,
    /// Revoke a signing key (key:<hex>, a key file, or 64 hex digits of a public key).
    #[arg(long)]
    key_id: Option<String>,
    /// Why, recorded with the revocation.
    #[arg(long, default_value = "")]
    reason: String,
    /// The revoking client; omit when a trust-root key signs.
    #[arg(long)]
    revoked_by: Option<String>,
    /// Answer only once the node has applied this consistency token (from
    /// an earlier answer, any node's).
    #[arg(long)]
    after: Option<String>,
}

pub async fn revoke(args: Revoke) -> anyhow::Result<()> {
    let target = if let Some(t) = &args.token {
        RevocationTarget::Token(token("token", t)?)
    } else if let Some(c) = &args.client {
        RevocationTarget::Client(client("client", c)?)
    } else if let Some(s) = &args.subject {
        RevocationTarget::Subject(Subject::new("subject", s)?)
    } else if let Some(k) = &args.key_id {
        match KeyId::parse("key_id", k) {
            Ok(id) => RevocationTarget::Key(id),
            Err(_) => RevocationTarget::Key(keys::public(k)?.key_id()),
        }
    } else {
        bail!("one of --token, --client, --subject or --key-id is required");
    };
    let revoked_by = args
        .revoked_by
        .as_deref()
        .map(|c| client("revoked_by", c))
        .transpose()?;
    let body = events::revoke(target, &args.reason, revoked_by);
    sign_and_append(&args.connection, &args.signer, body, &args.after).await
}

#[derive(Debug, clap::Args)]
pub struct Check {
    #[command(flatten)]
    connection: Connection,
    /// jti:<jti> or b3:<digest>.
    token: String,
    /// The resource the token was presented to.
    #[arg(long)]
    presented_to: Option<String>,
    /// Answer only once the node has applied this consistency token.
    #[arg(long)]
    after: Option<String>,
}

/// Returns the exit code for the status.
pub async fn check(args: Check) -> anyhow::Result<u8> {
    let request = v1::CheckRequest {
        token: wire_token("token", &args.token)?,
        presented_to: args.presented_to.clone().unwrap_or_default(),
        consistency_token: args.after.clone().unwrap_or_default(),
        with_dependencies: false,
    };
    let answer = args
        .connection
        .client()
        .await?
        .revocation()
        .check(request)
        .await
        .map_err(status_text)?
        .into_inner();
    let status = v1::TokenStatus::try_from(answer.status).unwrap_or(v1::TokenStatus::Unspecified);
    let (name, code) = match status {
        v1::TokenStatus::Active => ("ACTIVE", 0),
        v1::TokenStatus::Revoked => ("REVOKED", 3),
        v1::TokenStatus::Expired => ("EXPIRED", 4),
        v1::TokenStatus::Unknown | v1::TokenStatus::Unspecified => ("UNKNOWN", 5),
        v1::TokenStatus::AudienceMismatch => ("AUDIENCE_MISMATCH", 6),
    };
    let cause = answer.cause.as_ref().map(|c| {
        let via = v1::RevocationVia::try_from(c.via)
            .map(|v| {
                v.as_str_name()
                    .trim_start_matches("REVOCATION_VIA_")
                    .to_lowercase()
            })
            .unwrap_or_default();
        let link = c
            .link
            .clone()
            .and_then(|l| baton_proto::token_ref("link", Some(l)).ok())
            .map(|t| t.to_string())
            .unwrap_or_default();
        let event = baton_core::EventId::from_slice("id", &c.revocation_event_id)
            .map(|e| e.to_string())
            .unwrap_or_default();
        (via, link, c.distance, event)
    });
    if args.connection.json {
        let cause = cause.map(|(via, link, distance, event)| json!({"via": via, "link": link, "distance": distance, "revocation": event}));
        println!(
            "{}",
            json!({"token": args.token, "status": name, "expires_at_unix_s": answer.expires_at_unix_s, "audience": answer.audience, "cause": cause, "consistency_token": answer.consistency_token})
        );
    } else {
        match cause {
            Some((via, link, distance, event)) => {
                let what = match (via.as_str(), distance) {
                    ("token", 0) => "the token itself".to_string(),
                    ("token", d) => format!("its ancestor {link} ({d} hop(s) up)"),
                    ("subject", _) => "the subject of its chain".to_string(),
                    (via, 0) => format!("its {}", via.replace('_', " ")),
                    (via, d) => format!("the {} of {link} ({d} hop(s) up)", via.replace('_', " ")),
                };
                println!("{} {name}: {what} was revoked by {event}", args.token);
            }
            None => println!("{} {name}", args.token),
        }
    }
    Ok(code)
}

#[derive(Debug, clap::Args)]
pub struct Chain {
    #[command(flatten)]
    connection: Connection,
    /// The token: jti:<jti> or b3:<digest>.
    token: String,
    /// Answer only once the node has applied this consistency token (from
    /// an earlier answer, any node's).
    #[arg(long)]
    after: Option<String>,
}

pub async fn chain(args: Chain) -> anyhow::Result<()> {
    let request = v1::GetChainRequest {
        token: wire_token("token", &args.token)?,
        consistency_token: args.after.clone().unwrap_or_default(),
    };
    let chain = args
        .connection
        .client()
        .await?
        .provenance()
        .get_chain(request)
        .await
        .map_err(status_text)?
        .into_inner();
    let mut rows = Vec::new();
    // The root grant's type, which every hop of the chain inherits: a static
    // grant (client credentials, an API key) acts for its client, not a user.
    let mut grant = None;
    for item in chain.events {
        let (envelope, event) = baton_proto::open(item.event.context("chain event missing")?)?;
        let row = match &event.body {
            Body::TokenIssued(t) => {
                grant = Some(t.grant);
                json!({"depth": 0, "token": t.token.to_string(), "subject": t.subject.to_string(), "issuer": t.issuer.to_string(), "holder": t.holder.to_string(), "audience": t.audience, "scopes": t.scopes.iter().map(ToString::to_string).collect::<Vec<_>>(), "tools": t.tools.iter().map(ToString::to_string).collect::<Vec<_>>(), "event_id": envelope.id().to_string()})
            }
            Body::ScopeNarrowed(n) => {
                json!({"depth": n.depth, "token": n.token.to_string(), "on_behalf_of": n.on_behalf_of.to_string(), "performed_by": n.performed_by.to_string(), "holder": n.holder.to_string(), "audience": n.audience, "scopes": n.scopes.iter().map(ToString::to_string).collect::<Vec<_>>(), "tools": n.tools.iter().map(ToString::to_string).collect::<Vec<_>>(), "event_id": envelope.id().to_string()})
            }
            _ => continue,
        };
        rows.push(row);
    }
    let grant = grant.context("the chain has no root grant")?;
    for row in &mut rows {
        row["grant_type"] = json!(events::grant_type_name(grant));
        row["static"] = json!(grant.is_static());
    }
    if args.connection.json {
        println!("{}", json!({"links": rows}));
    } else {
        for row in &rows {
            let by = row
                .get("issuer")
                .or(row.get("performed_by"))
                .and_then(|v| v.as_str())
                .unwrap_or("");
            let subject = row
                .get("subject")
                .or(row.get("on_behalf_of"))
                .and_then(|v| v.as_str())
                .unwrap_or("");
            // A static chain reads as what it is, even when its client's id
            // looks like a user's.
            let acts_for = if grant.is_static() {
                format!(
                    "static ({}) for client {subject}",
                    events::grant_type_name(grant)
                )
            } else {
                format!("for {subject}")
            };
            println!(
                "{:>2}  {}  {}: {} -> {}  scopes={}  tools={}",
                row["depth"].as_u64().unwrap_or(0),
                row["token"].as_str().unwrap_or(""),
                acts_for,
                by,
                row["holder"].as_str().unwrap_or(""),
                row["scopes"]
                    .as_array()
                    .map(|a| a
                        .iter()
                        .filter_map(|v| v.as_str())
                        .collect::<Vec<_>>()
                        .join(","))
                    .unwrap_or_default(),
                row["tools"]
                    .as_array()
                    .map(|a| a
                        .iter()
                        .filter_map(|v| v.as_str())
                        .collect::<Vec<_>>()
                        .join(","))
                    .unwrap_or_default(),
            );
        }
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct Export {
    #[command(flatten)]
    connection: Connection,
    /// The token: jti:<jti> or b3:<digest>.
    token: String,
    /// Where to write the bundle (created; never overwritten).
    #[arg(long)]
    out: PathBuf,
    /// Answer only once the node has applied this consistency token (from
    /// an earlier answer, any node's).
    #[arg(long)]
    after: Option<String>,
}

pub async fn export(args: Export) -> anyhow::Result<()> {
    let request = v1::ExportChainRequest {
        token: wire_token("token", &args.token)?,
        consistency_token: args.after.clone().unwrap_or_default(),
    };
    let bundle = args
        .connection
        .client()
        .await?
        .provenance()
        .export_chain(request)
        .await
        .map_err(status_text)?
        .into_inner()
        .bundle
        .context("no bundle returned")?;
    let bytes = bundle.encode_to_vec();
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    file.write_all(&bytes)?;
    if args.connection.json {
        println!(
            "{}",
            json!({"bundle": args.out, "events": bundle.events.len(), "bytes": bytes.len()})
        );
    } else {
        println!(
            "wrote {} ({} events, {} bytes)",
            args.out.display(),
            bundle.events.len(),
            bytes.len()
        );
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct Verify {
    /// An exported chain bundle.
    bundle: PathBuf,
    /// A trust-root public key: its key file or 64 hex digits; repeatable.
    #[arg(long = "trust-root", required = true)]
    trust_roots: Vec<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Returns the exit code: 0 verifies, 3 does not.
pub fn verify(args: Verify) -> anyhow::Result<u8> {
    let roots = args
        .trust_roots
        .iter()
        .map(|r| keys::public(r))
        .collect::<Result<Vec<_>, _>>()?;
    let bytes = std::fs::read(&args.bundle)
        .with_context(|| format!("reading {}", args.bundle.display()))?;
    match baton_proto::verify_bundle(&bytes, baton_core::Policy::new(roots), now().0) {
        Ok(chain) => {
            let links: Vec<String> = chain
                .links
                .iter()
                .map(|l| format!("{} ({} -> {})", l.token, l.performed_by, l.holder))
                .collect();
            if args.json {
                println!(
                    "{}",
                    json!({"verified": true, "leaf": chain.leaf().token.to_string(), "links": links})
                );
            } else {
                println!(
                    "verified: {} link(s), root {} -> leaf {}",
                    links.len(),
                    chain.links[0].token,
                    chain.leaf().token
                );
                for (depth, link) in links.iter().enumerate() {
                    println!("{depth:>2}  {link}");
                }
            }
            Ok(0)
        }
        Err(e) => {
            if args.json {
                println!("{}", json!({"verified": false, "error": e.to_string()}));
            } else {
                println!("NOT verified: {e}");
            }
            Ok(3)
        }
    }
}
