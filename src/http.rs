//! The HTTP/1.1 server loop: accepting connections, admitting each before hyper reads a byte
//! of it, and the limits a connection lives under until it upgrades to a WebSocket.
//!
//! warp's own `serve` builds hyper without a timer (so hyper's header-read timeout never
//! fires), lets a request head grow to hyper's default buffer of ~400 KiB, accepts h2c, and
//! counts no connection until it upgrades. Here every accepted connection:
//!
//! - takes a place in the server-wide cap and (when the TCP peer is the client) in its
//!   network's per-IP cap at once, and keeps it through the upgrade: the WebSocket route
//!   takes the [`ConnTicket`] into its session. A connection refused here gets its error
//!   page and is closed;
//! - must send a whole request head within [`HttpLimits::header_timeout`] of the moment the
//!   server is ready for it (hyper's timer also runs while a kept-alive connection waits for
//!   its next request), of at most [`HttpLimits::max_header_bytes`] (431 past it);
//! - is closed once it has had no request in progress and sent nothing for
//!   [`HttpLimits::idle_timeout`];
//! - speaks HTTP/1.1 only (an HTTP/2 preface is refused).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::{Service, service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::Instant;
use warp::Filter;
use warp::http::HeaderMap;
use warp::reply::{Reply, Response};

use crate::admission::{Admission, Refusal, Ticket};

/// What a connection that has not upgraded may take.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HttpLimits {
    /// A request head must be complete this long after the server is ready to read it
    /// (slow-header attacks; also bounds a kept-alive connection's wait for its next request).
    pub header_timeout: Duration,
    /// A connection with no request in progress that has sent nothing for this long is
    /// closed (idle TCP connections, kept-alive connections nobody uses).
    pub idle_timeout: Duration,
    /// The largest request head (request line and headers), in bytes; hyper answers 431
    /// past it and never buffers more than a little above it.
    pub max_header_bytes: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(5),
            max_header_bytes: 8 * 1024,
        }
    }
}

/// hyper's smallest allowed read buffer; a head limit below it still buffers this much.
const MIN_BUFFER: usize = 8 * 1024;

/// Refused connections answered with an error page at once; past this many, a refused
/// connection is closed without an answer (a flood of them must not cost more).
const REFUSALS_ANSWERED: usize = 64;

/// The TCP peer of the connection a request came on, in the request's extensions (warp's
/// `addr::remote` only knows connections warp accepted itself).
#[derive(Clone, Copy, Debug)]
pub(crate) struct PeerAddr(pub SocketAddr);

/// The connection's place in the caps, in each request's extensions: the WebSocket route
/// takes it into the session, so one connection counts once, before and after upgrading.
#[derive(Clone, Debug)]
pub(crate) struct ConnTicket(Arc<Mutex<Option<Ticket>>>);

impl ConnTicket {
    /// Takes the connection's ticket (a WebSocket upgrade does, once).
    pub(crate) fn take(&self) -> Option<Ticket> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    /// Puts a ticket back (an upgrade that was refused after all).
    pub(crate) fn put_back(&self, ticket: Option<Ticket>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = ticket;
    }
}

/// What the serving loop needs besides the routes.
pub(crate) struct Server {
    /// Caps every accepted connection is counted in.
    pub admission: Admission,
    /// Whether the TCP peer is the client (no `--client-ip-header`): only then is a
    /// connection counted per IP before its request says who the client is.
    pub peer_is_client: bool,
    /// The limits of connections that have not upgraded.
    pub limits: HttpLimits,
    /// How a connection refused at accept is answered (the site's error page, in the
    /// language its request's headers ask for: the routes render it, and this loop knows no
    /// page).
    pub refuse: fn(Refusal, &HeaderMap) -> Response,
}

