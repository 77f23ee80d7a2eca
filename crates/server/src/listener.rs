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
//!
//! A Unix socket ([`bind_unix`]) serves local callers alongside: each
//! connection is the user id the kernel reports for the peer process
//! (`SO_PEERCRED`), which nobody on the other end can choose.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio_stream::StreamExt as _;
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
    Unix(UnixStream),
}

/// An accepted connection; its slot is free again when it is dropped.
#[derive(Debug)]
pub struct Connection {
    stream: Stream,
    peer: Peer,
    _slots: Slots,
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
            Stream::Unix(_) => panic!("a Unix-socket connection"),
        }
    }
}

/// How many connections each remote address holds, for
/// [`crate::Limits::connections_per_peer_max`].
#[derive(Debug, Default)]
struct PerPeer(std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>);

/// One connection counted against its address; uncounted when dropped.
#[derive(Debug)]
struct PeerSlot {
    counts: Arc<PerPeer>,
    address: std::net::IpAddr,
}

impl PerPeer {
    /// A slot for `address`, unless it holds `max` already.
    fn take(counts: &Arc<PerPeer>, address: std::net::IpAddr, max: usize) -> Option<PeerSlot> {
        let mut map = counts.0.lock().unwrap_or_else(|e| e.into_inner());
        let held = map.entry(address).or_insert(0);
        if *held >= max {
            return None;
        }
        *held += 1;
        Some(PeerSlot {
            counts: counts.clone(),
            address,
        })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut map = self.counts.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(held) = map.get_mut(&self.address) {
            *held -= 1;
            if *held == 0 {
                map.remove(&self.address);
            }
        }
    }
}

/// The slots an accepted connection holds; all free again when it closes.
#[derive(Debug)]
struct Slots {
    /// Of `connections_max`, or of `anonymous_connections_max` once the
    /// handshake found no principal.
    _pool: OwnedSemaphorePermit,
    /// None on the Unix socket (one address for everyone).
    _peer: Option<PeerSlot>,
}

/// The listener's connections, as a stream for the gRPC server; the accept
/// loop stops when the stream is dropped. With `tls`, only connections whose
/// handshake completed come out.
///
/// Bounds (`limits`): at most `connections_max` connections at once (past
/// it, new ones wait in the kernel's backlog); at most
/// `connections_per_peer_max` from one remote address (past it, closed at
/// once, so one address cannot take every slot); a TLS connection whose peer
/// names no principal moves to its own pool of `anonymous_connections_max`
/// (closed when that is full) with the shorter `anonymous_idle_max`, so
/// anonymous peers never hold the slots callers with a role need.
/// Without `tls`, every caller is admin when `plaintext_admin`, else nobody.
///
/// With `unix`, connections on that socket come out too, each named by its
/// peer's user id, in a pool of `connections_max` of their own.
pub fn incoming(
    listener: TcpListener,
    unix: Option<UnixListener>,
    limits: &crate::Limits,
    tls: Option<Tls>,
    plaintext_admin: bool,
) -> impl tokio_stream::Stream<Item = io::Result<Connection>> + use<> {
    let (send, receive) = mpsc::channel(16);
    if let Some(unix) = unix {
        tokio::spawn(accept_unix(unix, limits, send.clone()));
    }
    tokio::spawn(accept_tcp(listener, limits, tls, plaintext_admin, send));
    tokio_stream::wrappers::ReceiverStream::new(receive)
}

/// Accepts on the Unix socket until `send` closes.
fn accept_unix(
    listener: UnixListener,
    limits: &crate::Limits,
    send: mpsc::Sender<io::Result<Connection>>,
) -> impl std::future::Future<Output = ()> + use<> {
    let slots = Arc::new(Semaphore::new(limits.connections_max.max(1)));
    let idle_max = limits.connection_idle_max;
    async move {
        let listener = &listener;
        // The peer's credentials are the kernel's, taken when it connected:
        // no process can claim another user's.
        let mut accept = move || async move {
            let (stream, _) = listener.accept().await?;
            let uid = stream.peer_cred()?.uid();
            Ok((stream, uid))
        };
        while let Some((slot, (stream, uid))) =
            next_accepted(&slots, &send, "Unix-socket", &mut accept).await
        {
            let connection = Connection {
                stream: Stream::Unix(stream),
                peer: Peer {
                    remote: None,
                    identity: Arc::new(PeerIdentity::local(uid)),
                },
                _slots: Slots {
                    _pool: slot,
                    _peer: None,
                },
                idle: Box::pin(tokio::time::sleep(idle_max)),
                idle_max,
            };
            if send.send(Ok(connection)).await.is_err() {
                return;
            }
        }
    }
}

