//! `strangers-load`: the load generator of the strangers signaling server.
//!
//! ```text
//! strangers-load --url ws://127.0.0.1:8080/ws hold  --sessions 19000 --server-pid P [--payload-bytes 6000]
//! strangers-load --url ws://127.0.0.1:8080/ws churn --clients 1000 [--rate 20000]
//! strangers-load --url ws://127.0.0.1:8080/ws mixed --sessions 18000 --clients 1000 --rate 20000
//! strangers-load --url ws://127.0.0.1:8099/ws startup --runs 10 -- target/release/strangers --listen 127.0.0.1:8099 --stun ""
//! strangers-load --url ws://127.0.0.1:8080/ws flood --flooders 8 [--text-bytes 200]
//! ```
//!
//! - **hold** opens N sessions (each reads its `welcome`) and keeps them idle, reporting the
//!   setup rate and, with `--server-pid`, the server's resident memory per session; with
//!   `--payload-bytes B` every session then joins and each matched pair exchanges one offer
//!   and one answer of B bytes before memory is read again.
//! - **churn** runs C clients that join, get matched, signal (offer/answer, candidates,
//!   chat) and press Next in a loop; it reports matches/s and the latency of every relayed
//!   message (each payload carries the sender's timestamp).
//! - **mixed** holds N idle sessions while churn runs, optionally paced with `--rate`.
//! - **startup** times a server command from spawn to an accepting socket.
//! - **flood** runs F abusive clients, paired with each other through the interest `flood`,
//!   that send chat as fast as their sockets take it and reconnect whenever the server closes
//!   them; it reports what they got written and relayed, and how the server answered.
//!
//! Only loopback servers are loaded unless `--allow-remote` is given. Progress goes to
//! stderr once a second; the summary goes to stdout (`--json`: one JSON object instead).
//! Ctrl-C ends the run early and still prints the summary.

mod churn;
mod flood;
mod hold;
mod net;
mod stats;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand};
use serde::Serialize;
use strangers::config::{parse_duration, parse_duration_or_zero};
use tokio::sync::{Semaphore, watch};

use crate::hold::Phase;
use crate::net::Target;
use crate::stats::{CpuMark, CpuUse, fmt_us, open_files_limit, rss_kib};

/// Longest run allowed (`--duration`).
const MAX_DURATION: Duration = Duration::from_secs(600);

/// Load generator for the strangers signaling server (loopback only by default).
#[derive(Parser, Debug)]
#[command(
    name = "strangers-load",
    version,
    about = "Load generator for the strangers signaling server: idle sessions, match churn, \
             relay latency (loopback servers only unless --allow-remote)"
)]
struct Cli {
    /// The server's WebSocket URL; several, comma-separated (instances sharing one queue),
    /// spread the clients over them round-robin.
    #[arg(
        long,
        env = "STRANGERS_LOAD_URL",
        default_value = "ws://127.0.0.1:8080/ws",
        global = true
    )]
    url: String,

    /// How long to run: churn and mixed measure for this long; hold keeps the sessions open
    /// this long after setting them up. At most 10m.
    #[arg(long, default_value = "10s", value_parser = parse_duration, global = true)]
    duration: Duration,

    /// Print the result as one JSON object on stdout (the table goes to stderr).
    #[arg(long, global = true)]
    json: bool,

    /// No progress lines on stderr.
    #[arg(long, short, global = true)]
    quiet: bool,

    /// Allow a server that is not on loopback (127.0.0.0/8, ::1). Only for servers you run.
    #[arg(long, global = true)]
    allow_remote: bool,

    /// The server's process id, to read its resident memory (VmRSS) from /proc.
    #[arg(long, global = true)]
    server_pid: Option<u32>,

    /// Spread client sockets over N source addresses 127.0.0.1, 127.0.0.2, ... (past .254 it
    /// goes on with 127.0.1.1), so the ephemeral port range never runs out and a server's
    /// per-IP cap sees many clients; IPv4 loopback only; 0 lets the kernel choose.
    #[arg(long, default_value_t = 16, global = true)]
    source_addrs: u16,

    /// Connections being set up at once.
    #[arg(long, default_value_t = 256, global = true)]
    connect_concurrency: usize,

    /// Time allowed for one connection's TCP connect, handshake and welcome.
    #[arg(long, default_value = "30s", value_parser = parse_duration, global = true)]
    connect_timeout: Duration,

    /// Worker threads of the generator's runtime (default: one per core).
    #[arg(long, global = true)]
    threads: Option<usize>,

    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand, Debug)]
