//! The HTTP surface: every URL the server answers, as warp filters, and the one place that
//! turns rejections into responses.
//!
//! | route | what |
//! | --- | --- |
//! | `GET /` | landing page |
//! | `GET /chat` | call page |
//! | `GET /ws` | WebSocket upgrade into a [`session`](crate::session::run) |
//! | `GET /static/<file>` | compiled-in assets |
//! | `GET /healthz` | liveness and draining state, JSON |
//! | `GET /metrics` | Prometheus metrics |

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use askama::Template;
use std::net::{IpAddr, SocketAddr};

use tokio::sync::{broadcast, mpsc};
use warp::http::{HeaderMap, HeaderValue, StatusCode, header};
use warp::reply::{Reply, Response};
use warp::{Filter, Rejection};

use crate::admission::{Admission, Refusal};
use crate::lobby::Lobby;
use crate::moderation::ClientKey;
use crate::pages::{self, ChatPage, ErrorPage, IndexPage};
use crate::session::{self, Settings};
use crate::telemetry;
use crate::upgrade::{self, NotAnUpgrade, Upgrade};

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The matchmaking actor.
    pub lobby: Lobby,
    /// Settings every session gets.
    pub settings: Arc<Settings>,
    /// The largest message a WebSocket client may send, in bytes.
    pub max_message: usize,
    /// Origin check and connection caps for `/ws`.
    pub admission: Admission,
    /// Read the client's IP from this header (behind a trusted proxy) instead of the peer.
    pub client_ip_header: Option<String>,
    /// Salt of the client keys used for reports and bans (never the raw IP).
    pub client_salt: Arc<[u8]>,
    /// Tells sessions the server is shutting down.
    pub shutdown: broadcast::Sender<()>,
    /// Cloned into every session and dropped when it ends; the server waits until all
    /// clones are gone before it exits (warp does not wait for upgraded connections).
    pub done: mpsc::Sender<()>,
    /// Set once shutdown begins; `/healthz` reports it.
    pub draining: Arc<AtomicBool>,
}

fn with_state(state: AppState) -> impl Filter<Extract = (AppState,), Error = Infallible> + Clone {
    warp::any().map(move || state.clone())
}

/// Every route, with errors turned into proper responses.
pub fn routes(state: AppState) -> impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone {
    index(state.clone())
        .or(chat())
        .or(websocket(state.clone()))
        .or(assets())
        .or(healthz(state))
        .or(metrics())
        .recover(recover)
        .map(|reply| warp::reply::with_header(reply, "x-content-type-options", "nosniff"))
}

fn html(body: Result<String, askama::Error>) -> Response {
    let body = body.unwrap_or_else(|e| {
        tracing::error!(error = %e, "template failed");
        "internal error".to_string()
    });
    let mut res = Response::new(body.into());
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(self), microphone=(self)"),
    );
    res
}

fn index(state: AppState) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path::end()
        .and(warp::get())
        .and(with_state(state))
        .map(|state: AppState| {
            let online = state.lobby.online_count();
            html(
                IndexPage {
                    v: pages::version(),
                    online,
                }
                .render(),
            )
        })
}

fn chat() -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("chat").and(warp::get()).map(|| {
        html(
            ChatPage {
                v: pages::version(),
            }
            .render(),
        )
    })
}

fn websocket(state: AppState) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("ws")
        .and(upgrade::websocket())
        .and(warp::header::headers_cloned())
        .and(warp::addr::remote())
        .and(with_state(state))
        .map(
            |upgrade: Upgrade, headers: HeaderMap, peer: Option<SocketAddr>, state: AppState| {
                let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
                let ip = match &state.client_ip_header {
                    Some(name) => text(name).and_then(|v| v.trim().parse::<IpAddr>().ok()),
                    None => peer.map(|p| p.ip()),
                };
                let ticket = match state.admission.admit(text("origin"), text("host"), ip) {
                    Ok(ticket) => ticket,
                    Err(refusal) => return refuse(refusal),
                };
                let ctx = session::Context {
                    lobby: state.lobby.clone(),
                    settings: state.settings.clone(),
                    shutdown: state.shutdown.subscribe(),
                    client: ip.map(|ip| ClientKey::of(ip, &state.client_salt)),
                };
                let done = state.done.clone();
                upgrade.accept(state.max_message, move |socket| async move {
                    session::run(socket, ctx).await;
                    drop((ticket, done));
                })
            },
        )
}

