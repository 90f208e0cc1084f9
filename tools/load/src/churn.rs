//! Churn mode: clients that join, get matched, signal a call and press Next, over and over,
//! timing every relayed message.
//!
//! One cycle, per side: `join` (or `next`) → `matched` → the offerer sends `offer`, the
//! answerer waits for it and sends `answer`; each side then sends `candidates` ICE
//! candidates and one `chat`. A side whose partner's messages have all arrived and whose own
//! are all sent presses `next`. Every relayed message carries `ts=<ns>` (the sender's clock,
//! taken just before the send); the receiver records `now - ts`.

mod client;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{Semaphore, watch};

use crate::control::wait_for;
use crate::net::Target;
use crate::pacer::Pacer;
use crate::stats::{Counter, CpuMark, CpuUse, Errors, Latency, LatencySummary, fmt_us};

use self::client::Client;

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
    pub(crate) fn per_side(&self) -> u16 {
        2 + u16::from(self.candidates)
    }
}

/// What every churn client updates.
#[derive(Default)]
pub struct Shared {
    /// Clients that got their `welcome`.
    pub opened: Counter,
    /// Clients that failed to connect (see the errors for why).
    pub failed: Counter,
    /// `matched` messages received (two per room).
    pub matched: Counter,
    /// Cycles where a side sent and received everything (two per complete room).
    pub cycles: Counter,
    /// Relayed messages (offer, answer, candidate, chat) sent.
    pub relay_sent: Counter,
    /// Relayed messages received from partners.
    pub relay_received: Counter,
    /// All text frames sent, including join/next.
    pub frames_sent: Counter,
    /// All text frames received, including waiting/matched/left/online.
    pub frames_received: Counter,
    /// What went wrong, by kind, for the report.
    pub errors: Errors,
    /// How long relayed messages took, sender to receiver.
    pub latency: Latency,
}

/// Counters at one instant, to compute rates over an interval.
#[derive(Clone, Copy, Default)]
struct Snapshot {
    /// [`Shared::matched`] then.
    matched: u64,
    /// [`Shared::cycles`] then.
    cycles: u64,
    /// [`Shared::relay_sent`] then.
    relay_sent: u64,
    /// [`Shared::relay_received`] then.
    relay_received: u64,
    /// [`Shared::frames_sent`] then.
    frames_sent: u64,
    /// [`Shared::frames_received`] then.
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
    /// Clients asked for (`--clients`).
    pub clients: usize,
    /// Clients that connected and got their `welcome`.
    pub opened: u64,
    /// Clients that failed to connect.
    pub failed: u64,
    /// Seconds until every client was connected (or failed).
    pub setup_s: f64,
    /// Clients connected per second of setup.
    pub setup_per_s: f64,
    /// Target relayed messages per second, if paced.
    pub rate_target: Option<f64>,
    /// Bytes of each offer's and answer's SDP (`--sdp-bytes`), since latency grows with it.
    pub sdp_bytes: usize,
    /// ICE candidates each side sent per cycle (`--candidates`).
    pub candidates: u8,
    /// Seconds at the start left out of the figures below.
    pub warmup_s: f64,
    /// Seconds measured (after the warm-up).
    pub measured_s: f64,
    /// Rooms made (both members got `matched`).
    pub matches: u64,
    /// Rooms made per second: the matchmaking throughput.
    pub matches_per_s: f64,
    /// Rooms whose whole exchange completed.
    pub exchanges: u64,
    /// Relayed messages the clients sent.
    pub relay_sent: u64,
    /// Relayed messages their partners received (fewer than sent if the server dropped any).
    pub relay_received: u64,
    /// Relayed messages received per second: the relay throughput.
    pub relay_per_s: f64,
    /// Every text frame the clients sent.
    pub frames_sent: u64,
    /// Every text frame the clients received.
    pub frames_received: u64,
    /// Frames either way per second: all the server's WebSocket work.
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
    let shared = Arc::new(Shared::default());
    // Lives as long as the run: its thread stops once it is dropped.
    let pacer = config.rate.map(Pacer::start);
    let (go_tx, go) = watch::channel(false);
    let (end_tx, end) = watch::channel(false);
    let kit = Kit {
        target,
        concurrency,
        shared: shared.clone(),
        config: Arc::new(config),
        permits: pacer.as_ref().map(|p| p.permits.clone()),
        go,
        end,
    };
    for i in 0..clients {
        tokio::spawn(kit.clone().client(base_index + i, i));
    }
    let counts = || (shared.opened.get(), shared.failed.get());
    let limit = Duration::from_secs(600);
    let label = "churn clients connected";
    let took = wait_for(label, clients as u64, counts, limit, &mut stop, quiet).await;
    let opened = shared.opened.get();
    let _ = go_tx.send(true);
    let window = measure(&shared, duration, warmup, &mut stop, quiet, server_pid).await;
    let _ = end_tx.send(true);
    let figures = window.close(&shared, server_pid);
    let setup = Setup {
        clients,
        opened,
        failed: shared.failed.get(),
        took,
    };
    let report = Report::new(&setup, &kit.config, figures);
    (report, shared)
}

