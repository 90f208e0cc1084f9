//! Churn soak: many clients at once doing random joins, Nexts, Stops, relays (current and
//! stale rooms) and abrupt disconnects against the real binary. Every client checks what it
//! receives as it goes; afterwards the server is empty, and a second identical round does
//! not grow its memory (freed memory is reused, not leaked).
//!
//! CI runs a short version. `STRANGERS_SOAK_SECS=300 STRANGERS_SOAK_CLIENTS=2000 cargo test
//! --release --test churn -- --nocapture` is the long run recorded in BENCHMARKS.md.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::http_get;
use futures_util::{SinkExt, StreamExt};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};
use strangers::pow::Challenge;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn start_server() -> (Child, std::net::SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_strangers"))
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
        .args(["--max-connections", "19000"])
        .args(["--metrics-token", common::METRICS_TOKEN])
        .arg("--report-log")
        .arg(common::scratch_file("reports.jsonl"))
        // These clients act far faster than people; the soak is about consistency, so the
        // rate limits (tested in hostile.rs) are lifted.
        .args(["--join-rate", "1000000", "--join-burst", "1000000"])
        .args(["--relay-rate", "1000000", "--relay-burst", "100000"])
        // The walkers solve every challenge, on the runtime's threads: a trivial one, which
        // their join rate (all on 127.0.0.1) does not raise, keeps them walking fast.
        .args(["--pow-bits", "4", "--pow-max-bits", "4"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines.next_line().await.unwrap().unwrap();
    let url = line.split("http://").nth(1).unwrap();
    let addr = url.trim_end_matches(|c| c != '/').trim_end_matches('/');
    (child, addr.parse().unwrap())
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Counts of what the clients did and saw.
#[derive(Default, Debug, Clone, Copy)]
struct Tally {
    matches: u64,
    relayed: u64,
    reconnects: u64,
}

/// One client's random walk until `until`. Panics on anything a user would notice as wrong.
async fn client(addr: std::net::SocketAddr, seed: u64, until: Instant) -> Tally {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut tally = Tally::default();
    let url = format!("ws://{addr}/ws");
    'connection: while Instant::now() < until {
        let (mut ws, _) = tokio_tungstenite::connect_async(&url)
            .await
            .expect("connect");
        let mut room: Option<String> = None;
        let mut old_rooms: Vec<String> = Vec::new();
        // A room this client left by its own Next or Stop: the partner's messages already in
        // flight may still arrive until the server answers a later command (`waiting` or
        // `matched`), exactly as a browser sees them (and ignores them).
        let mut leaving: Option<String> = None;
        // The challenge the next join or Next must solve, once the server has set it (each
        // join and Next spends it; the next one comes in the answer).
        let mut challenge: Option<Challenge> = None;
        loop {
            let pace = Duration::from_millis(rng.random_range(2..40));
            tokio::select! {
                frame = ws.next() => {
                    let Some(Ok(frame)) = frame else { panic!("server dropped a client") };
                    let Message::Text(text) = frame else { continue };
                    let msg: Value = serde_json::from_str(&text).unwrap();
                    match msg["type"].as_str().unwrap() {
                        "matched" => {
                            tally.matches += 1;
                            room = msg["room"].as_str().map(str::to_string);
                            leaving = None;
                        }
                        "waiting" => leaving = None,
                        "welcome" => {
                            let c = &msg["challenge"];
                            challenge = Challenge::from_wire(c["seed"].as_str().unwrap(), c["bits"].as_u64().unwrap());
                        }
                        "challenge" => {
                            challenge = Challenge::from_wire(msg["seed"].as_str().unwrap(), msg["bits"].as_u64().unwrap());
                        }
                        "left" => {
                            let r = msg["room"].as_str();
                            assert!(
                                r == room.as_deref() || r == leaving.as_deref(),
                                "left names my room: {msg}, in {room:?}, leaving {leaving:?}"
                            );
                            if r == room.as_deref() {
                                old_rooms.extend(room.take());
                            }
                        }
                        "chat" => {
                            let r = msg["room"].as_str();
                            assert!(
                                r == room.as_deref() || r == leaving.as_deref(),
                                "only my room's messages reach me: {msg}, in {room:?}, leaving {leaving:?}"
                            );
                            assert_eq!(msg["text"].as_str(), r, "and only from my partner");
                            tally.relayed += 1;
                        }
                        "error" => panic!("unexpected error {msg}"),
                        _ => {}
                    }
                }
                _ = tokio::time::sleep(pace) => {
                    if Instant::now() >= until {
                        break 'connection;
                    }
                    let action = rng.random_range(0..100);
                    // A join or Next waits for its challenge: the walker does something else.
                    if (0..35).contains(&action) && challenge.is_none() {
                        continue;
                    }
                    let msg = match action {
                        0..20 => json!({"type": "join"}),
                        20..40 => {
                            if let Some(r) = room.take() {
                                leaving = Some(r.clone());
                                old_rooms.push(r);
                            }
                            json!({"type": if action < 35 { "next" } else { "leave" }})
                        }
                        40..85 => match &room {
                            // The text is the room id: the receiver checks it.
                            Some(r) => json!({"type": "chat", "room": r, "text": r}),
                            None => continue,
                        },
                        85..97 => match old_rooms.last() {
                            Some(r) => json!({"type": "chat", "room": r, "text": "stale"}),
                            None => continue,
                        },
                        _ => {
                            // The tab closes: no close handshake.
                            tally.reconnects += 1;
                            drop(ws);
                            continue 'connection;
                        }
                    };
                    let mut msg = msg;
                    if matches!(msg["type"].as_str(), Some("join" | "next")) {
                        let spent = challenge.take().expect("checked above");
                        msg["adult"] = json!(true);
                        msg["pow"] = json!(spent.solve().expect("solvable"));
                    }
                    if ws.send(Message::Text(msg.to_string().into())).await.is_err() {
                        panic!("server closed a well-behaved client");
                    }
                }
            }
        }
    }
    tally
}

async fn health(addr: std::net::SocketAddr) -> Value {
    serde_json::from_str(&http_get(addr, "/healthz").await.2).unwrap()
}

/// Runs one round: `clients` random walkers for `secs` seconds, then all disconnect; waits
/// until the server reports nobody online, waiting or in a room.
async fn round(addr: std::net::SocketAddr, clients: u64, secs: u64, seed: u64) -> Tally {
    let until = Instant::now() + Duration::from_secs(secs);
    let tasks: Vec<_> = (0..clients)
        .map(|i| tokio::spawn(client(addr, seed * 1_000_000 + i, until)))
        .collect();
    let mut total = Tally::default();
    for task in tasks {
        let t = task.await.expect("a client saw something wrong");
        total.matches += t.matches;
        total.relayed += t.relayed;
        total.reconnects += t.reconnects;
    }
    // Every client is gone; the server must come back to empty. Its bookkeeping is
    // asynchronous, so ask until it says so, for a bounded time.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let h = health(addr).await;
        if h["online"] == 0 && h["waiting"] == 0 && h["rooms"] == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "server not empty after everyone left: {h}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_leaves_a_consistent_empty_server_and_reuses_memory() {
    let clients = setting("STRANGERS_SOAK_CLIENTS", 300);
    let secs = setting("STRANGERS_SOAK_SECS", 4);
    let (server, addr) = start_server().await;
    let pid = server.id().unwrap();
    let baseline = rss_kib(pid);

    let first = round(addr, clients, secs, 1).await;
    let after_first = rss_kib(pid);
    let second = round(addr, clients, secs, 2).await;
    let after_second = rss_kib(pid);

    eprintln!(
        "churn: {clients} clients × {secs} s × 2 rounds; round 1 {first:?}, round 2 {second:?}; \
         RSS KiB: start {baseline}, after round 1 {after_first}, after round 2 {after_second}"
    );
    assert!(
        first.matches > clients && second.matches > clients,
        "clients were matched"
    );
    assert!(
        first.relayed > 0 && second.relayed > 0,
        "messages were relayed"
    );
    // The allocator keeps freed pages, so compare rounds, not the cold start: the second
    // round reuses what the first freed.
    let margin = after_first / 10 + 2048;
    assert!(
        after_second <= after_first + margin,
        "RSS grew from {after_first} KiB to {after_second} KiB over an identical round"
    );
}
