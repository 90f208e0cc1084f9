//! Wiring and shutdown: builds the lobby and the routes, serves them on a listener, and on
//! the shutdown signal says goodbye to every session before returning.
//!
//! Shutdown follows mini-redis: a broadcast channel tells every session to finish, and each
//! session holds a clone of an mpsc sender that it drops when done; the receiver sees the
//! channel close once every session has ended. warp's own graceful shutdown covers plain HTTP
//! only; upgraded connections are ours to track.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{Semaphore, broadcast, mpsc, oneshot, watch};

use crate::admission::{Admission, IpLimiter, OriginPolicy};
use crate::config::Config;
use crate::http::{HttpLimits, Server, serve};
use crate::limits::Rates;
use crate::lobby::{self, Core, Lobby};
use crate::matchmaker::Policy;
use crate::moderation::{BanRule, Moderation, ReportLog, ReportStore};
use crate::pow::{Difficulty, PowPolicy};
use crate::protocol::MAX_MESSAGE_BYTES;
use crate::routes::{self, AppState, Private, SecurityHeaders};
use crate::session::Settings;
use crate::shared::{Inbox, SharedConfig, SharedQueue};
use crate::telemetry;

/// Listen backlog. warp's own `bind` uses 128, which overflows when hundreds of browsers
/// reconnect at once (after a deploy, say); the kernel caps this at `net.core.somaxconn`.
const BACKLOG: u32 = 4096;

/// The kernel send buffer of every connection (Linux doubles it for its own bookkeeping):
/// room for a whole largest message and then some, so a reader's queue is bounded by
/// the session's own 64 KiB, not by the kernel's.
const SEND_BUFFER: u32 = 64 * 1024;

/// Binds `addr` with a backlog large enough for bursts of handshakes.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    // Accepted sockets inherit this: a client that stops reading may hold this much of our
    // kernel memory, not the up to 4 MiB the kernel's autotuning would grow it to (with a
    // few hundred such clients, more than a small VM has). Signaling needs far less.
    socket.set_send_buffer_size(SEND_BUFFER)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Serves on `listener` until `shutdown` completes, then drains sessions (at most
/// `config.drain`) and returns.
pub async fn run(listener: TcpListener, config: Config, shutdown: impl Future) {
    let Started {
        lobby,
        client_salt,
        engine,
    } = start_lobby(&config).await;
    if let Some((shared, inbox)) = engine
        && let Err(e) = crate::shared::start(shared, inbox)
    {
        // Validated at start-up; only a URL the client library rejects gets here.
        tracing::error!(error = %e, "cannot use the shared queue: this instance matches nobody");
    }
    let (notify_shutdown, _) = broadcast::channel(1);
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let draining = Arc::new(AtomicBool::new(false));
    let state = AppState {
        lobby,
        settings: Arc::new(settings(&config)),
        reading: crate::websocket::Reading::new(
            MAX_MESSAGE_BYTES,
            config.message_deadline,
            crate::protocol::READ_BUDGET_BYTES,
        ),
        admission: Admission {
            origins: OriginPolicy::from_list(&config.allowed_origins),
            permits: Arc::new(Semaphore::new(config.max_connections)),
            per_ip: IpLimiter::new(config.max_per_ip),
            pending_per_ip: IpLimiter::new(config.max_pending_per_ip),
        },
        client_ip_header: config.client_ip_header.clone(),
        client_salt: client_salt.into(),
        unsafe_threshold: config.unsafe_threshold,
        shutdown: notify_shutdown.clone(),
        done: done_tx,
        draining: draining.clone(),
    };

    // Histogram samples are folded into buckets on scrape; fold them on a timer as well so
    // an unscraped server does not accumulate them.
    let upkeep = tokio::spawn(async {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            every.tick().await;
            telemetry::metrics().upkeep();
        }
    });

    let (stop_http, http_stopped) = oneshot::channel::<()>();
    let http = tokio::spawn(serve_app(listener, &config, state, async {
        let _ = http_stopped.await;
    }));

    shutdown.await;
    tracing::info!("shutting down: closing the listener and saying goodbye to every session");
    draining.store(true, Ordering::Relaxed);
    let _ = stop_http.send(());
    let _ = notify_shutdown.send(());

    let deadline = tokio::time::Instant::now() + config.drain;
    // The routes hold the last handle to the state; once warp has stopped they are dropped,
    // and then only the sessions' clones of `done` remain.
    if tokio::time::timeout_at(deadline, http).await.is_err() {
        tracing::warn!("HTTP connections still open at the drain deadline");
    }
    if tokio::time::timeout_at(deadline, done_rx.recv())
        .await
        .is_err()
    {
        tracing::warn!("sessions still open at the drain deadline");
    }
    upkeep.abort();
}

