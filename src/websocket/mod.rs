//! The WebSocket framing (RFC 6455, server side) over an upgraded connection, holding no
//! buffer while the connection is idle.
//!
//! Why our own: a chat server holds tens of thousands of connections that are quiet nearly all
//! the time, and a general-purpose WebSocket keeps per-connection read and write buffers for
//! the connection's whole life. tungstenite keeps a read buffer of at least its configured
//! size, and both its buffers grow to the largest message ever passed (an SDP of a few KiB)
//! and never shrink. Here:
//!
//! - **Reading** goes into a buffer on the stack of the poll that reads. Whole frames are
//!   parsed straight out of it; only the bytes of a frame that has not fully arrived yet are
//!   copied into the connection's own buffer, which is freed as soon as that frame is done.
//! - **Writing** encodes frames into a buffer that exists only until it has been written:
//!   [`Socket::feed_text`] several frames, then one [`Socket::flush`], which is one `write`
//!   for all of them.
//!
//! Every read goes onto the stack first, so a frame that trickles in holds only the bytes that
//! have arrived, never what its header announced; and what connections hold in unfinished
//! messages is bounded per message (size, time, frames) and in total ([`budget`]).
//!
//! An idle connection is therefore its I/O object plus a few words. What is supported is what
//! a browser's `WebSocket` sends: masked text and binary frames, fragmentation, ping, pong and
//! close; no extensions and no subprotocols (the handshake in [`upgrade`](crate::upgrade)
//! offers none). Violations end the connection with the close code the RFC names.

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::futures::OwnedNotified;
use tokio::time::Sleep;

pub mod budget;

pub use budget::Reading;

/// Bytes read per `read` call, on the reading poll's stack. Our frames are small: a whole
/// burst of candidates and chat lines fits; a larger SDP takes a second read.
const READ_CHUNK: usize = 8 * 1024;

/// Close codes of RFC 6455 §7.4.1 that the server sends.
pub mod code {
    /// The server is going away for a restart; the client should reconnect.
    pub const RESTART: u16 = 1012;
    /// The client broke the framing rules.
    pub const PROTOCOL: u16 = 1002;
    /// A text message that is not UTF-8.
    pub const INVALID: u16 = 1007;
    /// The client broke a policy (it flooded).
    pub const POLICY: u16 = 1008;
    /// A message over the size limit.
    pub const TOO_BIG: u16 = 1009;
    /// The server cannot go on with this connection (it did not keep up).
    pub const ERROR: u16 = 1011;
}

/// One complete message from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    /// A text message, whole (fragments joined) and checked to be UTF-8.
    Text(String),
    /// A binary message; our protocol has none, so only its arrival matters.
    Binary,
    /// A ping; the pong is already queued (send it with [`Socket::flush`]).
    Ping,
    /// A pong, the answer to our ping.
    Pong,
    /// The client began the closing handshake, with its status code if it gave one. Our
    /// answering close frame is already queued.
    Close(Option<u16>),
}

