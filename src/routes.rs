//! The HTTP surface: every URL the server answers, as warp filters, and the one place that
//! turns rejections into responses.
//!
//! | route | what |
//! | --- | --- |
//! | `GET /` | landing page |
//! | `GET /chat` | call page (`?mode=text`: the text chat page, with no video) |
//! | `GET /?lang=<code>`, `/chat?lang=<code>` | the page in that language, remembered in a cookie |
//! | `GET /ws` | WebSocket upgrade into a [`session`](crate::session::run) |
//! | `GET /static/<file>` | compiled-in assets |
//! | `GET /healthz` | liveness and draining state, JSON; the live counts only to [`Private`] callers |
//! | `GET /metrics` | Prometheus metrics, to [`Private`] callers only |
//!
//! Every response carries the [security headers](SecurityHeaders): a Content-Security-Policy
//! that allows only this origin's scripts and styles and no framing, `nosniff`, no referrer,
//! camera and microphone for this origin only, and HSTS when the site is served over https.
//!
//! Pages, error pages included, are written in the request's language ([`crate::i18n`]):
//! the `lang` cookie, else `Accept-Language`. An error page is decided where the error is
//! (a [`Problem`]) and written once the language is known, at the end of the chain.

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use askama::Template;
use futures_util::FutureExt;
use tokio::sync::{broadcast, mpsc};
use warp::http::{HeaderMap, HeaderValue, StatusCode, header};
use warp::reply::{Reply, Response};
use warp::{Filter, Rejection};

use crate::admission::{self, Admission, Refusal};
use crate::http::{ConnTicket, PeerAddr};
use crate::i18n::{self, Catalog, Lang};
use crate::lobby::Lobby;
use crate::pages::{self, ChatPage, ErrorPage, Frame, IndexPage};
use crate::protocol::Mode;
use crate::session::{self, Settings};
use crate::telemetry;
use crate::upgrade::{self, NotAnUpgrade, Upgrade};

/// What the handlers share.
#[derive(Clone)]
pub(crate) struct AppState {
    /// The matchmaking actor.
    pub lobby: Lobby,
    /// Settings every session gets.
    pub settings: Arc<Settings>,
    /// How WebSocket messages may arrive (size, deadline) and the budget of bytes all
    /// unfinished ones may hold.
    pub reading: Arc<crate::websocket::Reading>,
    /// Origin check and connection caps for `/ws`.
    pub admission: Admission,
    /// Read the client's IP from this header (behind a trusted proxy) instead of the peer;
    /// a WebSocket request without a usable one is refused.
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
    /// The call page's "Blur until safe" threshold (`--unsafe-threshold`).
    pub unsafe_threshold: f32,
}

fn with_state(state: AppState) -> impl Filter<Extract = (AppState,), Error = Infallible> + Clone {
    warp::any().map(move || state.clone())
}

/// Who may read `/metrics` and the counts in `/healthz` on the public address.
#[derive(Clone, Debug)]
pub(crate) enum Private {
    /// Requests with `Authorization: Bearer <token>`.
    Token(Arc<str>),
    /// Nobody: they are served on a listen address of their own, or not at all.
    Nobody,
    /// Everyone: this is the private listen address.
    Everyone,
}

impl Private {
    /// Whether a request with this `Authorization` header may see private data.
    fn allows(&self, authorization: Option<&str>) -> bool {
        match (self, authorization.and_then(|a| a.strip_prefix("Bearer "))) {
            (Private::Token(token), Some(given)) => {
                // Compared in constant time: the token is a secret.
                given.len() == token.len()
                    && given
                        .bytes()
                        .zip(token.bytes())
                        .fold(0, |acc, (a, b)| acc | (a ^ b))
                        == 0
            }
            (Private::Everyone, _) => true,
            _ => false,
        }
    }
}

/// The headers every response carries.
#[derive(Clone, Debug)]
pub(crate) struct SecurityHeaders {
    /// The Content-Security-Policy.
    csp: HeaderValue,
    /// Whether to send `Strict-Transport-Security` (the site is served over https).
    hsts: bool,
}

