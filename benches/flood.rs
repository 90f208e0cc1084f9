//! Does a flooding client slow anyone else down? Relay latency of well-behaved churn clients
//! (`strangers-load churn`), first alone, then beside flooders that send chat as fast as their
//! sockets take it.
//!
//! `cargo bench --bench flood` (loopback only). The flooders give the interest `flood`, so
//! they are paired with each other rather than with the measured clients; the server runs with
//! its default message rate limit (50/s, burst 200), which drops their excess and disconnects
//! them (1008) until they reconnect and start again. Join limits and the re-match cooldown are
//! lifted because the churn clients are bots that press Next many times a second.

use std::process::Stdio;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio_tungstenite::tungstenite::Message;

const SECONDS: u64 = 10;
const FLOOD_PAIRS: usize = 4;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let report = std::env::temp_dir().join(format!("strangers-flood-{}.jsonl", std::process::id()));
    let mut server = Command::new(env!("CARGO_BIN_EXE_strangers"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--stun",
            "",
            "--max-per-ip",
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
        .expect("the server starts");
    let line = BufReader::new(server.stdout.take().unwrap())
        .lines()
        .next_line()
        .await
        .unwrap()
        .unwrap();
    let http = line
        .split("http://")
        .nth(1)
        .unwrap()
        .trim_end_matches(|c| c != '/');
    let url = format!("ws://{http}ws");

    let alone = churn(&url).await;
    let until = Instant::now() + Duration::from_secs(SECONDS + 2);
    let flooders: Vec<_> = (0..2 * FLOOD_PAIRS)
        .map(|_| tokio::spawn(flood(url.clone(), until)))
        .collect();
    let beside = churn(&url).await;
    let mut sent = 0;
    for f in flooders {
        sent += f.await.unwrap();
    }
    let again = churn(&url).await;

    println!("relay latency of 100 churn clients at 2,000 msgs/s, {SECONDS} s each (µs)");
    println!(
        "{:<28} {:>8} {:>8} {:>8} {:>8} {:>7}",
        "", "p50", "p90", "p99", "p99.9", "errors"
    );
    for (name, r) in [
        ("alone", &alone),
        ("beside flooders", &beside),
        ("alone again", &again),
    ] {
        let l = &r["churn"]["latency"];
        println!(
            "{name:<28} {:>8} {:>8} {:>8} {:>8} {:>7}",
            l["p50_us"], l["p90_us"], l["p99_us"], l["p999_us"], r["errors"]["total"]
        );
    }
    println!(
        "flooders: {} connections sent {sent} chat messages",
        2 * FLOOD_PAIRS
    );
    let _ = std::fs::remove_file(&report);
    let _ = std::fs::remove_file(report.with_extension("salt"));
}

/// Runs the load generator's churn mode against `url` and returns its JSON result.
async fn churn(url: &str) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_strangers-load"))
        .args([
            "--url",
            url,
            "--duration",
            &format!("{SECONDS}s"),
            "--json",
            "-q",
        ])
        .args(["churn", "-c", "100", "--rate", "2000"])
        .stderr(Stdio::null())
        .output()
        .await
        .expect("strangers-load runs");
    serde_json::from_slice(&out.stdout).expect("strangers-load prints JSON")
}

/// One flooder until `until`: join with the interest `flood`, then send chat as fast as the
/// socket takes it; reconnect whenever the server closes it. Returns how many were sent.
async fn flood(url: String, until: Instant) -> u64 {
    let mut sent = 0;
    while Instant::now() < until {
        let Ok((ws, _)) = tokio_tungstenite::connect_async(&url).await else {
            continue;
        };
        let (mut tx, mut rx) = ws.split();
        let join = json!({"type": "join", "interests": ["flood"]}).to_string();
        if tx.send(Message::Text(join.into())).await.is_err() {
            continue;
        }
        let matched = async {
            while let Some(Ok(frame)) = rx.next().await {
                if let Message::Text(t) = frame {
                    let v: Value = serde_json::from_str(&t).unwrap_or_default();
                    if v["type"] == "matched" {
                        return v["room"].as_str().map(str::to_string);
                    }
                }
            }
            None
        };
        // The odd one out may wait for a partner past the end: stop then.
        let Ok(Some(room)) = tokio::time::timeout_at(until.into(), matched).await else {
            continue;
        };
        // Keep reading so the flooder is a fast consumer: only its sending is abusive.
        let reader = tokio::spawn(async move { while let Some(Ok(_)) = rx.next().await {} });
        let chat = json!({"type": "chat", "room": room, "text": "x".repeat(200)}).to_string();
        while Instant::now() < until {
            let send = tx.send(Message::Text(chat.clone().into()));
            match tokio::time::timeout_at(until.into(), send).await {
                Ok(Ok(())) => sent += 1,
                Ok(Err(_)) | Err(_) => break,
            }
        }
        reader.abort();
    }
    sent
}