/// The shared queue's settings, when `--redis-url` is given.
fn shared_config(config: &Config) -> Option<SharedConfig> {
    let url = config.redis_url.as_ref()?;
    Some(SharedConfig {
        url: url.0.clone(),
        prefix: config.redis_prefix.clone(),
        ttl: config.instance_ttl,
        beat: (config.instance_ttl / 3).max(std::time::Duration::from_millis(10)),
        timeout: config.redis_timeout,
        policy: policy(config),
    })
}

fn policy(config: &Config) -> Policy {
    Policy {
        fallback_after: config.fallback_after,
        cooldown: config.rematch_cooldown,
    }
}

/// Per-connection settings every session shares.
fn settings(config: &Config) -> Settings {
    Settings {
        ice: config.ice(),
        ping_interval: config.ping_interval,
        write_timeout: config.write_timeout,
        // Room for a whole allowed burst from the partner plus the lobby's few events, so
        // only a client that really stops draining fills it.
        queue: config.relay_burst as usize + 64,
        rates: Rates::new(
            config.relay_rate,
            config.relay_burst,
            config.join_rate,
            config.join_burst,
        ),
        difficulty: Arc::new(std::sync::Mutex::new(Difficulty::new(
            PowPolicy::new(config.pow_bits, config.pow_max_bits),
            std::time::Instant::now(),
        ))),
    }
}

/// What [`start_lobby`] makes.
struct Started {
    /// The running lobby, its reports replayed.
    lobby: Lobby,
    /// The salt of client keys (from the report store, so keys outlive restarts).
    client_salt: Vec<u8>,
    /// With `--redis-url`: the engine to start, and the inbox it runs on.
    engine: Option<(SharedConfig, Inbox)>,
}

/// The lobby, with its reports loaded, and (with `--redis-url`) the engine it needs.
async fn start_lobby(config: &Config) -> Started {
    // A fixed seed makes one process reproducible; instances sharing a queue draw room ids
    // each from its own generator, so theirs must differ whatever the seed.
    let rng = match config.seed {
        Some(seed) if config.redis_url.is_none() => StdRng::seed_from_u64(seed),
        _ => rand::make_rng(),
    };
    let mut moderation = Moderation::new(BanRule {
        reporters: config.ban_reporters as usize,
        window: config.ban_window,
        ban_for: config.ban_for,
    });
    let now = lobby::now();
    let Some(shared) = shared_config(config) else {
        let (client_salt, log) = local_reports(config, &mut moderation);
        let core = Core::local(rng, policy(config), moderation, now);
        let lobby = Lobby::start(core, log, None);
        return Started {
            lobby,
            client_salt,
            engine: None,
        };
    };
    // The instance id must differ between processes even when tests fix the seed.
    let (queue, link, inbox) = crate::shared::queue(&shared, &mut rand::rng());
    let (client_salt, log) = match redis_reports(&shared, &queue, &mut moderation).await {
        Some(found) => found,
        None => local_reports(config, &mut moderation),
    };
    let core = Core::shared(queue, rng, moderation, now);
    Started {
        lobby: Lobby::start(core, log, Some(link)),
        client_salt,
        engine: Some((shared, inbox)),
    }
}

