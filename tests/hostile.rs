//! Hostile and broken clients: each gets the documented reaction, and a well-behaved pair of
//! strangers talking on the same server is never disturbed.

mod common;

use std::time::Duration;

use common::{Client, TestServer};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};

/// A pair of strangers in a call, to check after each attack that they still talk.
struct Bystanders {
    a: Client,
    b: Client,
    room: String,
    round: u32,
}

impl Bystanders {
    async fn new(server: &TestServer) -> Bystanders {
        let (a, b, room) = server.pair().await;
        Bystanders {
            a,
            b,
            room,
            round: 0,
        }
    }

    /// One full signaling exchange both ways, delivered in order.
    async fn still_talking(&mut self) {
        self.round += 1;
        let room = &self.room;
        let sent = [
            json!({"type": "offer", "room": room, "sdp": format!("v=0 round {}", self.round)}),
            json!({"type": "candidate", "room": room, "candidate": {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host", "sdpMid": "0"}}),
            json!({"type": "chat", "room": room, "text": format!("still here {}", self.round)}),
        ];
        for msg in &sent {
            self.a.send(msg.clone()).await;
        }
        for msg in &sent {
            assert_eq!(&self.b.recv().await, msg, "a → b");
        }
        self.b.send(sent[2].clone()).await;
        assert_eq!(self.a.recv().await, sent[2], "b → a");
    }
}

/// Every field of every message, with the wrong JSON type, gets `bad_message` and nothing
/// else; unknown types, invalid JSON and deep nesting too; the connection stays usable.
#[tokio::test]
async fn malformed_messages_get_bad_message_and_harm_nobody() {
    let server = TestServer::start(&[]).await;
    let mut pair = Bystanders::new(&server).await;
    let mut bad = server.client().await;
    let room = "ab".repeat(16);
    let mut cases: Vec<String> = vec![
        "".into(),
        "null".into(),
        "\"join\"".into(),
        "{}".into(),
        r#"{"type":null}"#.into(),
        r#"{"type":"JOIN"}"#.into(),
        r#"{"type":"subscribe","room":"x"}"#.into(),
        format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)),
        format!(
            r#"{{"type":"join","interests":{}{}}}"#,
            "[".repeat(5000),
            "]".repeat(5000)
        ),
    ];
    let wrong: [(&str, &str, Value); 9] = [
        ("join", "interests", json!("music")),
        ("join", "interests", json!([1, 2])),
        ("offer", "sdp", json!(42)),
        ("answer", "sdp", json!({"sdp": "v=0"})),
        ("candidate", "candidate", json!("candidate:1")),
        ("candidate", "candidate", json!({"candidate": 5})),
        ("chat", "text", json!(["hi"])),
        ("typing", "active", json!(1)),
        ("chat", "room", json!(7)),
    ];
    for (ty, field, value) in wrong {
        let mut msg = match ty {
            "join" => json!({"type": "join"}),
            "offer" | "answer" => json!({"type": ty, "room": room, "sdp": "v=0"}),
            "candidate" => json!({"type": ty, "room": room, "candidate": null}),
            "chat" => json!({"type": ty, "room": room, "text": "hi"}),
            _ => json!({"type": ty, "room": room, "active": true}),
        };
        msg[field] = value;
        cases.push(msg.to_string());
    }
    for case in &cases {
        bad.send_text(case.clone()).await;
        let reply = bad.recv().await;
        assert_eq!(reply["type"], "error", "{case:.80}: {reply}");
        assert_eq!(reply["code"], "bad_message", "{case:.80}");
    }
    pair.still_talking().await;
    // The misbehaving client itself still works.
    bad.join().await;
}

/// Invalid UTF-8 in a text frame breaks the WebSocket protocol: the socket is closed with
/// 1007, and only that socket.
#[tokio::test]
async fn invalid_utf8_closes_that_socket_with_1007() {
    let server = TestServer::start(&[]).await;
    let mut pair = Bystanders::new(&server).await;
    let mut bad = server.client().await;
    let frame = Frame::message(vec![b'{', 0xff, 0xfe, b'}'], OpCode::Data(Data::Text), true);
    bad.ws.send(Message::Frame(frame)).await.unwrap();
    assert_eq!(bad.closed().await, Some(CloseCode::Invalid));
    pair.still_talking().await;
}

/// Frames that break the WebSocket rules (a reserved bit with no extension agreed, an
/// opcode that does not exist) close that socket with 1002, and only that socket.
#[tokio::test]
async fn frames_that_break_the_websocket_rules_close_that_socket_with_1002() {
    let server = TestServer::start(&[]).await;
    let mut pair = Bystanders::new(&server).await;
    let reserved_bit = FrameHeader {
        rsv1: true,
        opcode: OpCode::Data(Data::Text),
        ..FrameHeader::default()
    };
    let unknown_opcode = FrameHeader {
        opcode: OpCode::Data(Data::Reserved(3)),
        ..FrameHeader::default()
    };
    for header in [reserved_bit, unknown_opcode] {
        let mut bad = server.client().await;
        let frame = Frame::from_payload(header, b"{}".to_vec().into());
        bad.ws.send(Message::Frame(frame)).await.unwrap();
        assert_eq!(bad.closed().await, Some(CloseCode::Protocol));
        pair.still_talking().await;
    }
}

/// A 10 MB frame is refused from its header: `too_large`, close 1009, the server never
/// buffers it, and the bystanders carry on.
#[tokio::test]
async fn ten_megabyte_frame_is_refused() {
    let server = TestServer::start(&[]).await;
    let mut pair = Bystanders::new(&server).await;
    let mut bad = server.client().await;
    let header = FrameHeader {
        opcode: OpCode::Data(Data::Text),
        ..FrameHeader::default()
    };
    let huge = Frame::from_payload(header, vec![b' '; 10 << 20].into());
    // The server may close while the client is still writing; either way it answers.
    let _ = bad.ws.send(Message::Frame(huge)).await;
    assert_eq!(bad.recv().await["code"], "too_large");
    assert_eq!(bad.closed().await, Some(CloseCode::Size));
    pair.still_talking().await;
}

/// A client flooding thousands of messages per second is told `rate_limited`, then cut off
/// with 1008; the pair beside it keeps its exchange.
#[tokio::test]
async fn a_flood_is_rate_limited_then_closed() {
    let server = TestServer::start(&[]).await;
    let mut pair = Bystanders::new(&server).await;
    let (mut flooder, mut victim, room) = server.pair().await;
    let chat = json!({"type": "chat", "room": room, "text": "spam"}).to_string();
    let mut sent = 0;
    let flood_began = std::time::Instant::now();
    // Send until the server closes us; bounded, so a broken limiter fails the test.
    while sent < 5_000 {
        if flooder
            .ws
            .send(Message::Text(chat.clone().into()))
            .await
            .is_err()
        {
            break;
        }
        sent += 1;
    }
    let mut told = false;
    let code = loop {
        match flooder.ws_next().await {
            Some(Message::Text(t)) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                told |= v["code"] == "rate_limited";
            }
            Some(Message::Close(frame)) => break frame.map(|f| f.code),
            Some(_) => {}
            None => break None,
        }
    };
    let flooded_for = flood_began.elapsed();
    assert!(told, "the flooder was told it is rate limited");
    assert_eq!(code, Some(CloseCode::Policy));
    // The victim got at most the allowed burst, then learned the stranger is gone.
    let mut relayed = 0;
    let left = loop {
        let msg = victim.recv().await;
        if msg["type"] == "chat" {
            relayed += 1;
        } else {
            break msg;
        }
    };
    // The default budget: a burst of 200, then 50 a second for as long as the flood lasted
    // (longer on a busy machine), and not one more.
    let allowed = 200 + (50.0 * flooded_for.as_secs_f64()).ceil() as usize;
    assert!(
        relayed <= allowed,
        "{relayed} relayed out of {sent} in {flooded_for:?}; the budget allows {allowed}"
    );
    assert_eq!(left["reason"], "disconnected");
    pair.still_talking().await;
}