enum Mode {
    /// Open N sessions and keep them idle; report setup rate and server memory.
    Hold(HoldArgs),
    /// C clients join, match, signal and press Next in a loop; report matches/s and latency.
    Churn(ChurnArgs),
    /// Hold N idle sessions while C churn clients run.
    Mixed {
        #[command(flatten)]
        hold: HoldArgs,
        #[command(flatten)]
        churn: ChurnArgs,
    },
    /// Time a server command from spawn until it accepts TCP connections at --url.
    Startup {
        /// How many times to start it.
        #[arg(long, default_value_t = 10)]
        runs: u32,
        /// The server command and its arguments (after `--`).
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// F flooders send chat as fast as the server lets them; report what got through.
    Flood(FloodArgs),
}

#[derive(Args, Debug, Clone)]
struct FloodArgs {
    /// Concurrent flooders (paired with each other).
    #[arg(long, short = 'f', default_value_t = 8)]
    flooders: usize,

    /// Characters of each chat message's text.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=4096))]
    text_bytes: u32,
}

#[derive(Args, Debug, Clone)]
struct HoldArgs {
    /// Idle sessions to open.
    #[arg(long, short = 'n', default_value_t = 1000)]
    sessions: usize,

    /// After setup, pair every session and exchange one offer/answer of this many bytes
    /// (1–32768), then read the server's memory again.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=32768))]
    payload_bytes: Option<u32>,

    /// Pause after each phase before reading the server's memory.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    settle: Duration,
}

#[derive(Args, Debug, Clone)]
struct ChurnArgs {
    /// Concurrent churn clients.
    #[arg(long, short = 'c', default_value_t = 100)]
    clients: usize,

    /// Target relayed messages per second across all churn clients (default: unpaced).
    #[arg(long)]
    rate: Option<f64>,

    /// Bytes of the offer's and the answer's SDP.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(16..=32768))]
    sdp_bytes: u32,

    /// ICE candidates each side sends per cycle.
    #[arg(long, default_value_t = 4)]
    candidates: u8,

    /// A client waiting longer than this for a match or its partner counts a timeout (and
    /// presses Next); one still waiting half this long when the run ends counts as stalled.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    timeout: Duration,

