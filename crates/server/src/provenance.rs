//! `ProvenanceService`: chains with what verifies them, the blast radius of a
//! token, history, and self-contained bundles for offline verification.

use std::pin::Pin;
use std::sync::Arc;

use baton_log::EventLog;
use baton_proto::v1;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::error::status;
use crate::{Error, Node, Result, wire};

pub struct Provenance<L> {
    node: Arc<Node<L>>,
}

impl<L> Provenance<L> {
    pub fn new(node: Arc<Node<L>>) -> Self {
        Provenance { node }
    }
}

/// The request's `token`, or the refusal that names it.
fn token(token: Option<v1::TokenRef>) -> Result<baton_core::TokenRef, Status> {
    baton_proto::token_ref("token", token)
        .map_err(wire::invalid)
        .map_err(status)
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

#[tonic::async_trait]
impl<L: EventLog> v1::provenance_service_server::ProvenanceService for Provenance<L> {
    async fn get_chain(
        &self,
        request: Request<v1::GetChainRequest>,
    ) -> Result<Response<v1::GetChainResponse>, Status> {
        let request = request.into_inner();
        let token = token(request.token)?;
        let answer = self
            .node
            .chain_with_status(&token, &request.consistency_token)
            .await
            .map_err(status)?;
        let events = answer
            .chain
            .events
            .iter()
            .zip(&answer.chain.positions)
            .map(|((envelope, _), p)| baton_proto::chain_event(envelope, *p))
            .collect();
        Ok(Response::new(v1::GetChainResponse {
            events,
            status: Some(wire::check_response(answer.status)),
        }))
    }

    type GetDescendantsStream = Streamed<v1::GetDescendantsResponse>;

    async fn get_descendants(
        &self,
        request: Request<v1::GetDescendantsRequest>,
    ) -> Result<Response<Self::GetDescendantsStream>, Status> {
        let request = request.into_inner();
        let token = token(request.token)?;
        let found = self
            .node
            .descendants(token, request.limit, &request.consistency_token)
            .await
            .map_err(status)?;
        let items = found
            .items
            .into_iter()
            .map(|r| v1::GetDescendantsResponse {
                token: Some(v1::TokenSummary::from(&r)),
            })
            .collect();
        Ok(Response::new(stream_of(items, found.permit)))
    }

    type ListEventsStream = Streamed<v1::ListEventsResponse>;

    async fn list_events(
        &self,
        request: Request<v1::ListEventsRequest>,
    ) -> Result<Response<Self::ListEventsStream>, Status> {
        let request = request.into_inner();
        let filter = wire::event_filter(&request).map_err(status)?;
        let cursor = if request.page_token.is_empty() {
            None
        } else {
            Some(
                hex::decode(&request.page_token)
                    .map_err(|e| Error::Limit {
                        field: "page_token",
                        reason: format!("not a page token: {e}"),
                    })
                    .map_err(status)?,
            )
        };
        let listed = self
            .node
            .list_events(
                filter,
                cursor,
                request.page_size,
                &request.consistency_token,
            )
            .await
            .map_err(status)?;
        let items = listed
            .items
            .into_iter()
            .map(|e| v1::ListEventsResponse {
                event: Some(baton_proto::chain_event(&e.envelope, e.position)),
                page_token: hex::encode(&e.cursor),
            })
            .collect();
        Ok(Response::new(stream_of(items, listed.permit)))
    }

    async fn export_chain(
        &self,
        request: Request<v1::ExportChainRequest>,
    ) -> Result<Response<v1::ExportChainResponse>, Status> {
        let request = request.into_inner();
        let token = token(request.token)?;
        let envelopes = self
            .node
            .export_chain(&token, &request.consistency_token)
            .await
            .map_err(status)?;
        let bundle = baton_proto::bundle(&token, &envelopes);
        Ok(Response::new(v1::ExportChainResponse {
            bundle: Some(bundle),
        }))
    }
}
