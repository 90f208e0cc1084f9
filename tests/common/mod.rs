//! Test harness: a real server on 127.0.0.1:0 and real WebSocket clients.
#![allow(dead_code)] // each test binary uses a different part of the harness

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use clap::CommandFactory;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use strangers::config::Config;
use strangers::pow::Challenge;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub mod process;
pub mod redis;

/// The `--metrics-token` every test server gets; [`http_get`] sends it, so tests see
/// `/metrics` and the counts in `/healthz`.
pub const METRICS_TOKEN: &str = "test-metrics-token";

/// The proof of work of the test servers: on, so every client solves its challenges, and
/// easy (a debug build solves 2^10 in about a millisecond; all clients of a test share one
/// address, so their challenges get harder, up to 2^14). A test that gives a `--pow-` flag
/// of its own gets neither.
pub const TEST_POW: [&str; 4] = ["--pow-bits", "10", "--pow-max-bits", "14"];

/// [`TEST_POW`], unless `extra` sets a proof of work of its own.
pub fn test_pow(extra: &[&str]) -> Vec<&'static str> {
    let own = extra.iter().any(|flag| flag.starts_with("--pow-"));
    if own { Vec::new() } else { TEST_POW.to_vec() }
}

/// How long a test waits for something that should happen at once before it fails.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// A server running in this process on a free loopback port.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    /// The Redis of a server started with [`start_shared`](Self::start_shared), stopped
    /// with it.
    redis: Option<redis::RedisServer>,
}

impl TestServer {
    /// Starts a server with no STUN servers, a fixed seed, no re-match cooldown (most tests
    /// pair the same two users again on purpose), an easy proof of work ([`TEST_POW`]) and
    /// the extra flags given.
    pub async fn start(extra: &[&str]) -> TestServer {
        TestServer::start_with_report_log(extra, &scratch_file("reports.jsonl")).await
    }

    /// Like [`start`](Self::start), with the queue shared through the test binary's Redis,
    /// under a key prefix of its own.
    pub async fn start_shared(extra: &[&str]) -> TestServer {
        let redis = redis::RedisServer::start();
        let mut server = TestServer::start_in_pool(extra, &redis.url(), "test").await;
        server.redis = Some(redis);
        server
    }

    /// A server of the pool of instances that share the queue at `url` under `prefix`.
    pub async fn start_in_pool(extra: &[&str], url: &str, prefix: &str) -> TestServer {
        let mut args = vec!["--redis-url", url, "--redis-prefix", prefix];
        args.extend_from_slice(extra);
        TestServer::start_with_report_log(&args, &scratch_file("reports.jsonl")).await
    }