    /// Leave the first part of the run out of the figures (the start-up burst).
    #[arg(long, default_value = "0s", value_parser = parse_duration_or_zero)]
    warmup: Duration,
}

/// Resident memory of the server at each point of a hold, KiB.
#[derive(Serialize, Debug, Default)]
struct Memory {
    server_pid: u32,
    before_kib: Option<u64>,
    idle_kib: Option<u64>,
    idle_per_session_kib: Option<f64>,
    after_payload_kib: Option<u64>,
    after_payload_per_session_kib: Option<f64>,
    end_kib: Option<u64>,
}

#[derive(Serialize, Debug, Default)]
struct HoldReport {
    sessions: usize,
    opened: u64,
    failed: u64,
    setup_s: f64,
    setup_per_s: f64,
    /// CPU used while the sessions were being opened.
    setup_cpu: CpuUse,
    /// Sessions the server closed (or that failed) while held.
    dropped: u64,
    payload_bytes: Option<u32>,
    /// Sessions that sent and received one payload.
    exchanged: Option<u64>,
    exchange_s: Option<f64>,
    memory: Option<Memory>,
    /// The generator's own resident memory with every session open, KiB.
    generator_rss_kib: Option<u64>,
}

#[derive(Serialize, Debug)]
struct StartupReport {
    command: Vec<String>,
    runs: usize,
    min_ms: f64,
    median_ms: f64,
    max_ms: f64,
    all_ms: Vec<f64>,
}

#[derive(Serialize, Debug)]
struct ErrorsReport {
    total: u64,
    by_kind: BTreeMap<String, u64>,
}

#[derive(Serialize, Debug)]
struct Report {
    tool: &'static str,
    version: &'static str,
    mode: &'static str,
    url: String,
    started_unix_s: u64,
    duration_s: f64,
    wall_s: f64,
    interrupted: bool,
    /// Cores and the 1-minute load average at the start and the end: a busy machine (other
    /// processes competing for the cores) makes every figure worse.
    cpus: usize,
    loadavg_start: Option<f64>,
    loadavg_end: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hold: Option<HoldReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    churn: Option<churn::Report>,
    #[serde(skip_serializing_if = "Option::is_none")]
    startup: Option<StartupReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    flood: Option<flood::Report>,
    errors: ErrorsReport,
}

fn main() -> ExitCode {
    stats::init_clock();
    let cli = Cli::parse();
    if cli.duration > MAX_DURATION {
        eprintln!("error: --duration is at most 10m");
        return ExitCode::from(2);
    }
    if cli.connect_concurrency == 0 {
        eprintln!("error: --connect-concurrency must be at least 1");
        return ExitCode::from(2);
    }
    let threads = cli.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let result = runtime.block_on(run(cli));
    // Tasks still holding sockets are dropped with the runtime; do not wait on them.
    runtime.shutdown_background();
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode, String> {
    let target = Arc::new(
        Target::resolve(
            &cli.url,
            cli.allow_remote,
            cli.source_addrs,
            cli.connect_timeout,
        )
        .await?,
    );
    let sockets = match &cli.mode {
        Mode::Hold(h) => h.sessions,
        Mode::Churn(c) => c.clients,
        Mode::Mixed { hold, churn } => hold.sessions + churn.clients,
        Mode::Startup { .. } => 0,
        Mode::Flood(f) => f.flooders,
    };
    if let Some(limit) = open_files_limit()
        && sockets as u64 + 32 > limit
    {
        eprintln!(
            "warning: {sockets} sockets need about {} open files but this process may open {limit} \
             (ulimit -n); expect connect errors",
            sockets + 32
        );
    }

    // Ctrl-C: stop the run and print what was measured; a second one quits at once.
    let (stop_tx, stop) = watch::channel(false);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("stopping (Ctrl-C again to quit at once)");
            let _ = stop_tx.send(true);
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
    // A run is bounded whatever happens to the server.
    let bound = cli.duration + Duration::from_secs(600);
    std::thread::spawn(move || {
        std::thread::sleep(bound);
        eprintln!(
            "error: the run exceeded its time bound ({}s); exiting",
            bound.as_secs()
        );
        std::process::exit(3);
    });

    let started_unix_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let wall = Instant::now();
    let loadavg_start = loadavg();
    let concurrency = Arc::new(Semaphore::new(cli.connect_concurrency));
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut merge = |m: BTreeMap<String, u64>| {
        for (k, v) in m {
            *errors.entry(k).or_insert(0) += v;
        }
    };
    let mut flood_report = None;
    let (mode, hold_report, churn_report, startup_report) = match &cli.mode {
        Mode::Hold(args) => {
            let ((report, _), shared) =
                run_hold(&cli, args, &target, &concurrency, None, stop.clone()).await;
            merge(shared.errors.snapshot());
            ("hold", Some(report), None, None)
        }
        Mode::Churn(args) => {
            let (report, shared) = churn::run(
                args.clients,
                0,
                target.clone(),
                concurrency.clone(),
                churn_config(args),
                cli.duration,
                args.warmup,
                stop.clone(),
                cli.quiet,
                cli.server_pid,
            )
            .await;
            merge(shared.errors.snapshot());
            ("churn", None, Some(report), None)
        }
        Mode::Mixed { hold, churn: args } => {
            let ((report, churn_result), shared) = run_hold(
                &cli,
                hold,
                &target,
                &concurrency,
                Some(args.clone()),
                stop.clone(),
            )
            .await;
            merge(shared.errors.snapshot());
            let churn_report = churn_result.map(|(r, churn_shared)| {
                merge(churn_shared.errors.snapshot());
                r
            });
            ("mixed", Some(report), churn_report, None)
        }
        Mode::Startup { runs, command } => {
            let report = startup(&target, *runs, command).await?;
            ("startup", None, None, Some(report))
        }
        Mode::Flood(args) => {
            let (report, shared) = flood::run(
                args.flooders,
                args.text_bytes as usize,
                target.clone(),
                cli.duration,
                stop.clone(),
                cli.quiet,
                cli.server_pid,
            )
            .await;
            merge(shared.errors.snapshot());
            flood_report = Some(report);
            ("flood", None, None, None)
        }
    };
    let total = errors.values().sum();
    let report = Report {
        tool: "strangers-load",
        version: env!("CARGO_PKG_VERSION"),
        mode,
        url: cli.url.clone(),
        started_unix_s,
        duration_s: cli.duration.as_secs_f64(),
        wall_s: wall.elapsed().as_secs_f64(),
        interrupted: *stop.borrow(),
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        loadavg_start,
        loadavg_end: loadavg(),
        hold: hold_report,
        churn: churn_report,
        startup: startup_report,
        flood: flood_report,
        errors: ErrorsReport {
            total,
            by_kind: errors,
        },
    };
    for hint in hints(&report.errors.by_kind) {
        eprintln!("hint: {hint}");
    }
    let table = table(&report);
    if cli.json {
        eprint!("{table}");
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("the report serializes")
        );
    } else {
        print!("{table}");
    }
    Ok(if report.errors.total == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn churn_config(args: &ChurnArgs) -> churn::Config {
    churn::Config {
        sdp_bytes: args.sdp_bytes as usize,
        candidates: args.candidates,
        timeout: args.timeout,
        rate: args.rate.filter(|r| *r > 0.0),
    }
}

/// What a hold run hands back: its report, plus the churn run's in mixed mode.
type HoldOutcome = (
    (HoldReport, Option<(churn::Report, Arc<churn::Shared>)>),
    Arc<hold::Shared>,
);

/// Hold mode, and the hold half of mixed mode (`churn` given: run it while holding).
async fn run_hold(
    cli: &Cli,
    args: &HoldArgs,
    target: &Arc<Target>,
    concurrency: &Arc<Semaphore>,
    churn: Option<ChurnArgs>,
    mut stop: watch::Receiver<bool>,
) -> HoldOutcome {
    let n = args.sessions;
    let quiet = cli.quiet;
    let memory = |kib: Option<u64>| kib.filter(|_| cli.server_pid.is_some());
    let read_rss = || cli.server_pid.and_then(rss_kib);
    let mut mem = cli.server_pid.map(|pid| Memory {
        server_pid: pid,
        before_kib: rss_kib(pid),
        ..Memory::default()
    });
    if cli.server_pid.is_some() && memory(read_rss()).is_none() {
        eprintln!("warning: cannot read /proc/<pid>/status of --server-pid");
    }

    let shared = Arc::new(hold::Shared::default());
    let (phase_tx, phase_rx) = watch::channel(Phase::Idle);
    let cpu_start = CpuMark::now(cli.server_pid);
    let bytes = args.payload_bytes.unwrap_or(1) as usize;
    hold::spawn(
        n,
        target.clone(),
        concurrency.clone(),
        shared.clone(),
        phase_rx,
        bytes,
    );
    let setup = hold::wait_for(
        "sessions open",
        n as u64,
        || (shared.opened.get(), shared.failed.get()),
        Duration::from_secs(300),
        &mut stop,
        quiet,
    )
    .await;
    let opened = shared.opened.get();
    let setup_cpu = cpu_start.until(&CpuMark::now(cli.server_pid));
    let mut report = HoldReport {
        setup_cpu,
        sessions: n,
        opened,
        failed: shared.failed.get(),
        setup_s: setup.as_secs_f64(),
        setup_per_s: opened as f64 / setup.as_secs_f64().max(1e-9),
        payload_bytes: args.payload_bytes,
        ..HoldReport::default()
    };
    if !quiet {
        eprintln!(
            "{opened} sessions open in {:.2}s ({:.0}/s)",
            report.setup_s, report.setup_per_s
        );
    }
    let per_session = |now: Option<u64>, before: Option<u64>| match (now, before) {
        (Some(a), Some(b)) if opened > 0 => {
            Some(((a as f64 - b as f64) / opened as f64 * 100.0).round() / 100.0)
        }
        _ => None,
    };

    sleep_or_stop(args.settle, &mut stop).await;
    if let Some(m) = &mut mem {
        m.idle_kib = read_rss();
        m.idle_per_session_kib = per_session(m.idle_kib, m.before_kib);
        if !quiet {
            eprintln!(
                "server RSS: before {} KiB, {} sessions idle {} KiB ({} KiB/session)",
                show(m.before_kib),
                opened,
                show(m.idle_kib),
                show(m.idle_per_session_kib)
            );
        }
    }
    report.generator_rss_kib = rss_kib(std::process::id());

    if args.payload_bytes.is_some() && !*stop.borrow() {
        let _ = phase_tx.send(Phase::Exchange);
        let want = opened / 2 * 2;
        let took = hold::wait_for(
            "sessions exchanged a payload",
            want,
            || (shared.exchanged.get(), shared.dropped.get()),
            Duration::from_secs(120),
            &mut stop,
            quiet,
        )
        .await;
        report.exchanged = Some(shared.exchanged.get());
        report.exchange_s = Some(took.as_secs_f64());
        sleep_or_stop(args.settle, &mut stop).await;
        if let Some(m) = &mut mem {
            m.after_payload_kib = read_rss();
            m.after_payload_per_session_kib = per_session(m.after_payload_kib, m.before_kib);
            if !quiet {
                eprintln!(
                    "server RSS after one {}-byte message each way: {} KiB ({} KiB/session)",
                    bytes,
                    show(m.after_payload_kib),
                    show(m.after_payload_per_session_kib)
                );
            }
        }
    }

    let churn_result = match churn {
        Some(args) if !*stop.borrow() => Some(
            churn::run(
                args.clients,
                n,
                target.clone(),
                concurrency.clone(),
                churn_config(&args),
                cli.duration,
                args.warmup,
                stop.clone(),
                quiet,
                cli.server_pid,
            )
            .await,
        ),
        Some(_) => None,
        None => {
            // Plain hold: keep the sessions open for --duration.
            let start = Instant::now();
            let deadline = tokio::time::Instant::now() + cli.duration;
            let mut tick = tokio::time::interval_at(
                tokio::time::Instant::now() + Duration::from_secs(1),
                Duration::from_secs(1),
            );
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(deadline) => break,
                    _ = stop.changed() => break,
                    _ = tick.tick() => {
                        if !quiet {
                            eprintln!(
                                "[{:>5.1}s] holding {} sessions, {} dropped, server RSS {} KiB",
                                start.elapsed().as_secs_f64(),
                                opened - shared.dropped.get(),
                                shared.dropped.get(),
                                show(read_rss()),
                            );
                        }
                    }
                }
            }
            None
        }
    };
    if let Some(m) = &mut mem {
        m.end_kib = read_rss();
    }
    report.dropped = shared.dropped.get();
    report.memory = mem;
    let _ = phase_tx.send(Phase::Stop);
    ((report, churn_result), shared)
}

async fn sleep_or_stop(d: Duration, stop: &mut watch::Receiver<bool>) {
    if *stop.borrow() {
        return;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = stop.changed() => {}
    }
}

fn cpu_line(c: &CpuUse) -> String {
    format!(
        "server {} cores, generator {} cores, other processes {} cores (interrupts {} cores, counted in those)",
        show(c.server_cores),
        show(c.generator_cores),
        show(c.other_cores),
        show(c.interrupt_cores)
    )
}

/// The 1-minute load average.
fn loadavg() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn show<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or("?".into(), |v| v.to_string())
}

