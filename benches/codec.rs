//! What the wire protocol costs per message: parsing and checking a client's text frame
//! (`ClientMessage::parse`), writing the JSON the partner or the client gets (`Relay::to_json`,
//! `ServerMessage::to_json`), and charging a session's message budget (`Budget::charge`).
//! Run with `cargo bench --bench codec` (about half a minute).
//!
//! Messages: a short chat line, a trickled ICE candidate, a `join` with three interests and a
//! browser-like SDP offer of about 6 KB (audio and video sections with the usual codecs, RTP
//! header extensions and feedback lines; its line breaks are `\r\n`, escaped in the JSON as
//! browsers send them). The offer is built here, not captured from a browser.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use strangers::limits::{Budget, Cost, Rates, Verdict};
use strangers::protocol::{
    ClientMessage, IceServer, MemberProof, Mode, Role, RoomId, ServerMessage,
};

const ROOM: &str = "4f1c0a9e7b3d52c8a6e0f1d2c3b4a596";

/// An SDP offer shaped like a desktop browser's for one audio and one video track.
fn sdp_offer() -> String {
    let mut s = String::new();
    let mut line = |l: &str| {
        s.push_str(l);
        s.push_str("\r\n");
    };
    line("v=0");
    line("o=- 4611731400430051336 2 IN IP4 127.0.0.1");
    line("s=-");
    line("t=0 0");
    line("a=group:BUNDLE 0 1");
    line("a=extmap-allow-mixed");
    line("a=msid-semantic: WMS 7d2f0e4b-8c1a-4d3e-9f6b-2a5c8e1d7f30");
    let fingerprint = (0..32)
        .map(|i| format!("{:02X}", (i * 37 + 11) % 256))
        .collect::<Vec<_>>()
        .join(":");
    let media = |kind: &str, mid: u32, payloads: &[u32]| {
        let list: Vec<String> = payloads.iter().map(u32::to_string).collect();
        format!(
            "m={kind} 9 UDP/TLS/RTP/SAVPF {}\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n\
             a=ice-ufrag:Xk3q\r\na=ice-pwd:J2vTq8LrW5mZ0cYhN4bUe7sA\r\na=ice-options:trickle\r\n\
             a=fingerprint:sha-256 {fingerprint}\r\na=setup:actpass\r\na=mid:{mid}\r\n",
            list.join(" ")
        )
    };
    let audio = [111, 63, 9, 0, 8, 13, 110, 126];
    s.push_str(&media("audio", 0, &audio));
    for (i, uri) in [
        "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
        "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
        "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
        "urn:ietf:params:rtp-hdrext:sdes:mid",
    ]
    .iter()
    .enumerate()
    {
        s.push_str(&format!("a=extmap:{} {uri}\r\n", i + 1));
    }
    s.push_str("a=sendrecv\r\na=msid:7d2f0e4b-8c1a-4d3e-9f6b-2a5c8e1d7f30 a1\r\na=rtcp-mux\r\n");
    s.push_str("a=rtcp-rsize\r\n");
    s.push_str("a=rtpmap:111 opus/48000/2\r\na=rtcp-fb:111 transport-cc\r\n");
    s.push_str("a=fmtp:111 minptime=10;useinbandfec=1\r\n");
    s.push_str("a=rtpmap:63 red/48000/2\r\na=fmtp:63 111/111\r\n");
    s.push_str("a=rtpmap:9 G722/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n");
    s.push_str("a=rtpmap:13 CN/8000\r\na=rtpmap:110 telephone-event/48000\r\n");
    s.push_str("a=rtpmap:126 telephone-event/8000\r\n");
    s.push_str("a=ssrc:2835117350 cname:q9Yb3zC0rT6wKpLd\r\n");
    s.push_str("a=ssrc:2835117350 msid:7d2f0e4b-8c1a-4d3e-9f6b-2a5c8e1d7f30 a1\r\n");
    // Video: each codec with its retransmission payload type.
    let codecs = [
        ("VP8", ""),
        ("VP9", "profile-id=0"),
        ("VP9", "profile-id=2"),
        (
            "H264",
            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
        ),
        (
            "H264",
            "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f",
        ),
        (
            "H264",
            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
        ),
        (
            "H264",
            "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f",
        ),
        (
            "H264",
            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f",
        ),
        (
            "H264",
            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=64001f",
        ),
        (
            "H264",
            "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=4d001f",
        ),
        (
            "H264",
            "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=64001f",
        ),
        (
            "H264",
            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=f4001f",
        ),
        ("AV1", "level-idx=5;profile=0;tier=0"),
        ("H265", "level-id=93;profile-id=1;tier-flag=0;tx-mode=SRST"),
    ];
    let payloads: Vec<u32> = (0..codecs.len() as u32 * 2).map(|i| 96 + i).collect();
    s.push_str(&media("video", 1, &payloads));
    for (i, uri) in [
        "urn:ietf:params:rtp-hdrext:toffset",
        "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
        "urn:3gpp:video-orientation",
        "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
        "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay",
        "http://www.webrtc.org/experiments/rtp-hdrext/video-content-type",
        "http://www.webrtc.org/experiments/rtp-hdrext/video-timing",
        "http://www.webrtc.org/experiments/rtp-hdrext/color-space",
        "urn:ietf:params:rtp-hdrext:sdes:mid",
        "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
        "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
    ]
    .iter()
    .enumerate()
    {
        s.push_str(&format!("a=extmap:{} {uri}\r\n", i + 2));
    }
    s.push_str("a=sendrecv\r\na=msid:7d2f0e4b-8c1a-4d3e-9f6b-2a5c8e1d7f30 v1\r\n");
    s.push_str("a=rtcp-mux\r\na=rtcp-rsize\r\n");
    for (i, (name, fmtp)) in codecs.iter().enumerate() {
        let pt = 96 + 2 * i;
        s.push_str(&format!("a=rtpmap:{pt} {name}/90000\r\n"));
        for fb in ["goog-remb", "transport-cc", "ccm fir", "nack", "nack pli"] {
            s.push_str(&format!("a=rtcp-fb:{pt} {fb}\r\n"));
        }
        if !fmtp.is_empty() {
            s.push_str(&format!("a=fmtp:{pt} {fmtp}\r\n"));
        }
        s.push_str(&format!(
            "a=rtpmap:{} rtx/90000\r\na=fmtp:{} apt={pt}\r\n",
            pt + 1,
            pt + 1
        ));
    }
    for ssrc in [1_928_374_650u32, 3_019_283_746] {
        s.push_str(&format!("a=ssrc:{ssrc} cname:q9Yb3zC0rT6wKpLd\r\n"));
        s.push_str(&format!(
            "a=ssrc:{ssrc} msid:7d2f0e4b-8c1a-4d3e-9f6b-2a5c8e1d7f30 v1\r\n"
        ));
    }
    s.push_str("a=ssrc-group:FID 1928374650 3019283746\r\n");
    s
}

