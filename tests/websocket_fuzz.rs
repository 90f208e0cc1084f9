//! Our WebSocket framing against tungstenite's, on arbitrary client byte streams: valid
//! frames, fragments, control frames between them, random opcodes, reserved bits, masks and
//! length encodings, cut short anywhere and handed to our parser in pieces split at random
//! offsets. Both must hand out the same messages and end the same way (the same close code,
//! or the end of the stream), and neither may panic.
//!
//! `cargo test --test websocket_fuzz` runs 256 cases; the long mode is
//! `PROPTEST_CASES=1000000 cargo test --release --test websocket_fuzz`.

use std::io::{self, Cursor, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll};

use proptest::prelude::*;
use strangers::websocket::{Error, Incoming, Socket};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocket, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};

/// The largest message both sides accept (small, so that limits are hit often).
const MAX: usize = 1000;

/// One frame as generated: every header field free, the payload's length written in any of
/// the three encodings.
#[derive(Clone, Debug)]
struct RawFrame {
    fin: bool,
    rsv: u8,
    opcode: u8,
    mask: Option<[u8; 4]>,
    payload: Vec<u8>,
    /// 0: the shortest encoding; 1: 16-bit; 2: 64-bit (non-minimal ones are allowed).
    width: u8,
}

impl RawFrame {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(if self.fin { 0x80 } else { 0 } | (self.rsv & 7) << 4 | (self.opcode & 0xF));
        let masked = if self.mask.is_some() { 0x80 } else { 0 };
        let len = self.payload.len();
        match (self.width, len) {
            (0, n) if n < 126 => out.push(masked | n as u8),
            (0 | 1, n) if n <= 0xFFFF => {
                out.push(masked | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            (_, n) => {
                out.push(masked | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        match self.mask {
            Some(mask) => {
                out.extend_from_slice(&mask);
                out.extend(
                    self.payload
                        .iter()
                        .enumerate()
                        .map(|(i, b)| b ^ mask[i % 4]),
                );
            }
            None => out.extend_from_slice(&self.payload),
        }
    }
}

fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => "[a-zé€😀 ]{0,40}".prop_map(String::into_bytes),
        2 => proptest::collection::vec(any::<u8>(), 0..20),
        1 => Just(vec![0xC3]), // half a character
        1 => Just(vec![0xA9]), // its other half
        1 => (0usize..4).prop_map(|k| {
            let code: u16 = [1000, 1001, 999, 1005][k];
            let mut p = code.to_be_bytes().to_vec();
            p.extend_from_slice(b"bye");
            p
        }),
        1 => (100usize..1200).prop_map(|n| vec![b'x'; n]),
    ]
}

fn frame() -> impl Strategy<Value = RawFrame> {
    let opcode = prop_oneof![
        3 => Just(1u8), 3 => Just(0), 1 => Just(2), 1 => Just(8), 2 => Just(9), 1 => Just(10),
        1 => 0u8..16,
    ];
    let rsv = prop_oneof![20 => Just(0u8), 1 => 1u8..8];
    let mask = prop_oneof![20 => any::<[u8; 4]>().prop_map(Some), 1 => Just(None)];
    (any::<bool>(), rsv, opcode, mask, payload(), 0u8..3).prop_map(
        |(fin, rsv, opcode, mask, payload, width)| RawFrame {
            fin,
            rsv,
            opcode,
            mask,
            payload,
            width,
        },
    )
}

/// A client's bytes: some frames, maybe cut short, maybe followed by garbage.
fn stream() -> impl Strategy<Value = (Vec<u8>, Vec<usize>)> {
    let frames = proptest::collection::vec(frame(), 0..12);
    let tail =
        prop_oneof![4 => Just(Vec::new()), 1 => proptest::collection::vec(any::<u8>(), 0..16)];
    (frames, tail, any::<prop::sample::Index>(), any::<bool>()).prop_flat_map(
        |(frames, tail, cut, truncate)| {
            let mut bytes = Vec::new();
            for f in &frames {
                f.encode(&mut bytes);
            }
            bytes.extend(tail);
            if truncate && !bytes.is_empty() {
                bytes.truncate(cut.index(bytes.len()));
            }
            let n = bytes.len();
            (Just(bytes), proptest::collection::vec(0..=n, 0..8))
        },
    )
}

/// What a parser made of a stream: its messages, then how it ended.
#[derive(Debug, PartialEq, Eq)]
enum Event {
    Text(String),
    Binary,
    Ping,
    Pong,
    Close(Option<u16>),
    /// The stream ended (no close frame).
    End,
    /// Refused, with the close code the server sends.
    Refused(u16),
}

/// Reads `bytes` in pieces cut at `splits`; writes go nowhere.
struct Pieces {
    bytes: Vec<u8>,
    splits: Vec<usize>,
    at: usize,
}

impl AsyncRead for Pieces {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let at = self.at;
        let next = self
            .splits
            .iter()
            .copied()
            .filter(|&s| s > at)
            .min()
            .unwrap_or(self.bytes.len());
        let n = (next - at).min(buf.remaining());
        buf.put_slice(&self.bytes[at..at + n]);
        self.at += n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Pieces {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(b.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fn ours(bytes: &[u8], splits: &[usize], rt: &tokio::runtime::Runtime) -> Vec<Event> {
    let io = Pieces {
        bytes: bytes.to_vec(),
        splits: splits.to_vec(),
        at: 0,
    };
    let mut socket = Socket::new(io, MAX);
    let mut events = Vec::new();
    rt.block_on(async {
        loop {
            let event = match socket.recv().await {
                Ok(Incoming::Text(t)) => Event::Text(t),
                Ok(Incoming::Binary) => Event::Binary,
                Ok(Incoming::Ping) => Event::Ping,
                Ok(Incoming::Pong) => Event::Pong,
                Ok(Incoming::Close(code)) => Event::Close(code),
                Err(Error::Io(_)) => Event::End,
                Err(Error::TooLarge) => Event::Refused(1009),
                Err(Error::Utf8) => Event::Refused(1007),
                Err(Error::Protocol(_)) => Event::Refused(1002),
                Err(Error::Policy(_)) => Event::Refused(1008),
            };
            let last = !matches!(
                event,
                Event::Text(_) | Event::Binary | Event::Ping | Event::Pong
            );
            events.push(event);
            if last {
                return;
            }
        }
    });
    events
}

/// A stream tungstenite reads from and writes nowhere.
struct Input(Cursor<Vec<u8>>);

impl Read for Input {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for Input {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn theirs(bytes: &[u8]) -> Vec<Event> {
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX))
        .max_frame_size(Some(MAX));
    let mut ws = WebSocket::from_raw_socket(
        Input(Cursor::new(bytes.to_vec())),
        Role::Server,
        Some(config),
    );
    let mut events = Vec::new();
    loop {
        let event = match ws.read() {
            Ok(Message::Text(t)) => Event::Text(t.as_str().to_owned()),
            Ok(Message::Binary(_)) => Event::Binary,
            Ok(Message::Ping(_)) => Event::Ping,
            Ok(Message::Pong(_)) => Event::Pong,
            Ok(Message::Close(frame)) => Event::Close(frame.map(|f| u16::from(f.code))),
            Ok(Message::Frame(_)) => unreachable!("not handed out when reading"),
            Err(tungstenite::Error::Capacity(_)) => Event::Refused(1009),
            Err(tungstenite::Error::Utf8(_)) => Event::Refused(1007),
            Err(tungstenite::Error::Protocol(
                tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
            ))
            | Err(tungstenite::Error::Io(_))
            | Err(tungstenite::Error::ConnectionClosed) => Event::End,
            Err(tungstenite::Error::Protocol(_)) => Event::Refused(1002),
            Err(e) => panic!("unexpected tungstenite error {e}"),
        };
        let last = !matches!(
            event,
            Event::Text(_) | Event::Binary | Event::Ping | Event::Pong
        );
        events.push(event);
        if last {
            return events;
        }
    }
}

/// Where the two may rightly differ, from the end of the stream backwards:
///
/// - we refuse an oversized or broken frame from its header, where tungstenite first waits
///   for the payload (or checks the size before the other rules): when the stream was cut
///   short, tungstenite ends, and either way the refusal may name another code;
/// - we refuse a message in more than 16 frames (1008), which tungstenite lets through.
fn agree(ours: &[Event], theirs: &[Event]) -> bool {
    if ours == theirs {
        return true;
    }
    let (Some(our_end), Some(their_end)) = (ours.last(), theirs.last()) else {
        return false;
    };
    let same_messages = ours[..ours.len() - 1] == theirs[..theirs.len() - 1];
    match (our_end, their_end) {
        (Event::Refused(1008), _) => theirs.starts_with(&ours[..ours.len() - 1]),
        (Event::Refused(1009 | 1002), Event::End | Event::Refused(1009 | 1002)) => same_messages,
        _ => false,
    }
}

proptest! {

    #[test]
    fn our_framing_reads_what_tungstenite_reads((bytes, splits) in stream()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let ours = ours(&bytes, &splits, &rt);
        let theirs = theirs(&bytes);
        prop_assert!(agree(&ours, &theirs), "ours {ours:?}\ntheirs {theirs:?}\nbytes {bytes:?}");
        // However the stream is cut into reads, we read the same.
        prop_assert_eq!(&ours, &self::ours(&bytes, &[], &rt));
    }
}