/// Startup mode: spawn the command, poll the URL's address until it accepts, kill it.
async fn startup(target: &Target, runs: u32, command: &[String]) -> Result<StartupReport, String> {
    let addr = target.addr;
    let command = command.to_vec();
    tokio::task::spawn_blocking(move || {
        let mut all = Vec::new();
        for _ in 0..runs.max(1) {
            if std::net::TcpStream::connect(addr).is_ok() {
                return Err(format!(
                    "something already listens on {addr}; stop it or choose another --url port"
                ));
            }
            let t0 = Instant::now();
            let mut child = std::process::Command::new(&command[0])
                .args(&command[1..])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .map_err(|e| format!("cannot start {:?}: {e}", command[0]))?;
            let mut up = None;
            while t0.elapsed() < Duration::from_secs(10) {
                if std::net::TcpStream::connect(addr).is_ok() {
                    up = Some(t0.elapsed());
                    break;
                }
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!("the server exited before listening: {status}"));
                }
                std::thread::sleep(Duration::from_micros(100));
            }
            let _ = child.kill();
            let _ = child.wait();
            let up = up.ok_or("the server did not listen within 10s")?;
            all.push((up.as_secs_f64() * 1e5).round() / 100.0);
            // Let the port's sockets go before the next start.
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut sorted = all.clone();
        sorted.sort_by(f64::total_cmp);
        Ok(StartupReport {
            command,
            runs: all.len(),
            min_ms: sorted[0],
            median_ms: sorted[sorted.len() / 2],
            max_ms: sorted[sorted.len() - 1],
            all_ms: all,
        })
    })
    .await
    .map_err(|e| e.to_string())?
}