fn refuse(refusal: Refusal) -> Response {
    let (status, title, message) = match refusal {
        Refusal::Origin => (
            StatusCode::FORBIDDEN,
            "Not allowed",
            "This page may not connect to the chat server.",
        ),
        Refusal::Full => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many people",
            "The server is full right now. Please try again in a minute.",
        ),
        Refusal::TooManyFromIp => (
            StatusCode::TOO_MANY_REQUESTS,
            "Too many connections",
            "Too many chats are open from your network. Close some tabs and try again.",
        ),
    };
    error_response(status, title, message)
}

fn assets() -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("static" / String)
        .and(warp::get())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::optional::<String>("if-none-match"))
        .and_then(
            |name: String, query: String, if_none_match: Option<String>| async move {
                let asset = pages::asset(&name).ok_or_else(warp::reject::not_found)?;
                let etag = format!("\"{}\"", pages::version());
                let versioned = query == format!("v={}", pages::version());
                let mut res = if if_none_match.as_deref() == Some(etag.as_str()) {
                    let mut res = Response::new(Default::default());
                    *res.status_mut() = StatusCode::NOT_MODIFIED;
                    res
                } else {
                    let mut res = Response::new(asset.body.into());
                    res.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static(asset.content_type),
                    );
                    res
                };
                let h = res.headers_mut();
                h.insert(header::ETAG, etag.parse().expect("hex is a valid header"));
                h.insert(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static(if versioned {
                        "public, max-age=31536000, immutable"
                    } else {
                        "no-cache"
                    }),
                );
                Ok::<_, Rejection>(res)
            },
        )
}

fn healthz(state: AppState) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("healthz")
        .and(warp::get())
        .and(with_state(state))
        .then(|state: AppState| async move {
            // A lobby (or shared-queue engine) that died would close every new session:
            // the instance must fail its health check and be replaced.
            let alive = state.lobby.alive();
            let stats = state.lobby.stats().await;
            let draining = state.draining.load(Ordering::Relaxed);
            let mut body = serde_json::json!({
                "status": if !alive { "failed" } else if draining { "draining" } else { "ok" },
                "online": stats.online,
                "waiting": stats.waiting,
                "rooms": stats.rooms,
                "matches": stats.matches,
                "queue": if stats.redis.is_some() { "shared" } else { "local" },
            });
            // Still 200 while Redis is away: this instance serves its own users, and a
            // restart would not bring Redis back.
            if let Some(reachable) = stats.redis {
                body["redis"] = (if reachable { "ok" } else { "unreachable" }).into();
            }
            let status = if draining || !alive {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::OK
            };
            warp::reply::with_status(warp::reply::json(&body), status)
        })
}

fn metrics() -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("metrics").and(warp::get()).map(|| {
        warp::reply::with_header(
            telemetry::metrics().render(),
            "content-type",
            "text/plain; version=0.0.4; charset=utf-8",
        )
    })
}

fn error_response(status: StatusCode, title: &str, message: &str) -> Response {
    let page = ErrorPage {
        v: pages::version(),
        status: status.as_u16(),
        title: title.to_string(),
        message: message.to_string(),
    };
    let mut res = html(page.render());
    *res.status_mut() = status;
    res
}

/// Turns any rejection into a styled error page with the right status.
async fn recover(rejection: Rejection) -> Result<Response, Infallible> {
    let (status, title, message) = if rejection.is_not_found() {
        (
            StatusCode::NOT_FOUND,
            "Page not found",
            "There is nothing here. The strangers are on the home page.".to_string(),
        )
    } else if let Some(NotAnUpgrade(why)) = rejection.find::<NotAnUpgrade>() {
        (
            StatusCode::BAD_REQUEST,
            "Not a WebSocket request",
            format!("This address speaks WebSocket only: {why}."),
        )
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed",
            "This address only answers GET.".to_string(),
        )
    } else {
        tracing::debug!(?rejection, "unhandled rejection");
        (
            StatusCode::BAD_REQUEST,
            "Bad request",
            "The server could not understand that request.".to_string(),
        )
    };
    Ok(error_response(status, title, &message))
}
