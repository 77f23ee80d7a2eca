//! `ProvenanceService`: chains with what verifies them, the blast radius of a
//! token, history, and self-contained bundles for offline verification.

use std::pin::Pin;
use std::sync::Arc;

use baton_core::{ClientId, EventKind, Subject};
use baton_log::EventLog;
use baton_projector::EventFilter;
use baton_proto::v1;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::revocation::answer_when;
use crate::{Error, Node, Result};

pub struct Provenance<L> {
    node: Arc<Node<L>>,
}

impl<L> Provenance<L> {
    pub fn new(node: Arc<Node<L>>) -> Self {
        Provenance { node }
    }
}

fn invalid(source: impl Into<baton_core::Error>) -> Error {
    Error::Invalid {
        index: None,
        source: source.into(),
    }
}

fn chain_event(envelope: &baton_core::Envelope, position: baton_log::Position) -> v1::ChainEvent {
    v1::ChainEvent {
        event: Some(v1::SignedEvent::from(envelope)),
        event_id: envelope.id().0.to_vec(),
        position: Some(position.into()),
    }
}

fn event_kind(raw: i32) -> Result<Option<EventKind>> {
    use v1::EventKind as K;
    Ok(
        match K::try_from(raw).map_err(|_| Error::Limit {
            field: "kind",
            reason: format!("unknown enum value {raw}"),
        })? {
            K::Unspecified => None,
            K::ClientRegistered => Some(EventKind::ClientRegistered),
            K::TokenIssued => Some(EventKind::TokenIssued),
            K::ScopeNarrowed => Some(EventKind::ScopeNarrowed),
            K::Revoked => Some(EventKind::Revoked),
            K::KeysRotated => Some(EventKind::KeysRotated),
        },
    )
}

type Streamed<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

fn stream_of<T: Send + 'static>(
    items: Vec<T>,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> Streamed<T> {
    let (send, receive) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        let _permit = permit;
        for item in items {
            if send.send(Ok(item)).await.is_err() {
                return;
            }
        }
    });
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(receive))
}

impl<L: EventLog> Provenance<L> {
    /// The chain of `token`, walked off the async workers (up to 1024 events
    /// read from the store).
    async fn chain(
        &self,
        token: Option<v1::TokenRef>,
    ) -> Result<(baton_core::TokenRef, baton_projector::ChainAnswer)> {
        let token = baton_proto::token_ref("token", token).map_err(invalid)?;
        let node = self.node.clone();
        let walked = {
            let token = token.clone();
            tokio::task::spawn_blocking(move || node.handle.chain(&token))
                .await
                .map_err(|e| Error::Internal(format!("chain task: {e}")))??
        };
        match walked {
            Some(chain) => Ok((token, chain)),
            None => Err(Error::NotFound(format!(
                "token: {token} is not in the ledger"
            ))),
        }
    }
}

#[tonic::async_trait]
impl<L: EventLog> v1::provenance_service_server::ProvenanceService for Provenance<L> {
    async fn get_chain(
        &self,
        request: Request<v1::GetChainRequest>,
    ) -> Result<Response<v1::GetChainResponse>, Status> {
        let request = request.into_inner();
        // The chain is history (it never changes once written); the
        // token's status now is a check like any other: a node that cannot
        // vouch for the log gives it only when it stays true.
        let vouched = match self.node.vouched(&request.consistency_token).await {
            Err(e) if !matches!(e, crate::Error::LogUnreachable(_)) => return Err(e.into()),
            vouched => vouched,
        };
        let (_, chain) = self.chain(request.token.clone()).await?;
        let events = chain
            .events
            .iter()
            .zip(&chain.positions)
            .map(|((envelope, _), p)| chain_event(envelope, *p))
            .collect();
        let (status, _) = answer_when(
            &self.node,
            &v1::CheckRequest {
                token: request.token,
                ..Default::default()
            },
            vouched,
        )?;
        Ok(Response::new(v1::GetChainResponse {
            events,
            status: Some(status),
        }))
    }

    type GetDescendantsStream = Streamed<v1::GetDescendantsResponse>;