/// Serves `filter` on `listener` until `shutdown` completes, then closes the listener, asks
/// every connection still speaking HTTP to finish its request, and returns once they have
/// (upgraded connections are the sessions' own).
pub(crate) async fn serve<F>(
    listener: TcpListener,
    filter: F,
    server: Server,
    shutdown: impl Future<Output = ()>,
) where
    F: Filter + Clone + Send + Sync + 'static,
    F::Extract: Reply,
{
    let service = TowerToHyperService::new(warp::service(filter));
    let (stop_tx, stop_rx) = watch::channel(false);
    let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
    let refusals = Arc::new(Semaphore::new(REFUSALS_ANSWERED));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let ip = server.peer_is_client.then(|| peer.ip());
        let stop = stop_rx.clone();
        let alive = alive_tx.clone();
        match server.admission.connect(ip) {
            Ok(ticket) => {
                let service = service.clone();
                let limits = server.limits;
                tokio::spawn(async move {
                    serve_connection(stream, peer, ticket, service, limits, stop).await;
                    drop(alive);
                });
            }
            Err(refusal) => {
                let Ok(place) = refusals.clone().try_acquire_owned() else {
                    continue; // dropped: too many refusals at once to answer each
                };
                let (limits, refuse) = (server.limits, server.refuse);
                tokio::spawn(async move {
                    answer_refusal(stream, refusal, refuse, limits).await;
                    drop((place, alive));
                });
            }
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(alive_tx);
    // Every connection task holds a clone of `alive_tx`: the channel closes once all ended.
    let _ = alive_rx.recv().await;
}

/// Runs hyper on one admitted connection until it ends or upgrades.
async fn serve_connection<S>(
    stream: TcpStream,
    peer: SocketAddr,
    ticket: Ticket,
    routes: S,
    limits: HttpLimits,
    mut stop: watch::Receiver<bool>,
) where
    S: Service<hyper::Request<Incoming>, Response = warp::reply::Response> + Clone + Send,
    S: 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let activity = Arc::new(Activity::new());
    let slot = ConnTicket(Arc::new(Mutex::new(Some(ticket))));
    let service = {
        let activity = activity.clone();
        service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(PeerAddr(peer));
            req.extensions_mut().insert(slot.clone());
            let busy = Busy::enter(activity.clone());
            let response = routes.call(req);
            async move {
                let response = response.await;
                drop(busy);
                response
            }
        })
    };
    let io = TokioIo::new(Watched {
        io: stream,
        activity: activity.clone(),
    });
    let conn = builder(limits)
        .serve_connection(io, service)
        .with_upgrades();
    let mut conn = std::pin::pin!(conn);
    let mut asked_to_end = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "http connection ended with an error");
                }
                return;
            }
            () = activity.idle_for(limits.idle_timeout), if !asked_to_end => {
                asked_to_end = true;
                conn.as_mut().graceful_shutdown();
            }
            Ok(()) = stop.changed(), if !asked_to_end => {
                asked_to_end = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// hyper's HTTP/1.1 connection settings for `limits`.
fn builder(limits: HttpLimits) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_header_size(limits.max_header_bytes)
        // The read buffer holds one head at most (plus what follows it in the same read).
        .max_buf_size(limits.max_header_bytes.max(MIN_BUFFER))
        .keep_alive(true);
    builder
}

/// Answers a connection refused at accept with its error page and closes it; the same
/// timeouts hold it as any other connection.
async fn answer_refusal(
    stream: TcpStream,
    refusal: Refusal,
    refuse: fn(Refusal, &HeaderMap) -> Response,
    limits: HttpLimits,
) {
    let service = service_fn(move |req: hyper::Request<Incoming>| async move {
        Ok::<_, std::convert::Infallible>(refuse(refusal, req.headers()))
    });
    let mut builder = builder(limits);
    builder.keep_alive(false);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    if tokio::time::timeout(limits.header_timeout + limits.idle_timeout, conn)
        .await
        .is_err()
    {
        tracing::debug!("a refused connection sent no request in time");
    }
}

/// Waits after an `accept` error: out of file descriptors, retrying at once would spin.
async fn accept_failed(e: io::Error) {
    use io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed; pausing for a moment");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// When a connection last showed life, and whether a request is being answered.
struct Activity {
    /// Where `last` counts from.
    origin: Instant,
    /// Milliseconds after `origin` of the last byte read or response finished.
    last: AtomicU64,
    /// Requests being answered now: a connection waiting on its own response is not idle.
    busy: AtomicUsize,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            origin: Instant::now(),
            last: AtomicU64::new(0),
            busy: AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        let ms = self.origin.elapsed().as_millis() as u64;
        self.last.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.origin + Duration::from_millis(self.last.load(Ordering::Relaxed))
    }

    /// Completes once nothing has been read and no request answered for `limit`.
    async fn idle_for(&self, limit: Duration) {
        loop {
            let deadline = self.last() + limit;
            tokio::time::sleep_until(deadline).await;
            if self.busy.load(Ordering::Relaxed) > 0 {
                self.touch();
            } else if self.last() + limit <= Instant::now() {
                return;
            }
        }
    }
}

/// A request being answered; counts in [`Activity::busy`] until dropped.
struct Busy(Arc<Activity>);

impl Busy {
    fn enter(activity: Arc<Activity>) -> Busy {
        activity.busy.fetch_add(1, Ordering::Relaxed);
        Busy(activity)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The TCP stream, noting every read in the connection's [`Activity`].
struct Watched {
    /// The accepted connection.
    io: TcpStream,
    /// Where reads are noted, for the idle timeout.
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