/// Over its budget, a client loses the message that did not fit and is told once; the server
/// then reads nothing more from it until the budget has room again (the rest waits in the
/// client's own socket), so the next thing it says is heard, not dropped too, and it stays
/// connected. The partner gets every message but the one dropped, in order.
#[tokio::test]
async fn over_budget_the_next_message_waits_for_room_instead_of_being_dropped() {
    // Seven messages, then one a second. Pings cost like messages: after the `join`, three
    // rounds of a chat and a ping spend the burst, so the fourth chat is dropped.
    let server = TestServer::start(&["--relay-burst", "7", "--relay-rate", "1"]).await;
    let (mut a, mut b, room) = server.pair().await;
    let chat = |text: String| json!({"type": "chat", "room": room, "text": text});
    // One message at a time, each followed by a ping (in the same write): the pong comes
    // once the server has read the message, and after its `rate_limited` if it was dropped.
    let sent = 4;
    for n in 0..sent {
        let msg = chat(format!("{n}")).to_string();
        a.ws.feed(Message::Text(msg.into())).await.unwrap();
        let last = n == sent - 1;
        if !last {
            a.ws.feed(Message::Ping(vec![7].into())).await.unwrap();
        }
        a.ws.flush().await.unwrap();
        let mut told = false;
        loop {
            match a.ws_next().await.expect("a stays connected") {
                Message::Pong(_) if !last => break,
                Message::Text(t) => {
                    let v: Value = serde_json::from_str(&t).unwrap();
                    if v["type"] == "error" {
                        assert_eq!(v["code"], "rate_limited", "{v}");
                        told = true;
                        if last {
                            break;
                        }
                    }
                }
                _ => {}
            }
        }
        assert_eq!(told, last, "only the fourth chat is over the budget");
    }
    // Sent right after the drop was answered: it waits for the budget, then passes.
    a.send(chat("after".into())).await;
    for i in 0..sent - 1 {
        assert_eq!(b.recv().await, chat(format!("{i}")));
    }
    assert_eq!(
        b.recv().await,
        chat("after".into()),
        "the dropped message never arrives, the next one does"
    );
}

