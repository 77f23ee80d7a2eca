//! Connections to a node: plaintext for `http://`, TLS for `https://` (the
//! node's certificate must chain to a given CA; a client certificate, when
//! given, names the caller for mTLS), its Unix socket for `unix:PATH` (the
//! caller is this process's user id), and the typed clients on them.

use std::path::PathBuf;

use baton_core::Envelope;
use baton_proto::v1;
use tonic::transport::Channel;

use crate::{Error, Result};

/// Where a node is and how to reach it.
#[derive(Debug, Clone, Default)]
pub struct Endpoint {
    /// `http://host:port`, `https://host:port` or `unix:/path/to/socket`.
    pub server: String,
    /// CA bundle (PEM) the node's certificate must chain to (https only).
    pub ca: Option<PathBuf>,
    /// Client certificate and its key (PEM files), naming this caller.
    pub identity: Option<(PathBuf, PathBuf)>,
}

impl Endpoint {
    pub fn new(server: impl Into<String>) -> Self {
        Endpoint {
            server: server.into(),
            ..Default::default()
        }
    }

    /// The CA bundle the node's certificate must chain to.
    pub fn ca(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca = Some(path.into());
        self
    }

    /// A client certificate and its private key, for mTLS.
    pub fn identity(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.identity = Some((cert.into(), key.into()));
        self
    }

    /// The socket's path, for a `unix:` server.
    fn unix(&self) -> Result<Option<PathBuf>> {
        let Some(path) = self.server.strip_prefix("unix:") else {
            return Ok(None);
        };
        if self.ca.is_some() || self.identity.is_some() {
            return Err(Error::Config {
                field: "server",
                reason: format!(
                    "{} is a Unix socket, where the caller is its user id: no CA or client certificate applies",
                    baton_core::echo(&self.server)
                ),
            });
        }
        Ok(Some(PathBuf::from(path.strip_prefix("//").unwrap_or(path))))
    }

    fn endpoint(&self) -> Result<tonic::transport::Endpoint> {
        if self.unix()?.is_some() {
            // The URI only names the HTTP/2 authority; the connector below
            // reaches the socket.
            return Ok(tonic::transport::Endpoint::from_static("http://localhost"));
        }
        let server = &self.server;
        let mut endpoint =
            tonic::transport::Endpoint::from_shared(server.clone()).map_err(|_| Error::Config {
                field: "server",
                reason: format!("{:?} is not a URL", baton_core::echo(server)),
            })?;
        let https = server.starts_with("https://");
        match (&self.ca, https) {
            (Some(ca), true) => {
                let read = |path: &PathBuf| {
                    std::fs::read(path).map_err(|e| Error::Config {
                        field: "tls",
                        reason: format!("reading {}: {e}", path.display()),
                    })
                };
                let mut tls = tonic::transport::ClientTlsConfig::new()
                    .ca_certificate(tonic::transport::Certificate::from_pem(read(ca)?));
                if let Some((cert, key)) = &self.identity {
                    tls = tls.identity(tonic::transport::Identity::from_pem(
                        read(cert)?,
                        read(key)?,
                    ));
                }
                endpoint = endpoint.tls_config(tls).map_err(|e| Error::Config {
                    field: "tls",
                    reason: e.to_string(),
                })?;
            }
            (None, true) => {
                return Err(Error::Config {
                    field: "server",
                    reason: format!(
                        "{server} is https://: name the CA bundle its certificate chains to (--ca, BATON_CA)"
                    ),
                });
            }
            (_, false) if self.ca.is_some() || self.identity.is_some() => {
                return Err(Error::Config {
                    field: "server",
                    reason: format!(
                        "{server} is not https://, but a CA or client certificate was given: use https://"
                    ),
                });
            }
            (_, false) => {}
        }
        Ok(endpoint)
    }

    /// Connects now (an unreachable node is an error here).
    pub async fn connect(&self) -> Result<Client> {
        let endpoint = self.endpoint()?;
        let connected = match self.unix()? {
            Some(path) => endpoint.connect_with_connector(unix_connector(path)).await,
            None => endpoint.connect().await,
        };
        let channel = connected.map_err(|cause| Error::Connect {
            server: self.server.clone(),
            cause,
        })?;
        Ok(Client::new(channel))
    }