/// Why reading from the client failed. After any of these the connection is done.
#[derive(Debug)]
pub enum Error {
    /// A message (or one of its fragments so far) over the size limit. Its payload has not
    /// been read.
    TooLarge,
    /// A text message that is not valid UTF-8 (close with [`code::INVALID`]).
    Utf8,
    /// The client broke the framing rules (close with [`code::PROTOCOL`]).
    Protocol(&'static str),
    /// The client broke a limit on how a message arrives: too slowly, or in too many frames
    /// (close with [`code::POLICY`]).
    Policy(&'static str),
    /// The connection ended without a close frame, or failed.
    Io(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::TooLarge => f.write_str("message over the size limit"),
            Error::Utf8 => f.write_str("text message is not UTF-8"),
            Error::Protocol(why) => write!(f, "protocol violation: {why}"),
            Error::Policy(why) => write!(f, "policy violation: {why}"),
            Error::Io(e) => write!(f, "i/o: {e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

/// What kind of data message a run of fragments makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Text,
    Binary,
}

/// The server's end of one WebSocket connection.
pub struct Socket<S> {
    /// The upgraded connection.
    io: S,
    /// Bytes read that do not yet make a whole frame (or frames not yet handed out, when one
    /// read brought several). Unallocated whenever everything read has been handed out, which
    /// is the idle state.
    pending: Vec<u8>,
    /// How much of `pending` has been parsed already; the rest starts at a frame boundary.
    /// An offset rather than draining, so that handing out many small frames from one read
    /// copies nothing.
    parsed: usize,
    /// The payload so far of a message that arrives in several frames, and its kind.
    /// Unallocated between messages.
    fragments: Option<(Kind, Vec<u8>)>,
    /// Encoded frames waiting to be written. Unallocated once written.
    out: Vec<u8>,
    /// How much of `out` has been written (a write may take only part).
    written: usize,
    /// The limits every connection shares (the largest message accepted: a frame that
    /// announces more is refused before its payload is read), and the budget of bytes all
    /// of them hold in unfinished messages.
    reading: Arc<Reading>,
    /// Bytes this connection has counted in the budget (its buffers' capacity).
    held: usize,
    /// Frames of the message being assembled so far, control frames between them included.
    frames: u32,
    /// When the unfinished message must be done; made with its first byte, dropped when a
    /// data message is handed out (boxed: a timer is large, and only unfinished messages
    /// need one).
    deadline: Option<Pin<Box<Sleep>>>,
    /// While the budget is spent and this connection holds more than its share: what wakes
    /// it when bytes are given back.
    waiting: Option<Pin<Box<OwnedNotified>>>,
    /// Set once we have queued a close frame: nothing may be sent after it.
    closing: bool,
}

impl<S> fmt::Debug for Socket<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socket")
            .field("pending", &(self.pending.len() - self.parsed))
            .field("out", &(self.out.len() - self.written))
            .field("closing", &self.closing)
            .finish_non_exhaustive()
    }
}

/// A frame header, parsed.
struct Header {
    fin: bool,
    opcode: u8,
    mask: [u8; 4],
    /// Header length in bytes.
    len: usize,
    /// Payload length in bytes.
    payload: usize,
}

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// Parses the header at the start of `buf`; `Ok(None)` if `buf` does not hold all of it yet.
fn parse_header(buf: &[u8], max_message: usize) -> Result<Option<Header>, Error> {
    let [b0, b1, ..] = *buf else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        return Err(Error::Protocol("reserved bits set without an extension"));
    }
    let fin = b0 & 0x80 != 0;
    let opcode = b0 & 0x0F;
    if b1 & 0x80 == 0 {
        return Err(Error::Protocol("client frames must be masked"));
    }
    let (payload, at) = match b1 & 0x7F {
        126 => match buf.get(2..4) {
            Some(b) => (u16::from_be_bytes([b[0], b[1]]) as u64, 4),
            None => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(b) => (u64::from_be_bytes(b.try_into().expect("8 bytes")), 10),
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    let control = opcode & 0x8 != 0;
    match opcode {
        OP_CONTINUATION | OP_TEXT | OP_BINARY => {
            if payload > max_message as u64 {
                return Err(Error::TooLarge);
            }
        }
        OP_CLOSE | OP_PING | OP_PONG => {}
        _ => return Err(Error::Protocol("unknown opcode")),
    }
    if control && (!fin || payload > 125) {
        return Err(Error::Protocol(
            "control frames must be whole and at most 125 bytes",
        ));
    }
    let Some(mask) = buf.get(at..at + 4) else {
        return Ok(None);
    };
    Ok(Some(Header {
        fin,
        opcode,
        mask: mask.try_into().expect("4 bytes"),
        len: at + 4,
        payload: payload as usize,
    }))
}

/// Unmasks `data` in place (RFC 6455 §5.3), eight bytes at a time.
fn unmask(data: &mut [u8], mask: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let word = u64::from_ne_bytes((&*chunk).try_into().expect("8 bytes")) ^ wide;
        chunk.copy_from_slice(&word.to_ne_bytes());
    }
    // The remainder starts at a multiple of 8, so at mask index 0.
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
}

/// Encodes one unmasked server frame: the header, then `payload`.
fn encode(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    let len = payload.len();
    out.reserve(len + 10);
    out.push(0x80 | opcode);
    if len < 126 {
        out.push(len as u8);
    } else if len <= usize::from(u16::MAX) {
        out.push(126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(payload);
}

impl<S> Socket<S> {
    /// Wraps an upgraded connection (the `101` already sent) whose largest accepted message
    /// is `max_message` bytes, with no deadline or budget (for the framing alone).
    pub fn new(io: S, max_message: usize) -> Self {
        Socket::with_reading(io, Reading::unbounded(max_message))
    }

    /// Wraps an upgraded connection that reads under `reading`'s limits and budget.
    pub fn with_reading(io: S, reading: Arc<Reading>) -> Self {
        Socket {
            io,
            pending: Vec::new(),
            parsed: 0,
            fragments: None,
            out: Vec::new(),
            written: 0,
            reading,
            held: 0,
            frames: 0,
            deadline: None,
            waiting: None,
            closing: false,
        }
    }

    /// Queues a text frame. Nothing is written until [`flush`](Self::flush).
    pub fn feed_text(&mut self, text: &str) {
        if !self.closing {
            encode(&mut self.out, OP_TEXT, text.as_bytes());
        }
    }

    /// Queues a ping (empty payload).
    pub fn feed_ping(&mut self) {
        if !self.closing {
            encode(&mut self.out, OP_PING, &[]);
        }
    }

    /// Queues a close frame with `code` and a short `reason`; nothing is sent after it.
    pub fn feed_close(&mut self, code: u16, reason: &str) {
        if self.closing {
            return;
        }
        let mut payload = Vec::with_capacity(2 + reason.len());
        payload.extend_from_slice(&code.to_be_bytes());
        // A control frame's payload is at most 125 bytes.
        let mut end = reason.len().min(123);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        payload.extend_from_slice(&reason.as_bytes()[..end]);
        encode(&mut self.out, OP_CLOSE, &payload);
        self.closing = true;
    }

    /// Whether queued frames are waiting for [`flush`](Self::flush).
    pub fn has_unwritten(&self) -> bool {
        self.written < self.out.len()
    }

    /// Whether a close frame has been queued (by us, or in answer to the client's).
    pub fn is_closing(&self) -> bool {
        self.closing
    }

    /// Bytes held for this connection right now (read but not handed out, being assembled,
    /// or waiting to be written); zero when idle.
    pub fn buffered(&self) -> usize {
        self.pending.capacity()
            + self.out.capacity()
            + self.fragments.as_ref().map_or(0, |(_, f)| f.capacity())
    }

    /// Parses the next frame of `buf` (which starts at a frame boundary). Returns how many
    /// bytes it took and the message it completed, or `None` if the frame is not all there.
    fn parse_frame(&mut self, buf: &mut [u8]) -> Result<Option<(usize, Option<Incoming>)>, Error> {
        let Some(header) = parse_header(buf, self.reading.max_message)? else {
            return Ok(None);
        };
        let end = header.len + header.payload;
        if buf.len() < end {
            return Ok(None);
        }
        let payload = &mut buf[header.len..end];
        unmask(payload, header.mask);
        if self.fragments.is_some() || !header.fin {
            self.frames += 1;
            if self.frames > budget::MAX_FRAMES {
                return Err(Error::Policy("a message in too many frames"));
            }
        }
        let message = match header.opcode {
            OP_TEXT | OP_BINARY => {
                if self.fragments.is_some() {
                    return Err(Error::Protocol("new message before the last one ended"));
                }
                let kind = if header.opcode == OP_TEXT {
                    Kind::Text
                } else {
                    Kind::Binary
                };
                if header.fin {
                    Some(complete(kind, payload.to_vec())?)
                } else {
                    if kind == Kind::Text {
                        check_utf8_prefix(payload)?;
                    }
                    self.fragments = Some((kind, payload.to_vec()));
                    None
                }
            }
            OP_CONTINUATION => {
                let Some((kind, so_far)) = self.fragments.as_mut() else {
                    return Err(Error::Protocol("continuation without a message"));
                };
                if so_far.len() + payload.len() > self.reading.max_message {
                    return Err(Error::TooLarge);
                }
                so_far.extend_from_slice(payload);
                let kind = *kind;
                if kind == Kind::Text && !header.fin {
                    check_utf8_prefix(so_far)?;
                }
                if header.fin {
                    let (_, whole) = self.fragments.take().expect("checked above");
                    self.frames = 0;
                    Some(complete(kind, whole)?)
                } else {
                    None
                }
            }
            OP_PING => {
                encode(&mut self.out, OP_PONG, payload);
                Some(Incoming::Ping)
            }
            OP_PONG => Some(Incoming::Pong),
            OP_CLOSE => Some(self.on_close(payload)?),
            _ => unreachable!("parse_header refuses other opcodes"),
        };
        Ok(Some((end, message)))
    }

    /// A close frame from the client: its code (a code no endpoint may send is read as a
    /// protocol error, RFC 6455 §7.4), and our answering close frame queued, as the RFC asks.
    fn on_close(&mut self, payload: &[u8]) -> Result<Incoming, Error> {
        let code = match payload.len() {
            0 => None,
            1 => return Err(Error::Protocol("close frame with a one-byte payload")),
            _ => {
                if std::str::from_utf8(&payload[2..]).is_err() {
                    return Err(Error::Utf8);
                }
                let code = u16::from_be_bytes([payload[0], payload[1]]);
                Some(if may_send(code) { code } else { code::PROTOCOL })
            }
        };
        if !self.closing {
            // The same code (or none); never one that may not appear on the wire, which was
            // read as a protocol error above.
            let echo = code.map(u16::to_be_bytes);
            encode(
                &mut self.out,
                OP_CLOSE,
                echo.as_ref().map_or(&[], |c| &c[..]),
            );
            self.closing = true;
        }
        Ok(Incoming::Close(code))
    }

    /// Hands out the next whole message from `pending`, if it holds one.
    fn next_pending(&mut self) -> Result<Option<Incoming>, Error> {
        while self.parsed < self.pending.len() {
            let mut buf = std::mem::take(&mut self.pending);
            let parsed = self.parse_frame(&mut buf[self.parsed..]);
            self.pending = buf;
            match parsed? {
                None => break,
                Some((used, message)) => {
                    self.parsed += used;
                    if message.is_some() {
                        self.release_pending();
                        return Ok(message);
                    }
                }
            }
        }
        self.release_pending();
        Ok(None)
    }

    /// Frees `pending` once everything in it has been handed out, and otherwise moves the
    /// unparsed rest to its front.
    fn release_pending(&mut self) {
        if self.parsed == self.pending.len() {
            self.pending = Vec::new();
            self.parsed = 0;
        } else if self.parsed > 0 && self.pending.len() - self.parsed < self.parsed {
            // Cheap now (the rest is shorter than what is dropped), and keeps it bounded.
            self.pending.drain(..self.parsed);
            self.parsed = 0;
        }
    }

    /// Whether part of a message (or of a frame) is held.
    fn unfinished(&self) -> bool {
        self.parsed < self.pending.len() || self.fragments.is_some()
    }

    /// Brings this connection's count in the budget up to date with its buffers.
    fn account(&mut self) {
        let now =
            self.pending.capacity() + self.fragments.as_ref().map_or(0, |(_, f)| f.capacity());
        if now != self.held {
            self.reading.account(self.held, now);
            self.held = now;
        }
    }

    /// Called with each message handed out: a data message ends the unfinished one's clock.
    fn handed_out(&mut self, message: &Incoming) {
        if matches!(message, Incoming::Text(_) | Incoming::Binary) {
            self.deadline = None;
        }
        self.account();
    }

    /// `Ready(Err)` once the unfinished message is past its deadline; arms the deadline for
    /// one that has just begun, and drops it when nothing is unfinished.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<Error> {
        if !self.unfinished() {
            self.deadline = None;
            return Poll::Pending;
        }
        let reading = &self.reading;
        let deadline = self
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(reading.deadline)));
        ready!(deadline.as_mut().poll(cx));
        Poll::Ready(Error::Policy("a message did not arrive in time"))
    }

    /// `Pending` (to be woken when bytes are given back) while the budget is spent and this
    /// connection holds more than its share.
    fn poll_budget(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            if self.held <= budget::FAIR_SHARE || !self.reading.exhausted() {
                self.waiting = None;
                return Poll::Ready(());
            }
            match &mut self.waiting {
                Some(waiting) => {
                    ready!(waiting.as_mut().poll(cx));
                    self.waiting = None;
                }
                None => {
                    // Made before the next look at the budget, so no release is missed.
                    let mut waiting = Box::pin(self.reading.freed().notified_owned());
                    waiting.as_mut().enable();
                    self.waiting = Some(waiting);
                }
            }
        }
    }
}

