//! The WebSocket handshake, completed by hand so that we choose what the socket keeps.
//!
//! `warp::ws()` builds its socket with tungstenite's defaults, which zero-fill a 128 KiB read
//! buffer per connection, and its `Ws` cannot change that. This module checks the upgrade
//! request itself, takes hyper's `OnUpgrade` from the request extensions (warp exposes them
//! through `warp::ext`), answers `101 Switching Protocols`, and hands the connection to our
//! own [framing](crate::websocket), which holds no buffer while the connection is idle.

use std::future::Future;
use std::sync::Arc;

use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use warp::http::{HeaderMap, StatusCode, header};
use warp::reply::Response;
use warp::{Filter, Rejection};

use crate::websocket::{self, Reading};

/// The socket a session gets.
///
/// Boxed: the socket is handed from the upgrade task to the session and into its state, and
/// each async frame it passes through would otherwise keep a copy of it for the whole
/// session.
pub type Socket = Box<websocket::Socket<TokioIo<Upgraded>>>;

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
    /// in a task of its own. The socket reads under `reading`'s limits and budget.
    pub fn accept<F, Fut>(self, reading: Arc<Reading>, session: F) -> Response
    where
        F: FnOnce(Socket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let on_upgrade = self.on_upgrade;
        let task = async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    let io = TokioIo::new(upgraded);
                    session(Box::new(websocket::Socket::with_reading(io, reading))).await;
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
