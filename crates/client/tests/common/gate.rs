//! A gRPC hop in front of a node's RevocationService that can hold the
//! answer of the next Introspect until released. The node and its answer
//! are real; only the answer's delivery waits, so a test can drive what a
//! checker does while a miss is in flight (a revocation delivered on the
//! feed meanwhile, time passing).

#![allow(clippy::unwrap_used, dead_code)]

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use baton_proto::v1;
use baton_proto::v1::revocation_service_client::RevocationServiceClient;
use baton_proto::v1::revocation_service_server::{RevocationService, RevocationServiceServer};
use tokio::sync::oneshot;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

/// The next Introspect's hold: the test learns the node has answered, then
/// releases the answer.
struct Hold {
    answered: oneshot::Sender<()>,
    release: oneshot::Receiver<()>,
}

#[derive(Clone)]
struct Hop {
    node: RevocationServiceClient<Channel>,
    hold: Arc<Mutex<Option<Hold>>>,
}

type Stream = Pin<Box<dyn tokio_stream::Stream<Item = Result<v1::WatchResponse, Status>> + Send>>;

#[tonic::async_trait]
impl RevocationService for Hop {
    async fn check(
        &self,
        request: Request<v1::CheckRequest>,
    ) -> Result<Response<v1::CheckResponse>, Status> {
        self.node.clone().check(request.into_inner()).await
    }

    async fn check_batch(
        &self,
        request: Request<v1::CheckBatchRequest>,
    ) -> Result<Response<v1::CheckBatchResponse>, Status> {
        self.node.clone().check_batch(request.into_inner()).await
    }

    type WatchStream = Stream;

    async fn watch(&self, request: Request<v1::WatchRequest>) -> Result<Response<Stream>, Status> {
        let stream = self
            .node
            .clone()
            .watch(request.into_inner())
            .await?
            .into_inner();
        Ok(Response::new(Box::pin(stream)))
    }

    async fn introspect(
        &self,
        request: Request<v1::IntrospectRequest>,
    ) -> Result<Response<v1::IntrospectResponse>, Status> {
        let answer = self.node.clone().introspect(request.into_inner()).await;
        let hold = self.hold.lock().unwrap().take();
        if let Some(hold) = hold {
            let _ = hold.answered.send(());
            let _ = hold.release.await;
        }
        answer
    }
}

pub struct IntrospectGate {
    pub address: SocketAddr,
    hold: Arc<Mutex<Option<Hold>>>,
    server: tokio::task::JoinHandle<()>,
}

/// A held Introspect: `answered` resolves once the node has answered;
/// sending on `release` lets the answer go.
pub struct Held {
    pub answered: oneshot::Receiver<()>,
    pub release: oneshot::Sender<()>,
}

impl IntrospectGate {
    pub async fn start(node: SocketAddr) -> IntrospectGate {
        let channel = Channel::from_shared(format!("http://{node}"))
            .unwrap()
            .connect_lazy();
        let hold = Arc::new(Mutex::new(None));
        let hop = Hop {
            node: RevocationServiceClient::new(channel),
            hold: hold.clone(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(RevocationServiceServer::new(hop))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
                .await
                .unwrap();
        });
        IntrospectGate {
            address,
            hold,
            server,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Holds the next Introspect's answer.
    pub fn hold_next(&self) -> Held {
        let (answered, on_answer) = oneshot::channel();
        let (release, released) = oneshot::channel();
        *self.hold.lock().unwrap() = Some(Hold {
            answered,
            release: released,
        });
        Held {
            answered: on_answer,
            release,
        }
    }
}

impl Drop for IntrospectGate {
    fn drop(&mut self) {
        self.server.abort();
    }
}
