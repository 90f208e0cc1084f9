//! Churn mode: clients that join, get matched, signal a call and press Next, over and over,
//! timing every relayed message.
//!
//! One cycle, per side: `join` (or `next`) → `matched` → the offerer sends `offer`, the
//! answerer waits for it and sends `answer`; each side then sends `candidates` ICE
//! candidates and one `chat`. A side whose partner's messages have all arrived and whose own
//! are all sent presses `next`. Every relayed message carries `ts=<ns>` (the sender's clock,
//! taken just before the send); the receiver records `now - ts`.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_tungstenite::tungstenite::Message;

use crate::net::{Incoming, Target, Ws, out};
use crate::stats::{Counter, CpuMark, CpuUse, Errors, Latency, LatencySummary, fmt_us, now_ns};

/// What each churn client does per cycle.
#[derive(Clone, Debug)]
pub struct Config {
    /// Size of the offer's and the answer's `sdp`, bytes.
    pub sdp_bytes: usize,
    /// ICE candidates each side sends per cycle.
    pub candidates: u8,
    /// How long a client waits for the server (a match, the partner's next message) before
    /// it counts a timeout and presses Next.
    pub timeout: Duration,
    /// Relayed messages per second across all clients; `None` for as fast as they go.
    pub rate: Option<f64>,
}

impl Config {
    /// Relayed messages each side sends (and must receive) per cycle.
    fn per_side(&self) -> u16 {
        2 + u16::from(self.candidates)
    }
}

/// Spaces relayed messages across all clients: a thread of its own adds `rate` permits per
/// second to a fair semaphore, in small steps (about every 100 µs, finer than tokio's 1 ms
/// timer, so the load is not a train of 1 ms bursts), and a client takes one permit per
/// relayed message. Unused permits are banked only up to [`BANK`] worth of them, so a lull is
/// not followed by a burst.
pub struct Pacer {
    permits: Arc<Semaphore>,
}

/// How much of the rate unused permits may bank up.
const BANK: Duration = Duration::from_micros(250);

impl Pacer {
    pub fn start(rate: f64) -> Pacer {
        let permits = Arc::new(Semaphore::new(0));
        let weak = Arc::downgrade(&permits);
        let cap = ((rate * BANK.as_secs_f64()).ceil() as usize).max(1);
        std::thread::Builder::new()
            .name("pacer".into())
            .spawn(move || {
                let mut credit = 0.0_f64;
                let mut last = Instant::now();
                // Ends when the run drops its semaphore.
                while let Some(permits) = weak.upgrade() {
                    std::thread::sleep(Duration::from_micros(100));
                    let now = Instant::now();
                    credit += (now - last).as_secs_f64() * rate;
                    last = now;
                    let whole = credit.floor();
                    credit -= whole;
                    let room = cap.saturating_sub(permits.available_permits());
                    let add = (whole as usize).min(room);
                    if add > 0 {
                        permits.add_permits(add);
                    }
                }
            })
            .expect("can start the pacer thread");
        Pacer { permits }
    }
}

/// What every churn client updates.
#[derive(Default)]
pub struct Shared {
    pub opened: Counter,
    pub failed: Counter,
    /// `matched` messages received (two per room).
    pub matched: Counter,
    /// Cycles where a side sent and received everything (two per complete room).
    pub cycles: Counter,
    pub relay_sent: Counter,
    pub relay_received: Counter,
    /// All text frames, including join/next/waiting/matched/left/online.
    pub frames_sent: Counter,
    pub frames_received: Counter,
    pub errors: Errors,
    pub latency: Latency,
}

/// Counters at one instant, to compute rates over an interval.
#[derive(Clone, Copy, Default)]
struct Snapshot {
    matched: u64,
    cycles: u64,
    relay_sent: u64,
    relay_received: u64,
    frames_sent: u64,
    frames_received: u64,
}

