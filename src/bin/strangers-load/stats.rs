//! Counters, error tallies and latency histograms shared by every simulated client.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

/// The process-wide clock origin: every timestamp put in a payload is nanoseconds since it.
/// Sender and receiver live in this one process, so their clocks agree exactly.
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// Nanoseconds since [`EPOCH`].
pub fn now_ns() -> u64 {
    EPOCH.elapsed().as_nanos() as u64
}

/// The [`Instant`] that is `ns` nanoseconds after [`EPOCH`].
pub fn instant_at(ns: u64) -> Instant {
    *EPOCH + Duration::from_nanos(ns)
}

/// Starts the clock (call once, early).
pub fn init_clock() {
    LazyLock::force(&EPOCH);
}

/// A relaxed event counter.
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

/// Errors by kind. Errors are rare, so one lock is fine.
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
    shards: Vec<Mutex<Histogram<u64>>>,
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
    pub samples: u64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
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
