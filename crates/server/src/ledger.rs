//! `LedgerService.Append` on the node: `baton_node`'s Append (the bound,
//! the events opened, claims, the rules, one log record, the apply) over
//! the wire's batch.

use std::sync::Arc;

use baton_log::EventLog;
use baton_proto::v1;
use tokio::time::Instant;
use tonic::{Request, Response, Status};

use crate::error::status;
use crate::{Node, Result, wire};

pub struct Ledger<L> {
    node: Arc<Node<L>>,
}

impl<L> Ledger<L> {
    pub fn new(node: Arc<Node<L>>) -> Self {
        Ledger { node }
    }
}

/// Appends a wire batch by `deadline` (the node opens its events once it
/// is within the batch bound).
pub(crate) async fn append<L: EventLog>(
    node: &Arc<Node<L>>,
    request: v1::AppendRequest,
    deadline: Instant,
) -> Result<v1::AppendResponse> {
    let batch = wire::Signed(request.events);
    let options = baton_node::AppendOptions {
        consistency_token: request.consistency_token,
        return_before_applied: request.return_before_applied,
    };
    Ok(wire::append_response(
        node.append(batch, options, deadline).await?,
    ))
}

#[tonic::async_trait]
impl<L: EventLog> v1::ledger_service_server::LedgerService for Ledger<L> {
    async fn append(
        &self,
        request: Request<v1::AppendRequest>,
    ) -> Result<Response<v1::AppendResponse>, Status> {
        let deadline = crate::deadline::answer_by(
            request.metadata(),
            self.node.limits.request_timeout,
            Instant::now(),
        );
        append(&self.node, request.into_inner(), deadline)
            .await
            .map(Response::new)
            .map_err(status)
    }
}
