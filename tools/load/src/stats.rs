//! Counters, error tallies and latency histograms shared by every simulated client.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::Instant;

use hdrhistogram::Histogram;
use serde::Serialize;

/// The process-wide clock origin: every timestamp put in a payload is nanoseconds since it.
/// Sender and receiver live in this one process, so their clocks agree exactly.
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// Nanoseconds since [`EPOCH`].
pub fn now_ns() -> u64 {
    EPOCH.elapsed().as_nanos() as u64
}

/// Starts the clock (call once, early).
pub fn init_clock() {
    LazyLock::force(&EPOCH);
}

/// A relaxed event counter (the count, read for reports and progress lines).
#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Errors by kind (the tally, under one lock: errors are rare).
#[derive(Default)]
pub struct Errors(Mutex<BTreeMap<String, u64>>);

impl Errors {
    pub fn add(&self, kind: impl Into<String>) {
        *self.0.lock().unwrap().entry(kind.into()).or_insert(0) += 1;
    }
    pub fn total(&self) -> u64 {
        self.0.lock().unwrap().values().sum()
    }
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().unwrap().clone()
    }
}

/// Highest latency the histograms can hold (anything above is clamped), in nanoseconds.
const MAX_NS: u64 = 120_000_000_000;
/// Shards of the live histogram: a client records into shard `index % SHARDS`, so two worker
/// threads rarely contend for one lock.
const SHARDS: usize = 32;

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_NS, 3).expect("valid histogram bounds")
}

/// Latency of relayed messages, in nanoseconds: sharded live histograms that the progress
/// ticker folds into a cumulative one (and an interval one for the progress line).
pub struct Latency {
    /// Where clients record, [`SHARDS`] of them so that clients rarely wait on one lock.
    shards: Vec<Mutex<Histogram<u64>>>,
    /// Everything folded so far: the run's figures.
    total: Mutex<Histogram<u64>>,
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            shards: (0..SHARDS).map(|_| Mutex::new(histogram())).collect(),
            total: Mutex::new(histogram()),
        }
    }
}

impl Latency {
    pub fn record(&self, shard: usize, ns: u64) {
        self.shards[shard % SHARDS]
            .lock()
            .unwrap()
            .saturating_record(ns.max(1));
    }

    /// Moves what was recorded since the last call into the cumulative histogram and returns
    /// it as its own histogram (the interval's).
    pub fn fold(&self) -> Histogram<u64> {
        let mut interval = histogram();
        for shard in &self.shards {
            let mut s = shard.lock().unwrap();
            if !s.is_empty() {
                interval.add(&*s).expect("same bounds");
                s.reset();
            }
        }
        self.total
            .lock()
            .unwrap()
            .add(&interval)
            .expect("same bounds");
        interval
    }

    /// Everything recorded so far (folds first).
    pub fn summary(&self) -> LatencySummary {
        self.fold();
        LatencySummary::of(&self.total.lock().unwrap())
    }

    /// Forgets everything recorded so far (used to drop a warm-up period).
    pub fn clear(&self) {
        self.fold();
        self.total.lock().unwrap().reset();
    }
}

/// Percentiles of one histogram, in microseconds.
#[derive(Serialize, Clone, Debug, Default)]
pub struct LatencySummary {
    /// Messages timed: a percentile of few samples means little.
    pub samples: u64,
    /// The median.
    pub p50_us: f64,
    /// The 90th percentile.
    pub p90_us: f64,
    /// The 99th percentile: the tail a user in a hundred meets.
    pub p99_us: f64,
    /// The 99.9th percentile.
    pub p999_us: f64,
    /// The slowest message.
    pub max_us: f64,
    /// The mean, which the tail pulls up.
    pub mean_us: f64,
}

fn us(ns: u64) -> f64 {
    (ns as f64 / 10.0).round() / 100.0
}

impl LatencySummary {
    pub fn of(h: &Histogram<u64>) -> LatencySummary {
        if h.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            samples: h.len(),
            p50_us: us(h.value_at_quantile(0.5)),
            p90_us: us(h.value_at_quantile(0.9)),
            p99_us: us(h.value_at_quantile(0.99)),
            p999_us: us(h.value_at_quantile(0.999)),
            max_us: us(h.max()),
            mean_us: (h.mean() / 10.0).round() / 100.0,
        }
    }
}