/// A skip-flood (Next over and over) is refused with `rate_limited` before it churns the
/// queue, and the user is not disconnected for a few.
#[tokio::test]
async fn a_skip_flood_is_rate_limited() {
    let server = TestServer::start(&["--join-burst", "5"]).await;
    let mut a = server.client().await;
    for _ in 0..5 {
        a.send(json!({"type": "next"})).await;
        a.recv_type("waiting").await;
        a.send(json!({"type": "leave"})).await;
    }
    a.send(json!({"type": "next"})).await;
    let reply = a.recv().await;
    assert_eq!(reply["code"], "rate_limited", "{reply}");
    assert_eq!(
        server.health().await["waiting"],
        0,
        "the refused Next did not queue"
    );
}

/// A Next storm at an allowed message rate (45 a second, under the 50 a second budget) is
/// refused and then closed with 1008: it does not get refusals forever.
#[tokio::test]
async fn a_skip_storm_is_closed() {
    let server = TestServer::start(&[]).await;
    let mut pair = Bystanders::new(&server).await;
    let mut storm = server.client().await;
    let started = tokio::time::Instant::now();
    let mut every = tokio::time::interval(Duration::from_millis(22));
    // At most 10 s of it (450 messages); the server must close long before.
    let mut closed = false;
    for _ in 0..450 {
        every.tick().await;
        if storm
            .ws
            .send(Message::text(json!({"type": "next"}).to_string()))
            .await
            .is_err()
        {
            closed = true;
            break;
        }
        use futures_util::FutureExt;
        use futures_util::StreamExt;
        while let Some(frame) = storm.ws.next().now_or_never() {
            match frame {
                Some(Ok(Message::Close(frame))) => {
                    assert_eq!(frame.map(|f| f.code), Some(CloseCode::Policy));
                    closed = true;
                }
                Some(Ok(_)) => continue,
                _ => closed = true,
            }
            break;
        }
        if closed {
            break;
        }
    }
    assert!(
        closed,
        "a Next storm was never closed ({:?})",
        started.elapsed()
    );
    pair.still_talking().await;
}

