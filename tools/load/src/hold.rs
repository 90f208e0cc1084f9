//! Hold mode: many idle sessions, and optionally one large offer/answer through each.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{Semaphore, watch};
use tokio_tungstenite::tungstenite::Message;

use crate::net::{Incoming, Target, Ws, out};
use crate::stats::{Counter, Errors, now_ns};

/// What the held sessions do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Read and answer pings, nothing else.
    Idle,
    /// Join, and once matched exchange one offer/answer of `payload_bytes` each.
    Exchange,
    /// Close.
    Stop,
}

/// What the held sessions share with the driver.
#[derive(Default)]
pub struct Shared {
    /// Sessions that got their `welcome`.
    pub opened: Counter,
    /// Sessions that failed to open.
    pub failed: Counter,
    /// Sessions that sent one large message and received one.
    pub exchanged: Counter,
    /// Sessions that ended before the end of the run.
    pub dropped: Counter,
    pub errors: Errors,
}

/// Spawns `n` held sessions, connecting at most `concurrency` at a time. Returns at once;
/// watch `shared.opened` and `shared.failed`.
pub fn spawn(
    n: usize,
    target: Arc<Target>,
    concurrency: Arc<Semaphore>,
    shared: Arc<Shared>,
    phase: watch::Receiver<Phase>,
    payload_bytes: usize,
) {
    for i in 0..n {
        let target = target.clone();
        let concurrency = concurrency.clone();
        let shared = shared.clone();
        let phase = phase.clone();
        tokio::spawn(async move {
            let ws = {
                let Ok(_permit) = concurrency.acquire().await else {
                    return;
                };
                if *phase.borrow() == Phase::Stop {
                    return;
                }
                match target.connect(i).await {
                    Ok(ws) => ws,
                    Err(kind) => {
                        shared.failed.inc();
                        shared.errors.add(kind);
                        return;
                    }
                }
            };
            shared.opened.inc();
            session(ws, &shared, phase, payload_bytes).await;
        });
    }
}

async fn session(mut ws: Ws, shared: &Shared, mut phase: watch::Receiver<Phase>, bytes: usize) {
    let mut joined = false;
    let mut room: Option<String> = None;
    let (mut sent, mut received) = (false, false);
    loop {
        tokio::select! {
            changed = phase.changed() => {
                let now = if changed.is_ok() { *phase.borrow_and_update() } else { Phase::Stop };
                match now {
                    Phase::Stop => break,
                    Phase::Exchange if !joined => {
                        joined = true;
                        if ws.send(Message::text(out::JOIN)).await.is_err() {
                            shared.errors.add("hold_send_failed");
                            shared.dropped.inc();
                            return;
                        }
                    }
                    _ => {}
                }
            }
            frame = ws.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(_)) => continue,
                    Some(Err(_)) | None => {
                        if *phase.borrow() != Phase::Stop {
                            shared.errors.add("hold_closed_by_server");
                            shared.dropped.inc();
                        }
                        return;
                    }
                };
                let Some(msg) = Incoming::parse(&text) else {
                    shared.errors.add("bad_json_from_server");
                    continue;
                };
                let reply = match msg.ty.as_ref() {
                    "matched" => {
                        let r = msg.room.as_deref().unwrap_or_default().to_string();
                        let offerer = msg.role.as_deref() == Some("offerer");
                        let reply = offerer.then(|| out::sdp("offer", &r, now_ns(), bytes));
                        room = Some(r);
                        reply
                    }
                    "offer" => {
                        received = true;
                        room.as_deref().map(|r| out::sdp("answer", r, now_ns(), bytes))
                    }
                    "answer" => {
                        received = true;
                        None
                    }
                    "error" => {
                        shared.errors.add(format!("server_error_{}", msg.code.as_deref().unwrap_or("?")));
                        None
                    }
                    "left" => {
                        // At the end the partner may simply have closed first.
                        if *phase.borrow() != Phase::Stop {
                            shared.errors.add("hold_partner_left");
                        }
                        None
                    }
                    _ => None,
                };
                if let Some(reply) = reply {
                    if ws.send(Message::text(reply)).await.is_err() {
                        shared.errors.add("hold_send_failed");
                        shared.dropped.inc();
                        return;
                    }
                    sent = true;
                }
                if sent && received {
                    shared.exchanged.inc();
                    // Count once.
                    sent = false;
                    received = false;
                    room = None;
                }
            }
        }
    }
}

/// Waits until `done()` reaches `want`, printing progress once a second, or until `limit`
/// or a stop. Returns how long it took.
pub async fn wait_for(
    label: &str,
    want: u64,
    done: impl Fn() -> (u64, u64),
    limit: Duration,
    stop: &mut watch::Receiver<bool>,
    quiet: bool,
) -> Duration {
    let start = Instant::now();
    let mut last_print = start;
    let mut last_done = 0;
    loop {
        let (ok, failed) = done();
        if ok + failed >= want || start.elapsed() >= limit || *stop.borrow() {
            return start.elapsed();
        }
        if !quiet && last_print.elapsed() >= Duration::from_secs(1) {
            let dt = last_print.elapsed().as_secs_f64();
            eprintln!(
                "[{:>5.1}s] {label}: {ok}/{want} ({:.0}/s), failed {failed}",
                start.elapsed().as_secs_f64(),
                (ok - last_done) as f64 / dt,
            );
            last_print = Instant::now();
            last_done = ok;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(5)) => {}
            _ = stop.changed() => {}
        }
    }
}