impl<S> Drop for Socket<S> {
    fn drop(&mut self) {
        self.reading.account(self.held, 0);
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Socket<S> {
    /// Waits for the next whole message from the client.
    ///
    /// Cancel-safe: what has been read stays in the socket, so this can be a branch of
    /// `select!`. A ping or a close is answered by queueing the reply; [`flush`](Self::flush)
    /// sends it.
    pub async fn recv(&mut self) -> Result<Incoming, Error> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Incoming, Error>> {
        loop {
            let next = self.next_pending();
            self.account();
            if let Some(message) = next? {
                self.handed_out(&message);
                return Poll::Ready(Ok(message));
            }
            if let Poll::Ready(e) = self.poll_deadline(cx) {
                return Poll::Ready(Err(e));
            }
            ready!(self.poll_budget(cx));
            // Read onto the stack: only what arrived is kept, never what a header announced.
            let mut chunk = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
            let mut read = ReadBuf::uninit(&mut chunk);
            ready!(Pin::new(&mut self.io).poll_read(cx, &mut read))?;
            let buf = read.filled_mut();
            if buf.is_empty() {
                return Poll::Ready(Err(eof()));
            }
            if !self.pending.is_empty() {
                // Part of a frame is here already: the rest joins it, then it is parsed.
                self.pending.extend_from_slice(buf);
                continue;
            }
            // Nothing pending: parse straight from the stack and keep only the rest.
            let mut at = 0;
            while at < buf.len() {
                match self.parse_frame(&mut buf[at..]) {
                    Err(e) => {
                        self.account();
                        return Poll::Ready(Err(e));
                    }
                    Ok(None) => break,
                    Ok(Some((used, message))) => {
                        at += used;
                        if let Some(message) = message {
                            self.pending.extend_from_slice(&buf[at..]);
                            self.handed_out(&message);
                            return Poll::Ready(Ok(message));
                        }
                    }
                }
            }
            self.pending.extend_from_slice(&buf[at..]);
            self.account();
        }
    }

    /// Writes every queued frame. Cancel-safe: what is not yet written stays queued.
    pub async fn flush(&mut self) -> io::Result<()> {
        poll_fn(|cx| self.poll_flush(cx)).await
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.out.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.out[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.out = Vec::new();
        self.written = 0;
        Pin::new(&mut self.io).poll_flush(cx)
    }
}

/// Whether a client may close with `code`: the codes RFC 6455 §7.4 defines for endpoints to
/// send, and those for libraries and applications.
fn may_send(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1013 | 3000..=4999)
}

/// Refuses the unfinished text of a fragmented message as soon as it cannot become UTF-8 (an
/// incomplete character at its end may still be finished by the next fragment).
fn check_utf8_prefix(text: &[u8]) -> Result<(), Error> {
    match std::str::from_utf8(text) {
        Err(e) if e.error_len().is_some() => Err(Error::Utf8),
        _ => Ok(()),
    }
}

/// A whole data message.
fn complete(kind: Kind, payload: Vec<u8>) -> Result<Incoming, Error> {
    match kind {
        Kind::Text => String::from_utf8(payload)
            .map(Incoming::Text)
            .map_err(|_| Error::Utf8),
        Kind::Binary => Ok(Incoming::Binary),
    }
}

fn eof() -> Error {
    Error::Io(io::ErrorKind::UnexpectedEof.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::{SinkExt, StreamExt};
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, duplex};
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::Role;

    use std::time::Duration;

    const MAX: usize = 64 * 1024;

    /// A client frame as a browser writes it: masked.
    fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n if n <= 0xFFFF => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    fn pair() -> (Socket<DuplexStream>, DuplexStream) {
        let (server, client) = duplex(256 * 1024);
        (Socket::new(server, MAX), client)
    }

    async fn tungstenite_pair() -> (Socket<DuplexStream>, WebSocketStream<DuplexStream>) {
        let (server, client) = duplex(256 * 1024);
        let client = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
        (Socket::new(server, MAX), client)
    }

    #[tokio::test]
    async fn a_real_client_and_the_server_exchange_messages_of_every_size() {
        let (mut server, mut client) = tungstenite_pair().await;
        for len in [0, 1, 125, 126, 6_000, 65_535, MAX] {
            let text = "é".repeat(len / 2) + &"x".repeat(len % 2);
            client.send(Message::text(text.clone())).await.unwrap();
            assert_eq!(server.recv().await.unwrap(), Incoming::Text(text.clone()));
            server.feed_text(&text);
            server.flush().await.unwrap();
            let got = client.next().await.unwrap().unwrap();
            assert_eq!(got, Message::text(text), "server → client, {len} bytes");
            assert_eq!(
                server.buffered(),
                0,
                "nothing kept after a {len}-byte message"
            );
        }
    }

    #[tokio::test]
    async fn frames_fed_together_arrive_in_order_from_one_write() {
        let (mut server, mut client) = tungstenite_pair().await;
        for i in 0..20 {
            server.feed_text(&format!("message {i}"));
        }
        server.flush().await.unwrap();
        for i in 0..20 {
            let got = client.next().await.unwrap().unwrap();
            assert_eq!(got, Message::text(format!("message {i}")));
        }
    }

    #[tokio::test]
    async fn many_frames_in_one_read_are_handed_out_one_by_one() {
        let (mut server, mut client) = pair();
        let mut burst = Vec::new();
        for i in 0..500 {
            burst.extend(frame(true, OP_TEXT, format!("candidate {i}").as_bytes()));
        }
        client.write_all(&burst).await.unwrap();
        for i in 0..500 {
            assert_eq!(
                server.recv().await.unwrap(),
                Incoming::Text(format!("candidate {i}"))
            );
        }
        assert_eq!(server.buffered(), 0);
    }

    #[tokio::test]
    async fn a_frame_that_trickles_in_a_byte_at_a_time_is_whole_when_handed_out() {
        let (mut server, mut client) = pair();
        let text = "y".repeat(9_000);
        let bytes = [
            frame(true, OP_TEXT, text.as_bytes()),
            frame(true, OP_TEXT, b"next"),
        ]
        .concat();
        let writer = tokio::spawn(async move {
            for chunk in bytes.chunks(1) {
                client.write_all(chunk).await.unwrap();
            }
            client
        });
        assert_eq!(server.recv().await.unwrap(), Incoming::Text(text));
        assert_eq!(server.recv().await.unwrap(), Incoming::Text("next".into()));
        writer.await.unwrap();
        assert_eq!(server.buffered(), 0);
    }

    #[tokio::test]
    async fn fragments_are_joined_and_pings_between_them_answered() {
        let (mut server, mut client) = pair();
        let bytes = [
            frame(false, OP_TEXT, "hél".as_bytes()),
            frame(true, OP_PING, b"are you there"),
            frame(false, OP_CONTINUATION, "lo ".as_bytes()),
            frame(true, OP_CONTINUATION, "wörld".as_bytes()),
        ]
        .concat();
        client.write_all(&bytes).await.unwrap();
        assert_eq!(server.recv().await.unwrap(), Incoming::Ping);
        assert_eq!(
            server.recv().await.unwrap(),
            Incoming::Text("héllo wörld".into())
        );
        server.flush().await.unwrap();
        let mut pong = [0u8; 15];
        client.read_exact(&mut pong).await.unwrap();
        assert_eq!(&pong[..2], &[0x80 | OP_PONG, 13]);
        assert_eq!(&pong[2..], b"are you there");
    }

    #[tokio::test]
    async fn a_close_is_answered_with_the_same_code_and_nothing_after_it() {
        let (mut server, mut client) = tungstenite_pair().await;
        client.close(None).await.unwrap();
        // tungstenite's `close(None)` sends an empty close frame.
        assert_eq!(server.recv().await.unwrap(), Incoming::Close(None));
        server.feed_text("too late");
        server.flush().await.unwrap();
        drop(server); // the server ends the TCP connection after the closing handshake
        let reply = client.next().await;
        assert!(
            matches!(reply, Some(Ok(Message::Close(None))) | None),
            "the reply is the close frame, got {reply:?}"
        );
        let after = client.next().await;
        assert!(
            !matches!(after, Some(Ok(Message::Text(_)))),
            "nothing follows the close frame, got {after:?}"
        );

        let (mut server, mut client) = pair();
        client
            .write_all(&frame(true, OP_CLOSE, &1001u16.to_be_bytes()))
            .await
            .unwrap();
        assert_eq!(server.recv().await.unwrap(), Incoming::Close(Some(1001)));
        server.flush().await.unwrap();
        let mut reply = [0u8; 4];
        client.read_exact(&mut reply).await.unwrap();
        assert_eq!(reply, [0x80 | OP_CLOSE, 2, 0x03, 0xE9]);
    }

    /// 1005, 1006 and 1015 describe a connection without a close frame and may never be
    /// sent: a client that sends one is answered with a protocol error, not an echo.
    #[tokio::test]
    async fn a_close_code_that_may_not_be_sent_is_not_echoed() {
        for sent in [1005u16, 1006, 1015, 1004, 999, 2000] {
            let (mut server, mut client) = pair();
            client
                .write_all(&frame(true, OP_CLOSE, &sent.to_be_bytes()))
                .await
                .unwrap();
            assert_eq!(server.recv().await.unwrap(), Incoming::Close(Some(1002)));
            server.flush().await.unwrap();
            let mut reply = [0u8; 4];
            client.read_exact(&mut reply).await.unwrap();
            assert_eq!(reply, [0x80 | OP_CLOSE, 2, 0x03, 0xEA], "1002 for {sent}");
        }
    }

    #[tokio::test]
    async fn our_close_frame_carries_code_and_reason() {
        let (mut server, mut client) = tungstenite_pair().await;
        server.feed_close(code::TOO_BIG, "message too large");
        server.feed_text("never sent");
        server.flush().await.unwrap();
        match client.next().await.unwrap().unwrap() {
            Message::Close(Some(close)) => {
                assert_eq!(u16::from(close.code), 1009);
                assert_eq!(close.reason.as_str(), "message too large");
            }
            other => panic!("expected a close frame, got {other:?}"),
        }
    }

    async fn refused(bytes: Vec<u8>) -> Error {
        let (mut server, mut client) = pair();
        client.write_all(&bytes).await.unwrap();
        server.recv().await.expect_err("the frame must be refused")
    }

    #[tokio::test]
    async fn a_message_over_the_limit_is_refused_from_its_header() {
        // Only the header is sent: the refusal cannot have waited for the payload.
        let mut header = frame(true, OP_TEXT, &vec![b'a'; MAX + 1]);
        header.truncate(14);
        assert!(matches!(refused(header).await, Error::TooLarge));
        let in_pieces = [
            frame(false, OP_TEXT, &vec![b'a'; MAX / 2 + 1]),
            frame(true, OP_CONTINUATION, &vec![b'a'; MAX / 2 + 1]),
        ]
        .concat();
        assert!(matches!(refused(in_pieces).await, Error::TooLarge));
    }

    #[tokio::test]
    async fn broken_frames_are_refused_with_what_is_wrong() {
        let unmasked = vec![0x81, 2, b'h', b'i'];
        assert!(matches!(refused(unmasked).await, Error::Protocol(_)));
        let mut reserved = frame(true, OP_TEXT, b"hi");
        reserved[0] |= 0x40;
        assert!(matches!(refused(reserved).await, Error::Protocol(_)));
        let stray = frame(true, OP_CONTINUATION, b"hi");
        assert!(matches!(refused(stray).await, Error::Protocol(_)));
        let long_ping = frame(true, OP_PING, &[0; 126]);
        assert!(matches!(refused(long_ping).await, Error::Protocol(_)));
        let split_ping = frame(false, OP_PING, b"");
        assert!(matches!(refused(split_ping).await, Error::Protocol(_)));
        let unknown = frame(true, 0x3, b"");
        assert!(matches!(refused(unknown).await, Error::Protocol(_)));
        let interleaved = [frame(false, OP_TEXT, b"a"), frame(true, OP_TEXT, b"b")].concat();
        assert!(matches!(refused(interleaved).await, Error::Protocol(_)));
        let not_utf8 = frame(true, OP_TEXT, &[0xC3, 0x28]);
        assert!(matches!(refused(not_utf8).await, Error::Utf8));
        let split_utf8 = [
            frame(false, OP_TEXT, &[0xC3]),
            frame(true, OP_CONTINUATION, &[0xA9]),
        ]
        .concat();
        let (mut server, mut client) = pair();
        client.write_all(&split_utf8).await.unwrap();
        assert_eq!(server.recv().await.unwrap(), Incoming::Text("é".into()));
    }

    #[tokio::test]
    async fn the_end_of_the_connection_is_an_error_not_a_message() {
        let (mut server, client) = pair();
        drop(client);
        assert!(matches!(server.recv().await, Err(Error::Io(_))));
    }

    #[tokio::test]
    async fn recv_is_cancel_safe() {
        let (mut server, mut client) = pair();
        let bytes = frame(true, OP_TEXT, &vec![b'z'; 20_000]);
        client.write_all(&bytes[..10_000]).await.unwrap();
        // Polled until it has consumed what is there, then dropped.
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(20), server.recv())
                .await
                .is_err()
        );
        client.write_all(&bytes[10_000..]).await.unwrap();
        assert_eq!(
            server.recv().await.unwrap(),
            Incoming::Text("z".repeat(20_000))
        );
    }

