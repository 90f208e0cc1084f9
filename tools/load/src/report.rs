//! The run's summary: the JSON report, the table for people, and hints about what the errors
//! mean.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use crate::churn;
use crate::flood;
use crate::hold::HoldReport;
use crate::startup::StartupReport;
use crate::stats::{CpuUse, fmt_us, show};

/// Errors met during the run.
#[derive(Serialize, Debug)]
pub struct ErrorsReport {
    /// All errors: the run fails (exit code 1) unless it is 0.
    pub total: u64,
    /// The errors by kind, so a reader can tell what went wrong.
    pub by_kind: BTreeMap<String, u64>,
}

/// What one run measured, printed as JSON with `--json`.
#[derive(Serialize, Debug)]
pub struct Report {
    /// Names the program that wrote the report, for files collected from several tools.
    pub tool: &'static str,
    /// The generator's version, since figures can change with it.
    pub version: &'static str,
    /// The mode run (`hold`, `churn`, `mixed`, `startup`, `flood`).
    pub mode: &'static str,
    /// The server(s) loaded (`--url`).
    pub url: String,
    /// When the run started (Unix seconds), to match a report with the machine's state then.
    pub started_unix_s: u64,
    /// The `--duration` asked for.
    pub duration_s: f64,
    /// How long the whole run took, setup included.
    pub wall_s: f64,
    /// Whether Ctrl-C cut the run short (its figures then cover less time).
    pub interrupted: bool,
    /// Cores and the 1-minute load average at the start and the end: a busy machine (other
    /// processes competing for the cores) makes every figure worse.
    pub cpus: usize,
    /// The 1-minute load average at the start (see `cpus`).
    pub loadavg_start: Option<f64>,
    /// The 1-minute load average at the end (see `cpus`).
    pub loadavg_end: Option<f64>,
    /// The held sessions' figures (hold and mixed modes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold: Option<HoldReport>,
    /// The churn clients' figures (churn and mixed modes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub churn: Option<churn::Report>,
    /// The start-up times (startup mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub startup: Option<StartupReport>,
    /// The flooders' figures (flood mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flood: Option<flood::Report>,
    /// Errors of every client of the run.
    pub errors: ErrorsReport,
}

/// What a mode measured, before the run's own figures (time, machine) are added.
#[derive(Default)]
pub struct Measured {
    /// See [`Report::hold`].
    pub hold: Option<HoldReport>,
    /// See [`Report::churn`].
    pub churn: Option<churn::Report>,
    /// See [`Report::startup`].
    pub startup: Option<StartupReport>,
    /// See [`Report::flood`].
    pub flood: Option<flood::Report>,
    /// Errors by kind, summed over every kind of client the mode ran.
    pub errors: BTreeMap<String, u64>,
}

impl Measured {
    /// Adds one group of clients' errors to the tally.
    pub fn add_errors(&mut self, errors: BTreeMap<String, u64>) {
        for (kind, n) in errors {
            *self.errors.entry(kind).or_insert(0) += n;
        }
    }
}

/// The lines of the human summary: a label column and a value.
#[derive(Default)]
struct Table(String);

impl Table {
    fn row(&mut self, label: &str, value: String) {
        let _ = writeln!(self.0, "  {label:<34} {value}");
    }
}

/// The human summary.
pub fn table(r: &Report) -> String {
    let mut t = Table::default();
    t.row("mode", format!("{} ({})", r.mode, r.url));
    if let Some(h) = &r.hold {
        hold_rows(&mut t, h);
    }
    if let Some(c) = &r.churn {
        churn_rows(&mut t, c);
    }
    if let Some(s) = &r.startup {
        t.row(
            "start-up to listening",
            format!(
                "min {:.2}ms  median {:.2}ms  max {:.2}ms ({} runs)",
                s.min_ms, s.median_ms, s.max_ms, s.runs
            ),
        );
    }
    if let Some(f) = &r.flood {
        flood_rows(&mut t, f);
    }
    t.row(
        "machine",
        format!(
            "{} cores, load average {} at start, {} at end",
            r.cpus,
            show(r.loadavg_start),
            show(r.loadavg_end)
        ),
    );
    t.row("errors", r.errors.total.to_string());
    for (k, v) in &r.errors.by_kind {
        t.row(&format!("  {k}"), v.to_string());
    }
    if r.interrupted {
        t.row("interrupted", "yes (Ctrl-C)".into());
    }
    t.0
}

