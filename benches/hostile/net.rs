//! Client sockets bound to many loopback source addresses, the WebSocket handshake done by
//! hand, and just enough client-side framing to send frames a piece at a time.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// How long a connect or a handshake may take before it counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The loopback source address of client number `i`: 127.0.0.2 to 127.0.0.250, in turn.
pub fn source(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, 2 + (i % 249) as u8)
}

/// Connects to `server` from [`source`]`(i)`, with a receive buffer of `rcvbuf` bytes if
/// given (set before connecting, so the window the server sees is small from the start).
pub async fn connect(server: SocketAddr, i: usize, rcvbuf: Option<u32>) -> io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    if let Some(bytes) = rcvbuf {
        socket.set_recv_buffer_size(bytes)?;
    }
    socket.bind(SocketAddr::new(source(i).into(), 0))?;
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, socket.connect(server))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Sends the upgrade request for `/ws` and reads the `101`. Returns the bytes that came
/// after the response head (the server writes `welcome` at once, often in the same read).
pub async fn upgrade(stream: &mut TcpStream, server: SocketAddr) -> io::Result<Vec<u8>> {
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {server}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let read_head = async {
        let mut head = Vec::with_capacity(512);
        let mut chunk = [0u8; 1024];
        loop {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            head.extend_from_slice(&chunk[..n]);
            if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                if !head.starts_with(b"HTTP/1.1 101") {
                    let line = String::from_utf8_lossy(&head[..head.len().min(40)]).into_owned();
                    return Err(io::Error::other(format!("no upgrade: {line}")));
                }
                return Ok(head.split_off(end + 4));
            }
        }
    };
    tokio::time::timeout(CONNECT_TIMEOUT, read_head)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "handshake timed out"))?
}

pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;

/// The header of a masked client frame announcing `len` payload bytes. The mask is all
/// zeroes (a valid key that leaves the payload as it is), so a payload can be written in
/// pieces without tracking its offset.
pub fn header(fin: bool, opcode: u8, len: usize) -> Vec<u8> {
    let mut h = Vec::with_capacity(14);
    h.push(if fin { 0x80 } else { 0 } | opcode);
    if len < 126 {
        h.push(0x80 | len as u8);
    } else if len <= usize::from(u16::MAX) {
        h.push(0x80 | 126);
        h.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        h.push(0x80 | 127);
        h.extend_from_slice(&(len as u64).to_be_bytes());
    }
    h.extend_from_slice(&[0; 4]);
    h
}

/// A whole masked client text frame.
pub fn text(payload: &str) -> Vec<u8> {
    let mut f = header(true, OP_TEXT, payload.len());
    f.extend_from_slice(payload.as_bytes());
    f
}

/// Server frames (unmasked, never fragmented) read off a stream.
pub struct Frames {
    /// Bytes read and not yet handed out.
    buf: Vec<u8>,
}

impl Frames {
    /// A reader that starts with the bytes `upgrade` read past the response head.
    pub fn new(start: Vec<u8>) -> Frames {
        Frames { buf: start }
    }

    /// The next frame's opcode and payload; `Ok(None)` at the end of the stream.
    pub async fn next<R: AsyncRead + Unpin>(
        &mut self,
        io: &mut R,
    ) -> io::Result<Option<(u8, Vec<u8>)>> {
        loop {
            if let Some((opcode, start, end)) = parse(&self.buf) {
                let payload = self.buf[start..end].to_vec();
                self.buf.drain(..end);
                return Ok(Some((opcode, payload)));
            }
            let mut chunk = [0u8; 8192];
            let n = io.read(&mut chunk).await?;
            if n == 0 {
                return Ok(None);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// The opcode and payload range of the whole server frame at the start of `buf`, if there.
fn parse(buf: &[u8]) -> Option<(u8, usize, usize)> {
    let [b0, b1, ..] = *buf else { return None };
    let (len, at) = match b1 & 0x7F {
        126 => (
            u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?) as usize,
            4,
        ),
        127 => (
            u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize,
            10,
        ),
        n => (usize::from(n), 2),
    };
    (buf.len() >= at + len).then_some((b0 & 0x0F, at, at + len))
}

/// How a close frame's payload reads: `close 1008 (reason)`.
pub fn close_label(payload: &[u8]) -> String {
    match payload {
        [a, b, reason @ ..] => format!(
            "close {} ({})",
            u16::from_be_bytes([*a, *b]),
            String::from_utf8_lossy(reason)
        ),
        _ => "close (no code)".to_owned(),
    }
}

/// A short name for an I/O error ending a connection.
pub fn error_label(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionReset => "reset".to_owned(),
        io::ErrorKind::TimedOut => "timed out".to_owned(),
        io::ErrorKind::ConnectionRefused => "refused".to_owned(),
        io::ErrorKind::BrokenPipe => "broken pipe".to_owned(),
        _ => format!("error: {e}"),
    }
}