impl SecurityHeaders {
    /// The headers for a site served at `public_url` (`None`: not known, as in development).
    ///
    /// The pages run only this origin's scripts and styles (no inline ones), show videos from
    /// `MediaStream`s (`srcObject`, no URL), solve their proof of work in a worker of this
    /// origin (`worker-src`), and open the WebSocket on their own host:
    /// `'self'` covers `ws:`/`wss:` there, and a known public URL is named explicitly for
    /// browsers that do not apply `'self'` to WebSockets.
    ///
    /// `'wasm-unsafe-eval'` lets the safety check's worker compile this origin's own
    /// WebAssembly (TensorFlow.js' WASM backend, `static/vendor/tfjs/`); it allows no string
    /// eval (`'unsafe-eval'` stays off). The worker is a same-origin script file, which
    /// `script-src 'self'` already covers (`worker-src` falls back to it), so no `blob:`.
    pub(crate) fn new(public_url: Option<&str>) -> SecurityHeaders {
        let mut connect = "'self'".to_string();
        let mut hsts = false;
        if let Some(url) = public_url {
            let (ws, rest) = match url.strip_prefix("https://") {
                Some(rest) => ("wss://", rest),
                None => ("ws://", url.trim_start_matches("http://")),
            };
            hsts = ws == "wss://";
            let host = rest.split('/').next().unwrap_or_default();
            if !host.is_empty() && host.bytes().all(|b| b.is_ascii_graphic() && b != b';') {
                connect = format!("'self' {ws}{host}");
            }
        }
        let csp = format!(
            "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
             img-src 'self' data:; \
             media-src 'self' blob: mediastream:; connect-src {connect}; worker-src 'self'; \
             object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
        );
        SecurityHeaders {
            csp: HeaderValue::from_str(&csp).expect("the policy is ASCII"),
            hsts,
        }
    }

    /// `reply` with the headers.
    fn secure(&self, reply: impl Reply) -> Response {
        let mut res = reply.into_response();
        let h = res.headers_mut();
        h.insert(header::CONTENT_SECURITY_POLICY, self.csp.clone());
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        h.insert(
            "permissions-policy",
            HeaderValue::from_static("camera=(self), microphone=(self)"),
        );
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        if self.hsts {
            h.insert(
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static("max-age=31536000"),
            );
        }
        res
    }
}

/// Every route of the public address, with errors turned into proper responses.
pub(crate) fn routes(
    state: AppState,
    private: Private,
    security: SecurityHeaders,
) -> impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone {
    index(state.clone())
        .or(chat(state.unsafe_threshold))
        .or(websocket(state.clone()))
        .or(assets())
        .or(healthz(state, private.clone()))
        .or(authorized(private)
            .and_then(|ok: bool| async move {
                if ok {
                    Ok(())
                } else {
                    Err(warp::reject::not_found())
                }
            })
            .untuple_one()
            .and(metrics()))
        .recover(recover)
        .and(language())
        .map(move |reply, lang| security.secure(write_problem(reply, lang)))
}

/// The routes of the private metrics address: `/metrics`, and `/healthz` with its counts.
pub(crate) fn private_routes(
    state: AppState,
) -> impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone {
    healthz(state, Private::Everyone)
        .or(metrics())
        .recover(recover)
        .and(language())
        .map(write_problem)
}

/// Whether the request may see private data.
fn authorized(private: Private) -> impl Filter<Extract = (bool,), Error = Infallible> + Clone {
    warp::header::optional::<String>("authorization")
        .or(warp::any().map(|| None))
        .unify()
        .map(move |auth: Option<String>| private.allows(auth.as_deref()))
}

/// A page in `lang`: HTML that is revalidated on every visit, and says that it depends on
/// the request's language.
fn html(body: Result<String, askama::Error>, lang: Lang) -> Response {
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
        header::CONTENT_LANGUAGE,
        HeaderValue::from_static(lang.code()),
    );
    h.insert(
        header::VARY,
        HeaderValue::from_static("Accept-Language, Cookie"),
    );
    res
}

/// The language of a request: its `lang` cookie, else its `Accept-Language`, else English.
/// Never rejects: an unreadable header counts as not sent.
fn language() -> impl Filter<Extract = (Lang,), Error = Infallible> + Clone {
    warp::header::headers_cloned().map(|headers: HeaderMap| language_of(&headers))
}

/// The language a request's headers ask for.
fn language_of(headers: &HeaderMap) -> Lang {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    i18n::negotiate(text(header::ACCEPT_LANGUAGE), text(header::COOKIE))
}

/// The language a page is written in, and whether the switcher just picked it.
#[derive(Clone, Copy, Debug)]
struct PageLanguage {
    /// The language to write the page in.
    lang: Lang,
    /// Picked with `?lang=` (the switcher): the response sets the cookie that remembers it.
    picked: bool,
}

/// A page's language: `?lang=<one of ours>` first (the switcher), else [`language`].
fn page_language() -> impl Filter<Extract = (PageLanguage,), Error = Infallible> + Clone {
    warp::query::raw()
        .or(warp::any().map(String::new))
        .unify()
        .and(language())
        .map(|query: String, asked: Lang| {
            let picked = query
                .split('&')
                .filter_map(|pair| pair.split_once('='))
                .find(|(name, _)| *name == "lang")
                .and_then(|(_, code)| Lang::ALL.into_iter().find(|l| l.code() == code));
            PageLanguage {
                lang: picked.unwrap_or(asked),
                picked: picked.is_some(),
            }
        })
}

