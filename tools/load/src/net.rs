//! Connecting simulated clients, and reading the server's messages cheaply.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use futures_util::StreamExt;
use serde::Deserialize;
use strangers::pow::Challenge;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::http::Uri;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};

/// One simulated client's socket.
pub type Ws = WebSocketStream<TcpStream>;

/// Where the clients connect and from which source addresses.
#[derive(Debug, Clone)]
pub struct Target {
    /// The first server's resolved address.
    pub addr: SocketAddr,
    /// Every server the clients spread over, with its URL: several comma-separated URLs
    /// (instances sharing one queue) put client `i` on server `i % n`.
    pub endpoints: Vec<(String, SocketAddr)>,
    /// Source addresses to spread client sockets over (empty: let the kernel choose).
    pub sources: Vec<IpAddr>,
    /// Time allowed for TCP connect + WebSocket handshake + welcome.
    pub connect_timeout: Duration,
}

impl Target {
    /// Resolves `url` (`ws://host:port/path`) and checks the network rule: the server must be
    /// on loopback unless `allow_remote`. `source_addrs` loopback source addresses
    /// (127.0.0.1, 127.0.0.2, ...) are used when the server is on IPv4 loopback; 0 lets the
    /// kernel choose.
    pub async fn resolve(
        url: &str,
        allow_remote: bool,
        source_addrs: u16,
        connect_timeout: Duration,
    ) -> Result<Target, String> {
        let mut endpoints = Vec::new();
        for one in url.split(',').map(str::trim).filter(|u| !u.is_empty()) {
            endpoints.push((one.to_string(), resolve_one(one, allow_remote).await?));
        }
        let Some((_, addr)) = endpoints.first().cloned() else {
            return Err("--url: no URL given".into());
        };
        let sources = match addr.ip() {
            IpAddr::V4(v4) if v4.is_loopback() => (0..u32::from(source_addrs))
                .map(|i| IpAddr::V4(loopback_source(i)))
                .collect(),
            _ => Vec::new(),
        };
        Ok(Target {
            addr,
            endpoints,
            sources,
            connect_timeout,
        })
    }

    /// Opens client number `index`: TCP (from source address `index % sources`), WebSocket
    /// handshake, then reads the `welcome`; returns the socket and the challenge its first
    /// join must solve (none when the server's proof of work is off). The error is a short
    /// kind for the tally.
    pub async fn connect(&self, index: usize) -> Result<(Ws, Option<Challenge>), String> {
        match tokio::time::timeout(self.connect_timeout, self.connect_inner(index)).await {
            Ok(r) => r,
            Err(_) => Err("connect_timeout".into()),
        }
    }

    async fn connect_inner(&self, index: usize) -> Result<(Ws, Option<Challenge>), String> {
        let (url, addr) = &self.endpoints[index % self.endpoints.len()];
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .map_err(|e| io_kind("socket", &e))?;
        if !self.sources.is_empty() {
            let src = self.sources[index % self.sources.len()];
            socket
                .set_reuseaddr(true)
                .map_err(|e| io_kind("bind", &e))?;
            socket
                .bind(SocketAddr::new(src, 0))
                .map_err(|e| io_kind("bind", &e))?;
        }
        let stream = socket
            .connect(*addr)
            .await
            .map_err(|e| io_kind("connect", &e))?;
        stream
            .set_nodelay(true)
            .map_err(|e| io_kind("connect", &e))?;
        let (mut ws, _) =
            tokio_tungstenite::client_async_with_config(url.as_str(), stream, Some(config()))
                .await
                .map_err(|e| match e {
                    tungstenite::Error::Http(resp) => format!("handshake_http_{}", resp.status()),
                    tungstenite::Error::Io(e) => io_kind("handshake", &e),
                    _ => "handshake".to_string(),
                })?;
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    return match Incoming::parse(&t) {
                        Some(m) if m.ty == "welcome" => Ok((ws, m.challenge())),
                        _ => Err("no_welcome".into()),
                    };
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(_)) => return Err("no_welcome".into()),
                Some(Err(_)) | None => return Err("closed_before_welcome".into()),
            }
        }
    }
}

/// The `i`-th source address: 127.0.0.1, 127.0.0.2, ... 127.0.0.254, 127.0.1.1, ...
/// (skipping .0 and .255 in the last byte).
fn loopback_source(i: u32) -> Ipv4Addr {
    let (hi, lo) = (i / 254, i % 254 + 1);
    Ipv4Addr::new(127, (hi >> 8) as u8, hi as u8, lo as u8)
}