/// With a shared queue, reports live in Redis beside it (one store, one salt, bans on every
/// instance). `None` if Redis cannot be read at start: the local file serves instead.
async fn redis_reports(
    shared: &SharedConfig,
    queue: &SharedQueue,
    moderation: &mut Moderation,
) -> Option<(Vec<u8>, Option<ReportLog>)> {
    let wait = shared.timeout * 5;
    let loaded = tokio::time::timeout(wait, crate::shared::reports::load(shared)).await;
    let stored = match loaded {
        Ok(Ok(stored)) => stored,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "report store in redis unavailable; using the local file");
            return None;
        }
        Err(_) => {
            tracing::error!("redis did not answer in {wait:?}; reports go to the local file");
            return None;
        }
    };
    let log = match crate::shared::reports::spawn_writer(shared, queue.me) {
        Ok(log) => log,
        Err(e) => {
            tracing::error!(error = %e, "report store in redis unavailable; using the local file");
            return None;
        }
    };
    for report in &stored.reports {
        moderation.record(report);
    }
    tracing::info!(
        reports = stored.reports.len(),
        "report store loaded from redis"
    );
    Some((stored.salt, Some(log)))
}

/// The report file: replayed into `moderation`, then appended to. Serving without a store
/// beats not serving, so a store that cannot be read is said loudly and skipped.
fn local_reports(config: &Config, moderation: &mut Moderation) -> (Vec<u8>, Option<ReportLog>) {
    let store = ReportStore::new(&config.report_log).keeping(config.ban_window + config.ban_for);
    match (store.load(), store.salt()) {
        (Ok(reports), Ok(salt)) => {
            for report in &reports {
                moderation.record(report);
            }
            tracing::info!(reports = reports.len(), path = %config.report_log.display(), "report store loaded");
            (salt, Some(store.spawn_writer().0))
        }
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, path = %config.report_log.display(), "report store unavailable: reports are not kept");
            (rand::random::<[u8; 32]>().to_vec(), None)
        }
    }
}

/// Connections the private metrics address takes at once (a scraper or two).
const PRIVATE_CONNECTIONS: usize = 16;

/// Serves the site's routes for `state` on `listener`, and the private routes on
/// `--metrics-listen` if set, until `shutdown` completes (see [`serve`]).
fn serve_app(
    listener: TcpListener,
    config: &Config,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> impl Future<Output = ()> + Send + 'static {
    let private = match &config.metrics_token {
        Some(token) => Private::Token(token.0.as_str().into()),
        None => Private::Nobody,
    };
    let security = SecurityHeaders::new(config.public_url.as_deref());
    let server = Server {
        admission: state.admission.clone(),
        peer_is_client: config.client_ip_header.is_none(),
        limits: HttpLimits {
            header_timeout: config.header_timeout,
            idle_timeout: config.idle_timeout,
            max_header_bytes: config.max_header_bytes,
        },
        refuse: routes::refusal,
    };
    let (stop_private, private_stopped) = watch::channel(false);
    if let Some(addr) = config.metrics_listen {
        let routes = routes::private_routes(state.clone());
        let private = Server {
            admission: Admission {
                origins: OriginPolicy::SameOrigin,
                permits: Arc::new(Semaphore::new(PRIVATE_CONNECTIONS)),
                per_ip: IpLimiter::new(PRIVATE_CONNECTIONS as u32),
                pending_per_ip: IpLimiter::new(PRIVATE_CONNECTIONS as u32),
            },
            peer_is_client: true,
            limits: server.limits,
            refuse: routes::refusal,
        };
        match bind(addr) {
            Ok(listener) => {
                tracing::info!(%addr, "metrics listening");
                let mut stopped = private_stopped;
                tokio::spawn(serve(listener, routes, private, async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                }));
            }
            Err(e) => {
                tracing::error!(%addr, error = %e, "cannot listen for metrics (--metrics-listen)")
            }
        }
    }
    let routes = routes::routes(state, private, security);
    async move {
        serve(listener, routes, server, shutdown).await;
        let _ = stop_private.send(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection's kernel send buffer is set, not left to the kernel's autotuning (which
    /// starts small and grows to 4 MiB for a client that stops reading): Linux reports a
    /// set size doubled, an autotuned one as its current value.
    #[tokio::test]
    async fn accepted_connections_have_a_small_send_buffer() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        let socket = TcpSocket::from_std_stream(accepted.into_std().unwrap());
        let size = socket.send_buffer_size().unwrap();
        assert_eq!(
            size,
            2 * SEND_BUFFER,
            "the send buffer is fixed at our size"
        );
    }
}