    async fn get_descendants(
        &self,
        request: Request<v1::GetDescendantsRequest>,
    ) -> Result<Response<Self::GetDescendantsStream>, Status> {
        let request = request.into_inner();
        self.node.consistent(&request.consistency_token).await?;
        let max = self.node.limits.descendants_max;
        if request.limit > max {
            return Err(Error::Limit {
                field: "limit",
                reason: format!("{} is more than the limit of {max}", request.limit),
            }
            .into());
        }
        let limit = if request.limit == 0 {
            max
        } else {
            request.limit
        } as usize;
        let token = baton_proto::token_ref("token", request.token).map_err(invalid)?;
        let permit = self.node.stream_permit()?;
        let node = self.node.clone();
        let records = tokio::task::spawn_blocking(move || node.handle.descendants(&token, limit))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
            .map_err(Error::from)?;
        let items = records
            .into_iter()
            .map(|r| v1::GetDescendantsResponse {
                token: Some(v1::TokenSummary {
                    token: Some(baton_proto::token_ref_to_wire(&r.token)),
                    event_id: r.event.0.to_vec(),
                    parent_event_id: r.parent.map(|p| p.0.to_vec()).unwrap_or_default(),
                    depth: r.depth,
                    holder: r.holder.to_string(),
                    performed_by: r.performed_by.to_string(),
                    subject: r.subject.to_string(),
                    audience: r.audience.clone(),
                    scopes: r.scopes.iter().map(ToString::to_string).collect(),
                    tools: r.tools.iter().map(ToString::to_string).collect(),
                    expires_at_unix_s: r.expires_at_s,
                }),
            })
            .collect();
        Ok(Response::new(stream_of(items, permit)))
    }

    type ListEventsStream = Streamed<v1::ListEventsResponse>;

    async fn list_events(
        &self,
        request: Request<v1::ListEventsRequest>,
    ) -> Result<Response<Self::ListEventsStream>, Status> {
        let request = request.into_inner();
        self.node.consistent(&request.consistency_token).await?;
        let max = self.node.limits.page_size_max;
        if request.page_size > max {
            return Err(Error::Limit {
                field: "page_size",
                reason: format!("{} is more than the limit of {max}", request.page_size),
            }
            .into());
        }
        let page_size = if request.page_size == 0 {
            100
        } else {
            request.page_size
        } as usize;
        let filter = EventFilter {
            kind: event_kind(request.kind)?,
            client: (!request.client_id.is_empty())
                .then(|| ClientId::new("client_id", &request.client_id))
                .transpose()
                .map_err(invalid)?,
            subject: (!request.subject.is_empty())
                .then(|| Subject::new("subject", &request.subject))
                .transpose()
                .map_err(invalid)?,
            since_ms: (request.since_unix_ms != 0).then_some(request.since_unix_ms),
            until_ms: (request.until_unix_ms != 0).then_some(request.until_unix_ms),
        };
        let cursor = if request.page_token.is_empty() {
            None
        } else {
            Some(hex::decode(&request.page_token).map_err(|e| Error::Limit {
                field: "page_token",
                reason: format!("not a page token: {e}"),
            })?)
        };
        let permit = self.node.stream_permit()?;
        let node = self.node.clone();
        let listed = tokio::task::spawn_blocking(move || {
            node.handle
                .list_events(&filter, cursor.as_deref(), page_size)
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
        .map_err(Error::from)?;
        let items = listed
            .into_iter()
            .map(|e| v1::ListEventsResponse {
                event: Some(chain_event(&e.envelope, e.position)),
                page_token: hex::encode(&e.cursor),
            })
            .collect();
        Ok(Response::new(stream_of(items, permit)))
    }

    async fn export_chain(
        &self,
        request: Request<v1::ExportChainRequest>,
    ) -> Result<Response<v1::ExportChainResponse>, Status> {
        let request = request.into_inner();
        self.node.consistent(&request.consistency_token).await?;
        let (token, chain) = self.chain(request.token).await?;
        let envelopes: Vec<baton_core::Envelope> = chain
            .events
            .into_iter()
            .map(|(envelope, _)| envelope)
            .collect();
        let bundle = baton_proto::bundle(&token, &envelopes);
        Ok(Response::new(v1::ExportChainResponse {
            bundle: Some(bundle),
        }))
    }
}