impl Snapshot {
    fn of(s: &Shared) -> Snapshot {
        Snapshot {
            matched: s.matched.get(),
            cycles: s.cycles.get(),
            relay_sent: s.relay_sent.get(),
            relay_received: s.relay_received.get(),
            frames_sent: s.frames_sent.get(),
            frames_received: s.frames_received.get(),
        }
    }

    fn minus(self, o: Snapshot) -> Snapshot {
        Snapshot {
            matched: self.matched - o.matched,
            cycles: self.cycles - o.cycles,
            relay_sent: self.relay_sent - o.relay_sent,
            relay_received: self.relay_received - o.relay_received,
            frames_sent: self.frames_sent - o.frames_sent,
            frames_received: self.frames_received - o.frames_received,
        }
    }
}

/// The result of one churn run.
#[derive(Serialize, Debug, Clone)]
pub struct Report {
    pub clients: usize,
    pub opened: u64,
    pub failed: u64,
    pub setup_s: f64,
    pub setup_per_s: f64,
    /// Target relayed messages per second, if paced.
    pub rate_target: Option<f64>,
    pub sdp_bytes: usize,
    pub candidates: u8,
    /// Seconds at the start left out of the figures below.
    pub warmup_s: f64,
    /// Seconds measured (after the warm-up).
    pub measured_s: f64,
    /// Rooms made (both members got `matched`).
    pub matches: u64,
    pub matches_per_s: f64,
    /// Rooms whose whole exchange completed.
    pub exchanges: u64,
    pub relay_sent: u64,
    pub relay_received: u64,
    pub relay_per_s: f64,
    pub frames_sent: u64,
    pub frames_received: u64,
    pub frames_per_s: f64,
    /// Relay latency: sender's send call to receiver's parse, microseconds.
    pub latency: LatencySummary,
    /// CPU used over the measured period, in cores (the server's needs `--server-pid`).
    pub cpu: CpuUse,
}

