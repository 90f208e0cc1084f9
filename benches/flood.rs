//! Does a flooding client slow anyone else down? Relay latency of well-behaved churn clients
//! (`strangers-load churn`), first alone, then beside flooders (`strangers-load flood`) that
//! send chat as fast as their sockets take it, then alone again; and what the flood costs the
//! server.
//!
//! `cargo build --release -p strangers-load && cargo bench --bench flood` (loopback only,
//! about 40 s). Needs two cores, `taskset` and `chrt` (util-linux). So that the server never competes with the load for a CPU, the server
//! runs alone on CPU 0 and every client on CPU 1; the flooders run there in the `SCHED_IDLE`
//! class, so they get only the time the measured clients leave over. What is left to see is
//! the server's own share of the harm.
//!
//! The flooders give the interest `flood`, so they are paired with each other rather than
//! with the measured clients; the server runs with its default message rate limit (50/s,
//! burst 200), and the flooders reconnect whenever it closes them (1008). Join limits and the
//! re-match cooldown are lifted because the churn clients are bots that press Next many times
//! a second.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::process::Command;

/// Measured seconds of each churn run.
const SECONDS: u64 = 10;
/// Flooders (four pairs).
const FLOODERS: usize = 8;
/// The server's core, and the clients' core.
const SERVER_CPU: &str = "0";
const CLIENT_CPU: &str = "1";

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert!(
        cores >= 2,
        "the flood benchmark needs two cores (server and clients apart)"
    );
    // Before anything runs: the load generator is built apart from this bench.
    support::load_generator();
    let report = std::env::temp_dir().join(format!("strangers-flood-{}.jsonl", std::process::id()));
    // `taskset` execs the server, so the child's pid is the server's.
    let mut server = Command::new("taskset")
        .args(["-c", SERVER_CPU, env!("CARGO_BIN_EXE_strangers")])
        .args([
            "--listen",
            "127.0.0.1:0",
            "--stun",
            "",
            "--max-per-ip",
            "100000",
            "--max-pending-per-ip",
            "100000",
        ])
        .args(["--join-rate", "1000000", "--join-burst", "1000000"])
        .args(["--rematch-cooldown", "0s"])
        .arg("--report-log")
        .arg(&report)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the server starts (is `taskset` installed?)");
    let pid = server.id().expect("the server runs");
    let url = support::ws_url(&mut server).await;

    let alone = churn(&url, pid).await;
    let flood_only = flood(&url, pid, Duration::from_secs(5)).await;
    // The flood runs a second longer on each side of the measured churn.
    let flooding = tokio::spawn(flood_owned(
        url.clone(),
        pid,
        Duration::from_secs(SECONDS + 2),
    ));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let beside = churn(&url, pid).await;
    let flood_beside = flooding.await.unwrap();
    let again = churn(&url, pid).await;

    println!(
        "server on CPU {SERVER_CPU}; clients on CPU {CLIENT_CPU} (flooders SCHED_IDLE); \
         {FLOODERS} flooders"
    );
    println!("relay latency of 100 churn clients at 2,000 msgs/s, {SECONDS} s each (µs)");
    println!(
        "{:<16} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6} {:>6} {:>7} {:>6}",
        "", "p50", "p90", "p99", "p99.9", "max", "errors", "server", "softirq", "noise"
    );
    let flooders_cores = flood_beside["flood"]["cpu"]["generator_cores"]
        .as_f64()
        .unwrap_or(0.0);
    for (name, r, flooders) in [
        ("alone", &alone, 0.0),
        ("beside flooders", &beside, flooders_cores),
        ("alone again", &again, 0.0),
    ] {
        let l = &r["churn"]["latency"];
        let cpu = &r["churn"]["cpu"];
        // Everything but the server, the churn clients and our flooders: other engineers'
        // builds and benchmarks, which make any figure worse.
        let softirq = r["ksoftirqd_cores"].as_f64().unwrap_or(0.0);
        let noise = cpu["other_cores"]
            .as_f64()
            .map(|o| (o - flooders - softirq).max(0.0));
        println!(
            "{name:<16} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6} {:>6} {:>7} {:>6.2}",
            l["p50_us"],
            l["p90_us"],
            l["p99_us"],
            l["p999_us"],
            l["max_us"],
            r["errors"]["total"],
            cpu["server_cores"],
            softirq,
            noise.unwrap_or(f64::NAN)
        );
    }
    println!(
        "(cores used during the run by the server, by the kernel's softirq threads, and by \
         anything but those, the churn clients and the flooders (noise: e.g. other builds; a \
         run with noise above 0.1 is disturbed))"
    );
    for (name, r) in [
        ("flood alone", &flood_only),
        ("flood beside", &flood_beside),
    ] {
        let f = &r["flood"];
        println!(
            "{name}: {} s, {} chat written ({}/s), {} relayed ({}/s), {} rate_limited, \
             {} connections, closes {}; flooders {} cores, server {} cores",
            f["measured_s"],
            f["sent"],
            f["sent_per_s"],
            f["relayed"],
            f["relayed_per_s"],
            f["rate_limited"],
            f["connections"],
            f["closes"],
            f["cpu"]["generator_cores"],
            f["cpu"]["server_cores"],
        );
    }
    let _ = std::fs::remove_file(&report);
    let _ = std::fs::remove_file(report.with_extension("salt"));
}

