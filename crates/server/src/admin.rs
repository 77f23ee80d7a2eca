//! `AdminService`: where a node stands and what it quarantined, for
//! operators (`baton status`, `baton quarantine`). The node's data directory
//! is locked while it runs, so these answers come over its API, behind the
//! admin role. The node's `NodeState` is also what `/metrics` reports at each scrape.

use std::sync::Arc;

use baton_log::{EventLog, Position};
use baton_proto::v1;
use tonic::{Request, Response, Status};

use crate::error::status;
use crate::{Error, Node};

/// Bytes of records one `ListQuarantined` answer carries at most (one
/// record more when the first alone is larger); ids listed per record.
const QUARANTINE_PAGE_BYTES: usize = 1024 * 1024;
const QUARANTINE_EVENT_IDS_MAX: usize = 100;

/// Default and largest page of `ListQuarantined`.
const QUARANTINE_PAGE: u32 = 100;
const QUARANTINE_PAGE_MAX: u32 = 1000;

pub struct Admin<L> {
    node: Arc<Node<L>>,
}

impl<L> Admin<L> {
    pub fn new(node: Arc<Node<L>>) -> Self {
        Admin { node }
    }
}

/// Bytes per `CreateSnapshot` message.
const SNAPSHOT_CHUNK: usize = 1024 * 1024;

pub type SnapshotStream = std::pin::Pin<
    Box<dyn tokio_stream::Stream<Item = Result<v1::CreateSnapshotResponse, Status>> + Send>,
>;

/// One quarantined record as the API shows it: the ids of its events when
/// it decodes.
fn quarantined_record(q: baton_projector::Quarantined, with_value: bool) -> v1::QuarantinedRecord {
    let events = baton_proto::decode_record(&q.value).unwrap_or_default();
    let event_ids = events
        .iter()
        .take(QUARANTINE_EVENT_IDS_MAX)
        .map(|(envelope, _)| envelope.id().0.to_vec())
        .collect();
    v1::QuarantinedRecord {
        position: Some(q.position.into()),
        rule: q.rule,
        reason: q.reason,
        event_ids,
        event_count: events.len() as u32,
        value_bytes: q.value.len() as u64,
        value: if with_value { q.value } else { Vec::new() },
    }
}

#[tonic::async_trait]
impl<L: EventLog> v1::admin_service_server::AdminService for Admin<L> {
    type CreateSnapshotStream = SnapshotStream;

    async fn create_snapshot(
        &self,
        _request: Request<v1::CreateSnapshotRequest>,
    ) -> Result<Response<SnapshotStream>, Status> {
        // Taken now: a snapshot already being taken refuses this call.
        let slot = self.node.snapshot_slot(true).map_err(status)?;
        let node = self.node.clone();
        let (send, receive) = tokio::sync::mpsc::channel(4);
        // Everything happens in this task, which owns the slot: the call
        // answers at once (no request deadline cuts a long copy short), and
        // whether the caller stays or goes, the spool file is removed and
        // the next snapshot can start only once this copy has ended.
        tokio::spawn(async move {
            let snapshot = match node.snapshot(slot).await {
                Ok(snapshot) => snapshot,
                Err(failed) => {
                    let _ = send.send(Err(status(failed))).await;
                    return;
                }
            };
            let mut file = match tokio::fs::File::open(snapshot.spool.path()).await {
                Ok(file) => file,
                Err(e) => {
                    let failed = Error::Internal(format!("snapshot file: {e}"));
                    let _ = send.send(Err(status(failed))).await;
                    return;
                }
            };
            loop {
                let mut chunk = vec![0u8; SNAPSHOT_CHUNK];
                let read = match tokio::io::AsyncReadExt::read(&mut file, &mut chunk).await {
                    Ok(0) => return,
                    Ok(n) => n,
                    Err(e) => {
                        let failed = Error::Internal(format!("snapshot file: {e}"));
                        let _ = send.send(Err(status(failed))).await;
                        return;
                    }
                };
                chunk.truncate(read);
                let message = v1::CreateSnapshotResponse { chunk };
                if send.send(Ok(message)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(receive),
        )))
    }

    async fn status(
        &self,
        request: Request<v1::StatusRequest>,
    ) -> Result<Response<v1::StatusResponse>, Status> {
        let digest = request.into_inner().with_digest;
        let state = self.node.state(digest).await.map_err(status)?;
        Ok(Response::new(crate::wire::status_response::<L>(state)))
    }

    async fn list_quarantined(
        &self,
        request: Request<v1::ListQuarantinedRequest>,
    ) -> Result<Response<v1::ListQuarantinedResponse>, Status> {
        let request = request.into_inner();
        let page = match request.page_size {
            0 => QUARANTINE_PAGE,
            n if n <= QUARANTINE_PAGE_MAX => n,
            n => {
                return Err(status(Error::Limit {
                    field: "page_size",
                    reason: format!("{n} is more than {QUARANTINE_PAGE_MAX}"),
                }));
            }
        } as usize;
        let from = request.from.map_or(
            Position {
                partition: 0,
                offset: 0,
            },
            |p| Position {
                partition: p.partition,
                offset: p.offset,
            },
        );
        let node = self.node.clone();
        // One more than the page tells where the next page starts.
        let mut found =
            tokio::task::spawn_blocking(move || node.handle.quarantined_from(from, page + 1))
                .await
                .map_err(|e| status(Error::Internal(format!("quarantine task: {e}"))))?
                .map_err(|e| status(Error::from(e)))?;
        // A page ends at `page` records or at the byte budget, whichever
        // comes first; `next` is the first record left out.
        let wanted = found.len().min(page);
        let mut records = Vec::with_capacity(wanted);
        let mut bytes = 0usize;
        let mut next = None;
        for (i, q) in found.drain(..).enumerate() {
            let position = v1::LogPosition::from(q.position);
            if i == wanted {
                next = Some(position);
                break;
            }
            let record = quarantined_record(q, request.with_value);
            let size = prost::Message::encoded_len(&record);
            if !records.is_empty() && bytes + size > QUARANTINE_PAGE_BYTES {
                next = Some(position);
                break;
            }
            bytes += size;
            records.push(record);
        }
        Ok(Response::new(v1::ListQuarantinedResponse { records, next }))
    }
}
