//! How long a restart takes to replay the report store: `cargo bench --bench report_store`.
//!
//! For each size, a store of that many recent reports against one client (from two people,
//! never enough for a ban) is written, and a server is started on it; the figure is from the
//! start of `server::run` to its first `/healthz` answer, which comes after the replay. The
//! replay counts each report in O(1), so the time per report should stay flat as the store
//! grows; a store larger than the most a compacted store keeps is also rewritten to that
//! size at start-up, which the last rows include. Three starts per size; the median is
//! printed, with the load average before and after (the figures mean something only on an
//! otherwise idle machine).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{TestServer, scratch_file};

/// Store sizes measured (the last is above the 50,000 a compacted store keeps).
const SIZES: [u64; 5] = [5_000, 10_000, 20_000, 40_000, 80_000];
/// Starts per size.
const STARTS: usize = 3;

fn main() {
    println!("load average before: {}", load_average());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    println!("  reports   start → healthz (median ms)   µs per report");
    for size in SIZES {
        let mut took: Vec<Duration> = (0..STARTS).map(|_| rt.block_on(start_on(size))).collect();
        took.sort();
        let median = took[STARTS / 2];
        println!(
            "  {size:>7}   {:>27.0}   {:>13.1}",
            median.as_secs_f64() * 1000.0,
            median.as_secs_f64() * 1e6 / size as f64
        );
    }
    println!("load average after: {}", load_average());
}

/// Writes a store of `size` reports, starts a server on it and times its first answer.
async fn start_on(size: u64) -> Duration {
    let log = scratch_file("reports.jsonl");
    let now = strangers::ids::now_ms();
    let mut lines = String::with_capacity(size as usize * 160);
    for n in 0..size {
        let by = if n % 2 == 0 { "aa" } else { "bb" };
        lines.push_str(&format!(
            "{{\"at_ms\":{},\"reporter\":\"{}\",\"reported\":\"{}\",\"reason\":\"spam\"}}\n",
            now - size + n,
            by.repeat(16),
            "cc".repeat(16)
        ));
    }
    std::fs::write(&log, lines).expect("the store is written");
    let started = Instant::now();
    let server = TestServer::start_with_report_log(&[], &log).await;
    let health = server.health().await;
    let took = started.elapsed();
    assert_eq!(health["status"], "ok", "the server started on the store");
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(log.parent().expect("a scratch directory"));
    took
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}