/// A rendered page in the language `page` says, remembering a language the switcher picked
/// for a year.
fn page(body: Result<String, askama::Error>, page: PageLanguage) -> Response {
    let mut res = html(body, page.lang);
    if page.picked {
        let cookie = format!(
            "{}={}; Path=/; Max-Age=31536000; SameSite=Lax",
            i18n::COOKIE,
            page.lang.code()
        );
        res.headers_mut().insert(
            header::SET_COOKIE,
            HeaderValue::from_str(&cookie).expect("the cookie is ASCII"),
        );
    }
    res
}

/// The frame of a page in `lang` whose switcher reloads `here`.
fn frame(lang: Lang, here: &str) -> Frame<'_> {
    Frame {
        v: pages::version(),
        i18n: i18n::catalog(lang),
        here,
    }
}

fn index(state: AppState) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path::end()
        .and(warp::get())
        .and(with_state(state))
        .and(page_language())
        .map(|state: AppState, language: PageLanguage| {
            let count = state.lobby.online_count();
            let frame = frame(language.lang, "/");
            let (video, text) = (count.modes.get(Mode::Video), count.modes.get(Mode::Text));
            let in_modes = frame
                .i18n
                .format("landing.in_modes", &[("video", &video), ("text", &text)]);
            let body = IndexPage {
                frame,
                online: u64::try_from(count.total).unwrap_or(u64::MAX),
                in_modes,
            }
            .render();
            page(body, language)
        })
}

fn chat(unsafe_threshold: f32) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("chat")
        .and(warp::get())
        .and(page_language())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .map(move |language: PageLanguage, query: String| {
            // Any other mode, or none, is the video page (the client says so to the server).
            let text = query.split('&').any(|pair| pair == "mode=text");
            let body = ChatPage {
                frame: frame(language.lang, "/chat"),
                text,
                unsafe_threshold,
            }
            .render();
            page(body, language)
        })
}

fn websocket(state: AppState) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("ws")
        .and(upgrade::websocket())
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<PeerAddr>())
        .and(warp::ext::optional::<ConnTicket>())
        .and(with_state(state))
        .map(
            |upgrade: Upgrade,
             headers: HeaderMap,
             peer: Option<PeerAddr>,
             slot: Option<ConnTicket>,
             state: AppState| {
                let ip = match client_ip(&state, &headers, peer) {
                    Ok(ip) => ip,
                    Err(refusal) => return refuse(refusal),
                };
                let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
                let held = slot.as_ref().and_then(ConnTicket::take);
                let ticket = match state
                    .admission
                    .upgrade(held, text("origin"), text("host"), ip)
                {
                    Ok(ticket) => ticket,
                    Err((refusal, held)) => {
                        if let Some(slot) = &slot {
                            slot.put_back(held);
                        }
                        return refuse(refusal);
                    }
                };
                let ctx = session::Context {
                    lobby: state.lobby.clone(),
                    settings: state.settings.clone(),
                    shutdown: state.shutdown.subscribe(),
                    client: ip.map(|ip| crate::admission::client_key(ip, &state.client_salt)),
                };
                let done = state.done.clone();
                // A map, not an `async` block: a block would keep `ctx` a second time
                // beside the session's future, in every connected user's task.
                upgrade.accept(state.reading.clone(), move |socket| {
                    session::run(socket, ctx).map(move |_| drop((ticket, done)))
                })
            },
        )
}

/// Who the client is: the TCP peer, or behind a trusted proxy the address its header names
/// (refused when it names none).
fn client_ip(
    state: &AppState,
    headers: &HeaderMap,
    peer: Option<PeerAddr>,
) -> Result<Option<IpAddr>, Refusal> {
    let Some(name) = &state.client_ip_header else {
        return Ok(peer.map(|PeerAddr(p)| p.ip()));
    };
    // Several lines of the header: the last one is the proxy's.
    let value = headers.get_all(name.as_str()).iter().next_back();
    value
        .and_then(|v| v.to_str().ok())
        .and_then(admission::ip_from_header)
        .map(Some)
        .ok_or(Refusal::NoClientIp)
}

/// The error page of a connection refused before routing, in the language its request
/// `headers` ask for.
pub(crate) fn refusal(refusal: Refusal, headers: &HeaderMap) -> Response {
    error_page(&Problem::Refused(refusal), language_of(headers))
}

/// An upgrade that was refused: its error page, written at the end of the chain.
fn refuse(refusal: Refusal) -> Response {
    Problem::Refused(refusal).into_response()
}

