//! Accepting connections: at most `connections_max` open at once (past it,
//! new ones wait in the kernel's backlog until one closes), each closed once
//! its peer has sent nothing for `idle_max` (the server's HTTP/2 keepalive
//! pings make a live peer answer well within it, so only dead or silent
//! peers lose their slot), each with
//! `TCP_NODELAY` set — answers are small, and with Nagle's algorithm on a
//! response waits for the peer's delayed ACK (about 40 ms) before it leaves,
//! which is what clients other than Baton's own (Go gRPC, Envoy, grpcio) saw.
//!
//! With TLS, each connection's handshake runs in its own task (bounded by
//! [`HANDSHAKE_MAX`], and holding its slot), so a slow or silent client
//! cannot hold up the accept loop; the verified client certificate becomes
//! the connection's [`Peer`], which the gRPC server puts in every request.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tonic::transport::server::Connected;

use crate::tls::{PeerIdentity, Tls};

/// Longest a TLS handshake may take.
pub const HANDSHAKE_MAX: Duration = Duration::from_secs(10);

/// Who a connection is from: every request on it carries this.
#[derive(Debug, Clone)]
pub struct Peer {
    pub remote: Option<SocketAddr>,
    pub identity: Arc<PeerIdentity>,
}

#[derive(Debug)]
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// An accepted connection; its slot is free again when it is dropped.
#[derive(Debug)]
pub struct Connection {
    stream: Stream,
    peer: Peer,
    _slot: OwnedSemaphorePermit,
    /// Fires when the peer has sent nothing for `idle_max`.
    idle: Pin<Box<tokio::time::Sleep>>,
    idle_max: Duration,
}

impl Connection {
    pub fn peer(&self) -> &Peer {
        &self.peer
    }
}

#[cfg(test)]
impl Connection {
    fn stream(&self) -> &TcpStream {
        match &self.stream {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(tls) => tls.get_ref().0,
        }
    }
}

/// The listener's connections, as a stream for the gRPC server; the accept
/// loop stops when the stream is dropped. With `tls`, only connections whose
/// handshake completed come out.
pub fn incoming(
    listener: TcpListener,
    connections_max: usize,
    idle_max: Duration,
    tls: Option<Tls>,
) -> impl tokio_stream::Stream<Item = io::Result<Connection>> {
    let slots = Arc::new(Semaphore::new(connections_max.max(1)));
    let (send, receive) = mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let slot = tokio::select! {
                slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
                () = send.closed() => return,
            };
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = send.closed() => return,
            };
            let (stream, remote) = match accepted.and_then(|(stream, remote)| {
                stream.set_nodelay(true)?;
                Ok((stream, remote))
            }) {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, a connection reset before
                    // accept: not the listener's end. Pause, go on.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let Some(tls) = &tls else {
                let connection = Connection {
                    stream: Stream::Plain(stream),
                    peer: Peer {
                        remote: Some(remote),
                        identity: Arc::new(PeerIdentity::plaintext()),
                    },
                    _slot: slot,
                    idle: Box::pin(tokio::time::sleep(idle_max)),
                    idle_max,
                };
                if send.send(Ok(connection)).await.is_err() {
                    return;
                }
                continue;
            };
            let (tls, send) = (tls.clone(), send.clone());
            tokio::spawn(async move {
                let handshake = tokio::time::timeout(HANDSHAKE_MAX, tls.acceptor().accept(stream));
                let stream = match handshake.await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => {
                        tracing::debug!(%remote, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%remote, "TLS handshake took longer than {HANDSHAKE_MAX:?}");
                        return;
                    }
                };
                let identity = PeerIdentity::tls(tls, stream.get_ref().1.peer_certificates());
                let connection = Connection {
                    stream: Stream::Tls(Box::new(stream)),
                    peer: Peer {
                        remote: Some(remote),
                        identity: Arc::new(identity),
                    },
                    _slot: slot,
                    idle: Box::pin(tokio::time::sleep(idle_max)),
                    idle_max,
                };
                let _ = send.send(Ok(connection)).await;
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(receive)
}

impl Connected for Connection {
    type ConnectInfo = Peer;

    fn connect_info(&self) -> Peer {
        self.peer.clone()
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let read = match &mut this.stream {
            Stream::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        };
        match read {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    let again = tokio::time::Instant::now() + this.idle_max;
                    this.idle.as_mut().reset(again);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => match this.idle.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the peer sent nothing for {:?}", this.idle_max),
                ))),
                Poll::Pending => Poll::Pending,
            },
            failed => failed,
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.stream {
            Stream::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.stream {
            Stream::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.stream {
            Stream::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.stream {
            Stream::Plain(tcp) => Pin::new(tcp).poll_write_vectored(cx, bufs),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.stream {
            Stream::Plain(tcp) => tcp.is_write_vectored(),
            Stream::Tls(tls) => tls.is_write_vectored(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tokio_stream::StreamExt as _;

    #[tokio::test]
    async fn accepted_connections_do_not_wait_on_nagle() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut accepted = Box::pin(incoming(listener, 4, Duration::from_secs(60), None));
        let _client = TcpStream::connect(address).await.unwrap();
        let server_side = accepted.next().await.unwrap().unwrap();
        assert!(server_side.stream().nodelay().unwrap());
    }

    #[tokio::test]
    async fn connections_past_the_bound_wait_for_a_free_slot() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut accepted = Box::pin(incoming(listener, 1, Duration::from_secs(60), None));
        let _first_client = TcpStream::connect(address).await.unwrap();
        let first = accepted.next().await.unwrap().unwrap();
        let _second_client = TcpStream::connect(address).await.unwrap();
        let waiting = tokio::time::timeout(Duration::from_millis(200), accepted.next()).await;
        assert!(
            waiting.is_err(),
            "a second connection was served past the bound"
        );
        drop(first);
        let second = accepted.next().await.unwrap().unwrap();
        assert!(second.stream().nodelay().unwrap());
    }

    #[tokio::test]
    async fn a_silent_peer_loses_its_connection() {
        use tokio::io::AsyncReadExt as _;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut accepted = Box::pin(incoming(listener, 1, Duration::from_millis(200), None));
        let _silent = TcpStream::connect(address).await.unwrap();
        let mut connection = accepted.next().await.unwrap().unwrap();
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_secs(10), connection.read(&mut buf))
            .await
            .expect("the idle bound never fired");
        assert_eq!(read.unwrap_err().kind(), io::ErrorKind::TimedOut);
        // Its slot is free again for the next peer.
        drop(connection);
        let _next = TcpStream::connect(address).await.unwrap();
        accepted.next().await.unwrap().unwrap();
    }
}
