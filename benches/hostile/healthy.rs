//! The healthy pair: two well-behaved users in one room exchanging chat lines at a steady
//! rate beside the attack, on a thread and runtime of their own (so the attack's clients do
//! not delay their clocks), and the relay latency of every line.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::hostile::net::{self, Frames};

/// Chat lines each member sends per second (under the default relay rate of 50/s).
pub const RATE: u64 = 40;

/// Latency of the lines received in one window, and what went wrong meanwhile.
pub struct Window {
    /// Relay latency in microseconds, sender's write to receiver's read.
    pub latency: Histogram<u64>,
    /// Lines sent and received.
    pub sent: u64,
    pub received: u64,
    /// Lines slower than [`SLOW_US`]: when received (ms since the pair started) and their
    /// latency (µs), at most [`SLOW_KEPT`] of them.
    pub slow: Vec<(u64, u64)>,
}

/// A relay slower than this is kept in [`Window::slow`], to see whether slow lines come
/// together (a stall of everything) or alone.
pub const SLOW_US: u64 = 20_000;
const SLOW_KEPT: usize = 200;

impl Window {
    fn new() -> Window {
        Window {
            latency: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"),
            sent: 0,
            received: 0,
            slow: Vec::new(),
        }
    }
}

/// What the pair's thread shares with the benchmark.
struct Shared {
    window: Window,
    /// Members in their room so far (2 once the pair is talking).
    matched: usize,
    /// Anything that went wrong: a closed socket, a `left`, an error message.
    failures: Vec<String>,
}

/// The running pair.
pub struct Pair {
    shared: Arc<Mutex<Shared>>,
    stop: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Pair {
    /// Connects two members to `server` on a thread of their own; they join with an
    /// interest of their own, are paired, and talk until [`stop`](Self::stop).
    pub fn start(server: SocketAddr) -> Pair {
        let shared = Arc::new(Mutex::new(Shared {
            window: Window::new(),
            matched: 0,
            failures: Vec::new(),
        }));
        let (stop, stopped) = watch::channel(false);
        let inner = shared.clone();
        let thread = std::thread::spawn(move || {
            crate::hostile::server::raise_this_thread();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            let origin = Instant::now();
            rt.block_on(async {
                let a = member(server, origin, inner.clone(), stopped.clone());
                let b = member(server, origin, inner.clone(), stopped);
                let (a, b) = tokio::join!(a, b);
                let mut shared = inner.lock().unwrap();
                shared.failures.extend(a.err().into_iter().chain(b.err()));
            });
        });
        Pair {
            shared,
            stop,
            thread: Some(thread),
        }
    }

    /// Waits until both members are in their room; false if not within `limit`.
    pub async fn matched(&self, limit: Duration) -> bool {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            if self.shared.lock().unwrap().matched == 2 {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    /// The window since the last call, and a fresh one started.
    pub fn take(&self) -> Window {
        std::mem::replace(&mut self.shared.lock().unwrap().window, Window::new())
    }

    /// Stops the pair and returns what went wrong while it ran.
    pub fn stop(mut self) -> Vec<String> {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        std::mem::take(&mut self.shared.lock().unwrap().failures)
    }
}

/// One member: connects, joins, waits for its room, then sends and receives until stopped.
async fn member(
    server: SocketAddr,
    origin: Instant,
    shared: Arc<Mutex<Shared>>,
    stop: watch::Receiver<bool>,
) -> Result<(), String> {
    let mut stream = TcpStream::connect(server)
        .await
        .map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let rest = net::upgrade(&mut stream, server)
        .await
        .map_err(|e| e.to_string())?;
    let join = net::text(r#"{"type":"join","interests":["healthy-pair"]}"#);
    stream.write_all(&join).await.map_err(|e| e.to_string())?;
    let mut frames = Frames::new(rest);
    let room = loop {
        let frame = frames.next(&mut stream).await.map_err(|e| e.to_string())?;
        let Some((_, payload)) = frame else {
            return Err("closed before being matched".into());
        };
        let v: Value = serde_json::from_slice(&payload).unwrap_or_default();
        if v["type"] == "matched" {
            break v["room"].as_str().unwrap_or_default().to_owned();
        }
    };
    shared.lock().unwrap().matched += 1;
    let (mut rd, mut wr) = stream.into_split();
    let send = async {
        let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / RATE));
        let mut stop = stop.clone();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|s| *s) => return Ok(()),
            }
            let at = origin.elapsed().as_micros();
            let line = format!(r#"{{"type":"chat","room":"{room}","text":"t{at}"}}"#);
            wr.write_all(&net::text(&line))
                .await
                .map_err(|e| format!("healthy write: {e}"))?;
            shared.lock().unwrap().window.sent += 1;
        }
    };
    let receive = async {
        let mut stop = stop.clone();
        loop {
            let frame = tokio::select! {
                f = frames.next(&mut rd) => f.map_err(|e| format!("healthy read: {e}"))?,
                _ = stop.wait_for(|s| *s) => return Ok(()),
            };
            let Some((_, payload)) = frame else {
                return Err("healthy member closed by the server".to_owned());
            };
            received(&payload, origin, &shared);
        }
    };
    let (sent, got) = tokio::join!(send, receive);
    sent.and(got)
}

/// Notes one frame a member received: a chat line's latency, or a failure.
fn received(payload: &[u8], origin: Instant, shared: &Mutex<Shared>) {
    let v: Value = serde_json::from_slice(payload).unwrap_or_default();
    let mut shared = shared.lock().unwrap();
    match v["type"].as_str() {
        Some("chat") => {
            let sent = v["text"]
                .as_str()
                .and_then(|t| t.strip_prefix('t')?.parse::<u128>().ok());
            if let Some(sent) = sent {
                let latency = origin.elapsed().as_micros().saturating_sub(sent) as u64;
                shared.window.latency.saturating_record(latency.max(1));
                if latency > SLOW_US && shared.window.slow.len() < SLOW_KEPT {
                    let at = origin.elapsed().as_millis() as u64;
                    shared.window.slow.push((at, latency));
                }
                shared.window.received += 1;
            }
        }
        Some("left") | Some("error") | Some("bye") => {
            shared
                .failures
                .push(String::from_utf8_lossy(payload).into_owned());
        }
        _ => {}
    }
}
