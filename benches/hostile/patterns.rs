//! The five hostile patterns, each a number of client slots that open a connection, misbehave
//! in their one way until the server ends it (or the attack does), note how it ended, and
//! open the next one: the pressure stays on for the whole attack.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::task::JoinHandle;

use crate::hostile::net::{self, Frames};

/// The largest message the server accepts (`protocol::MAX_MESSAGE_BYTES`).
const MAX_MESSAGE: usize = 40 * 1024;
/// How often a slow-header client sends its next header line.
const LINE_EVERY: Duration = Duration::from_secs(3);
/// The receive buffer a non-reader asks for (the kernel's smallest, about 4 KiB), so that
/// what its partner sends piles up in the server rather than in our kernel buffers.
const NON_READER_RCVBUF: u32 = 4096;
/// How long a non-reader stays connected after the server took it out of its room: past
/// the server's write timeout (10 s), so the server ends the session itself.
const NON_READER_LINGER: Duration = Duration::from_secs(12);
/// Offers per second a non-reader's partner sends (under the relay rate of 50/s), each with
/// an SDP of the largest size relayed (32 KiB, the issue's 264 × 32 KiB case).
const SENDER_RATE: u64 = 20;
const SDP_BYTES: usize = 32 * 1024;

/// One way to misbehave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pattern {
    /// A TCP connection that never sends a request.
    Idle,
    /// An HTTP request whose header lines arrive one every [`LINE_EVERY`].
    SlowHeaders,
    /// A WebSocket frame header announcing the largest message, then its payload trickled.
    BigFrame,
    /// A non-final fragment near the limit, a ping, a continuation header, then a trickle.
    Fragments,
    /// A pair: one never reads while its partner sends the largest offers.
    NonReader,
}

impl Pattern {
    pub const ALL: [Pattern; 5] = [
        Pattern::Idle,
        Pattern::SlowHeaders,
        Pattern::BigFrame,
        Pattern::Fragments,
        Pattern::NonReader,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Pattern::Idle => "1 idle TCP",
            Pattern::SlowHeaders => "2 slow headers",
            Pattern::BigFrame => "3 40 KiB trickle",
            Pattern::Fragments => "4 fragment+cont.",
            Pattern::NonReader => "5 non-reader",
        }
    }

    fn index(self) -> usize {
        Pattern::ALL
            .iter()
            .position(|p| *p == self)
            .expect("listed")
    }
}

/// How one hostile connection ended, seen from the client.
#[derive(Debug)]
pub struct Outcome {
    pub pattern: Pattern,
    /// From connect (for a non-reader: from being paired) to its end.
    pub lived: Duration,
    /// What ended it: a close frame, an HTTP answer, EOF, a reset, or the end of the attack.
    pub end: String,
    /// For a non-reader: what its partner had sent it by then, in KiB.
    pub sent_kib: Option<u64>,
}

/// One attack on one server: where, until when, and what it has seen so far.
pub struct Attack {
    pub server: SocketAddr,
    pub until: Instant,
    pub outcomes: Mutex<Vec<Outcome>>,
    /// Hostile connections open now, per pattern.
    pub open: [AtomicUsize; 5],
    /// Connections opened so far, per pattern.
    pub opened: [AtomicUsize; 5],
    /// Attack pairs made so far, for their interest tags.
    pairs: AtomicUsize,
}

/// What an attack still running at its end reports.
pub const HELD: &str = "held to the end";

impl Attack {
    pub fn new(server: SocketAddr, until: Instant) -> Arc<Attack> {
        Arc::new(Attack {
            server,
            until,
            outcomes: Mutex::new(Vec::new()),
            open: Default::default(),
            opened: Default::default(),
            pairs: AtomicUsize::new(0),
        })
    }

    fn record(&self, pattern: Pattern, lived: Duration, end: String) {
        self.record_sent(pattern, lived, end, None);
    }

    fn record_sent(&self, pattern: Pattern, lived: Duration, end: String, sent_kib: Option<u64>) {
        let outcome = Outcome {
            pattern,
            lived,
            end,
            sent_kib,
        };
        self.outcomes.lock().unwrap().push(outcome);
    }

