//! One, two and three instances sharing one queue in Redis: matches per second, relay latency
//! and Redis traffic per match, with the load generator's churn mode spreading its clients
//! over the instances (so with n instances about (n-1)/n of the pairs span two instances).
//!
//! `cargo build --release -p strangers-load && cargo bench --bench scale_out` (loopback only:
//! it starts its own `redis-server` on a free port, the release-built `strangers` instances
//! and `strangers-load`). The first row is one
//! instance with its own in-process queue, for comparison. Each row runs `SECONDS` seconds of
//! churn with `CLIENTS` clients twice: paced at `RATE` relayed messages per second in all (the
//! latency figures), then as fast as they go (the matches per second).

mod support;

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

const SECONDS: u64 = 10;
const CLIENTS: &str = "1000";
const RATE: &str = "20000";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // Before anything runs: the load generator is built apart from this bench.
    support::load_generator();
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("strangers-scale-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _redis = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("redis-server runs (Debian package redis-server)");
    let redis_url = format!("redis://127.0.0.1:{port}");
    for _ in 0..200 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    println!(
        "churn: {CLIENTS} clients, {SECONDS} s per run; latency of relayed messages (µs) at {RATE} msgs/s; \
         matches/s unpaced; Redis traffic per match (unpaced run)"
    );
    println!(
        "{:<24} {:>8} {:>8} {:>8} {:>7} {:>10} {:>9} {:>9} {:>9}",
        "", "p50", "p99", "p99.9", "errors", "matches/s", "evalsha", "publish", "in-script"
    );
    for (name, instances, shared) in [
        ("1 instance, own queue", 1, false),
        ("1 instance, redis", 1, true),
        ("2 instances, redis", 2, true),
        ("3 instances, redis", 3, true),
    ] {
        let prefix = format!("bench{instances}{shared}");
        let mut servers = Vec::new();
        for _ in 0..instances {
            servers.push(start(shared.then_some((redis_url.as_str(), prefix.as_str()))).await);
        }
        let urls: Vec<String> = servers.iter().map(|(_, url)| url.clone()).collect();
        let paced = churn(&urls.join(","), Some(RATE)).await;
        let before = command_stats(port).await;
        let unpaced = churn(&urls.join(","), None).await;
        let after = command_stats(port).await;
        let matches = unpaced["churn"]["matches"].as_f64().unwrap_or(0.0).max(1.0);
        let calls = |name: &str| after.get(name).unwrap_or(&0) - before.get(name).unwrap_or(&0);
        // Commands run by the scripts themselves (no round trip each).
        let script_cmds: u64 = after
            .iter()
            .filter(|(k, _)| {
                ![
                    "evalsha", "eval", "publish", "info", "quit", "ping", "script", "multi", "exec",
                ]
                .contains(&k.as_str())
            })
            .map(|(k, v)| v - before.get(k).unwrap_or(&0))
            .sum();
        let l = &paced["churn"]["latency"];
        println!(
            "{name:<24} {:>8} {:>8} {:>8} {:>7} {:>10.0} {:>9.2} {:>9.2} {:>9.1}",
            l["p50_us"],
            l["p99_us"],
            l["p999_us"],
            paced["errors"]["total"].as_u64().unwrap_or(0)
                + unpaced["errors"]["total"].as_u64().unwrap_or(0),
            unpaced["churn"]["matches_per_s"].as_f64().unwrap_or(0.0),
            calls("evalsha") as f64 / matches,
            calls("publish") as f64 / matches,
            script_cmds as f64 / matches,
        );
        drop(servers);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts one release `strangers` with the load generator's limits lifted; returns it and
/// its WebSocket URL.
async fn start(shared: Option<(&str, &str)>) -> (Child, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_strangers"));
    cmd.args(["--listen", "127.0.0.1:0", "--stun", ""])
        .args(["--max-per-ip", "100000", "--max-connections", "19000"])
        .args(["--max-pending-per-ip", "100000"])
        .args(["--relay-rate", "1000000", "--relay-burst", "1000000"])
        .args(["--join-rate", "100000000", "--join-burst", "1000000"])
        .args(["--rematch-cooldown", "0s"])
        .arg("--report-log")
        .arg(std::env::temp_dir().join(format!("strangers-scale-{}.jsonl", std::process::id())));
    if let Some((url, prefix)) = shared {
        cmd.args(["--redis-url", url, "--redis-prefix", prefix]);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the server starts");
    let url = support::ws_url(&mut child).await;
    (child, url)
}

/// Runs the load generator's churn mode over `urls` (paced at `rate` messages/s, or as fast
/// as it goes) and returns its JSON result.
async fn churn(urls: &str, rate: Option<&str>) -> Value {
    let out = Command::new(support::load_generator())
        .args(["--url", urls, "--duration", &format!("{SECONDS}s")])
        .args(["--json", "-q"])
        .args(["churn", "-c", CLIENTS])
        .args(rate.map(|r| vec!["--rate", r]).unwrap_or_default())
        .stderr(Stdio::null())
        .output()
        .await
        .expect("strangers-load runs");
    serde_json::from_slice(&out.stdout).expect("strangers-load prints JSON")
}

/// Redis's per-command call counts (`INFO commandstats`).
async fn command_stats(port: u16) -> std::collections::HashMap<String, u64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream
        .write_all(b"INFO commandstats\r\nQUIT\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).await.unwrap();
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("cmdstat_")?;
            let (name, stats) = rest.split_once(':')?;
            let calls = stats.split(',').find_map(|kv| kv.strip_prefix("calls="))?;
            Some((name.to_string(), calls.parse().ok()?))
        })
        .collect()
}