/// Client socket settings: a small initial read buffer (the generator holds up to ~19,000
/// sockets; tungstenite's default is 128 KiB each), messages up to the protocol's 64 KiB.
fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(Some(1 << 20))
        .max_frame_size(Some(1 << 20))
}

fn io_kind(stage: &str, e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(24) => format!("{stage}_too_many_open_files"),
        Some(99) => format!("{stage}_address_not_available"),
        Some(111) => format!("{stage}_refused"),
        Some(104) => format!("{stage}_reset"),
        _ => format!("{stage}_{:?}", e.kind()).to_lowercase(),
    }
}

/// The fields of a server message that the load generator looks at. Borrowed where it can
/// be, so a 6 KB `sdp` is checked but not copied.
#[derive(Deserialize, Debug)]
pub struct Incoming<'a> {
    /// What the message is (`welcome`, `matched`, `offer`, ...): what the client does next.
    #[serde(rename = "type", borrow)]
    pub ty: Cow<'a, str>,
    /// The room of `matched`, `left` and relayed messages, checked against the client's own.
    #[serde(default, borrow)]
    pub room: Option<Cow<'a, str>>,
    /// `offerer` or `answerer` in `matched`: who sends the offer.
    #[serde(default, borrow)]
    pub role: Option<Cow<'a, str>>,
    /// An offer's or answer's body, which carries the sender's timestamp.
    #[serde(default, borrow)]
    pub sdp: Option<Cow<'a, str>>,
    /// A chat message's text, which carries the sender's timestamp.
    #[serde(default, borrow)]
    pub text: Option<Cow<'a, str>>,
    /// A relayed ICE candidate, which carries the sender's timestamp.
    #[serde(default, borrow)]
    pub candidate: Option<CandidateIn<'a>>,
    /// An error's code (`rate_limited`, ...), tallied by kind.
    #[serde(default, borrow)]
    pub code: Option<Cow<'a, str>>,
    /// Why a partner left, tallied by kind.
    #[serde(default, borrow)]
    pub reason: Option<Cow<'a, str>>,
    /// The seed of a `challenge` message.
    #[serde(default, borrow)]
    pub seed: Option<Cow<'a, str>>,
    /// The difficulty of a `challenge` message.
    #[serde(default)]
    pub bits: Option<u64>,
    /// The first challenge, in `welcome`.
    #[serde(default, borrow, rename = "challenge")]
    pub first: Option<ChallengeIn<'a>>,
}

/// A challenge as `welcome` carries it.
#[derive(Deserialize, Debug)]
pub struct ChallengeIn<'a> {
    /// Its seed, in hex.
    #[serde(borrow)]
    pub seed: Cow<'a, str>,
    /// Its difficulty.
    pub bits: u64,
}

/// The part of a relayed ICE candidate the generator reads.
#[derive(Deserialize, Debug)]
pub struct CandidateIn<'a> {
    /// The candidate line, which carries the sender's timestamp.
    #[serde(borrow)]
    pub candidate: Cow<'a, str>,
}