    /// Connects slot `i` of `pattern` and counts it open until the guard is dropped.
    async fn connect(
        self: &Arc<Self>,
        pattern: Pattern,
        i: usize,
        rcvbuf: Option<u32>,
    ) -> std::io::Result<(tokio::net::TcpStream, Open)> {
        let stream = net::connect(self.server, i, rcvbuf).await?;
        self.opened[pattern.index()].fetch_add(1, Ordering::Relaxed);
        self.open[pattern.index()].fetch_add(1, Ordering::Relaxed);
        Ok((
            stream,
            Open {
                attack: self.clone(),
                pattern,
            },
        ))
    }
}

/// A hostile connection counted in [`Attack::open`] while it lives.
struct Open {
    attack: Arc<Attack>,
    pattern: Pattern,
}

impl Drop for Open {
    fn drop(&mut self) {
        self.attack.open[self.pattern.index()].fetch_sub(1, Ordering::Relaxed);
    }
}

/// Starts `slots` slots of `pattern` (numbered from `first`, which picks their source
/// addresses), their first connections spread over `ramp`.
pub fn launch(
    attack: &Arc<Attack>,
    pattern: Pattern,
    slots: usize,
    first: usize,
    ramp: Duration,
) -> Vec<JoinHandle<()>> {
    (0..slots)
        .map(|k| {
            let attack = attack.clone();
            let delay = ramp.mul_f64(k as f64 / slots.max(1) as f64);
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                run_slot(attack, pattern, first + k).await;
            })
        })
        .collect()
}