/// The human summary.
fn table(r: &Report) -> String {
    use std::fmt::Write;
    let mut t = String::new();
    let mut row = |k: &str, v: String| {
        let _ = writeln!(t, "  {k:<34} {v}");
    };
    row("mode", format!("{} ({})", r.mode, r.url));
    if let Some(h) = &r.hold {
        row(
            "idle sessions opened",
            format!("{} of {} ({} failed)", h.opened, h.sessions, h.failed),
        );
        row(
            "setup",
            format!("{:.2}s, {:.0} sessions/s", h.setup_s, h.setup_per_s),
        );
        row("CPU (setup)", cpu_line(&h.setup_cpu));
        if let Some(m) = &h.memory {
            row(
                "server RSS before",
                format!("{} KiB (pid {})", show(m.before_kib), m.server_pid),
            );
            row(
                "server RSS idle",
                format!(
                    "{} KiB, {} KiB/session",
                    show(m.idle_kib),
                    show(m.idle_per_session_kib)
                ),
            );
            if h.payload_bytes.is_some() {
                row(
                    "server RSS after payload",
                    format!(
                        "{} KiB, {} KiB/session",
                        show(m.after_payload_kib),
                        show(m.after_payload_per_session_kib)
                    ),
                );
            }
            row("server RSS at end", format!("{} KiB", show(m.end_kib)));
        }
        if let (Some(b), Some(x)) = (h.payload_bytes, h.exchanged) {
            row(
                "payload exchanged",
                format!(
                    "{x} sessions sent+received {b} B in {:.2}s",
                    h.exchange_s.unwrap_or(0.0)
                ),
            );
        }
        row("dropped while held", h.dropped.to_string());
        row(
            "generator RSS",
            format!("{} KiB", show(h.generator_rss_kib)),
        );
    }
    if let Some(c) = &r.churn {
        row(
            "churn clients",
            format!(
                "{} of {} ({} failed), setup {:.2}s ({:.0}/s)",
                c.opened, c.clients, c.failed, c.setup_s, c.setup_per_s
            ),
        );
        row(
            "measured",
            format!("{:.2}s after {:.1}s warm-up", c.measured_s, c.warmup_s),
        );
        if let Some(rate) = c.rate_target {
            row("rate target", format!("{rate:.0} relayed msgs/s"));
        }
        row(
            "matches",
            format!("{} ({:.0}/s)", c.matches, c.matches_per_s),
        );
        row("complete exchanges", c.exchanges.to_string());
        row(
            "relayed messages",
            format!(
                "{} sent, {} received ({:.0}/s)",
                c.relay_sent, c.relay_received, c.relay_per_s
            ),
        );
        row(
            "all frames",
            format!(
                "{} sent, {} received ({:.0}/s)",
                c.frames_sent, c.frames_received, c.frames_per_s
            ),
        );
        row("CPU (measured period)", cpu_line(&c.cpu));
        let l = &c.latency;
        row(
            "relay latency",
            format!(
                "p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  ({} samples)",
                fmt_us(l.p50_us),
                fmt_us(l.p90_us),
                fmt_us(l.p99_us),
                fmt_us(l.p999_us),
                fmt_us(l.max_us),
                l.samples
            ),
        );
    }
    if let Some(s) = &r.startup {
        row(
            "start-up to listening",
            format!(
                "min {:.2}ms  median {:.2}ms  max {:.2}ms ({} runs)",
                s.min_ms, s.median_ms, s.max_ms, s.runs
            ),
        );
    }
    if let Some(f) = &r.flood {
        row(
            "flooders",
            format!(
                "{} ({} connections, {} matched)",
                f.flooders, f.connections, f.matched
            ),
        );
        row(
            "chat written",
            format!(
                "{} ({:.0}/s) of {} characters",
                f.sent, f.sent_per_s, f.text_bytes
            ),
        );
        row(
            "chat relayed to partners",
            format!("{} ({:.0}/s)", f.relayed, f.relayed_per_s),
        );
        row("rate_limited received", f.rate_limited.to_string());
        let closes: Vec<String> = f.closes.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        row("sessions ended (close code)", closes.join(", "));
        row("CPU", cpu_line(&f.cpu));
        row(
            "server CPU per chat written",
            f.server_us_per_sent
                .map_or("?".into(), |us| format!("{us}µs")),
        );
    }
    row(
        "machine",
        format!(
            "{} cores, load average {} at start, {} at end",
            r.cpus,
            show(r.loadavg_start),
            show(r.loadavg_end)
        ),
    );
    row("errors", r.errors.total.to_string());
    for (k, v) in &r.errors.by_kind {
        row(&format!("  {k}"), v.to_string());
    }
    if r.interrupted {
        row("interrupted", "yes (Ctrl-C)".into());
    }
    t
}