/// Runs the load generator's churn mode on the clients' core and returns its JSON result,
/// with the cores the kernel's softirq threads used meanwhile (`ksoftirqd_cores`: loopback
/// packets handled outside any process, counted apart from the other processes' noise).
async fn churn(url: &str, server_pid: u32) -> Value {
    let (k0, t0) = (ksoftirqd_seconds(), Instant::now());
    let out = Command::new("taskset")
        .args(["-c", CLIENT_CPU])
        .arg(support::load_generator())
        .args(["--url", url, "--duration", &format!("{SECONDS}s")])
        .args(["--server-pid", &server_pid.to_string(), "--json", "-q"])
        .args(["churn", "-c", "100", "--rate", "2000"])
        .stderr(Stdio::null())
        .output()
        .await
        .expect("strangers-load runs");
    let mut v: Value = serde_json::from_slice(&out.stdout).expect("strangers-load prints JSON");
    let k = (ksoftirqd_seconds() - k0) / t0.elapsed().as_secs_f64();
    v["ksoftirqd_cores"] = ((k * 100.0).round() / 100.0).into();
    v
}

/// CPU time of the kernel's softirq threads (`ksoftirqd/N`), in seconds.
fn ksoftirqd_seconds() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    let mut total = 0.0;
    for entry in dir.flatten() {
        let path = entry.path();
        let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if !stat[open + 1..close].starts_with("ksoftirqd") {
            continue;
        }
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
        total += ticks(11).unwrap_or(0.0) + ticks(12).unwrap_or(0.0);
    }
    total / 100.0
}

async fn flood_owned(url: String, server_pid: u32, duration: Duration) -> Value {
    flood(&url, server_pid, duration).await
}

/// Runs the load generator's flood mode on the clients' core, in the idle scheduling class,
/// and returns its JSON result.
async fn flood(url: &str, server_pid: u32, duration: Duration) -> Value {
    let out = Command::new("chrt")
        .args(["--idle", "0", "taskset", "-c", CLIENT_CPU])
        .arg(support::load_generator())
        .args(["--url", url])
        .args(["--duration", &format!("{}ms", duration.as_millis())])
        .args(["--server-pid", &server_pid.to_string(), "--json", "-q"])
        .args(["flood", "--flooders", &FLOODERS.to_string()])
        .stderr(Stdio::null())
        .output()
        .await
        .expect("strangers-load runs (is `chrt` installed?)");
    serde_json::from_slice(&out.stdout).expect("strangers-load prints JSON")
}
