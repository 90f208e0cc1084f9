//! Prometheus metrics: every metric's name in one place, and the `/metrics` text.
//!
//! Hot paths (every relayed message, every pairing) hold pre-registered handles, so counting
//! costs an atomic add, not a registry lookup.

use std::sync::LazyLock;
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::protocol::ErrorCode;

/// Relay message types, in the order of [`Metrics::relayed`].
pub(crate) const RELAY_KINDS: [&str; 6] =
    ["offer", "answer", "candidate", "chat", "typing", "media"];

/// Bucket bounds of the time-to-match histogram, in seconds.
const MATCH_BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Handles to every metric the server records.
pub(crate) struct Metrics {
    /// Renders the text exposition format for `/metrics`.
    handle: PrometheusHandle,
    /// Connected WebSocket sessions.
    pub sessions: Gauge,
    /// Users in the queue.
    pub waiting: Gauge,
    /// Open rooms.
    pub rooms: Gauge,
    /// Pairings made.
    pub matches: Counter,
    /// From join to matched, per user.
    pub time_to_match: Histogram,
    /// Relayed messages, by type (indexed like [`RELAY_KINDS`]).
    relayed: [Counter; 6],
    /// Refused messages, by error code.
    errors: [Counter; 7],
    /// Ended sessions, by reason.
    closes: [Counter; 7],
    /// Calls to Redis (a pipeline counts once), with a shared queue.
    pub redis_calls: Counter,
    /// Messages for other instances dropped because Redis could not take them in time.
    pub bus_dropped: Counter,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("strangers_time_to_match_seconds".into()),
            &MATCH_BUCKETS,
        )
        .expect("buckets are not empty")
        .install_recorder()
        .expect("no other metrics recorder is installed");
    describe();
    let error =
        |code: ErrorCode| metrics::counter!("strangers_errors_total", "code" => code.as_str());
    let close = |reason: CloseReason| metrics::counter!("strangers_closes_total", "reason" => reason.as_str());
    Metrics {
        handle,
        sessions: metrics::gauge!("strangers_sessions"),
        waiting: metrics::gauge!("strangers_waiting"),
        rooms: metrics::gauge!("strangers_rooms"),
        matches: metrics::counter!("strangers_matches_total"),
        time_to_match: metrics::histogram!("strangers_time_to_match_seconds"),
        relayed: RELAY_KINDS
            .map(|kind| metrics::counter!("strangers_relayed_total", "type" => kind)),
        errors: [
            ErrorCode::BadMessage,
            ErrorCode::TooLarge,
            ErrorCode::RateLimited,
            ErrorCode::Banned,
            ErrorCode::AdultRequired,
            ErrorCode::PowRequired,
            ErrorCode::PowInvalid,
        ]
        .map(error),
        closes: CloseReason::ALL.map(close),
        redis_calls: metrics::counter!("strangers_redis_calls_total"),
        bus_dropped: metrics::counter!("strangers_bus_dropped_total"),
    }
});

fn describe() {
    metrics::describe_gauge!("strangers_sessions", "Connected WebSocket sessions.");
    metrics::describe_gauge!("strangers_waiting", "Users waiting for a stranger.");
    metrics::describe_gauge!("strangers_rooms", "Rooms with two strangers in them.");
    metrics::describe_counter!("strangers_matches_total", "Pairings made.");
    metrics::describe_histogram!(
        "strangers_time_to_match_seconds",
        metrics::Unit::Seconds,
        "Time from join (or Next) to matched, per user."
    );
    metrics::describe_counter!(
        "strangers_relayed_total",
        "Messages relayed to a partner, by type."
    );
    metrics::describe_counter!(
        "strangers_errors_total",
        "Client messages refused, by error code."
    );
    metrics::describe_counter!(
        "strangers_closes_total",
        "WebSocket sessions ended, by reason."
    );
    metrics::describe_counter!(
        "strangers_redis_calls_total",
        "Calls to Redis with a shared queue (a pipeline counts once)."
    );
    metrics::describe_counter!(
        "strangers_bus_dropped_total",
        "Messages for other instances dropped because Redis could not take them."
    );
}

/// The server's metrics (installed as the process's recorder on first use).
pub(crate) fn metrics() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    /// Counts one refused message.
    pub(crate) fn error(&self, code: ErrorCode) {
        let i = match code {
            ErrorCode::BadMessage => 0,
            ErrorCode::TooLarge => 1,
            ErrorCode::RateLimited => 2,
            ErrorCode::Banned => 3,
            ErrorCode::AdultRequired => 4,
            ErrorCode::PowRequired => 5,
            ErrorCode::PowInvalid => 6,
        };
        self.errors[i].increment(1);
    }

    /// Counts one ended session.
    pub(crate) fn closed(&self, reason: CloseReason) {
        let i = CloseReason::ALL
            .iter()
            .position(|r| *r == reason)
            .expect("every reason is listed");
        self.closes[i].increment(1);
    }

    /// Counts one relayed message of type `kind`.
    pub(crate) fn relayed(&self, kind: &str) {
        if let Some(i) = RELAY_KINDS.iter().position(|k| *k == kind) {
            self.relayed[i].increment(1);
        }
    }

    /// Records one user's wait.
    pub(crate) fn waited(&self, wait: Duration) {
        self.time_to_match.record(wait.as_secs_f64());
    }

    /// The Prometheus text exposition of every metric.
    pub(crate) fn render(&self) -> String {
        self.handle.render()
    }

    /// Folds recorded histogram samples into their buckets; run periodically so samples do
    /// not pile up between scrapes.
    pub(crate) fn upkeep(&self) {
        self.handle.run_upkeep();
    }
}

/// Why a session ended, for the log line and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CloseReason {
    /// The client closed the socket or the TCP connection ended.
    ClientClosed,
    /// No frame from the client for two ping intervals.
    Timeout,
    /// A message over the size limit.
    TooLarge,
    /// The client did not read what we sent.
    SlowConsumer,
    /// The client kept sending over its rate limit.
    Flooding,
    /// The server is shutting down.
    Shutdown,
    /// A protocol or I/O error on the socket.
    Error,
}

impl CloseReason {
    /// Every reason, for metrics.
    pub(crate) const ALL: [CloseReason; 7] = [
        CloseReason::ClientClosed,
        CloseReason::Timeout,
        CloseReason::TooLarge,
        CloseReason::SlowConsumer,
        CloseReason::Flooding,
        CloseReason::Shutdown,
        CloseReason::Error,
    ];

    /// A short label for logs and metrics.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            CloseReason::ClientClosed => "client_closed",
            CloseReason::Timeout => "timeout",
            CloseReason::TooLarge => "too_large",
            CloseReason::SlowConsumer => "slow_consumer",
            CloseReason::Flooding => "flooding",
            CloseReason::Shutdown => "shutdown",
            CloseReason::Error => "error",
        }
    }
}