/// Connects `clients` churn clients (indices from `base_index`), runs them for `duration`
/// after they are all connected, and reports. `stop` ends the run early (Ctrl-C).
#[allow(clippy::too_many_arguments)]
pub async fn run(
    clients: usize,
    base_index: usize,
    target: Arc<Target>,
    concurrency: Arc<Semaphore>,
    config: Config,
    duration: Duration,
    warmup: Duration,
    mut stop: watch::Receiver<bool>,
    quiet: bool,
    server_pid: Option<u32>,
) -> (Report, Arc<Shared>) {
    let cpu = move || CpuMark::now(server_pid);
    let shared = Arc::new(Shared::default());
    let pacer = config.rate.map(Pacer::start);
    let permits = pacer.as_ref().map(|p| p.permits.clone());
    let config = Arc::new(config);
    let (go_tx, go_rx) = watch::channel(false);
    let (end_tx, end_rx) = watch::channel(false);
    for i in 0..clients {
        let (target, concurrency, shared, config, permits) = (
            target.clone(),
            concurrency.clone(),
            shared.clone(),
            config.clone(),
            permits.clone(),
        );
        let (mut go, end) = (go_rx.clone(), end_rx.clone());
        tokio::spawn(async move {
            let ws = {
                let Ok(_permit) = concurrency.acquire().await else {
                    return;
                };
                if *end.borrow() {
                    return;
                }
                match target.connect(base_index + i).await {
                    Ok(ws) => ws,
                    Err(kind) => {
                        shared.failed.inc();
                        shared.errors.add(kind);
                        return;
                    }
                }
            };
            shared.opened.inc();
            if go.wait_for(|go| *go).await.is_err() || *end.borrow() {
                return;
            }
            let mut client = Client {
                ws,
                shard: i,
                shared,
                config,
                permits,
                end,
                state: State::Waiting,
                out: VecDeque::new(),
                last_progress: Instant::now(),
            };
            client.run().await;
        });
    }

    let setup = crate::control::wait_for(
        "churn clients connected",
        clients as u64,
        || (shared.opened.get(), shared.failed.get()),
        Duration::from_secs(600),
        &mut stop,
        quiet,
    )
    .await;
    let opened = shared.opened.get();
    let _ = go_tx.send(true);

    let start = Instant::now();
    let mut base = Snapshot::default();
    let mut measured_from = start;
    let mut cpu_from = cpu();
    let mut warm = warmup.is_zero();
    let mut last = Snapshot::of(&shared);
    let mut last_at = start;
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    let deadline = tokio::time::Instant::now() + duration;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = tokio::time::sleep_until(deadline) => break,
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
        let now = Snapshot::of(&shared);
        let d = now.minus(last);
        let dt = last_at.elapsed().as_secs_f64();
        let interval = LatencySummary::of(&shared.latency.fold());
        if !quiet {
            eprintln!(
                "[{:>5.1}s] matches {:>7.0}/s  relayed {:>7.0}/s  frames {:>8.0}/s  latency p50 {} p99 {} max {}  errors {}",
                start.elapsed().as_secs_f64(),
                d.matched as f64 / 2.0 / dt,
                d.relay_received as f64 / dt,
                (d.frames_sent + d.frames_received) as f64 / dt,
                fmt_us(interval.p50_us),
                fmt_us(interval.p99_us),
                fmt_us(interval.max_us),
                shared.errors.total(),
            );
        }
        last = now;
        last_at = Instant::now();
        if !warm && start.elapsed() >= warmup {
            warm = true;
            base = Snapshot::of(&shared);
            shared.latency.clear();
            measured_from = Instant::now();
            cpu_from = cpu();
        }
    }
    let _ = end_tx.send(true);
    let measured = measured_from.elapsed().as_secs_f64();
    let cpu_use = cpu_from.until(&cpu());
    let warmup_s = if warm {
        (measured_from - start).as_secs_f64()
    } else {
        0.0
    };
    let d = Snapshot::of(&shared).minus(base);
    let latency = shared.latency.summary();
    let report = Report {
        clients,
        opened,
        failed: shared.failed.get(),
        setup_s: setup.as_secs_f64(),
        setup_per_s: opened as f64 / setup.as_secs_f64().max(1e-9),
        rate_target: config.rate,
        sdp_bytes: config.sdp_bytes,
        candidates: config.candidates,
        warmup_s,
        measured_s: measured,
        matches: d.matched / 2,
        matches_per_s: d.matched as f64 / 2.0 / measured.max(1e-9),
        exchanges: d.cycles / 2,
        relay_sent: d.relay_sent,
        relay_received: d.relay_received,
        relay_per_s: d.relay_received as f64 / measured.max(1e-9),
        frames_sent: d.frames_sent,
        frames_received: d.frames_received,
        frames_per_s: (d.frames_sent + d.frames_received) as f64 / measured.max(1e-9),
        latency,
        cpu: cpu_use,
    };
    (report, shared)
}

#[derive(Clone, Copy, Debug)]
enum Out {
    Offer,
    Answer,
    Candidate(u8),
    Chat,
}

struct Room {
    id: String,
    offerer: bool,
    sent: u16,
    received: u16,
}

enum State {
    Waiting,
    InRoom(Room),
}

struct Client {
    ws: Ws,
    shard: usize,
    shared: Arc<Shared>,
    config: Arc<Config>,
    /// The pacer's permits, one per relayed message, when the run is paced.
    permits: Option<Arc<Semaphore>>,
    end: watch::Receiver<bool>,
    state: State,
    /// Relayed messages to send, in order.
    out: VecDeque<Out>,
    /// Last time the server told us something we were waiting for.
    last_progress: Instant,
}

/// Waiting for one of the pacer's permits.
type Acquire = dyn std::future::Future<Output = Result<OwnedSemaphorePermit, tokio::sync::AcquireError>>
    + Send;

/// Why a client stopped early.
struct Dead;