fn assets() -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    // `/static/<file>`, and `/static/vendor/<library>/…` for the vendored libraries; a name is
    // looked up among the compiled-in assets as it is, so nothing else can be reached.
    warp::path("static")
        .and(warp::path::tail())
        .map(|tail: warp::path::Tail| tail.as_str().to_string())
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

fn healthz(
    state: AppState,
    private: Private,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("healthz")
        .and(warp::get())
        .and(with_state(state))
        .and(authorized(private))
        .then(|state: AppState, private: bool| async move {
            // A lobby (or shared-queue engine) that died would close every new session:
            // the instance must fail its health check and be replaced.
            let alive = state.lobby.alive();
            let stats = state.lobby.stats().await;
            let draining = state.draining.load(Ordering::Relaxed);
            let mut body = serde_json::json!({
                "status": if !alive { "failed" } else if draining { "draining" } else { "ok" },
                "queue": if stats.redis.is_some() { "shared" } else { "local" },
            });
            // The live counts tell an attacker how well an attack works: private only.
            if private {
                body["online"] = stats.online.into();
                body["waiting"] = stats.waiting.into();
                body["rooms"] = stats.rooms.into();
                body["matches"] = stats.matches.into();
            }
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

/// What went wrong with a request, for its error page.
#[derive(Clone, Debug)]
enum Problem {
    /// No such page or file.
    NotFound,
    /// `/ws` without a WebSocket handshake, and what was missing.
    NotAnUpgrade(String),
    /// A method other than GET.
    MethodNotAllowed,
    /// Anything else the routes could not make sense of.
    BadRequest,
    /// An upgrade or connection refused by admission.
    Refused(Refusal),
}

impl Problem {
    /// A response that is still to be written: the end of the chain, which knows the
    /// request's language, turns it into the error page ([`write_problem`]).
    fn into_response(self) -> Response {
        let mut res = Response::new(Default::default());
        res.extensions_mut().insert(self);
        res
    }

    /// Its status, title and explanation in the words of `c`.
    fn text(&self, c: &Catalog) -> (StatusCode, String, String) {
        let (status, title, message) = match self {
            Problem::NotFound => (
                StatusCode::NOT_FOUND,
                c.t("error.not_found_title"),
                c.t("error.not_found"),
            ),
            Problem::NotAnUpgrade(why) => {
                let title = c.t("error.not_websocket_title").to_string();
                let message = c.format("error.not_websocket", &[("why", why)]);
                return (StatusCode::BAD_REQUEST, title, message);
            }
            Problem::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                c.t("error.method_title"),
                c.t("error.method"),
            ),
            Problem::BadRequest => (
                StatusCode::BAD_REQUEST,
                c.t("error.bad_request_title"),
                c.t("error.bad_request"),
            ),
            Problem::Refused(refusal) => match refusal {
                Refusal::Origin => (
                    StatusCode::FORBIDDEN,
                    c.t("error.origin_title"),
                    c.t("error.origin"),
                ),
                Refusal::Full => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    c.t("error.full_title"),
                    c.t("error.full"),
                ),
                Refusal::TooManyFromIp => (
                    StatusCode::TOO_MANY_REQUESTS,
                    c.t("error.per_ip_title"),
                    c.t("error.per_ip"),
                ),
                Refusal::NoClientIp => (
                    StatusCode::BAD_REQUEST,
                    c.t("error.no_client_ip_title"),
                    c.t("error.no_client_ip"),
                ),
            },
        };
        (status, title.to_string(), message.to_string())
    }
}

/// The styled error page of `problem` in `lang`, with its status.
fn error_page(problem: &Problem, lang: Lang) -> Response {
    let (status, title, message) = problem.text(i18n::catalog(lang));
    let page = ErrorPage {
        frame: frame(lang, "/"),
        status: status.as_u16(),
        title,
        message,
    };
    let mut res = html(page.render(), lang);
    *res.status_mut() = status;
    res
}

/// `reply`, with its error page written in `lang` if it is a [`Problem`] still to write.
fn write_problem(reply: impl Reply, lang: Lang) -> Response {
    let res = reply.into_response();
    match res.extensions().get::<Problem>() {
        Some(problem) => error_page(problem, lang),
        None => res,
    }
}

/// Turns any rejection into the error page of its [`Problem`].
async fn recover(rejection: Rejection) -> Result<Response, Infallible> {
    let problem = if rejection.is_not_found() {
        Problem::NotFound
    } else if let Some(NotAnUpgrade(why)) = rejection.find::<NotAnUpgrade>() {
        Problem::NotAnUpgrade(why.to_string())
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        Problem::MethodNotAllowed
    } else {
        tracing::debug!(?rejection, "unhandled rejection");
        Problem::BadRequest
    };
    Ok(problem.into_response())
}
