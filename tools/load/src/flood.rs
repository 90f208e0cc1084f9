//! Flood mode: abusive clients that send chat as fast as their sockets take it.
//!
//! Each flooder joins with the interest `flood` (so flooders are paired with each other, not
//! with anyone measured beside them), waits for `matched`, then writes chat messages to its
//! room until the run ends, reading everything the server sends meanwhile (it is a fast
//! consumer: only its sending is abusive). When the server closes the socket it reconnects and
//! starts again. The report says how much the flooders got written, how much of it the server
//! relayed to their partners, and how the server answered (`rate_limited`, close codes).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use crate::net::{Incoming, Target, Ws, out, solve};
use crate::stats::{Counter, CpuMark, CpuUse, Errors};

/// What every flooder updates.
#[derive(Default)]
pub struct Shared {
    /// WebSocket sessions opened (the first one and every reconnection).
    pub connections: Counter,
    /// Sessions that got as far as `matched`.
    pub matched: Counter,
    /// Chat messages written to the socket (accepted by the kernel).
    pub sent: Counter,
    /// Chat messages the server relayed from a flooder's partner.
    pub relayed: Counter,
    /// `rate_limited` errors received.
    pub rate_limited: Counter,
    /// How sessions ended, by close code (`none`: the TCP connection ended without one).
    closes: Mutex<BTreeMap<String, u64>>,
    /// What went wrong, by kind, for the report.
    pub errors: Errors,
}

impl Shared {
    /// Counts a session that ended with close code `code` (`None`: without one).
    fn closed(&self, code: Option<u16>) {
        let key = code.map_or("none".to_string(), |c| c.to_string());
        *self.closes.lock().unwrap().entry(key).or_insert(0) += 1;
    }
}

/// The result of one flood run.
#[derive(Serialize, Debug, Clone)]
pub struct Report {
    /// Flooders run (`--flooders`).
    pub flooders: usize,
    /// Characters of each chat message (`--text-bytes`).
    pub text_bytes: usize,
    /// Seconds the flood ran.
    pub measured_s: f64,
    /// WebSocket sessions opened: more than `flooders` when the server closed some.
    pub connections: u64,
    /// Sessions that got as far as `matched`.
    pub matched: u64,
    /// Chat messages the flooders got written to their sockets.
    pub sent: u64,
    /// `sent` per second.
    pub sent_per_s: f64,
    /// Chat messages the server relayed to the flooders' partners.
    pub relayed: u64,
    /// `relayed` per second: what the rate limit let through.
    pub relayed_per_s: f64,
    /// `rate_limited` errors the server sent.
    pub rate_limited: u64,
    /// Sessions ended by the server, by close code.
    pub closes: BTreeMap<String, u64>,
    /// CPU use over the run (server, this generator, the rest of the machine).
    pub cpu: CpuUse,
    /// Server CPU time per chat message the flooders wrote, in microseconds (`server_cores`
    /// × run time ÷ `sent`). Includes whatever else the server did meanwhile.
    pub server_us_per_sent: Option<f64>,
}

/// Runs `flooders` flooders for `duration` (or until `stop`), each sending chat of
/// `text_bytes` characters.
pub async fn run(
    flooders: usize,
    text_bytes: usize,
    target: Arc<Target>,
    duration: Duration,
    stop: watch::Receiver<bool>,
    quiet: bool,
    server_pid: Option<u32>,
) -> (Report, Arc<Shared>) {
    let shared = Arc::new(Shared::default());
    let until = Instant::now() + duration;
    let start = CpuMark::now(server_pid);
    let started = Instant::now();
    let tasks: Vec<_> = (0..flooders)
        .map(|i| {
            let (target, shared, stop) = (target.clone(), shared.clone(), stop.clone());
            tokio::spawn(flooder(i, target, shared, text_bytes, until, stop))
        })
        .collect();
    wait_printing_progress(&shared, started, until, stop, quiet).await;
    for t in tasks {
        let _ = t.await;
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = start.until(&CpuMark::now(server_pid));
    let sent = shared.sent.get();
    let relayed = shared.relayed.get();
    let per_s = |n: u64| (n as f64 / secs.max(1e-9)).round();
    let report = Report {
        flooders,
        text_bytes,
        measured_s: (secs * 100.0).round() / 100.0,
        connections: shared.connections.get(),
        matched: shared.matched.get(),
        sent,
        sent_per_s: per_s(sent),
        relayed,
        relayed_per_s: per_s(relayed),
        rate_limited: shared.rate_limited.get(),
        closes: shared.closes.lock().unwrap().clone(),
        cpu,
        server_us_per_sent: cpu
            .server_cores
            .filter(|_| sent > 0)
            .map(|c| (c * secs / sent as f64 * 1e8).round() / 100.0),
    };
    (report, shared)
}

/// Waits until `until` (or a stop), printing what the flooders did once a second unless
/// `quiet`.
async fn wait_printing_progress(
    shared: &Shared,
    started: Instant,
    until: Instant,
    mut stop: watch::Receiver<bool>,
    quiet: bool,
) {
    let mut tick = tokio::time::interval_at(
        Instant::now() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    let mut last = 0;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(until) => return,
            _ = stop.changed() => return,
            _ = tick.tick() => {}
        }
        let sent = shared.sent.get();
        if !quiet {
            eprintln!(
                "[{:>5.1}s] flood: {} sent/s, {} relayed, {} rate_limited, {} connections",
                started.elapsed().as_secs_f64(),
                sent - last,
                shared.relayed.get(),
                shared.rate_limited.get(),
                shared.connections.get()
            );
        }
        last = sent;
    }
}

