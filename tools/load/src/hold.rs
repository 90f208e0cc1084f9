//! Hold mode: many idle sessions, and optionally one large offer/answer through each, with
//! the server's memory read at each step.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::sync::{Semaphore, watch};
use tokio_tungstenite::tungstenite::Message;

use crate::cli::HoldArgs;
use crate::control::{sleep_or_stop, wait_for};
use crate::net::{Incoming, Target, Ws, out, solve};
use crate::stats::{Counter, CpuMark, CpuUse, Errors, now_ns, rss_kib, show};
use strangers::pow::Challenge;

/// What the held sessions do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Read and answer pings, nothing else.
    Idle,
    /// Join, and once matched exchange one offer/answer of `payload_bytes` each.
    Exchange,
    /// Close.
    Stop,
}

/// What the held sessions share with the driver.
#[derive(Default)]
pub struct Shared {
    /// Sessions that got their `welcome`.
    pub opened: Counter,
    /// Sessions that failed to open.
    pub failed: Counter,
    /// Sessions that sent one large message and received one.
    pub exchanged: Counter,
    /// Sessions that ended before the end of the run.
    pub dropped: Counter,
    /// What went wrong, by kind, for the report.
    pub errors: Errors,
}

/// Spawns `n` held sessions, connecting at most `concurrency` at a time. Returns at once;
/// watch `shared.opened` and `shared.failed`.
fn spawn(
    n: usize,
    target: Arc<Target>,
    concurrency: Arc<Semaphore>,
    shared: Arc<Shared>,
    phase: watch::Receiver<Phase>,
    payload_bytes: usize,
) {
    for i in 0..n {
        let target = target.clone();
        let concurrency = concurrency.clone();
        let shared = shared.clone();
        let phase = phase.clone();
        tokio::spawn(async move {
            let (ws, challenge) = {
                let Ok(_permit) = concurrency.acquire().await else {
                    return;
                };
                if *phase.borrow() == Phase::Stop {
                    return;
                }
                match target.connect(i).await {
                    Ok(connected) => connected,
                    Err(kind) => {
                        shared.failed.inc();
                        shared.errors.add(kind);
                        return;
                    }
                }
            };
            shared.opened.inc();
            session(ws, challenge, &shared, phase, payload_bytes).await;
        });
    }
}

/// One held session: answers pings (tungstenite does), and in the exchange phase joins and
/// sends or answers one payload; ends at the stop phase or when the server closes it.
async fn session(
    mut ws: Ws,
    challenge: Option<Challenge>,
    shared: &Shared,
    mut phase: watch::Receiver<Phase>,
    bytes: usize,
) {
    let mut joined = false;
    let mut exchange = Exchange::default();
    loop {
        tokio::select! {
            changed = phase.changed() => {
                let now = if changed.is_ok() { *phase.borrow_and_update() } else { Phase::Stop };
                match now {
                    Phase::Stop => break,
                    Phase::Exchange if !joined => {
                        joined = true;
                        let pow = solve(challenge).await;
                        if ws.send(Message::text(out::join(pow, ""))).await.is_err() {
                            shared.errors.add("hold_send_failed");
                            shared.dropped.inc();
                            return;
                        }
                    }
                    _ => {}
                }
            }
            frame = ws.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(_)) => continue,
                    Some(Err(_)) | None => {
                        if *phase.borrow() != Phase::Stop {
                            shared.errors.add("hold_closed_by_server");
                            shared.dropped.inc();
                        }
                        return;
                    }
                };
                let stopping = *phase.borrow() == Phase::Stop;
                let Some(reply) = exchange.on_text(&text, bytes, shared, stopping) else {
                    continue;
                };
                if ws.send(Message::text(reply)).await.is_err() {
                    shared.errors.add("hold_send_failed");
                    shared.dropped.inc();
                    return;
                }
                exchange.sent(shared);
            }
        }
    }
}

/// A held session's one offer/answer exchange, counted once it has sent and received.
#[derive(Default)]
struct Exchange {
    /// The room the session was matched into, to address the answer.
    room: Option<String>,
    /// Whether the session sent its payload (offer or answer).
    sent: bool,
    /// Whether it received its partner's.
    received: bool,
}

impl Exchange {
    /// Handles one message from the server; returns the payload to send in reply, if any.
    /// `stopping`: the run is ending, so a partner that leaves is expected.
    fn on_text(
        &mut self,
        text: &str,
        bytes: usize,
        shared: &Shared,
        stopping: bool,
    ) -> Option<String> {
        let Some(msg) = Incoming::parse(text) else {
            shared.errors.add("bad_json_from_server");
            return None;
        };
        let reply = match msg.ty.as_ref() {
            "matched" => {
                let r = msg.room.as_deref().unwrap_or_default().to_string();
                let offerer = msg.role.as_deref() == Some("offerer");
                let reply = offerer.then(|| out::sdp("offer", &r, now_ns(), bytes));
                self.room = Some(r);
                reply
            }
            "offer" => {
                self.received = true;
                self.room
                    .as_deref()
                    .map(|r| out::sdp("answer", r, now_ns(), bytes))
            }
            "answer" => {
                self.received = true;
                None
            }
            "error" => {
                shared.errors.add(format!(
                    "server_error_{}",
                    msg.code.as_deref().unwrap_or("?")
                ));
                None
            }
            "left" => {
                // At the end the partner may simply have closed first.
                if !stopping {
                    shared.errors.add("hold_partner_left");
                }
                None
            }
            _ => None,
        };
        if reply.is_none() {
            self.count_if_done(shared);
        }
        reply
    }

