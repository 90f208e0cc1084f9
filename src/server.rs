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
use tokio::sync::{Semaphore, broadcast, mpsc, oneshot};

use crate::admission::{Admission, IpLimiter, OriginPolicy};
use crate::config::Config;
use crate::limits::Rates;
use crate::lobby::Lobby;
use crate::matchmaker::Policy;
use crate::moderation::{BanRule, Moderation, ReportStore};
use crate::protocol::MAX_MESSAGE_BYTES;
use crate::routes::AppState;
use crate::session::Settings;
use crate::telemetry;

/// Listen backlog. warp's own `bind` uses 128, which overflows when hundreds of browsers
/// reconnect at once (after a deploy, say); the kernel caps this at `net.core.somaxconn`.
const BACKLOG: u32 = 4096;

/// Binds `addr` with a backlog large enough for bursts of handshakes.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Serves on `listener` until `shutdown` completes, then drains sessions (at most
/// `config.drain`) and returns.
pub async fn run(listener: TcpListener, config: Config, shutdown: impl Future) {
    // A fixed seed makes one process reproducible; instances sharing a queue draw room ids
    // each from its own generator, so theirs must differ whatever the seed.
    let rng = match config.seed {
        Some(seed) if config.redis_url.is_none() => StdRng::seed_from_u64(seed),
        _ => rand::make_rng(),
    };
    let shared = config.shared().map(|shared| {
        // The instance id must differ between processes even when tests fix the seed.
        let (queue, inbox) = crate::shared::queue(&shared, &mut rand::rng());
        (shared, queue, inbox)
    });
    let store = ReportStore::new(&config.report_log).keeping(config.ban_window + config.ban_for);
    let mut moderation = Moderation::new(BanRule {
        reporters: config.ban_reporters as usize,
        window: config.ban_window,
        ban_for: config.ban_for,
    });
    // With a shared queue, reports live in Redis beside it (one store, one salt, bans on
    // every instance); if Redis cannot be read at start, the local file serves instead.
    let from_redis = match &shared {
        Some((config, queue, _)) => {
            let wait = config.timeout * 5;
            match tokio::time::timeout(wait, crate::shared::reports::load(config)).await {
                Ok(Ok(stored)) => match crate::shared::reports::spawn_writer(config, queue.me) {
                    Ok(log) => Some((stored, log)),
                    Err(e) => {
                        tracing::error!(error = %e, "report store in redis unavailable; using the local file");
                        None
                    }
                },
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "report store in redis unavailable; using the local file");
                    None
                }
                Err(_) => {
                    tracing::error!(
                        "redis did not answer in {wait:?}; reports go to the local file"
                    );
                    None
                }
            }
        }
        None => None,
    };
    let (client_salt, report_log) = if let Some((stored, log)) = from_redis {
        for report in &stored.reports {
            moderation.record(report);
        }
        tracing::info!(
            reports = stored.reports.len(),
            "report store loaded from redis"
        );
        (stored.salt, Some(log))
    } else {
        match (store.load(), store.salt()) {
            (Ok(reports), Ok(salt)) => {
                for report in &reports {
                    moderation.record(report);
                }
                tracing::info!(reports = reports.len(), path = %config.report_log.display(), "report store loaded");
                (salt, Some(store.spawn_writer().0))
            }
            (Err(e), _) | (_, Err(e)) => {
                // Serving without a store beats not serving; say so loudly.
                tracing::error!(error = %e, path = %config.report_log.display(), "report store unavailable: reports are not kept");
                (rand::random::<[u8; 32]>().to_vec(), None)
            }
        }
    };
    let (shared_queue, shared_engine) = match shared {
        Some((shared, queue, inbox)) => (Some(queue), Some((shared, inbox))),
        None => (None, None),
    };
    let lobby = Lobby::start(
        rng,
        Policy {
            fallback_after: config.fallback_after,
            cooldown: config.rematch_cooldown,
        },
        moderation,
        report_log,
        shared_queue,
    );
    if let Some((shared, inbox)) = shared_engine
        && let Err(e) = crate::shared::start(shared, inbox, lobby.clone())
    {
        // Validated at start-up; only a URL the client library rejects gets here.
        tracing::error!(error = %e, "cannot use the shared queue: this instance matches nobody");
    }
    let (notify_shutdown, _) = broadcast::channel(1);
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let draining = Arc::new(AtomicBool::new(false));
    let state = AppState {
        lobby,
        settings: Arc::new(Settings {
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
        }),
        reading: crate::websocket::Reading::new(
            MAX_MESSAGE_BYTES,
            config.message_deadline,
            crate::protocol::READ_BUDGET_BYTES,
        ),
        admission: Admission {
            origins: OriginPolicy::from_list(&config.allowed_origins),
            permits: Arc::new(Semaphore::new(config.max_connections)),
            per_ip: IpLimiter::new(config.max_per_ip),
        },
        client_ip_header: config.client_ip_header.clone(),
        client_salt: client_salt.into(),
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
    let http = tokio::spawn(crate::http::serve_app(listener, &config, state, async {
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