/// One flooder until `until`: connect, join `flood`, send chat as fast as the socket takes
/// it; again after every close.
async fn flooder(
    index: usize,
    target: Arc<Target>,
    shared: Arc<Shared>,
    text_bytes: usize,
    until: Instant,
    stop: watch::Receiver<bool>,
) {
    let text = "x".repeat(text_bytes);
    let live = || Instant::now() < until && !*stop.borrow();
    while live() {
        let (mut tx, rx, room) = match matched_session(index, &target, &shared, until).await {
            Attempt::Matched { tx, rx, room } => (tx, rx, room),
            Attempt::Again => continue,
            Attempt::Over => return,
        };
        shared.matched.inc();
        let reader = spawn_reader(rx, shared.clone());
        let chat = serde_json::json!({"type": "chat", "room": room, "text": text}).to_string();
        while live() {
            let send = tx.send(Message::text(chat.clone()));
            match tokio::time::timeout_at(until, send).await {
                Ok(Ok(())) => shared.sent.inc(),
                Ok(Err(_)) | Err(_) => break,
            }
        }
        if live() {
            // The server ended the session: let the reader see its close frame.
            let _ = tokio::time::timeout_at(until, reader).await;
        } else {
            reader.abort();
        }
    }
}

/// How one attempt at a flooding session went.
enum Attempt {
    /// Matched with another flooder.
    Matched {
        /// The socket's sending half, to flood with.
        tx: SplitSink<Ws, Message>,
        /// The socket's receiving half, for the reader.
        rx: SplitStream<Ws>,
        /// The room to send chat to.
        room: String,
    },
    /// The server refused or closed the session: try again.
    Again,
    /// The run is over.
    Over,
}

/// Connects as client `index`, joins with the interest `flood` and waits for `matched`, all
/// before `until`.
async fn matched_session(
    index: usize,
    target: &Target,
    shared: &Shared,
    until: Instant,
) -> Attempt {
    let (ws, challenge) = match tokio::time::timeout_at(until, target.connect(index)).await {
        Err(_) => return Attempt::Over,
        Ok(Ok(connected)) => connected,
        Ok(Err(kind)) => {
            shared.errors.add(kind);
            // Not a hot loop if the server refuses us.
            tokio::time::sleep(Duration::from_millis(10)).await;
            return Attempt::Again;
        }
    };
    shared.connections.inc();
    let (mut tx, mut rx) = ws.split();
    let join = out::join(solve(challenge).await, r#""interests":["flood"]"#);
    if tx.send(Message::text(join)).await.is_err() {
        shared.closed(None);
        return Attempt::Again;
    }
    let matched = async {
        while let Some(Ok(frame)) = rx.next().await {
            if let Message::Text(t) = frame
                && let Some(m) = Incoming::parse(&t)
                && m.ty == "matched"
            {
                return m.room.map(|r| r.into_owned());
            }
        }
        None
    };
    // The odd one out may wait for a partner past the end: stop then.
    match tokio::time::timeout_at(until, matched).await {
        Ok(Some(room)) => Attempt::Matched { tx, rx, room },
        Ok(None) => {
            shared.closed(None);
            Attempt::Again
        }
        Err(_) => Attempt::Over,
    }
}

/// Reads everything the server sends a flooder, counting relayed chat, `rate_limited` errors
/// and how the session ended.
fn spawn_reader(mut rx: SplitStream<Ws>, shared: Arc<Shared>) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(frame) = rx.next().await {
            match frame {
                Ok(Message::Text(t)) => match Incoming::parse(&t) {
                    Some(m) if m.ty == "chat" => shared.relayed.inc(),
                    Some(m) if m.code.as_deref() == Some("rate_limited") => {
                        shared.rate_limited.inc()
                    }
                    _ => {}
                },
                Ok(Message::Close(frame)) => {
                    shared.closed(Some(frame.map_or(1005, |f| u16::from(f.code))));
                    return;
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        shared.closed(None);
    })
}