    /// The reply was sent.
    fn sent(&mut self, shared: &Shared) {
        self.sent = true;
        self.count_if_done(shared);
    }

    /// Counts the exchange once both payloads went through, then forgets it.
    fn count_if_done(&mut self, shared: &Shared) {
        if self.sent && self.received {
            shared.exchanged.inc();
            *self = Exchange::default();
        }
    }
}

/// Resident memory of the server at each point of a hold, KiB.
#[derive(Serialize, Debug, Default)]
pub struct Memory {
    /// The process measured (`--server-pid`).
    pub server_pid: u32,
    /// Before any session was opened: the baseline of the per-session figures.
    pub before_kib: Option<u64>,
    /// With every session open and idle.
    pub idle_kib: Option<u64>,
    /// What one idle session costs: (idle − before) ÷ sessions opened.
    pub idle_per_session_kib: Option<f64>,
    /// After every session sent and received one payload (`--payload-bytes`).
    pub after_payload_kib: Option<u64>,
    /// What one session costs after its payload: (after payload − before) ÷ sessions opened.
    pub after_payload_per_session_kib: Option<f64>,
    /// At the end of the run, to see memory grow or shrink while the sessions were held.
    pub end_kib: Option<u64>,
}

/// The figures of the held sessions.
#[derive(Serialize, Debug, Default)]
pub struct HoldReport {
    /// Sessions asked for (`--sessions`).
    pub sessions: usize,
    /// Sessions that got their `welcome`.
    pub opened: u64,
    /// Sessions that failed to open (see the errors for why).
    pub failed: u64,
    /// Seconds until every session was open (or failed).
    pub setup_s: f64,
    /// Sessions opened per second of setup.
    pub setup_per_s: f64,
    /// CPU used while the sessions were being opened.
    pub setup_cpu: CpuUse,
    /// Sessions the server closed (or that failed) while held.
    pub dropped: u64,
    /// The size of each session's payload (`--payload-bytes`), if they exchanged one.
    pub payload_bytes: Option<u32>,
    /// Sessions that sent and received one payload.
    pub exchanged: Option<u64>,
    /// Seconds the payload exchange took.
    pub exchange_s: Option<f64>,
    /// The server's memory at each step (with `--server-pid`).
    pub memory: Option<Memory>,
    /// The generator's own resident memory with every session open, KiB.
    pub generator_rss_kib: Option<u64>,
}

/// A hold run in progress: the open sessions and the report so far.
pub struct Hold {
    /// The report, filled in step by step.
    report: HoldReport,
    /// The sessions' counters.
    shared: Arc<Shared>,
    /// Tells the sessions what to do next.
    phase: watch::Sender<Phase>,
    /// The server's process (`--server-pid`), to read its memory.
    server_pid: Option<u32>,
    /// No progress lines (`--quiet`).
    quiet: bool,
}

impl Hold {
    /// Opens the sessions, reads the server's memory once they are idle, and with
    /// `--payload-bytes` has every pair exchange one payload and reads it again. The sessions
    /// stay open until [`close`](Self::close).
    pub async fn open(
        args: &HoldArgs,
        target: &Arc<Target>,
        concurrency: &Arc<Semaphore>,
        server_pid: Option<u32>,
        quiet: bool,
        stop: &mut watch::Receiver<bool>,
    ) -> Hold {
        let mut hold = Hold::connect(args, target, concurrency, server_pid, quiet, stop).await;
        sleep_or_stop(args.settle, stop).await;
        hold.read_idle_memory();
        hold.report.generator_rss_kib = rss_kib(std::process::id());
        if let Some(bytes) = args.payload_bytes
            && !*stop.borrow()
        {
            hold.exchange(bytes, args.settle, stop).await;
        }
        hold
    }