fn codec(c: &mut Criterion) {
    let sdp = sdp_offer();
    let chat = json!({"type": "chat", "room": ROOM, "text": "hi! where are you from?"}).to_string();
    let candidate = json!({
        "type": "candidate",
        "room": ROOM,
        "candidate": {
            "candidate": "candidate:3348623941 1 udp 2122260223 192.168.1.23 54321 typ host \
                          generation 0 ufrag Xk3q network-id 1 network-cost 10",
            "sdpMid": "0",
            "sdpMLineIndex": 0,
            "usernameFragment": "Xk3q"
        }
    })
    .to_string();
    assert!((5_800..6_400).contains(&sdp.len()), "{} bytes", sdp.len());
    let offer = json!({"type": "offer", "room": ROOM, "sdp": sdp}).to_string();
    let join = json!({"type": "join", "interests": ["Music", " chess ", "travel"],
                      "adult": true, "pow": 123_456})
    .to_string();
    eprintln!(
        "frames: chat {} B, candidate {} B, offer {} B (sdp {} B), join {} B",
        chat.len(),
        candidate.len(),
        offer.len(),
        sdp.len(),
        join.len()
    );

    let mut relays = Vec::new();
    for (name, text) in [
        ("chat", &chat),
        ("candidate", &candidate),
        ("offer_6kb", &offer),
        ("join", &join),
    ] {
        let parsed = ClientMessage::parse(text).expect("a valid frame");
        c.bench_function(&format!("parse/{name}"), |b| {
            b.iter(|| ClientMessage::parse(black_box(text)))
        });
        if let ClientMessage::Relay(relay) = parsed {
            relays.push((name, relay));
        }
    }
    for (name, relay) in &relays {
        c.bench_function(&format!("relay_to_json/{name}"), |b| {
            b.iter(|| black_box(relay).to_json())
        });
    }

    let room = RoomId(0x4f1c_0a9e_7b3d_52c8_a6e0_f1d2_c3b4_a596);
    let common = vec!["chess".to_string(), "music".to_string()];
    let matched = ServerMessage::Matched {
        room,
        role: Role::Offerer,
        mode: Mode::Video,
        common: &common,
        same_lang: false,
        proof: MemberProof::pair(1, 2).0,
        ice_servers: &[],
        offer: None,
        offered: false,
    };
    c.bench_function("server_to_json/matched", |b| {
        b.iter(|| black_box(&matched).to_json())
    });
    let ice = [
        IceServer {
            urls: vec!["stun:stun.example.net:3478".into()],
            username: None,
            credential: None,
        },
        IceServer {
            urls: vec![
                "turn:turn.example.net:3478?transport=udp".into(),
                "turns:turn.example.net:5349?transport=tcp".into(),
            ],
            username: Some("1763769600:strangers".into()),
            credential: Some("q0mS2xY7bq3E1pLk9ZtVw4fJ8cU=".into()),
        },
    ];
    let challenge = strangers::pow::Challenge {
        seed: 0x0123_4567_89ab_cdef_0123_4567_89ab_cdef,
        bits: 18,
    };
    let welcome = ServerMessage::Welcome {
        online: 12_345,
        modes: strangers::protocol::ModeCounts([9_876, 2_000]),
        ice_servers: &ice,
        challenge: Some(challenge),
    };
    c.bench_function("server_to_json/welcome", |b| {
        b.iter(|| black_box(&welcome).to_json())
    });

    // What the server pays to check a join's proof of work: one SHA-256.
    let nonce = challenge.solve().expect("2^18 has solutions");
    c.bench_function("pow/verify", |b| {
        b.iter(|| black_box(&challenge).solved_by(black_box(nonce)))
    });

    // A budget that never runs out (the common case), and one that is spent (a flood).
    // One token a nanosecond: far faster than a charge takes, so every charge is allowed.
    let fast = 1_000_000_000;
    let mut plenty = Budget::new(Rates::new(fast, fast, fast, fast));
    c.bench_function("budget_charge/allowed", |b| {
        b.iter(|| plenty.charge(black_box(Cost::Message)))
    });
    assert_eq!(plenty.charge(Cost::Message), Verdict::Allow);
    let mut spent = Budget::new(Rates::new(1, 1, 1, 1));
    c.bench_function("budget_charge/dropped", |b| {
        b.iter(|| spent.charge(black_box(Cost::Message)))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .nresamples(20_000);
    targets = codec
}
criterion_main!(benches);