/// Accepts on the TCP listener until `send` closes.
fn accept_tcp(
    listener: TcpListener,
    limits: &crate::Limits,
    tls: Option<Tls>,
    plaintext_admin: bool,
    send: mpsc::Sender<io::Result<Connection>>,
) -> impl std::future::Future<Output = ()> + use<> {
    let slots = Arc::new(Semaphore::new(limits.connections_max.max(1)));
    let anonymous = Arc::new(Semaphore::new(limits.anonymous_connections_max));
    let per_peer = Arc::new(PerPeer::default());
    let (per_peer_max, idle_max, anonymous_idle_max) = (
        limits.connections_per_peer_max.max(1),
        limits.connection_idle_max,
        limits.anonymous_idle_max,
    );
    async move {
        let mut refused_logged = tokio::time::Instant::now() - Duration::from_secs(60);
        let listener = &listener;
        let mut accept = move || async move {
            let (stream, remote) = listener.accept().await?;
            stream.set_nodelay(true)?;
            Ok((stream, remote))
        };
        while let Some((slot, (stream, remote))) =
            next_accepted(&slots, &send, "TCP", &mut accept).await
        {
            let Some(peer_slot) = PerPeer::take(&per_peer, remote.ip(), per_peer_max) else {
                // Closed at once: its slot is free for the next accept.
                if refused_logged.elapsed() >= Duration::from_secs(10) {
                    refused_logged = tokio::time::Instant::now();
                    tracing::warn!(%remote, "connection closed: its address holds connections_per_peer_max connections already (logged at most every 10 s)");
                }
                continue;
            };
            let Some(tls) = &tls else {
                let connection = Connection {
                    stream: Stream::Plain(stream),
                    peer: Peer {
                        remote: Some(remote),
                        identity: Arc::new(PeerIdentity::plaintext(plaintext_admin)),
                    },
                    _slots: Slots {
                        _pool: slot,
                        _peer: Some(peer_slot),
                    },
                    idle: Box::pin(tokio::time::sleep(idle_max)),
                    idle_max,
                };
                if send.send(Ok(connection)).await.is_err() {
                    return;
                }
                continue;
            };
            let (tls, send, anonymous) = (tls.clone(), send.clone(), anonymous.clone());
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
                let named = matches!(
                    *identity.identity(),
                    crate::identity::Identity::Principal(_)
                );
                let (pool, idle_max) = if named {
                    (slot, idle_max)
                } else {
                    // No principal: its own small pool, or closed.
                    let Ok(anonymous) = anonymous.try_acquire_owned() else {
                        tracing::debug!(%remote, "connection closed: anonymous_connections_max anonymous connections are open");
                        return;
                    };
                    drop(slot);
                    (anonymous, idle_max.min(anonymous_idle_max))
                };
                let connection = Connection {
                    stream: Stream::Tls(Box::new(stream)),
                    peer: Peer {
                        remote: Some(remote),
                        identity: Arc::new(identity),
                    },
                    _slots: Slots {
                        _pool: pool,
                        _peer: Some(peer_slot),
                    },
                    idle: Box::pin(tokio::time::sleep(idle_max)),
                    idle_max,
                };
                let _ = send.send(Ok(connection)).await;
            });
        }
    }
}