impl Client {
    async fn run(&mut self) {
        if self.send_text(out::JOIN.to_string()).await.is_err() {
            return;
        }
        let mut permit: Option<Pin<Box<Acquire>>> = None;
        let watchdog = tokio::time::sleep(self.config.timeout);
        tokio::pin!(watchdog);
        loop {
            match &self.permits {
                // Unpaced: send whatever is queued now.
                None => {
                    while let Some(kind) = self.out.pop_front() {
                        if self.send_relay(kind).await.is_err() {
                            return;
                        }
                    }
                }
                // Paced: wait for a permit per message (while still reading).
                Some(permits) if permit.is_none() && !self.out.is_empty() => {
                    permit = Some(Box::pin(permits.clone().acquire_owned()));
                }
                Some(_) => {}
            }
            tokio::select! {
                biased;
                _ = self.end.changed() => {
                    self.check_stalled_at_end();
                    return;
                }
                frame = self.ws.next() => {
                    let text = match frame {
                        Some(Ok(Message::Text(t))) => t,
                        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                            self.died("closed_by_server");
                            return;
                        }
                        Some(Ok(_)) => continue,
                    };
                    self.shared.frames_received.inc();
                    if self.on_text(&text).await.is_err() {
                        return;
                    }
                }
                granted = async { permit.as_mut().expect("guarded").await }, if permit.is_some() => {
                    permit = None;
                    let Ok(granted) = granted else { return };
                    // With nothing left to send (the room ended), the permit goes back.
                    if let Some(kind) = self.out.pop_front() {
                        granted.forget();
                        if self.send_relay(kind).await.is_err() {
                            return;
                        }
                    }
                }
                _ = &mut watchdog => {
                    let idle = self.last_progress.elapsed();
                    if idle >= self.config.timeout && self.out.is_empty() {
                        let per_side = self.config.per_side();
                        let kind = match &self.state {
                            State::Waiting => "timeout_waiting_for_match".to_string(),
                            // Where the exchange stopped tells which message went missing.
                            State::InRoom(room) => format!(
                                "timeout_waiting_for_partner ({}, sent {}/{per_side}, got {}/{per_side})",
                                if room.offerer { "offerer" } else { "answerer" },
                                room.sent,
                                room.received,
                            ),
                        };
                        self.error(kind);
                        self.last_progress = Instant::now();
                        if self.next().await.is_err() {
                            return;
                        }
                    }
                    let at = (self.last_progress + self.config.timeout)
                        .max(Instant::now() + Duration::from_millis(100));
                    watchdog.as_mut().reset(at.into());
                }
            }
        }
    }

    /// Counts an error, unless the run is over (then the partner closing first, say, is
    /// expected).
    fn error(&self, kind: impl Into<String>) {
        if !*self.end.borrow() {
            self.shared.errors.add(kind);
        }
    }

    /// At the end of the run, a client that has waited on the server for more than half its
    /// timeout is stuck (its timeout would have fired had the run gone on): count it.
    fn check_stalled_at_end(&self) {
        if self.last_progress.elapsed() < self.config.timeout / 2 || !self.out.is_empty() {
            return;
        }
        let per_side = self.config.per_side();
        let kind = match &self.state {
            State::Waiting => "stalled_waiting_for_match_at_end".to_string(),
            State::InRoom(room) => format!(
                "stalled_waiting_for_partner_at_end ({}, sent {}/{per_side}, got {}/{per_side})",
                if room.offerer { "offerer" } else { "answerer" },
                room.sent,
                room.received,
            ),
        };
        self.shared.errors.add(kind);
    }

    fn died(&self, kind: &str) {
        self.error(kind);
    }

    async fn send_text(&mut self, text: String) -> Result<(), Dead> {
        match self.ws.send(Message::text(text)).await {
            Ok(()) => {
                self.shared.frames_sent.inc();
                Ok(())
            }
            Err(_) => {
                self.died("send_failed");
                Err(Dead)
            }
        }
    }

    /// Presses Next: back to waiting.
    async fn next(&mut self) -> Result<(), Dead> {
        self.state = State::Waiting;
        self.out.clear();
        self.send_text(out::NEXT.to_string()).await
    }

    async fn send_relay(&mut self, kind: Out) -> Result<(), Dead> {
        let State::InRoom(room) = &mut self.state else {
            return Ok(());
        };
        let ts = now_ns();
        let text = match kind {
            Out::Offer => out::sdp("offer", &room.id, ts, self.config.sdp_bytes),
            Out::Answer => out::sdp("answer", &room.id, ts, self.config.sdp_bytes),
            Out::Candidate(i) => out::candidate(&room.id, ts, i),
            Out::Chat => out::chat(&room.id, ts),
        };
        room.sent += 1;
        self.send_text(text).await?;
        self.shared.relay_sent.inc();
        self.after_progress().await
    }

    /// Queues this side's messages for the cycle, first `first` (offer or answer).
    fn queue_side(&mut self, first: Out) {
        let kinds = std::iter::once(first)
            .chain((0..self.config.candidates).map(Out::Candidate))
            .chain(std::iter::once(Out::Chat));
        self.out.extend(kinds);
    }

    /// After a send or a receipt: if the cycle is complete, count it and press Next.
    async fn after_progress(&mut self) -> Result<(), Dead> {
        let per_side = self.config.per_side();
        let State::InRoom(room) = &self.state else {
            return Ok(());
        };
        if room.sent < per_side || room.received < per_side {
            return Ok(());
        }
        self.shared.cycles.inc();
        if *self.end.borrow() {
            return Err(Dead);
        }
        self.next().await
    }

    async fn on_text(&mut self, text: &str) -> Result<(), Dead> {
        let Some(msg) = Incoming::parse(text) else {
            self.error("bad_json_from_server");
            return Ok(());
        };
        match msg.ty.as_ref() {
            "waiting" | "online" | "welcome" | "typing" => Ok(()),
            "matched" => {
                self.last_progress = Instant::now();
                self.shared.matched.inc();
                if let State::InRoom(_) = self.state {
                    self.error("matched_while_in_room");
                }
                let offerer = msg.role.as_deref() == Some("offerer");
                self.state = State::InRoom(Room {
                    id: msg.room.as_deref().unwrap_or_default().to_string(),
                    offerer,
                    sent: 0,
                    received: 0,
                });
                self.out.clear();
                if offerer {
                    self.queue_side(Out::Offer);
                }
                Ok(())
            }
            "offer" | "answer" | "candidate" | "chat" => {
                let now = now_ns();
                self.last_progress = Instant::now();
                self.shared.relay_received.inc();
                match msg.timestamp() {
                    Some(ts) => self
                        .shared
                        .latency
                        .record(self.shard, now.saturating_sub(ts)),
                    None => self.error("relay_without_timestamp"),
                }
                let State::InRoom(room) = &mut self.state else {
                    self.error("relay_while_waiting");
                    return Ok(());
                };
                if msg.room.as_deref() != Some(room.id.as_str()) {
                    self.error("relay_for_another_room");
                    return Ok(());
                }
                room.received += 1;
                let answer = msg.ty == "offer" && !room.offerer;
                if answer {
                    self.queue_side(Out::Answer);
                }
                self.after_progress().await
            }
            "left" => {
                if let State::InRoom(room) = &self.state
                    && msg.room.as_deref() == Some(room.id.as_str())
                {
                    // The partner ended the room before our exchange was complete.
                    self.error(format!(
                        "partner_left_early_{}",
                        msg.reason.as_deref().unwrap_or("unknown")
                    ));
                    self.last_progress = Instant::now();
                    return self.next().await;
                }
                Ok(())
            }
            "error" => {
                self.error(format!(
                    "server_error_{}",
                    msg.code.as_deref().unwrap_or("unknown")
                ));
                Ok(())
            }
            "bye" => {
                self.died("server_restarting");
                Err(Dead)
            }
            other => {
                self.error(format!(
                    "unknown_message_{}",
                    other.chars().take(20).collect::<String>()
                ));
                Ok(())
            }
        }
    }
}
