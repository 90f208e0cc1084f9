//! What "Blur until safe" costs, in headless Chromium on this machine: `cargo bench --bench
//! safety` (`-- --runs N` for more calls than the default 5, `-- --window S` for a longer CPU
//! window than 20 s).
//!
//! Two pages (one browser each, the harness's fake camera) meet through the real server on
//! 127.0.0.1. Each run loads the call page afresh in both (so the classifier's worker starts
//! and loads the model again; the vendored files come from the browser's cache after the
//! first run, as for a returning user) and waits until A shows B's video after a safe
//! verdict. From A's page, in its own clock (`performance.now()`):
//!
//! - **model load**: the worker's load (TensorFlow.js, the WASM backend, the model, one
//!   warm-up inference), as the worker measures it, and from the page's request to ready;
//! - **first frame → first verdict**: from the first frame of B that A's `#remote-video`
//!   presents (`requestVideoFrameCallback`) to the first classification's answer, i.e. how
//!   long a user looks at a blurred stranger;
//! - **ms per classification**: every check (one a second), wall time in the worker from a
//!   frame's arrival to its answer: the first of each call and all those of the last call.
//!
//! Then, in the last call, A's browser's CPU time (every process of its profile, from
//! `/proc`) over a window with the gate on, and over as long a window after A turns "Blur
//! until safe" off: the difference is what the checks cost. The load average before and
//! after is printed: the figures mean something only on an otherwise idle machine.

#[path = "../tests/browser_harness/mod.rs"]
mod harness;

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::TestServer;
use harness::{Browser, Media, PATIENCE};
use serde_json::Value;

/// The first frame `#remote-video` presents on each document, in `performance.now()` time.
const FIRST_FRAME: &str = r#"(() => {
  window.__firstFrame = null;
  const watch = () => {
    const video = document.getElementById('remote-video');
    if (!video || typeof video.requestVideoFrameCallback !== 'function') return;
    video.requestVideoFrameCallback(() => { window.__firstFrame = performance.now(); });
  };
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', watch);
  else watch();
})();"#;

const SHOWN: &str = "getComputedStyle(document.getElementById('remote-video')).filter === 'none'";

fn main() {
    let mut runs = 5usize;
    let mut window = 20u64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |what: &str| -> usize {
            args.next()
                .and_then(|n| n.parse().ok())
                .filter(|&n| n >= 1)
                .unwrap_or_else(|| panic!("{what} takes a positive number"))
        };
        match arg.as_str() {
            "--runs" => runs = number("--runs"),
            "--window" => window = number("--window") as u64,
            _ => {} // cargo passes --bench; other libtest flags mean nothing here.
        }
    }
    let Some(tools) = harness::tools_or_skip() else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(async {
        let server = TestServer::start(&[]).await;
        let base = format!("http://{}", server.addr);
        println!("load average at the start: {}", loadavg());
        let pages =
            Browser::launch_all(&tools, &base, &[("A", Media::Fake), ("B", Media::Fake)]).await;
        let [a, b] = &pages[..] else { unreachable!() };
        a.add_init_script(FIRST_FRAME).await;
        let mut rows = Vec::new();
        for run in 0..runs {
            a.open("/chat?start=1").await;
            b.open("/chat?start=1").await;
            a.wait_video(PATIENCE).await;
            a.wait_for(SHOWN, "B's video shown after a safe verdict", PATIENCE * 3)
                .await;
            let row = a
                .eval("({ s: window.__strangers.safety, first: window.__firstFrame })")
                .await;
            println!("run {run}: {}", summary(&row));
            rows.push(row);
        }
        cpu_windows(a, b, Duration::from_secs(window)).await;
        // The last call's checks, all of them (its row was taken at its first verdict).
        if let Some(last) = rows.last_mut() {
            last["s"]["runs"] = a.eval("window.__strangers.safety.runs").await;
        }
        report(&rows);
        println!("load average at the end: {}", loadavg());
        let errors = a.console_errors().await;
        assert!(errors.is_empty(), "A logged errors: {errors:?}");
    });
}

fn summary(row: &Value) -> String {
    let s = &row["s"];
    format!(
        "backend {}, load {:.0} ms (worker) / {:.0} ms (page), first frame → verdict {:.0} ms",
        s["backend"],
        s["loadMs"].as_f64().unwrap_or(f64::NAN),
        s["ready"].as_f64().unwrap_or(f64::NAN) - s["loadStarted"].as_f64().unwrap_or(f64::NAN),
        s["firstResult"].as_f64().unwrap_or(f64::NAN) - row["first"].as_f64().unwrap_or(f64::NAN),
    )
}

/// A's CPU share over `window` of the call with the gate on, then with it turned off.
async fn cpu_windows(a: &Browser, b: &Browser, window: Duration) {
    let ticks_per_s = 100.0; // USER_HZ on Linux
    let measure = |label: &'static str| async move {
        let (a0, b0, t0) = (a.cpu_ticks(), b.cpu_ticks(), Instant::now());
        // The window is what is measured: there is nothing to wait for but time.
        tokio::time::sleep(window).await;
        let secs = t0.elapsed().as_secs_f64();
        let share = |ticks: u64| ticks as f64 / ticks_per_s / secs * 100.0;
        println!(
            "CPU over {secs:.0} s of a call, {label}: A {:.0} % of one core, B {:.0} %",
            share(a.cpu_ticks() - a0),
            share(b.cpu_ticks() - b0)
        );
    };
    measure("Blur until safe on (A checks B once a second)").await;
    let checks = a.eval("window.__strangers.safety.runs.length").await;
    a.click_css("#blur-safe").await;
    measure("Blur until safe off on A (B still checks A)").await;
    println!("(A had made {checks} checks in the call)");
}

fn report(rows: &[Value]) {
    let column = |f: &dyn Fn(&Value) -> Option<f64>| -> Vec<f64> {
        let mut v: Vec<f64> = rows
            .iter()
            .filter_map(f)
            .filter(|x| x.is_finite())
            .collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let load = column(&|r| r["s"]["loadMs"].as_f64());
    let first = column(&|r| Some(r["s"]["firstResult"].as_f64()? - r["first"].as_f64()?));
    let per: Vec<f64> = {
        let mut v: Vec<f64> = rows
            .iter()
            .flat_map(|r| r["s"]["runs"].as_array().cloned().unwrap_or_default())
            .filter_map(|x| x.as_f64())
            .collect();
        v.sort_by(f64::total_cmp);
        v
    };
    println!("\n| measure | n | median | p90 | max |\n| --- | --- | --- | --- | --- |");
    for (name, v) in [
        ("model load (worker), ms", &load),
        ("first frame → first verdict, ms", &first),
        ("one classification, ms", &per),
    ] {
        if v.is_empty() {
            continue;
        }
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        println!(
            "| {name} | {} | {:.0} | {:.0} | {:.0} |",
            v.len(),
            at(0.5),
            at(0.9),
            v[v.len() - 1]
        );
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}