/// Waits for one of `slots`, then for the next connection `accept` takes
/// (and prepares). An accept that fails (out of file descriptors, a
/// connection reset before accept: not the listener's end) is logged and
/// tried again after a pause. None once `send` is closed.
async fn next_accepted<T, F>(
    slots: &Arc<Semaphore>,
    send: &mpsc::Sender<io::Result<Connection>>,
    kind: &str,
    accept: &mut impl FnMut() -> F,
) -> Option<(OwnedSemaphorePermit, T)>
where
    F: std::future::Future<Output = io::Result<T>>,
{
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = send.closed() => return None,
        };
        let accepted = tokio::select! {
            accepted = accept() => accepted,
            () = send.closed() => return None,
        };
        match accepted {
            Ok(accepted) => return Some((slot, accepted)),
            Err(e) => {
                tracing::warn!(error = %e, "accepting a {kind} connection failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Binds a Unix socket at `path` that every local user may connect to
/// (what each may then call is up to the `uid` grants). A socket file left
/// by a node that is gone is replaced; one a live node answers on, or a
/// file that is not a socket, is an error.
pub fn bind_unix(path: &std::path::Path) -> io::Result<UnixListener> {
    use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{}: a process is listening on it already", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{}: exists and is not a socket", path.display()),
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
    Ok(listener)
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
            Stream::Unix(unix) => Pin::new(unix).poll_read(cx, buf),
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
            Stream::Unix(unix) => Pin::new(unix).poll_write(cx, buf),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.stream {
            Stream::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
            Stream::Unix(unix) => Pin::new(unix).poll_flush(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.stream {
            Stream::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
            Stream::Unix(unix) => Pin::new(unix).poll_shutdown(cx),
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
            Stream::Unix(unix) => Pin::new(unix).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.stream {
            Stream::Plain(tcp) => tcp.is_write_vectored(),
            Stream::Tls(tls) => tls.is_write_vectored(),
            Stream::Unix(unix) => unix.is_write_vectored(),
        }
    }
}

/// Longest a client may take to send a request's headers.
const HEADER_READ_MAX: Duration = Duration::from_secs(10);
/// How long open requests may finish when the node stops.
const DRAIN_MAX: Duration = Duration::from_secs(5);

/// Serves `router` over HTTP/1.1 on `listener` (with `tls` when given, under
/// the node's connection limits) until the node stops; each request carries
/// its connection's [`Peer`] (on plaintext, admin when `plaintext_admin`).
pub(crate) async fn serve_router(
    router: axum::Router,
    listener: TcpListener,
    tls: Option<crate::tls::Tls>,
    plaintext_admin: bool,
    limits: &crate::Limits,
    traces: bool,
    mut stopping: watch::Receiver<bool>,
) {
    let mut incoming = Box::pin(incoming(listener, None, limits, tls, plaintext_admin));
    loop {
        let connection = tokio::select! {
            next = incoming.next() => match next {
                Some(Ok(connection)) => connection,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "accepting an HTTP connection failed");
                    continue;
                }
                None => return,
            },
            _ = stopping.wait_for(|stop| *stop) => return,
        };
        let peer = connection.peer().clone();
        let router = router.clone();
        let mut stopping = stopping.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(
                move |mut request: http::Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(peer.clone());
                    let mut router = router.clone();
                    let span = if traces {
                        crate::trace::http_span(&request)
                    } else {
                        tracing::Span::none()
                    };
                    tracing::Instrument::instrument(
                        tower::Service::call(&mut router, request.map(axum::body::Body::new)),
                        span,
                    )
                },
            );
            let served = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_READ_MAX)
                .serve_connection(hyper_util::rt::TokioIo::new(connection), service);
            tokio::pin!(served);
            let ended = tokio::select! {
                result = served.as_mut() => Some(result),
                _ = stopping.wait_for(|stop| *stop) => None,
            };
            let result = match ended {
                Some(result) => result,
                None => {
                    // A request under way (a revocation being appended)
                    // finishes and is answered; then the connection closes.
                    served.as_mut().graceful_shutdown();
                    tokio::time::timeout(DRAIN_MAX, served)
                        .await
                        .unwrap_or(Ok(()))
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "HTTP connection ended");
            }
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn limits(connections_max: usize, idle_max: Duration) -> crate::Limits {
        crate::Limits {
            connections_max,
            connection_idle_max: idle_max,
            ..crate::Limits::default()
        }
    }

    #[tokio::test]
    async fn accepted_connections_do_not_wait_on_nagle() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut accepted = Box::pin(incoming(
            listener,
            None,
            &limits(4, Duration::from_secs(60)),
            None,
            true,
        ));
        let _client = TcpStream::connect(address).await.unwrap();
        let server_side = accepted.next().await.unwrap().unwrap();
        assert!(server_side.stream().nodelay().unwrap());
    }

    #[tokio::test]
    async fn connections_past_the_bound_wait_for_a_free_slot() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut accepted = Box::pin(incoming(
            listener,
            None,
            &limits(1, Duration::from_secs(60)),
            None,
            true,
        ));
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
        let mut accepted = Box::pin(incoming(
            listener,
            None,
            &limits(1, Duration::from_millis(200)),
            None,
            true,
        ));
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

    #[tokio::test]
    async fn one_address_holds_at_most_its_share_of_connections() {
        use tokio::io::AsyncReadExt as _;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let bounds = crate::Limits {
            connections_per_peer_max: 2,
            ..limits(16, Duration::from_secs(60))
        };
        let mut accepted = Box::pin(incoming(listener, None, &bounds, None, true));
        let from = |ip: [u8; 4]| async move {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind(SocketAddr::from((ip, 0))).unwrap();
            socket.connect(address).await.unwrap()
        };
        let _one = from([127, 0, 0, 2]).await;
        let _two = from([127, 0, 0, 2]).await;
        let first = accepted.next().await.unwrap().unwrap();
        let _second = accepted.next().await.unwrap().unwrap();
        // The third from that address is closed at once...
        let mut third = from([127, 0, 0, 2]).await;
        let mut buf = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(10), third.read(&mut buf))
            .await
            .expect("the third connection was kept");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        // ...while another address is served.
        let _other = from([127, 0, 0, 3]).await;
        let served = accepted.next().await.unwrap().unwrap();
        assert_eq!(served.peer().remote.unwrap().ip().to_string(), "127.0.0.3");
        // A closed connection gives its address a slot back.
        drop(first);
        let _again = from([127, 0, 0, 2]).await;
        let again = accepted.next().await.unwrap().unwrap();
        assert_eq!(again.peer().remote.unwrap().ip().to_string(), "127.0.0.2");
    }
}
