//! The WebSocket handshake, completed by hand so that we choose the socket's buffers.
//!
//! `warp::ws()` builds its socket with tungstenite's defaults, which zero-fill a 128 KiB read
//! buffer per connection, and its `Ws` cannot change that. This module checks the upgrade
//! request itself, takes hyper's `OnUpgrade` from the request extensions (warp exposes them
//! through `warp::ext`), answers `101 Switching Protocols`, and builds the
//! `WebSocketStream` with an explicit [`WebSocketConfig`]: a small read buffer, and message and
//! frame limits equal to the protocol's largest message.

use std::future::Future;

use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use warp::http::{HeaderMap, StatusCode, header};
use warp::reply::Response;
use warp::{Filter, Rejection};

/// The socket a session gets.
///
/// Boxed: the socket is handed from the upgrade task to the session and into its state, and
/// each async frame it passes through would otherwise keep a copy of its few hundred bytes
/// for the whole session.
pub type Socket = Box<WebSocketStream<TokioIo<Upgraded>>>;

/// Initial read buffer per socket. Most of our frames are small (candidates, chat, typing);
/// an SDP body of a few KiB takes a few reads. Memory per idle connection matters more than
/// the syscall count of a rare large frame.
const READ_BUFFER: usize = 1024;

/// The socket settings for a server whose largest accepted message is `max_message` bytes.
pub fn socket_config(max_message: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        // Write each message as soon as it is sent; we flush per message anyway.
        .write_buffer_size(0)
        // A client that stops reading makes writes back up here; cap it (beyond this the
        // write fails and the session ends) at a few of our largest messages.
        .max_write_buffer_size(4 * max_message)
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message))
}

/// A valid WebSocket upgrade request, ready to be accepted.
pub struct Upgrade {
    /// The client's `Sec-WebSocket-Key`, answered in `Sec-WebSocket-Accept`.
    key: String,
    /// hyper's handle to the connection once the 101 response has been written.
    on_upgrade: OnUpgrade,
}

/// Why a request to the WebSocket endpoint is not an upgrade we accept.
#[derive(Debug)]
pub struct NotAnUpgrade(pub &'static str);

impl warp::reject::Reject for NotAnUpgrade {}

/// Extracts an [`Upgrade`] from a `GET` with the WebSocket upgrade headers, or rejects with
/// [`NotAnUpgrade`].
pub fn websocket() -> impl Filter<Extract = (Upgrade,), Error = Rejection> + Clone {
    warp::get()
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<OnUpgrade>())
        .and_then(
            |headers: HeaderMap, on_upgrade: Option<OnUpgrade>| async move {
                check(&headers, on_upgrade).map_err(warp::reject::custom)
            },
        )
}

fn check(headers: &HeaderMap, on_upgrade: Option<OnUpgrade>) -> Result<Upgrade, NotAnUpgrade> {
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if !has_token(header::CONNECTION, "upgrade") || !has_token(header::UPGRADE, "websocket") {
        return Err(NotAnUpgrade("expected a WebSocket upgrade request"));
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(|v| v.as_bytes())
        != Some(b"13")
    {
        return Err(NotAnUpgrade("unsupported Sec-WebSocket-Version (need 13)"));
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .and_then(|v| v.to_str().ok())
        .filter(|k| k.len() == 24)
        .ok_or(NotAnUpgrade("missing or malformed Sec-WebSocket-Key"))?;
    let on_upgrade = on_upgrade.ok_or(NotAnUpgrade("this connection cannot be upgraded"))?;
    Ok(Upgrade {
        key: key.to_owned(),
        on_upgrade,
    })
}

impl Upgrade {
    /// Answers `101` and, once hyper hands over the connection, runs `session` on the socket
    /// in a task of its own.
    pub fn accept<F, Fut>(self, config: WebSocketConfig, session: F) -> Response
    where
        F: FnOnce(Socket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let on_upgrade = self.on_upgrade;
        let task = async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    let io = TokioIo::new(upgraded);
                    let socket = Box::new(
                        WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await,
                    );
                    session(socket).await;
                }
                Err(e) => tracing::debug!(error = %e, "websocket upgrade failed"),
            }
        };
        tokio::spawn(task);
        let mut res = Response::default();
        *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let h = res.headers_mut();
        h.insert(
            header::CONNECTION,
            header::HeaderValue::from_static("upgrade"),
        );
        h.insert(
            header::UPGRADE,
            header::HeaderValue::from_static("websocket"),
        );
        h.insert(
            header::SEC_WEBSOCKET_ACCEPT,
            derive_accept_key(self.key.as_bytes())
                .parse()
                .expect("base64 is a valid header value"),
        );
        res
    }
}
