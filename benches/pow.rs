//! What a join's proof of work costs: `cargo bench --bench pow` (`-- --native` for the
//! native part only).
//!
//! - **Native** (what a bot pays, in this release build: the SHA-256 of the `sha2` crate,
//!   with the CPU's SHA extensions when it has them): for each difficulty, random challenges
//!   solved one after another on one thread, timed in that thread's CPU time.
//! - **Browser** (what a person's page pays): headless Chromium solves the same kind of
//!   challenges in the page's own Web Worker (`static/pow-worker.js`), timed in the page
//!   from `postMessage` to the answer.
//!
//! A solve takes 2^bits hashes on average, with a long tail (the number of tries is
//! geometric), so both the mean and the 90th percentile are printed. The load average
//! before and after is printed: the figures mean something only on an otherwise idle
//! machine.

#[path = "../tests/browser_harness/mod.rs"]
mod harness;

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Duration;

use common::TestServer;
use harness::{Browser, Media};
use strangers::pow::Challenge;

/// Difficulties measured, and how many solves of each (fewer for the slow ones).
const LEVELS: [(u8, usize); 6] = [(12, 200), (14, 100), (16, 60), (18, 30), (20, 12), (22, 6)];

fn main() {
    let native_only = std::env::args().any(|a| a == "--native");
    println!("load average before: {}", load_average());
    native();
    if !native_only && let Some(tools) = harness::tools_or_skip() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        rt.block_on(browser(&tools));
    }
    println!("load average after: {}", load_average());
}

fn native() {
    println!("native (one thread, CPU time per solve):");
    println!("  bits  solves      mean ms     p50 ms     p90 ms");
    for (bits, solves) in LEVELS {
        let mut ms: Vec<f64> = (0..solves)
            .map(|_| {
                let challenge = Challenge {
                    seed: rand_seed(),
                    bits,
                };
                let started = thread_cpu();
                let nonce = challenge.solve().expect("a solution");
                let spent = thread_cpu() - started;
                assert!(challenge.solved_by(nonce));
                spent.as_secs_f64() * 1000.0
            })
            .collect();
        print_row(bits, &mut ms);
    }
}

async fn browser(tools: &harness::Tools) {
    let server = TestServer::start(&[]).await;
    let base = format!("http://{}", server.addr);
    let pages = Browser::launch_all(tools, &base, &[("A", Media::Fake)]).await;
    let page = &pages[0];
    page.open("/").await;
    println!("headless Chromium (the page's Web Worker, wall time per solve):");
    println!("  bits  solves      mean ms     p50 ms     p90 ms");
    page.eval(
        "(window.__powBench = new Worker('/static/pow-worker.js', { type: 'module' }), true)",
    )
    .await;
    for (bits, solves) in LEVELS {
        let mut ms = Vec::with_capacity(solves);
        for _ in 0..solves {
            let seed = format!("{:032x}", rand_seed());
            // One solve per script, so none runs into WebDriver's script timeout.
            let script = format!(
                r#"(async () => {{
  const worker = window.__powBench;
  const started = performance.now();
  await new Promise((resolve) => {{
    worker.onmessage = () => resolve();
    worker.postMessage({{ seed: '{seed}', bits: {bits} }});
  }});
  return performance.now() - started;
}})()"#
            );
            ms.push(page.eval(&script).await.as_f64().expect("a time"));
        }
        print_row(bits, &mut ms);
    }
}

fn print_row(bits: u8, ms: &mut [f64]) {
    ms.sort_by(f64::total_cmp);
    let mean = ms.iter().sum::<f64>() / ms.len() as f64;
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    println!(
        "  {bits:>4}  {:>6}  {mean:>11.2}  {:>9.2}  {:>9.2}",
        ms.len(),
        at(0.5),
        at(0.9)
    );
}

fn rand_seed() -> u128 {
    rand::random()
}

/// This thread's CPU time.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}
