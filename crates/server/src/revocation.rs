//! `RevocationService` on the node: Check, CheckBatch, Introspect and the
//! Watch stream, each a call of `baton_node` between wire mappings.

use std::pin::Pin;
use std::sync::Arc;

use baton_log::EventLog;
use baton_node::Walk;
use baton_proto::v1;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::auth::Caller;
use crate::error::status;
use crate::{Node, wire};

pub struct Revocation<L> {
    node: Arc<Node<L>>,
}

impl<L> Revocation<L> {
    pub fn new(node: Arc<Node<L>>) -> Self {
        Revocation { node }
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<v1::WatchResponse, Status>> + Send>>;

#[tonic::async_trait]
impl<L: EventLog> v1::revocation_service_server::RevocationService for Revocation<L> {
    async fn check(
        &self,
        request: Request<v1::CheckRequest>,
    ) -> Result<Response<v1::CheckResponse>, Status> {
        let caller = request.extensions().get::<Caller>().cloned();
        let query = wire::check_query(request.into_inner(), None).map_err(status)?;
        let answer = self
            .node
            .check_for(caller.as_ref(), &query)
            .await
            .map_err(status)?;
        Ok(Response::new(wire::check_response(answer)))
    }

    async fn introspect(
        &self,
        request: Request<v1::IntrospectRequest>,
    ) -> Result<Response<v1::IntrospectResponse>, Status> {
        let caller = request.extensions().get::<Caller>().cloned();
        let query = wire::introspect_query(request.into_inner()).map_err(status)?;
        let answer = self
            .node
            .introspect(caller.as_ref(), query, Walk::Chain)
            .await
            .map_err(status)?;
        Ok(Response::new(wire::introspect_response(answer)))
    }

    async fn check_batch(
        &self,
        request: Request<v1::CheckBatchRequest>,
    ) -> Result<Response<v1::CheckBatchResponse>, Status> {
        let caller = request.extensions().get::<Caller>().cloned();
        let checks = request.into_inner().checks;
        let queries = checks
            .into_iter()
            .enumerate()
            .map(|(i, check)| wire::check_query(check, Some(&format!("checks[{i}]"))))
            .collect::<crate::Result<Vec<_>>>()
            .map_err(status)?;
        let answers = self
            .node
            .check_batch(caller, queries)
            .await
            .map_err(status)?;
        Ok(Response::new(v1::CheckBatchResponse {
            results: answers.into_iter().map(wire::check_response).collect(),
        }))
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: Request<v1::WatchRequest>,
    ) -> Result<Response<WatchStream>, Status> {
        let peer = request.extensions().get::<crate::listener::Peer>().cloned();
        let request = request.into_inner();
        let access = self.node.access.clone();
        let may_watch: baton_node::MayWatch =
            Box::new(move || crate::auth::may_watch(&access.get(), peer.as_ref()));
        let entries = self
            .node
            .watch(
                baton_node::WatchRequest {
                    resume_token: request.resume_token,
                    checkpoint_interval_ms: request.checkpoint_interval_ms,
                },
                may_watch,
            )
            .await
            .map_err(status)?;
        let stream = tokio_stream::StreamExt::map(
            tokio_stream::wrappers::ReceiverStream::new(entries),
            |entry| entry.map(wire::watch_response).map_err(status),
        );
        Ok(Response::new(Box::pin(stream)))
    }
}
