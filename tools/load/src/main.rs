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
mod cli;
mod control;
mod flood;
mod hold;
mod net;
mod pacer;
mod report;
mod startup;
mod stats;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use tokio::sync::{Semaphore, watch};

use crate::cli::{ChurnArgs, Cli, Mode};
use crate::hold::Hold;
use crate::net::Target;
use crate::report::{ErrorsReport, Measured, Report, hints, loadavg, table};
use crate::stats::open_files_limit;

fn main() -> ExitCode {
    stats::init_clock();
    let cli = Cli::parse();
    if let Err(e) = cli.check() {
        eprintln!("{e}");
        return ExitCode::from(2);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.worker_threads())
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

/// One run: checks the target, runs the mode, prints the summary; exit code 1 if any error
/// was met.
async fn run(cli: Cli) -> Result<ExitCode, String> {
    let target = Target::resolve(
        &cli.url,
        cli.allow_remote,
        cli.source_addrs,
        cli.connect_timeout,
    )
    .await?;
    let target = Arc::new(target);
    warn_if_few_open_files(cli.mode.sockets());
    let stop = control::stop_on_ctrl_c();
    // A run is bounded whatever happens to the server.
    control::exit_after(cli.duration + Duration::from_secs(600));

    let started_unix_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let wall = Instant::now();
    let loadavg_start = loadavg();
    let measured = measure(&cli, &target, stop.clone()).await?;
    let total = measured.errors.values().sum();
    let report = Report {
        tool: "strangers-load",
        version: env!("CARGO_PKG_VERSION"),
        mode: cli.mode.name(),
        url: cli.url.clone(),
        started_unix_s,
        duration_s: cli.duration.as_secs_f64(),
        wall_s: wall.elapsed().as_secs_f64(),
        interrupted: *stop.borrow(),
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        loadavg_start,
        loadavg_end: loadavg(),
        hold: measured.hold,
        churn: measured.churn,
        startup: measured.startup,
        flood: measured.flood,
        errors: ErrorsReport {
            total,
            by_kind: measured.errors,
        },
    };
    print_summary(&report, cli.json);
    Ok(if report.errors.total == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Warns when `sockets` open at once would need more files than this process may open.
fn warn_if_few_open_files(sockets: usize) {
    if let Some(limit) = open_files_limit()
        && sockets as u64 + 32 > limit
    {
        eprintln!(
            "warning: {sockets} sockets need about {} open files but this process may open {limit} \
             (ulimit -n); expect connect errors",
            sockets + 32
        );
    }
}

/// Runs the chosen mode and returns what it measured.
async fn measure(
    cli: &Cli,
    target: &Arc<Target>,
    mut stop: watch::Receiver<bool>,
) -> Result<Measured, String> {
    let concurrency = Arc::new(Semaphore::new(cli.connect_concurrency));
    let mut m = Measured::default();
    match &cli.mode {
        Mode::Hold(args) => {
            let hold = Hold::open(
                args,
                target,
                &concurrency,
                cli.server_pid,
                cli.quiet,
                &mut stop,
            )
            .await;
            hold.keep_open(cli.duration, &mut stop).await;
            let (report, shared) = hold.close();
            m.add_errors(shared.errors.snapshot());
            m.hold = Some(report);
        }
        Mode::Churn(args) => {
            let (report, shared) = churn_clients(cli, args, 0, target, &concurrency, &stop).await;
            m.add_errors(shared.errors.snapshot());
            m.churn = Some(report);
        }
        Mode::Mixed { hold, churn: args } => {
            let held = Hold::open(
                hold,
                target,
                &concurrency,
                cli.server_pid,
                cli.quiet,
                &mut stop,
            )
            .await;
            if !*stop.borrow() {
                let (report, shared) =
                    churn_clients(cli, args, hold.sessions, target, &concurrency, &stop).await;
                m.add_errors(shared.errors.snapshot());
                m.churn = Some(report);
            }
            let (report, shared) = held.close();
            m.add_errors(shared.errors.snapshot());
            m.hold = Some(report);
        }
        Mode::Startup { runs, command } => {
            m.startup = Some(startup::run(target, *runs, command).await?);
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
            m.add_errors(shared.errors.snapshot());
            m.flood = Some(report);
        }
    }
    Ok(m)
}

/// Runs churn clients numbered from `base_index` (after the held sessions in mixed mode) for
/// `--duration`.
async fn churn_clients(
    cli: &Cli,
    args: &ChurnArgs,
    base_index: usize,
    target: &Arc<Target>,
    concurrency: &Arc<Semaphore>,
    stop: &watch::Receiver<bool>,
) -> (churn::Report, Arc<churn::Shared>) {
    churn::run(
        args.clients,
        base_index,
        target.clone(),
        concurrency.clone(),
        args.config(),
        cli.duration,
        args.warmup,
        stop.clone(),
        cli.quiet,
        cli.server_pid,
    )
    .await
}

/// Prints the hints, then the table on stdout, or with `json` the table on stderr and the
/// JSON report on stdout.
fn print_summary(report: &Report, json: bool) {
    for hint in hints(&report.errors.by_kind) {
        eprintln!("hint: {hint}");
    }
    let table = table(report);
    if json {
        eprint!("{table}");
        println!(
            "{}",
            serde_json::to_string_pretty(report).expect("the report serializes")
        );
    } else {
        print!("{table}");
    }
}