/// A page on another site cannot open a socket (cross-site WebSocket hijacking): 403 before
/// any session exists. The server's own origin can.
#[tokio::test]
async fn cross_site_upgrades_are_refused() {
    let server = TestServer::start(&[]).await;
    let mut req = server.ws_url().into_client_request().unwrap();
    req.headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => assert_eq!(res.status(), 403),
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }
    assert_eq!(server.health().await["online"], 0, "no session was created");
    let mut req = server.ws_url().into_client_request().unwrap();
    let own = format!("http://{}", server.addr);
    req.headers_mut().insert("origin", own.parse().unwrap());
    assert!(tokio_tungstenite::connect_async(req).await.is_ok());
}

/// One address cannot hold more than its share of connections: 429 beyond it.
#[tokio::test]
async fn connections_per_ip_are_capped() {
    let server = TestServer::start(&["--max-per-ip", "3"]).await;
    let _held = [
        server.client().await,
        server.client().await,
        server.client().await,
    ];
    match tokio_tungstenite::connect_async(server.ws_url()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => assert_eq!(res.status(), 429),
        other => panic!("expected 429, got {:?}", other.map(|_| ())),
    }
    drop(_held);
    // The places are given back when those connections end.
    let mut ok = false;
    for _ in 0..50 {
        if tokio_tungstenite::connect_async(server.ws_url())
            .await
            .is_ok()
        {
            ok = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(ok, "a new connection is accepted once the old ones closed");
}

/// A client that vanished without closing (half-open TCP: it never answers pings) is found
/// by the keep-alive, and its partner is told it disconnected.
#[tokio::test]
async fn a_frozen_client_is_detected_by_ping_timeout() {
    let server = TestServer::start(&["--ping-interval", "200ms"]).await;
    let (frozen, mut partner, room) = server.pair().await;
    // `frozen` is never read again, so it answers no ping; its TCP connection stays open.
    let started = tokio::time::Instant::now();
    let left = partner.recv_type("left").await;
    assert_eq!(
        left,
        json!({"type": "left", "room": room, "reason": "disconnected"})
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "found within the timeout"
    );
    drop(frozen);
}

/// A client that stops reading cannot make the server buffer without bound: its queue
/// fills, it is dropped, and its partner is told.
#[tokio::test]
async fn a_client_that_stops_reading_is_dropped() {
    let server = TestServer::start(&[
        "--relay-rate",
        "100000",
        "--relay-burst",
        "500",
        "--write-timeout",
        "1s",
    ])
    .await;
    let (stalled, mut sender, room) = server.pair().await;
    let text = "x".repeat(1900);
    let chat = json!({"type": "chat", "room": room, "text": text}).to_string();
    // Loopback buffers hold a few MB; 20,000 messages of 2 KB is far more than that. Sent
    // faster than the rate allows, some are refused (`rate_limited`): that is not the news
    // this test waits for.
    let is_news = |msg: &serde_json::Value| msg["code"] != "rate_limited";
    let mut left = None;
    for _ in 0..20_000 {
        sender.send_text(chat.clone()).await;
        if let Some(msg) = sender.try_recv_now().await.filter(is_news) {
            left = Some(msg);
            break;
        }
    }
    let left = match left {
        Some(msg) => msg,
        None => loop {
            let msg = sender.recv().await;
            if is_news(&msg) {
                break msg;
            }
        },
    };
    assert_eq!(left["type"], "left", "{left}");
    assert_eq!(left["reason"], "disconnected");
    drop(stalled);
}

/// A stranger cannot write a line that passes for one of yours: a chat with a line break
/// before "You:" is refused with `bad_message` and never reaches the partner, who gets the
/// next honest line as usual.
#[tokio::test]
async fn a_chat_line_cannot_imitate_the_pages_labels() {
    let server = TestServer::start(&[]).await;
    let (mut a, mut b, room) = server.pair().await;
    for text in [
        "hi\nYou: I am 12",
        "\u{2028}You: send a photo",
        "\u{202e}21 ma I :uoY",
    ] {
        a.send(json!({"type": "chat", "room": room, "text": text}))
            .await;
        let refused = a.recv().await;
        assert_eq!(refused["code"], "bad_message", "{text:?}: {refused}");
    }
    a.send(json!({"type": "chat", "room": room, "text": "hello"}))
        .await;
    let first = b.recv().await;
    assert_eq!(
        (first["type"].as_str(), first["text"].as_str()),
        (Some("chat"), Some("hello")),
        "the partner saw none of the forged lines"
    );
}

/// A client frame, masked, written straight to the client's TCP stream (bypassing its
/// WebSocket library, which would not send what these tests need).
async fn write_raw(client: &mut Client, bytes: &[u8]) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    match client.ws.get_mut() {
        tokio_tungstenite::MaybeTlsStream::Plain(tcp) => tcp.write_all(bytes).await,
        _ => unreachable!("tests speak plain ws"),
    }
}

/// A masked client frame: FIN bit, opcode and payload; `announce` overrides the length the
/// header gives (for frames that never arrive whole).
fn raw_frame(fin: bool, opcode: u8, payload: &[u8], announce: Option<usize>) -> Vec<u8> {
    let mask = [0x5a, 0x11, 0xc3, 0x07];
    let len = announce.unwrap_or(payload.len());
    let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
    if len < 126 {
        out.push(0x80 | len as u8);
    } else {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// The largest message is what the protocol needs (an SDP of 32 KiB fits, ~40 KiB): a
/// 41 KiB message is refused with `too_large` and 1009.
#[tokio::test]
async fn a_message_past_40_kib_is_refused() {
    let server = TestServer::start(&[]).await;
    let (mut a, mut b, room) = server.pair().await;
    // An SDP of 32 KiB with lines as short as real ones get (JSON escapes each CRLF).
    let line = "a=rtcp-fb:96 goog-remb\r\n";
    let sdp = line.repeat(32 * 1024 / line.len());
    a.send(json!({"type": "offer", "room": room, "sdp": sdp}))
        .await;
    let got = b.recv().await;
    assert!(
        got["sdp"] == sdp.as_str(),
        "a 32 KiB SDP is relayed (got {})",
        got["type"]
    );
    let mut bad = server.client().await;
    let big = json!({"type": "chat", "room": room, "text": "x".repeat(41 * 1024)});
    let _ = bad.ws.send(Message::text(big.to_string())).await;
    assert_eq!(bad.recv().await["code"], "too_large");
    assert_eq!(bad.closed().await, Some(CloseCode::Size));
}

/// A message left unfinished (a first fragment, then only pings) is closed with 1008 at the
/// message deadline: keep-alives do not extend it.
#[tokio::test]
async fn an_unfinished_message_is_closed_at_its_deadline_pings_or_not() {
    let server = TestServer::start(&["--message-deadline", "300ms"]).await;
    let mut pair = Bystanders::new(&server).await;
    let mut bad = server.client().await;
    write_raw(&mut bad, &raw_frame(false, 0x1, b"{\"type\":", None))
        .await
        .unwrap();
    let pinging = async {
        // A ping every 50 ms for at most 3 s; the deadline is 300 ms.
        for _ in 0..60 {
            if write_raw(&mut bad, &raw_frame(true, 0x9, b"", None))
                .await
                .is_err()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bad
    };
    let mut bad = pinging.await;
    assert_eq!(bad.closed().await, Some(CloseCode::Policy));
    pair.still_talking().await;
}

/// A frame whose header announces 30 KiB and whose payload trickles in is closed with 1008
/// at the deadline, holding only what arrived meanwhile.
#[tokio::test]
async fn a_trickled_frame_is_closed_at_its_deadline() {
    let server = TestServer::start(&["--message-deadline", "300ms"]).await;
    let mut pair = Bystanders::new(&server).await;
    let mut bad = server.client().await;
    write_raw(&mut bad, &raw_frame(true, 0x1, b"", Some(30 * 1024)))
        .await
        .unwrap();
    for _ in 0..60 {
        if write_raw(&mut bad, b"a").await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(bad.closed().await, Some(CloseCode::Policy));
    pair.still_talking().await;
}

/// Empty continuations cost: a message in more than 16 frames is closed with 1008.
#[tokio::test]
async fn empty_continuations_are_not_free() {
    let server = TestServer::start(&[]).await;
    let mut pair = Bystanders::new(&server).await;
    let mut bad = server.client().await;
    let mut bytes = raw_frame(false, 0x1, b"{", None);
    for _ in 0..1_000 {
        bytes.extend(raw_frame(false, 0x0, b"", None));
    }
    let _ = write_raw(&mut bad, &bytes).await;
    assert_eq!(bad.closed().await, Some(CloseCode::Policy));
    pair.still_talking().await;
}

/// Pings are charged like messages: a ping flood is rate limited and closed with 1008.
#[tokio::test]
async fn a_ping_flood_is_closed() {
    let server = TestServer::start(&[]).await;
    let mut pair = Bystanders::new(&server).await;
    let mut bad = server.client().await;
    let ping = raw_frame(true, 0x9, b"", None);
    // 20,000 pings at most; the server closes after its burst and 50 strikes.
    for _ in 0..100 {
        let burst: Vec<u8> = ping
            .iter()
            .copied()
            .cycle()
            .take(ping.len() * 200)
            .collect();
        if write_raw(&mut bad, &burst).await.is_err() {
            break;
        }
        use futures_util::FutureExt;
        if bad
            .ws
            .next()
            .now_or_never()
            .is_some_and(|f| matches!(f, Some(Ok(Message::Close(_))) | None | Some(Err(_))))
        {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(bad.closed().await, Some(CloseCode::Policy));
    pair.still_talking().await;
}

/// A partner that stops reading is dropped once 64 KiB wait for it, long before any write
/// timeout, and the sender is told `left`: the sender is never slowed.
#[tokio::test]
async fn a_partner_that_does_not_read_is_dropped_at_64_kib() {
    let server = TestServer::start(&["--write-timeout", "60s"]).await;
    // The reader's socket takes little, so what the server sends soon waits in its queue.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(server.addr).await.unwrap();
    let (ws, _) = tokio_tungstenite::client_async(
        server.ws_url(),
        tokio_tungstenite::MaybeTlsStream::Plain(tcp),
    )
    .await
    .unwrap();
    let mut reader = Client::new(ws);
    reader.recv_type("welcome").await;
    let mut sender = server.client().await;
    sender.join().await;
    reader.join().await;
    let room = sender.recv_type("matched").await["room"].clone();
    reader.recv_type("matched").await;
    // 6 KB lines; 150 of them (900 KB) is far past what the old count bound (264) held.
    let text = "é".repeat(2000);
    let mut told = false;
    for _ in 0..150 {
        sender
            .send(json!({"type": "chat", "room": room, "text": text}))
            .await;
        if let Some(msg) = sender.try_recv_now().await {
            assert_eq!(msg["type"], "left", "{msg}");
            told = true;
            break;
        }
    }
    if !told {
        assert_eq!(sender.recv().await["type"], "left");
    }
}