/// What each churn client of a run is given.
#[derive(Clone)]
struct Kit {
    /// Where to connect.
    target: Arc<Target>,
    /// Bounds the connections being set up at once.
    concurrency: Arc<Semaphore>,
    /// The counters every client updates.
    shared: Arc<Shared>,
    /// What to do per cycle.
    config: Arc<Config>,
    /// The pacer's permits, when the run is paced.
    permits: Option<Arc<Semaphore>>,
    /// Turns `true` once every client is connected: they start together.
    go: watch::Receiver<bool>,
    /// Turns `true` when the run is over.
    end: watch::Receiver<bool>,
}

impl Kit {
    /// One churn client: connects as client number `index`, waits for the start, then churns
    /// until the end, recording latency into shard `shard`.
    async fn client(mut self, index: usize, shard: usize) {
        let (ws, challenge) = {
            let Ok(_permit) = self.concurrency.acquire().await else {
                return;
            };
            if *self.end.borrow() {
                return;
            }
            match self.target.connect(index).await {
                Ok(connected) => connected,
                Err(kind) => {
                    self.shared.failed.inc();
                    self.shared.errors.add(kind);
                    return;
                }
            }
        };
        self.shared.opened.inc();
        if self.go.wait_for(|go| *go).await.is_err() || *self.end.borrow() {
            return;
        }
        let mut client = Client::new(ws, shard, self.shared, self.config, self.permits, self.end);
        client.challenge = challenge;
        client.run().await;
    }
}

/// How connecting the clients went.
struct Setup {
    /// Clients asked for.
    clients: usize,
    /// Clients connected.
    opened: u64,
    /// Clients that failed to connect (by the end of the run).
    failed: u64,
    /// How long connecting took.
    took: Duration,
}

/// The measured period of a churn run: it starts once the warm-up is over.
struct Window {
    /// When the clients were let go.
    start: Instant,
    /// Whether the warm-up is over (from the start, without one).
    warm: bool,
    /// When the measured period began.
    from: Instant,
    /// The counters at `from`.
    base: Snapshot,
    /// CPU use at `from`.
    cpu_from: CpuMark,
}

/// What a churn run's measured period saw.
struct Figures {
    /// Seconds of warm-up left out.
    warmup_s: f64,
    /// Seconds measured.
    measured_s: f64,
    /// The counters' growth over the measured period.
    delta: Snapshot,
    /// CPU used over the measured period.
    cpu: CpuUse,
    /// Relay latency over the measured period.
    latency: LatencySummary,
}

/// Lets the clients run for `duration` (or until a stop), with a progress line a second,
/// and starts the measured period once `warmup` has passed.
async fn measure(
    shared: &Shared,
    duration: Duration,
    warmup: Duration,
    stop: &mut watch::Receiver<bool>,
    quiet: bool,
    server_pid: Option<u32>,
) -> Window {
    let start = Instant::now();
    let mut window = Window {
        start,
        warm: warmup.is_zero(),
        from: start,
        base: Snapshot::default(),
        cpu_from: CpuMark::now(server_pid),
    };
    let mut last = Snapshot::of(shared);
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
        let now = Snapshot::of(shared);
        let dt = last_at.elapsed().as_secs_f64();
        // Folding every second also keeps the live histograms small.
        let interval = LatencySummary::of(&shared.latency.fold());
        if !quiet {
            progress_line(start, now.minus(last), dt, &interval, shared);
        }
        last = now;
        last_at = Instant::now();
        if !window.warm && start.elapsed() >= warmup {
            window.warm = true;
            window.base = Snapshot::of(shared);
            shared.latency.clear();
            window.from = Instant::now();
            window.cpu_from = CpuMark::now(server_pid);
        }
    }
    window
}

/// Prints one second's progress: `d` is what the counters did over the last `dt` seconds.
fn progress_line(start: Instant, d: Snapshot, dt: f64, interval: &LatencySummary, shared: &Shared) {
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

impl Window {
    /// Ends the measured period (the clients have been told to stop).
    fn close(&self, shared: &Shared, server_pid: Option<u32>) -> Figures {
        let measured_s = self.from.elapsed().as_secs_f64();
        let cpu = self.cpu_from.until(&CpuMark::now(server_pid));
        let warmup_s = if self.warm {
            (self.from - self.start).as_secs_f64()
        } else {
            0.0
        };
        Figures {
            warmup_s,
            measured_s,
            delta: Snapshot::of(shared).minus(self.base),
            cpu,
            latency: shared.latency.summary(),
        }
    }
}

impl Report {
    /// The report of a run whose clients connected as in `setup` and ran as `config` says.
    fn new(setup: &Setup, config: &Config, f: Figures) -> Report {
        let d = f.delta;
        let per_s = |n: f64| n / f.measured_s.max(1e-9);
        Report {
            clients: setup.clients,
            opened: setup.opened,
            failed: setup.failed,
            setup_s: setup.took.as_secs_f64(),
            setup_per_s: setup.opened as f64 / setup.took.as_secs_f64().max(1e-9),
            rate_target: config.rate,
            sdp_bytes: config.sdp_bytes,
            candidates: config.candidates,
            warmup_s: f.warmup_s,
            measured_s: f.measured_s,
            matches: d.matched / 2,
            matches_per_s: per_s(d.matched as f64 / 2.0),
            exchanges: d.cycles / 2,
            relay_sent: d.relay_sent,
            relay_received: d.relay_received,
            relay_per_s: per_s(d.relay_received as f64),
            frames_sent: d.frames_sent,
            frames_received: d.frames_received,
            frames_per_s: per_s((d.frames_sent + d.frames_received) as f64),
            latency: f.latency,
            cpu: f.cpu,
        }
    }
}