/// What to do about errors that come from the server's abuse limits rather than its capacity.
fn hints(errors: &BTreeMap<String, u64>) -> Vec<&'static str> {
    let mut hints = Vec::new();
    if errors.keys().any(|k| k.contains("429")) {
        hints.push(
            "the server refused connections per IP (429): start it with a larger --max-per-ip \
             or give the generator more --source-addrs",
        );
    }
    if errors.keys().any(|k| k.contains("503")) {
        hints.push("the server is full (503): start it with a larger --max-connections");
    }
    if errors.contains_key("server_error_rate_limited") {
        hints.push(
            "the server rate-limited clients: for a capacity benchmark start it with large \
             --relay-rate/--relay-burst/--join-rate/--join-burst",
        );
    }
    if errors
        .keys()
        .any(|k| k.starts_with("timeout_waiting_for_partner (answerer, sent 0"))
    {
        hints.push(
            "an answerer never got its offer although the offerer sent it: the server dropped \
             a relayed message (one that overtook the `matched` event into the partner's queue?)",
        );
    }
    if errors.contains_key("timeout_waiting_for_match") {
        hints.push(
            "clients waited in vain for a match: the server does not pair recent partners \
             again (--rematch-cooldown); use more clients or start it with --rematch-cooldown 0",
        );
    }
    if errors.keys().any(|k| k.contains("too_many_open_files")) {
        hints.push("out of file descriptors: check `ulimit -n` of the generator and the server");
    }
    hints
}