/// A microsecond figure for humans: `87µs`, `1.24ms`, `2.1s`.
pub fn fmt_us(v: f64) -> String {
    if v < 1000.0 {
        format!("{v:.0}µs")
    } else if v < 1_000_000.0 {
        format!("{:.2}ms", v / 1000.0)
    } else {
        format!("{:.2}s", v / 1_000_000.0)
    }
}

/// Resident set size of process `pid` in KiB, from `/proc/<pid>/status`.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// This process's soft open-files limit, from `/proc/self/limits`.
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// CPU time (user + system) process `pid` has used, in seconds, from `/proc/<pid>/stat`.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 here (0-based 11, 12).
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux architecture that matters here.
    Some(ticks as f64 / 100.0)
}

/// CPU time the machine has spent in processes (user, nice, system) and in interrupts
/// (irq, softirq: on loopback that is mostly our own packets), in seconds, from `/proc/stat`.
pub fn machine_busy_seconds() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu = stat.lines().next()?.strip_prefix("cpu ")?;
    let f: Vec<u64> = cpu
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal
    let processes = f.first()? + f.get(1)? + f.get(2)?;
    let interrupts = f.get(5)? + f.get(6)?;
    Some((processes as f64 / 100.0, interrupts as f64 / 100.0))
}

/// CPU use over an interval: the server's, the generator's, and everything else's (other
/// processes competing for the same cores make the figures worse).
#[derive(Clone, Copy, Debug)]
pub struct CpuMark {
    /// When the mark was taken, to turn CPU seconds into cores.
    at: Instant,
    /// The server's CPU seconds so far (with `--server-pid`).
    server: Option<f64>,
    /// This generator's CPU seconds so far.
    generator: Option<f64>,
    /// The machine's busy seconds so far: processes, interrupts.
    machine: Option<(f64, f64)>,
}

/// Cores used over an interval (1.0 = one core busy throughout).
#[derive(Serialize, Clone, Copy, Debug, Default)]
pub struct CpuUse {
    /// The server's share (with `--server-pid`): what the figures cost it.
    pub server_cores: Option<f64>,
    /// The generator's own share: a saturated generator limits the figures.
    pub generator_cores: Option<f64>,
    /// Every other process on the machine.
    pub other_cores: Option<f64>,
    /// Interrupt handling (irq + softirq), on loopback mostly the delivery of the benchmark's
    /// own packets; already included in the figures above (a process is charged for the
    /// interrupts handled while it runs).
    pub interrupt_cores: Option<f64>,
}

impl CpuMark {
    pub fn now(server_pid: Option<u32>) -> CpuMark {
        CpuMark {
            at: Instant::now(),
            server: server_pid.and_then(cpu_seconds),
            generator: cpu_seconds(std::process::id()),
            machine: machine_busy_seconds(),
        }
    }

    /// Use from `self` until `later`.
    pub fn until(&self, later: &CpuMark) -> CpuUse {
        let secs = (later.at - self.at).as_secs_f64().max(1e-9);
        let cores = |a: Option<f64>, b: Option<f64>| {
            a.zip(b)
                .map(|(a, b)| ((b - a) / secs * 100.0).round() / 100.0)
        };
        let server = cores(self.server, later.server);
        let generator = cores(self.generator, later.generator);
        let machine = cores(self.machine.map(|m| m.0), later.machine.map(|m| m.0));
        let interrupts = cores(self.machine.map(|m| m.1), later.machine.map(|m| m.1));
        // A process's system time includes the interrupts handled while it ran, so the
        // machine's total for comparison includes them too.
        let other = machine.zip(interrupts).map(|(m, i)| {
            let mine = server.unwrap_or(0.0) + generator.unwrap_or(0.0);
            ((m + i - mine).max(0.0) * 100.0).round() / 100.0
        });
        CpuUse {
            server_cores: server,
            generator_cores: generator,
            other_cores: other.filter(|_| server.is_some()),
            interrupt_cores: interrupts,
        }
    }
}

/// A figure that may be unknown, `?` then.
pub fn show<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or("?".into(), |v| v.to_string())
}