/// One slot: connection after connection of `pattern` until the attack ends.
async fn run_slot(attack: Arc<Attack>, pattern: Pattern, i: usize) {
    while Instant::now() < attack.until {
        let started = Instant::now();
        let end = match pattern {
            Pattern::Idle => idle(&attack, i).await,
            Pattern::SlowHeaders => slow_headers(&attack, i).await,
            Pattern::BigFrame => {
                let prelude = net::header(true, net::OP_TEXT, MAX_MESSAGE);
                let trickle = Trickle {
                    bytes: MAX_MESSAGE - 1,
                    chunk: 1024,
                    every: Duration::from_millis(100),
                };
                websocket_trickle(&attack, pattern, i, prelude, trickle).await
            }
            Pattern::Fragments => {
                let first = MAX_MESSAGE - 1024;
                let mut prelude = net::header(false, net::OP_TEXT, first);
                prelude.extend(std::iter::repeat_n(b'a', first));
                prelude.extend(net::header(true, net::OP_PING, 0));
                prelude.extend(net::header(true, net::OP_CONTINUATION, 1024));
                let trickle = Trickle {
                    bytes: 1023,
                    chunk: 16,
                    every: Duration::from_millis(250),
                };
                websocket_trickle(&attack, pattern, i, prelude, trickle).await
            }
            Pattern::NonReader => {
                non_reader_pair(&attack, i).await;
                None
            }
        };
        if let Some(end) = end {
            attack.record(pattern, started.elapsed(), end);
        }
        // A connection that failed at once is not retried in a tight loop.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How a read that ended a plain TCP connection reads.
fn read_end(read: std::io::Result<usize>, buf: &[u8]) -> String {
    match read {
        Ok(0) => "closed (FIN), no answer".to_owned(),
        Ok(n) => {
            let text = String::from_utf8_lossy(&buf[..n]);
            let line = text.lines().next().unwrap_or_default();
            format!("answered {line}")
        }
        Err(e) => net::error_label(&e),
    }
}

/// Pattern 1: connects and sends nothing.
async fn idle(attack: &Arc<Attack>, i: usize) -> Option<String> {
    let (mut stream, _open) = match attack.connect(Pattern::Idle, i, None).await {
        Ok(c) => c,
        Err(e) => return Some(format!("connect: {}", net::error_label(&e))),
    };
    let mut buf = [0u8; 512];
    Some(tokio::select! {
        read = stream.read(&mut buf) => read_end(read, &buf),
        _ = tokio::time::sleep_until(attack.until.into()) => HELD.to_owned(),
    })
}

/// Pattern 2: a request line, then one header line every [`LINE_EVERY`], never the end.
async fn slow_headers(attack: &Arc<Attack>, i: usize) -> Option<String> {
    let (mut stream, _open) = match attack.connect(Pattern::SlowHeaders, i, None).await {
        Ok(c) => c,
        Err(e) => return Some(format!("connect: {}", net::error_label(&e))),
    };
    let mut buf = [0u8; 512];
    let start = format!("GET / HTTP/1.1\r\nHost: {}\r\n", attack.server);
    if let Err(e) = stream.write_all(start.as_bytes()).await {
        return Some(net::error_label(&e));
    }
    for line in 0.. {
        tokio::select! {
            read = stream.read(&mut buf) => return Some(read_end(read, &buf)),
            _ = tokio::time::sleep_until(attack.until.into()) => return Some(HELD.to_owned()),
            _ = tokio::time::sleep(LINE_EVERY) => {
                let header = format!("X-Slow-{line}: a\r\n");
                if let Err(e) = stream.write_all(header.as_bytes()).await {
                    return Some(net::error_label(&e));
                }
            }
        }
    }
    unreachable!("the loop returns")
}

/// How a payload is trickled: `bytes` in all, `chunk` at a time, one chunk `every`.
struct Trickle {
    bytes: usize,
    chunk: usize,
    every: Duration,
}

/// Patterns 3 and 4: upgrades, writes `prelude` at once, then trickles `trickle`'s bytes of
/// a payload it never finishes, and waits for the server's close.
async fn websocket_trickle(
    attack: &Arc<Attack>,
    pattern: Pattern,
    i: usize,
    prelude: Vec<u8>,
    trickle: Trickle,
) -> Option<String> {
    let (mut stream, _open) = match attack.connect(pattern, i, None).await {
        Ok(c) => c,
        Err(e) => return Some(format!("connect: {}", net::error_label(&e))),
    };
    let rest = match net::upgrade(&mut stream, attack.server).await {
        Ok(rest) => rest,
        Err(e) => return Some(format!("upgrade: {}", net::error_label(&e))),
    };
    let (mut rd, mut wr) = stream.into_split();
    if let Err(e) = wr.write_all(&prelude).await {
        return Some(net::error_label(&e));
    }
    let mut frames = Frames::new(rest);
    let mut tick = tokio::time::interval(trickle.every);
    let mut sent = 0;
    let piece = vec![b'a'; trickle.chunk];
    loop {
        tokio::select! {
            end = closed(&mut frames, &mut rd) => return Some(end),
            _ = tokio::time::sleep_until(attack.until.into()) => return Some(HELD.to_owned()),
            _ = tick.tick(), if sent < trickle.bytes => {
                let n = trickle.chunk.min(trickle.bytes - sent);
                if let Err(e) = wr.write_all(&piece[..n]).await {
                    return Some(net::error_label(&e));
                }
                sent += n;
            }
        }
    }
}

/// Reads server frames until the connection ends; says how.
async fn closed(frames: &mut Frames, rd: &mut OwnedReadHalf) -> String {
    loop {
        match frames.next(rd).await {
            Ok(Some((net::OP_CLOSE, payload))) => return net::close_label(&payload),
            Ok(Some(_)) => {}
            Ok(None) => return "closed without a close frame".to_owned(),
            Err(e) => return net::error_label(&e),
        }
    }
}

/// A WebSocket opened by slot `i` of `pattern` that has sent its `join` with `tag`.
async fn joined(
    attack: &Arc<Attack>,
    pattern: Pattern,
    i: usize,
    rcvbuf: Option<u32>,
    tag: &str,
) -> Result<(OwnedReadHalf, OwnedWriteHalf, Frames, Open), String> {
    let (mut stream, open) = attack
        .connect(pattern, i, rcvbuf)
        .await
        .map_err(|e| format!("connect: {}", net::error_label(&e)))?;
    let rest = net::upgrade(&mut stream, attack.server)
        .await
        .map_err(|e| format!("upgrade: {}", net::error_label(&e)))?;
    let join = format!(r#"{{"type":"join","interests":["{tag}"]}}"#);
    stream
        .write_all(&net::text(&join))
        .await
        .map_err(|e| net::error_label(&e))?;
    let (rd, wr) = stream.into_split();
    Ok((rd, wr, Frames::new(rest), open))
}

/// Pattern 5: a receiver that joins and never reads again, and its partner (same interest
/// tag), which sends 32 KiB offers at [`SENDER_RATE`] until the server takes the
/// receiver out of the room. The receiver then stays connected for [`NON_READER_LINGER`], so
/// its session ends on the server's own terms. Records one outcome per pair.
async fn non_reader_pair(attack: &Arc<Attack>, i: usize) {
    let p = Pattern::NonReader;
    let tag = format!("p5-{}", attack.pairs.fetch_add(1, Ordering::Relaxed));
    let started = Instant::now();
    let receiver = match joined(attack, p, i, Some(NON_READER_RCVBUF), &tag).await {
        Ok(r) => r,
        Err(e) => return attack.record(p, started.elapsed(), e),
    };
    let (mut rd, mut wr, mut frames, _open) = match joined(attack, p, i + 7, None, &tag).await {
        Ok(s) => s,
        Err(e) => return attack.record(p, started.elapsed(), e),
    };
    let paired = tokio::time::timeout(Duration::from_secs(10), matched(&mut frames, &mut rd));
    let (room, own) = match paired.await {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => return attack.record(p, started.elapsed(), e),
        Err(_) => return attack.record(p, started.elapsed(), "never paired".into()),
    };
    let since = Instant::now();
    let (mut end, sent) = send_until_left(attack, &mut frames, &mut rd, &mut wr, &room).await;
    if !own {
        end.push_str(" (paired with another pair's member)");
    }
    let kib = (sent * SDP_BYTES / 1024) as u64;
    attack.record_sent(p, since.elapsed(), end, Some(kib));
    drop((rd, wr));
    let linger = tokio::time::sleep(NON_READER_LINGER);
    let _ = tokio::time::timeout_at(attack.until.into(), linger).await;
    drop(receiver);
}

/// Reads until `matched`: the room, and whether the stranger shares our tag.
async fn matched(frames: &mut Frames, rd: &mut OwnedReadHalf) -> Result<(String, bool), String> {
    loop {
        let frame = frames.next(rd).await.map_err(|e| net::error_label(&e))?;
        let Some((_, payload)) = frame else {
            return Err("closed before being paired".into());
        };
        let v: Value = serde_json::from_slice(&payload).unwrap_or_default();
        if v["type"] == "matched" {
            let own = v["common"].as_array().is_some_and(|c| !c.is_empty());
            return Ok((v["room"].as_str().unwrap_or_default().to_owned(), own));
        }
    }
}

/// The sender's half of pattern 5: offers until the server says the partner `left`. Says
/// how it ended, and how many offers were sent.
async fn send_until_left(
    attack: &Arc<Attack>,
    frames: &mut Frames,
    rd: &mut OwnedReadHalf,
    wr: &mut OwnedWriteHalf,
    room: &str,
) -> (String, usize) {
    let sdp = "x".repeat(SDP_BYTES);
    let line = net::text(&format!(
        r#"{{"type":"offer","room":"{room}","sdp":"{sdp}"}}"#
    ));
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / SENDER_RATE));
    let mut sent = 0usize;
    loop {
        let end = tokio::select! {
            frame = frames.next(rd) => match frame {
                Ok(Some((net::OP_TEXT, payload))) => {
                    let v: Value = serde_json::from_slice(&payload).unwrap_or_default();
                    match v["type"].as_str() {
                        Some("left") => format!(
                            "taken out of the room (partner told left/{})",
                            v["reason"].as_str().unwrap_or("?")
                        ),
                        Some("error") => format!("sender refused: {}", v["code"]),
                        _ => continue,
                    }
                }
                Ok(Some((net::OP_CLOSE, payload))) => format!("sender {}", net::close_label(&payload)),
                Ok(Some(_)) => continue,
                Ok(None) => "sender closed without a close frame".into(),
                Err(e) => format!("sender {}", net::error_label(&e)),
            },
            _ = tokio::time::sleep_until(attack.until.into()) => {
                format!("{HELD} (still in the room)")
            }
            _ = tick.tick() => match wr.write_all(&line).await {
                Ok(()) => {
                    sent += 1;
                    continue;
                }
                Err(e) => format!("sender {}", net::error_label(&e)),
            },
        };
        return (end, sent);
    }
}