    /// Connects on first use, and again after the connection drops.
    pub fn connect_lazy(&self) -> Result<Client> {
        let endpoint = self.endpoint()?;
        Ok(Client::new(match self.unix()? {
            Some(path) => endpoint.connect_with_connector_lazy(unix_connector(path)),
            None => endpoint.connect_lazy(),
        }))
    }
}

/// Connections to the Unix socket at `path`, for a channel.
fn unix_connector(
    path: PathBuf,
) -> impl tower::Service<
    http::Uri,
    Response = hyper_util::rt::TokioIo<tokio::net::UnixStream>,
    Error = std::io::Error,
    Future = impl Send,
> + Clone
+ Send
+ 'static {
    tower::service_fn(move |_: http::Uri| {
        let path = path.clone();
        async move {
            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                tokio::net::UnixStream::connect(path).await?,
            ))
        }
    })
}

/// The typed clients of a node's services, on one channel (cheap to clone).
#[derive(Debug, Clone)]
pub struct Client {
    channel: Channel,
}

/// One appended event's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub event_id: baton_core::EventId,
    /// False: the ledger held it already and nothing was appended.
    pub accepted: bool,
    /// `partition/offset` in the log.
    pub position: String,
}

/// An append's outcome: per event, and the consistency token covering all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appends {
    pub events: Vec<Appended>,
    pub consistency_token: String,
}

/// An Append of `events` (one batch), checked once the node has applied
/// `after`; `return_before_applied` answers at the log's acknowledgement.
pub fn append_request(
    events: &[Envelope],
    after: Option<&str>,
    return_before_applied: bool,
) -> v1::AppendRequest {
    v1::AppendRequest {
        events: events.iter().map(v1::SignedEvent::from).collect(),
        consistency_token: after.unwrap_or_default().to_owned(),
        return_before_applied,
    }
}

impl Client {
    pub fn new(channel: Channel) -> Self {
        Client { channel }
    }

    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    pub fn ledger(&self) -> v1::ledger_service_client::LedgerServiceClient<Channel> {
        v1::ledger_service_client::LedgerServiceClient::new(self.channel())
    }

    pub fn revocation(&self) -> v1::revocation_service_client::RevocationServiceClient<Channel> {
        v1::revocation_service_client::RevocationServiceClient::new(self.channel())
    }

    pub fn provenance(&self) -> v1::provenance_service_client::ProvenanceServiceClient<Channel> {
        v1::provenance_service_client::ProvenanceServiceClient::new(self.channel())
    }

    /// The operator's service (the admin role).
    pub fn admin(&self) -> v1::admin_service_client::AdminServiceClient<Channel> {
        v1::admin_service_client::AdminServiceClient::new(self.channel())
    }

    /// Appends signed events as one batch (all or nothing), checked once the
    /// node has applied `after` when given. An error whose outcome is unknown
    /// may be retried as a whole: appends are idempotent.
    pub async fn append(&self, events: &[Envelope], after: Option<&str>) -> Result<Appends> {
        let request = append_request(events, after, false);
        let response = self.ledger().append(request).await?.into_inner();
        if response.results.len() != events.len() {
            return Err(Error::Answer(format!(
                "{} results for {} events",
                response.results.len(),
                events.len()
            )));
        }
        let events = events
            .iter()
            .zip(response.results)
            .map(|(envelope, result)| Appended {
                event_id: envelope.id(),
                accepted: result.outcome != v1::AppendOutcome::Duplicate as i32,
                position: result
                    .position
                    .map(|p| format!("{}/{}", p.partition, p.offset))
                    .unwrap_or_default(),
            })
            .collect();
        Ok(Appends {
            events,
            consistency_token: response.consistency_token,
        })
    }

    /// A token's chain, root grant first, as the node's signed events
    /// (each re-verified here against its own signature).
    pub async fn chain(
        &self,
        token: &baton_core::TokenRef,
        after: Option<&str>,
    ) -> Result<Vec<(Envelope, baton_core::Event)>> {
        let chain = self
            .provenance()
            .get_chain(v1::GetChainRequest {
                token: Some(baton_proto::token_ref_to_wire(token)),
                consistency_token: after.unwrap_or_default().to_owned(),
            })
            .await?
            .into_inner();
        chain
            .events
            .into_iter()
            .map(|item| {
                let signed = item
                    .event
                    .ok_or_else(|| Error::Answer("a chain item without its event".into()))?;
                Ok(baton_proto::open(signed)?)
            })
            .collect()
    }
}