impl<'a> Incoming<'a> {
    pub fn parse(text: &'a str) -> Option<Incoming<'a>> {
        serde_json::from_str(text).ok()
    }

    /// The challenge a `welcome` or `challenge` message sets.
    pub fn challenge(&self) -> Option<Challenge> {
        match (&self.first, &self.seed, self.bits) {
            (Some(first), _, _) => Challenge::from_wire(&first.seed, first.bits),
            (None, Some(seed), Some(bits)) => Challenge::from_wire(seed, bits),
            _ => None,
        }
    }

    /// The sender's timestamp in a relayed message's payload (`ts=<nanoseconds>`).
    pub fn timestamp(&self) -> Option<u64> {
        let payload = self
            .sdp
            .as_deref()
            .or(self.text.as_deref())
            .or(self.candidate.as_ref().map(|c| c.candidate.as_ref()))?;
        let at = payload.find("ts=")? + 3;
        let digits = &payload[at..];
        let end = digits
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(digits.len());
        digits[..end].parse().ok()
    }
}

/// The relayed messages the clients send, with `ts=<nanoseconds>` in the payload.
pub mod out {
    /// An SDP-like body of exactly `bytes` bytes (at least its header), no JSON escapes.
    pub fn sdp(kind: &str, room: &str, ts: u64, bytes: usize) -> String {
        let head = format!("v=0 o=- {kind} ts={ts} s=- ");
        let pad = bytes.saturating_sub(head.len());
        let mut msg = String::with_capacity(bytes + 64);
        msg.push_str(r#"{"type":""#);
        msg.push_str(kind);
        msg.push_str(r#"","room":""#);
        msg.push_str(room);
        msg.push_str(r#"","sdp":""#);
        msg.push_str(&head);
        msg.extend(std::iter::repeat_n('a', pad));
        msg.push_str(r#""}"#);
        msg
    }

    pub fn candidate(room: &str, ts: u64, i: u8) -> String {
        format!(
            r#"{{"type":"candidate","room":"{room}","candidate":{{"candidate":"candidate:{i} 1 udp 2122260223 192.0.2.{i} 5{i:04} typ host ts={ts}","sdpMid":"0","sdpMLineIndex":0}}}}"#
        )
    }

    pub fn chat(room: &str, ts: u64) -> String {
        format!(r#"{{"type":"chat","room":"{room}","text":"hello stranger ts={ts}"}}"#)
    }

    /// A `join` with the 18+ confirmation and the solution `pow` (if the server set a
    /// challenge), and `extra` fields (`"interests":[…]`, or empty).
    pub fn join(pow: Option<u32>, extra: &str) -> String {
        entry("join", pow, extra)
    }

    /// A `next`, confirmed and solved like [`join`].
    pub fn next(pow: Option<u32>) -> String {
        entry("next", pow, "")
    }

    fn entry(kind: &str, pow: Option<u32>, extra: &str) -> String {
        let pow = pow.map(|n| format!(r#","pow":{n}"#)).unwrap_or_default();
        let extra = if extra.is_empty() {
            String::new()
        } else {
            format!(",{extra}")
        };
        format!(r#"{{"type":"{kind}","adult":true{pow}{extra}}}"#)
    }
}

/// Solves `challenge` as a bot must, on the blocking pool (a solve takes milliseconds of
/// CPU, which must not hold up the sockets a runtime thread serves). `None` for none.
pub async fn solve(challenge: Option<Challenge>) -> Option<u32> {
    let challenge = challenge?;
    tokio::task::spawn_blocking(move || challenge.solve())
        .await
        .ok()
        .flatten()
}

/// Resolves one `ws://host:port/path` and checks the network rule (loopback only unless
/// `allow_remote`); prefers IPv4, where spreading over source addresses works.
async fn resolve_one(url: &str, allow_remote: bool) -> Result<SocketAddr, String> {
    let uri: Uri = url.parse().map_err(|e| format!("--url {url:?}: {e}"))?;
    match uri.scheme_str() {
        Some("ws") => {}
        Some("wss") => return Err("--url: wss:// is not supported; use ws://".into()),
        _ => return Err(format!("--url {url:?}: expected ws://host:port/path")),
    }
    let host = uri
        .host()
        .ok_or_else(|| format!("--url {url:?} has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(80);
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| format!("--url: cannot resolve {host}: {e}"))?
        .collect();
    if addrs.is_empty() {
        return Err(format!("--url: {host} resolves to no address"));
    }
    if !allow_remote && let Some(a) = addrs.iter().find(|a| !a.ip().is_loopback()) {
        return Err(format!(
            "refusing to load {host} ({}): not a loopback address (127.0.0.0/8 or ::1). \
             Pass --allow-remote only for a server you run and may load.",
            a.ip()
        ));
    }
    Ok(addrs
        .iter()
        .copied()
        .find(|a| a.is_ipv4())
        .unwrap_or(addrs[0]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_parse_back_with_their_timestamp() {
        let room = "0123456789abcdef0123456789abcdef";
        let offer = out::sdp("offer", room, 42, 6000);
        let m = Incoming::parse(&offer).unwrap();
        assert_eq!(m.ty, "offer");
        assert_eq!(m.sdp.as_ref().unwrap().len(), 6000);
        assert_eq!(m.timestamp(), Some(42));
        let c = out::candidate(room, 7, 3);
        assert_eq!(Incoming::parse(&c).unwrap().timestamp(), Some(7));
        let t = out::chat(room, 9);
        assert_eq!(Incoming::parse(&t).unwrap().timestamp(), Some(9));
        let w = Incoming::parse(r#"{"type":"welcome","online":1,"iceServers":[]}"#).unwrap();
        assert_eq!(w.ty, "welcome");
        let e = Incoming::parse(r#"{"type":"error","code":"bad_message","message":"a \"b\""}"#)
            .unwrap();
        assert_eq!(e.code.as_deref(), Some("bad_message"));
    }

    #[test]
    fn source_addresses_stay_in_loopback_and_skip_zero() {
        assert_eq!(loopback_source(0), Ipv4Addr::new(127, 0, 0, 1));
        assert_eq!(loopback_source(253), Ipv4Addr::new(127, 0, 0, 254));
        assert_eq!(loopback_source(254), Ipv4Addr::new(127, 0, 1, 1));
        assert!(loopback_source(65_535).is_loopback());
    }
}