    /// Like [`start`](Self::start), keeping reports in `log` (to restart on the same store).
    pub async fn start_with_report_log(extra: &[&str], log: &std::path::Path) -> TestServer {
        let log = log.to_str().unwrap();
        let args = ["strangers", "--stun", "", "--seed", "1"]
            .into_iter()
            .chain(["--rematch-cooldown", "0s", "--report-log", log])
            .chain(["--metrics-token", METRICS_TOKEN])
            .chain(test_pow(extra))
            .chain(extra.iter().copied());
        let matches = Config::command()
            .try_get_matches_from(args)
            .expect("test flags are valid");
        let config = Config::from_matches(&matches, None).expect("test config is valid");
        let listener = strangers::server::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(strangers::server::run(listener, config, async {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            stop: Some(stop),
            task,
            redis: None,
        }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// A client that has read its `welcome`.
    pub async fn client(&self) -> Client {
        let (mut client, welcome) = self.client_with_welcome().await;
        let _ = &mut client;
        drop(welcome);
        client
    }

    /// A client and the `welcome` it got.
    pub async fn client_with_welcome(&self) -> (Client, Value) {
        let (ws, _) = tokio_tungstenite::connect_async(self.ws_url())
            .await
            .expect("the server accepts a WebSocket");
        let mut client = Client::new(ws);
        let welcome = client.recv().await;
        assert_eq!(welcome["type"], "welcome", "first message is welcome");
        (client, welcome)
    }

    /// A client that claims to come from `ip` in the request header `header` (a server
    /// started with `--client-ip-header <header>` believes it), and the `welcome` it got.
    pub async fn client_from(&self, header: &str, ip: &str) -> (Client, Value) {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut req = self.ws_url().into_client_request().unwrap();
        let name = header.parse::<tokio_tungstenite::tungstenite::http::HeaderName>();
        req.headers_mut().insert(name.unwrap(), ip.parse().unwrap());
        let (ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
        let mut client = Client::new(ws);
        let welcome = client.recv_type("welcome").await;
        (client, welcome)
    }

    /// Two clients matched with each other, each with the proof of membership its
    /// `matched` gave (to `resume` the room after a restart); and the room.
    pub async fn pair_with_proofs(&self) -> ((Client, String), (Client, String), String) {
        let mut a = self.client().await;
        let mut b = self.client().await;
        a.join().await;
        b.join().await;
        let ma = a.recv_type("matched").await;
        let mb = b.recv_type("matched").await;
        assert_eq!(ma["room"], mb["room"]);
        assert_ne!(
            ma["proof"], mb["proof"],
            "each member has a proof of its own"
        );
        let proof = |m: &Value| {
            m["proof"]
                .as_str()
                .expect("matched has a proof")
                .to_string()
        };
        let room = ma["room"].as_str().unwrap().to_string();
        ((a, proof(&ma)), (b, proof(&mb)), room)
    }

    /// Two clients matched with each other; returns (offerer, answerer, room).
    pub async fn pair(&self) -> (Client, Client, String) {
        let mut a = self.client().await;
        let mut b = self.client().await;
        a.join().await;
        b.join().await;
        let ma = a.recv_type("matched").await;
        let mb = b.recv_type("matched").await;
        assert_eq!(ma["room"], mb["room"]);
        let room = ma["room"].as_str().unwrap().to_string();
        if ma["role"] == "offerer" {
            (a, b, room)
        } else {
            (b, a, room)
        }
    }

    /// Reads `/healthz`.
    pub async fn health(&self) -> Value {
        let (status, _, body) = http_get(self.addr, "/healthz").await;
        assert!(status == 200 || status == 503, "healthz answered {status}");
        serde_json::from_str(&body).expect("healthz is JSON")
    }

    /// Signals shutdown and waits for `run` to return.
    pub async fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(15), &mut self.task)
            .await
            .expect("server stops within its drain time")
            .unwrap();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A WebSocket client speaking the protocol as the browser's page does: every `join` and
/// `next` it sends carries the 18+ confirmation and the solution of the latest challenge,
/// unless the message says `adult` or `pow` itself (then it goes as written). `challenge`
/// messages are taken in as they come and not handed to the test.
pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The latest challenge the server gave, and whether a join or Next has spent it (the
    /// next one must wait for the server's next challenge).
    challenge: Option<(Challenge, bool)>,
    /// Messages read while waiting for a challenge, handed out before any new one.
    early: VecDeque<Value>,
}

impl Client {
    pub fn new(ws: WebSocketStream<MaybeTlsStream<TcpStream>>) -> Client {
        Client {
            ws,
            challenge: None,
            early: VecDeque::new(),
        }
    }

    pub async fn send(&mut self, msg: Value) {
        let msg = self.admitted(msg).await;
        self.send_text(msg.to_string()).await;
    }

    /// Sends `msg` exactly as written (a join or Next still spends the challenge).
    pub async fn send_as_is(&mut self, msg: Value) {
        if matches!(msg["type"].as_str(), Some("join" | "next"))
            && let Some((_, spent)) = &mut self.challenge
        {
            *spent = true;
        }
        self.send_text(msg.to_string()).await;
    }

    pub async fn send_text(&mut self, text: String) {
        self.ws
            .send(Message::Text(text.into()))
            .await
            .expect("send");
    }

    /// A `join` or `next` with what the gate asks for filled in.
    async fn admitted(&mut self, mut msg: Value) -> Value {
        if !matches!(msg["type"].as_str(), Some("join" | "next")) {
            return msg;
        }
        let fields = msg.as_object_mut().expect("a message is an object");
        fields.entry("adult").or_insert(Value::Bool(true));
        if !fields.contains_key("pow")
            && let Some(challenge) = self.fresh_challenge().await
        {
            let nonce = challenge.solve().expect("test challenges are solvable");
            msg["pow"] = json!(nonce);
        }
        // The server spends its challenge on every join and Next it reads.
        if let Some((_, spent)) = &mut self.challenge {
            *spent = true;
        }
        msg
    }

    /// The latest challenge, once it is one no join has spent (reading, and keeping what
    /// else arrives meanwhile, until the server's next challenge is there). `None`: the
    /// server sets none.
    pub async fn fresh_challenge(&mut self) -> Option<Challenge> {
        loop {
            match self.challenge {
                None => return None,
                Some((challenge, false)) => return Some(challenge),
                Some((_, true)) => {
                    let msg = self.read().await;
                    self.early.push_back(msg);
                }
            }
        }
    }

    /// Reads one message off the socket, taking in (and skipping) challenges.
    async fn read(&mut self) -> Value {
        loop {
            let frame = tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .expect("a message arrives in time")
                .expect("the socket is still open")
                .expect("a valid frame");
            match frame {
                Message::Text(t) => {
                    let msg: Value = serde_json::from_str(&t).expect("server sends JSON");
                    if self.took_challenge(&msg) {
                        continue;
                    }
                    return msg;
                }
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// Keeps the challenge a `welcome` or `challenge` message carries; true for a
    /// `challenge` message (which is not passed on).
    fn took_challenge(&mut self, msg: &Value) -> bool {
        let given = match msg["type"].as_str() {
            Some("welcome") => &msg["challenge"],
            Some("challenge") => msg,
            _ => return false,
        };
        if let (Some(seed), Some(bits)) = (given["seed"].as_str(), given["bits"].as_u64()) {
            let challenge = Challenge::from_wire(seed, bits).expect("a well-formed challenge");
            self.challenge = Some((challenge, false));
        }
        msg["type"] == "challenge"
    }

    pub async fn join(&mut self) {
        self.send(json!({"type": "join"})).await;
        self.recv_type("waiting").await;
    }

    /// Joins as a client that takes a stranger's early offer inside `matched`.
    pub async fn join_ahead(&mut self) {
        self.send(json!({"type": "join", "ahead": true})).await;
        self.recv_type("waiting").await;
    }

    /// The next message, `online` updates skipped.
    pub async fn recv(&mut self) -> Value {
        loop {
            let msg = self.recv_any().await;
            if msg["type"] != "online" {
                return msg;
            }
        }
    }

    /// The next message of any type, `online` included (challenges are taken in, not
    /// returned).
    pub async fn recv_any(&mut self) -> Value {
        match self.early.pop_front() {
            Some(msg) => msg,
            None => self.read().await,
        }
    }

    /// The next frame, or `None` once the connection has ended.
    pub async fn ws_next(&mut self) -> Option<Message> {
        tokio::time::timeout(PATIENCE, self.ws.next())
            .await
            .expect("a frame or the end arrives in time")
            .and_then(Result::ok)
    }

    /// A message already received, if any, without waiting (`online` skipped).
    pub async fn try_recv_now(&mut self) -> Option<Value> {
        use futures_util::FutureExt;
        while let Some(msg) = self.early.pop_front() {
            if msg["type"] != "online" {
                return Some(msg);
            }
        }
        while let Some(Some(Ok(frame))) = self.ws.next().now_or_never() {
            if let Message::Text(t) = frame {
                let v: Value = serde_json::from_str(&t).expect("server sends JSON");
                if v["type"] != "online" && !self.took_challenge(&v) {
                    return Some(v);
                }
            }
        }
        None
    }

    /// Reads `online` messages until one says `expected` (its `count` and `modes`); fails
    /// if anything else arrives, or if that count is not reached in time (the count is
    /// published about once a second, and may pass through steps on the way).
    pub async fn recv_online(&mut self, expected: Value) {
        let mut want = expected;
        want["type"] = "online".into();
        let mut last = Value::Null;
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let Ok(frame) = tokio::time::timeout_at(deadline, self.ws.next()).await else {
                panic!("never saw {want}; the last count was {last}");
            };
            let msg: Value = match frame.expect("the socket is still open").expect("a frame") {
                Message::Text(t) => serde_json::from_str(&t).expect("server sends JSON"),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            };
            assert_eq!(
                msg["type"], "online",
                "expected only online messages, got {msg}"
            );
            if msg == want {
                return;
            }
            last = msg;
        }
    }

    /// The next message, asserting its type.
    pub async fn recv_type(&mut self, ty: &str) -> Value {
        let msg = self.recv().await;
        assert_eq!(msg["type"], ty, "expected a {ty} message, got {msg}");
        msg
    }

    /// Reads until the server closes; returns the close code.
    pub async fn closed(&mut self) -> Option<CloseCode> {
        loop {
            match tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .expect("the server closes in time")
            {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| f.code),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    }
}

/// Waits until the server at `addr` has exactly `n` users waiting, so that who meets whom
/// next is decided, not a race. The queue is only visible through `/healthz`, so this asks it
/// every 25 ms until a deadline.
pub async fn wait_waiting(addr: SocketAddr, n: u64, what: &str) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (_, _, body) = http_get(addr, "/healthz").await;
        let health: Value = serde_json::from_str(&body).unwrap_or_default();
        if health["waiting"].as_u64() == Some(n) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: the server's queue did not hold {n} user(s) within {PATIENCE:?} ({health})"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A fresh path under the system's temporary directory, unique to this process and call.
pub fn scratch_file(name: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "strangers-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// A plain HTTP/1.1 GET with the test servers' metrics token; returns status, raw headers
/// and body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    http_request(
        addr,
        &format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {METRICS_TOKEN}\r\nConnection: close\r\n\r\n"
        ),
    )
    .await
}

/// A plain HTTP/1.1 GET as the public sends it (no token).
pub async fn public_get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    http_request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    )
    .await
}

/// Sends a raw request and reads the whole response (the request must ask to close).
pub async fn http_request(addr: SocketAddr, request: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut raw))
        .await
        .expect("response in time")
        .unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    (status, head.to_string(), body.to_string())
}