fn hold_rows(t: &mut Table, h: &HoldReport) {
    t.row(
        "idle sessions opened",
        format!("{} of {} ({} failed)", h.opened, h.sessions, h.failed),
    );
    t.row(
        "setup",
        format!("{:.2}s, {:.0} sessions/s", h.setup_s, h.setup_per_s),
    );
    t.row("CPU (setup)", cpu_line(&h.setup_cpu));
    if let Some(m) = &h.memory {
        t.row(
            "server RSS before",
            format!("{} KiB (pid {})", show(m.before_kib), m.server_pid),
        );
        t.row(
            "server RSS idle",
            format!(
                "{} KiB, {} KiB/session",
                show(m.idle_kib),
                show(m.idle_per_session_kib)
            ),
        );
        if h.payload_bytes.is_some() {
            t.row(
                "server RSS after payload",
                format!(
                    "{} KiB, {} KiB/session",
                    show(m.after_payload_kib),
                    show(m.after_payload_per_session_kib)
                ),
            );
        }
        t.row("server RSS at end", format!("{} KiB", show(m.end_kib)));
    }
    if let (Some(b), Some(x)) = (h.payload_bytes, h.exchanged) {
        t.row(
            "payload exchanged",
            format!(
                "{x} sessions sent+received {b} B in {:.2}s",
                h.exchange_s.unwrap_or(0.0)
            ),
        );
    }
    t.row("dropped while held", h.dropped.to_string());
    t.row(
        "generator RSS",
        format!("{} KiB", show(h.generator_rss_kib)),
    );
}

fn churn_rows(t: &mut Table, c: &churn::Report) {
    t.row(
        "churn clients",
        format!(
            "{} of {} ({} failed), setup {:.2}s ({:.0}/s)",
            c.opened, c.clients, c.failed, c.setup_s, c.setup_per_s
        ),
    );
    t.row(
        "measured",
        format!("{:.2}s after {:.1}s warm-up", c.measured_s, c.warmup_s),
    );
    if let Some(rate) = c.rate_target {
        t.row("rate target", format!("{rate:.0} relayed msgs/s"));
    }
    t.row(
        "matches",
        format!("{} ({:.0}/s)", c.matches, c.matches_per_s),
    );
    t.row("complete exchanges", c.exchanges.to_string());
    t.row(
        "relayed messages",
        format!(
            "{} sent, {} received ({:.0}/s)",
            c.relay_sent, c.relay_received, c.relay_per_s
        ),
    );
    t.row(
        "all frames",
        format!(
            "{} sent, {} received ({:.0}/s)",
            c.frames_sent, c.frames_received, c.frames_per_s
        ),
    );
    t.row("CPU (measured period)", cpu_line(&c.cpu));
    let l = &c.latency;
    t.row(
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

fn flood_rows(t: &mut Table, f: &flood::Report) {
    t.row(
        "flooders",
        format!(
            "{} ({} connections, {} matched)",
            f.flooders, f.connections, f.matched
        ),
    );
    t.row(
        "chat written",
        format!(
            "{} ({:.0}/s) of {} characters",
            f.sent, f.sent_per_s, f.text_bytes
        ),
    );
    t.row(
        "chat relayed to partners",
        format!("{} ({:.0}/s)", f.relayed, f.relayed_per_s),
    );
    t.row("rate_limited received", f.rate_limited.to_string());
    let closes: Vec<String> = f.closes.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    t.row("sessions ended (close code)", closes.join(", "));
    t.row("CPU", cpu_line(&f.cpu));
    t.row(
        "server CPU per chat written",
        f.server_us_per_sent
            .map_or("?".into(), |us| format!("{us}µs")),
    );
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
pub fn loadavg() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// What to do about errors that come from the server's abuse limits rather than its capacity.
pub fn hints(errors: &BTreeMap<String, u64>) -> Vec<&'static str> {
    let mut hints = Vec::new();
    if errors.keys().any(|k| k.contains("429")) {
        hints.push(
            "the server refused connections per IP (429): start it with a larger --max-per-ip \
             and --max-pending-per-ip, or give the generator more --source-addrs",
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