    /// Spawns the sessions and waits (at most 300 s) until each is open or has failed.
    async fn connect(
        args: &HoldArgs,
        target: &Arc<Target>,
        concurrency: &Arc<Semaphore>,
        server_pid: Option<u32>,
        quiet: bool,
        stop: &mut watch::Receiver<bool>,
    ) -> Hold {
        let n = args.sessions;
        let memory = server_pid.map(|pid| Memory {
            server_pid: pid,
            before_kib: rss_kib(pid),
            ..Memory::default()
        });
        if let Some(pid) = server_pid
            && rss_kib(pid).is_none()
        {
            eprintln!("warning: cannot read /proc/<pid>/status of --server-pid");
        }
        let shared = Arc::new(Shared::default());
        let (phase, phase_rx) = watch::channel(Phase::Idle);
        let cpu_start = CpuMark::now(server_pid);
        let bytes = args.payload_bytes.unwrap_or(1) as usize;
        spawn(
            n,
            target.clone(),
            concurrency.clone(),
            shared.clone(),
            phase_rx,
            bytes,
        );
        let counts = || (shared.opened.get(), shared.failed.get());
        let limit = Duration::from_secs(300);
        let setup = wait_for("sessions open", n as u64, counts, limit, stop, quiet).await;
        let opened = shared.opened.get();
        let report = HoldReport {
            setup_cpu: cpu_start.until(&CpuMark::now(server_pid)),
            sessions: n,
            opened,
            failed: shared.failed.get(),
            setup_s: setup.as_secs_f64(),
            setup_per_s: opened as f64 / setup.as_secs_f64().max(1e-9),
            payload_bytes: args.payload_bytes,
            memory,
            ..HoldReport::default()
        };
        if !quiet {
            eprintln!(
                "{opened} sessions open in {:.2}s ({:.0}/s)",
                report.setup_s, report.setup_per_s
            );
        }
        Hold {
            report,
            shared,
            phase,
            server_pid,
            quiet,
        }
    }

    /// The server's resident memory now, KiB (with `--server-pid`).
    fn server_rss(&self) -> Option<u64> {
        self.server_pid.and_then(rss_kib)
    }

    /// Reads the server's memory with every session idle.
    fn read_idle_memory(&mut self) {
        let now = self.server_rss();
        let opened = self.report.opened;
        let Some(m) = &mut self.report.memory else {
            return;
        };
        m.idle_kib = now;
        m.idle_per_session_kib = per_session_kib(m.idle_kib, m.before_kib, opened);
        if !self.quiet {
            eprintln!(
                "server RSS: before {} KiB, {} sessions idle {} KiB ({} KiB/session)",
                show(m.before_kib),
                opened,
                show(m.idle_kib),
                show(m.idle_per_session_kib)
            );
        }
    }

    /// Pairs the sessions and has each pair exchange one offer and one answer of `bytes`
    /// bytes (waiting at most 120 s), then reads the server's memory again.
    async fn exchange(&mut self, bytes: u32, settle: Duration, stop: &mut watch::Receiver<bool>) {
        let _ = self.phase.send(Phase::Exchange);
        let want = self.report.opened / 2 * 2;
        let shared = &self.shared;
        let counts = || (shared.exchanged.get(), shared.dropped.get());
        let limit = Duration::from_secs(120);
        let label = "sessions exchanged a payload";
        let took = wait_for(label, want, counts, limit, stop, self.quiet).await;
        self.report.exchanged = Some(self.shared.exchanged.get());
        self.report.exchange_s = Some(took.as_secs_f64());
        sleep_or_stop(settle, stop).await;
        let now = self.server_rss();
        let opened = self.report.opened;
        let Some(m) = &mut self.report.memory else {
            return;
        };
        m.after_payload_kib = now;
        m.after_payload_per_session_kib =
            per_session_kib(m.after_payload_kib, m.before_kib, opened);
        if !self.quiet {
            eprintln!(
                "server RSS after one {}-byte message each way: {} KiB ({} KiB/session)",
                bytes,
                show(m.after_payload_kib),
                show(m.after_payload_per_session_kib)
            );
        }
    }

    /// Keeps the sessions open for `duration` (or until a stop), printing a line a second.
    pub async fn keep_open(&self, duration: Duration, stop: &mut watch::Receiver<bool>) {
        let start = Instant::now();
        let deadline = tokio::time::Instant::now() + duration;
        let mut tick = tokio::time::interval_at(
            tokio::time::Instant::now() + Duration::from_secs(1),
            Duration::from_secs(1),
        );
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => break,
                _ = stop.changed() => break,
                _ = tick.tick() => {
                    if !self.quiet {
                        let dropped = self.shared.dropped.get();
                        eprintln!(
                            "[{:>5.1}s] holding {} sessions, {} dropped, server RSS {} KiB",
                            start.elapsed().as_secs_f64(),
                            self.report.opened - dropped,
                            dropped,
                            show(self.server_rss()),
                        );
                    }
                }
            }
        }
    }

    /// Reads the server's memory a last time, closes the sessions, and returns the report
    /// and the sessions' counters (for their errors).
    pub fn close(mut self) -> (HoldReport, Arc<Shared>) {
        let end = self.server_rss();
        if let Some(m) = &mut self.report.memory {
            m.end_kib = end;
        }
        self.report.dropped = self.shared.dropped.get();
        let _ = self.phase.send(Phase::Stop);
        (self.report, self.shared)
    }
}

/// What one session adds to the server's memory: (`now` − `before`) ÷ `opened`, KiB with two
/// decimals.
fn per_session_kib(now: Option<u64>, before: Option<u64>, opened: u64) -> Option<f64> {
    match (now, before) {
        (Some(a), Some(b)) if opened > 0 => {
            Some(((a as f64 - b as f64) / opened as f64 * 100.0).round() / 100.0)
        }
        _ => None,
    }
}