    fn pair_under(reading: &Arc<Reading>) -> (Socket<DuplexStream>, DuplexStream) {
        let (server, client) = duplex(256 * 1024);
        (Socket::with_reading(server, reading.clone()), client)
    }

    #[tokio::test(start_paused = true)]
    async fn an_unfinished_message_meets_its_deadline_whatever_else_arrives() {
        let reading = Reading::new(MAX, Duration::from_secs(5), usize::MAX);
        let (mut server, mut client) = pair_under(&reading);
        client
            .write_all(&frame(false, OP_TEXT, b"part"))
            .await
            .unwrap();
        let started = tokio::time::Instant::now();
        loop {
            // A ping a second: answered, and no help to the unfinished message.
            client.write_all(&frame(true, OP_PING, b"")).await.unwrap();
            match tokio::time::timeout(Duration::from_secs(1), server.recv()).await {
                Ok(Ok(Incoming::Ping)) => tokio::time::sleep(Duration::from_secs(1)).await,
                Ok(Err(Error::Policy(_))) => break,
                other => panic!("unexpected {other:?}"),
            }
            assert!(started.elapsed() < Duration::from_secs(7), "never closed");
        }
        assert!(started.elapsed() >= Duration::from_secs(5));

        // A header that announces a large frame, then a trickle: the same.
        let (mut server, mut client) = pair_under(&reading);
        let whole = frame(true, OP_TEXT, &[b'a'; 30_000]);
        client.write_all(&whole[..100]).await.unwrap();
        let trickle = async {
            for b in &whole[100..200] {
                tokio::time::sleep(Duration::from_millis(100)).await;
                client.write_all(&[*b]).await.unwrap();
            }
            std::future::pending::<()>().await
        };
        tokio::select! {
            got = server.recv() => assert!(matches!(got, Err(Error::Policy(_))), "{got:?}"),
            () = trickle => unreachable!(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn whole_messages_reset_the_deadline() {
        let reading = Reading::new(MAX, Duration::from_secs(5), usize::MAX);
        let (mut server, mut client) = pair_under(&reading);
        // Ten seconds of messages, each split across two writes a second apart.
        for i in 0..10 {
            let bytes = frame(true, OP_TEXT, format!("message {i}").as_bytes());
            client.write_all(&bytes[..3]).await.unwrap();
            tokio::time::sleep(Duration::from_millis(500)).await;
            client.write_all(&bytes[3..]).await.unwrap();
            assert_eq!(
                server.recv().await.unwrap(),
                Incoming::Text(format!("message {i}"))
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    #[tokio::test]
    async fn a_message_in_too_many_frames_is_refused() {
        let mut bytes = frame(false, OP_TEXT, b"a");
        for _ in 0..budget::MAX_FRAMES {
            bytes.extend(frame(false, OP_CONTINUATION, b""));
        }
        assert!(matches!(refused(bytes).await, Error::Policy(_)));
    }

    #[tokio::test]
    async fn a_trickled_frame_holds_what_arrived_not_what_it_announced() {
        let reading = Reading::unbounded(MAX);
        let (mut server, mut client) = pair_under(&reading);
        let whole = frame(true, OP_TEXT, &[b'a'; 60_000]);
        client.write_all(&whole[..1000]).await.unwrap();
        assert!(
            tokio::time::timeout(Duration::from_millis(20), server.recv())
                .await
                .is_err()
        );
        assert!(server.buffered() < 4096, "holds {}", server.buffered());
        assert_eq!(reading.held(), server.buffered());
        client.write_all(&whole[1000..]).await.unwrap();
        assert!(matches!(server.recv().await, Ok(Incoming::Text(_))));
        assert_eq!(reading.held(), 0, "given back");
    }

    #[tokio::test]
    async fn past_the_budget_the_heaviest_holders_wait_and_others_go_on() {
        let reading = Reading::new(MAX, Duration::from_secs(60), 70_000);
        let mut heavy = Vec::new();
        let big = frame(true, OP_TEXT, &[b'h'; 40_000]);
        for _ in 0..3 {
            let (mut server, mut client) = pair_under(&reading);
            client.write_all(&big[..30_000]).await.unwrap();
            let _ = tokio::time::timeout(Duration::from_millis(20), server.recv()).await;
            heavy.push((server, client));
        }
        assert!(reading.exhausted(), "held {}", reading.held());
        // A heavy holder whose message is all there is still not read while over budget.
        let (server, client) = &mut heavy[0];
        client.write_all(&big[30_000..]).await.unwrap();
        assert!(
            tokio::time::timeout(Duration::from_millis(50), server.recv())
                .await
                .is_err(),
            "a heavy holder was read past the budget"
        );
        // Someone sending small whole messages is not held up.
        let (mut light, mut light_client) = pair_under(&reading);
        light_client
            .write_all(&frame(true, OP_TEXT, b"hi"))
            .await
            .unwrap();
        assert_eq!(light.recv().await.unwrap(), Incoming::Text("hi".into()));
        // Once the other heavy holders go away, the waiting one is read again.
        heavy.truncate(1);
        let (server, _client) = &mut heavy[0];
        assert!(matches!(server.recv().await, Ok(Incoming::Text(_))));
    }

    #[test]
    fn unmask_matches_the_byte_by_byte_rule() {
        let mask = [1, 2, 3, 250];
        for len in 0..40 {
            let data: Vec<u8> = (0..len as u8).collect();
            let mut fast = data.clone();
            unmask(&mut fast, mask);
            let slow: Vec<u8> = data
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ mask[i % 4])
                .collect();
            assert_eq!(fast, slow, "length {len}");
        }
    }
}
