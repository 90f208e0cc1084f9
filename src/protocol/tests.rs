use super::*;

const ROOM: &str = "0123456789abcdef0123456789abcdef";

#[test]
fn parses_every_client_message() {
    assert_eq!(
        ClientMessage::parse(r#"{"type":"ping"}"#),
        Ok(ClientMessage::Ping)
    );
    assert_eq!(ServerMessage::Pong.to_json(), r#"{"type":"pong"}"#);
    assert_eq!(
        ClientMessage::parse(r#"{"type":"join","interests":[" Music ","chess","music"]}"#),
        Ok(ClientMessage::Join {
            interests: vec!["music".into(), "chess".into()],
            mode: Mode::Video,
            lang: None,
            ahead: false,
            admit: Admit::default(),
        })
    );
    assert_eq!(
        ClientMessage::parse(r#"{"type":"join"}"#),
        Ok(ClientMessage::Join {
            interests: vec![],
            mode: Mode::Video,
            lang: None,
            ahead: false,
            admit: Admit::default(),
        })
    );
    assert_eq!(
        ClientMessage::parse(r#"{"type":"join","mode":"text","lang":"DE"}"#),
        Ok(ClientMessage::Join {
            interests: vec![],
            mode: Mode::Text,
            lang: Some("de".parse().unwrap()),
            ahead: false,
            admit: Admit::default(),
        })
    );
    assert_eq!(
        ClientMessage::parse(r#"{"type":"next"}"#),
        Ok(ClientMessage::Next {
            mode: None,
            ahead: false,
            admit: Admit::default()
        })
    );
    assert_eq!(
        ClientMessage::parse(r#"{"type":"next","mode":"text"}"#),
        Ok(ClientMessage::Next {
            mode: Some(Mode::Text),
            ahead: false,
            admit: Admit::default()
        })
    );
    assert_eq!(
        ClientMessage::parse(r#"{"type":"leave"}"#),
        Ok(ClientMessage::Leave)
    );
    let offer = format!(r#"{{"type":"offer","room":"{ROOM}","sdp":"v=0"}}"#);
    assert!(matches!(
        ClientMessage::parse(&offer),
        Ok(ClientMessage::Relay(Relay::Offer { .. }))
    ));
    let cand = format!(
        r#"{{"type":"candidate","room":"{ROOM}","candidate":{{"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0}}}}"#
    );
    let ClientMessage::Relay(relay) = ClientMessage::parse(&cand).unwrap() else {
        panic!("candidate is a relay message")
    };
    // Relayed unchanged in meaning: the JSON the partner gets has the same fields.
    let back: serde_json::Value = serde_json::from_str(&relay.to_json()).unwrap();
    let sent: serde_json::Value = serde_json::from_str(&cand).unwrap();
    assert_eq!(back, sent);
    let end = format!(r#"{{"type":"candidate","room":"{ROOM}","candidate":null}}"#);
    assert!(ClientMessage::parse(&end).is_ok());
}

/// A `join` or `next` carries the gate's fields beside its mode, language and `ahead`.
#[test]
fn parses_the_gate_fields_of_join_and_next() {
    let admitted = Admit {
        adult: true,
        pow: Some(4_000_000_000),
    };
    assert_eq!(
        ClientMessage::parse(r#"{"type":"next","adult":true,"pow":4000000000}"#),
        Ok(ClientMessage::Next {
            mode: None,
            ahead: false,
            admit: admitted
        })
    );
    assert_eq!(
        ClientMessage::parse(
            r#"{"type":"join","mode":"text","lang":"pt","ahead":true,"adult":true,"pow":4000000000}"#
        ),
        Ok(ClientMessage::Join {
            interests: vec![],
            mode: Mode::Text,
            lang: Some("pt".parse().unwrap()),
            ahead: true,
            admit: admitted
        })
    );
    assert_eq!(
        ClientMessage::parse(r#"{"type":"join","adult":false}"#),
        Ok(ClientMessage::Join {
            interests: vec![],
            mode: Mode::Video,
            lang: None,
            ahead: false,
            admit: Admit::default()
        }),
        "false is not a confirmation"
    );
}

#[test]
fn a_refused_join_or_next_is_still_named_one() {
    assert!(names_entry(r#"{"type":"join","mode":"audio"}"#));
    assert!(names_entry(r#"{"type":"next","mode":1,"pow":-1}"#));
    assert!(names_entry(r#"{"type":"next","ahead":"yes"}"#));
    assert!(!names_entry(r#"{"type":"early_offer","sdp":"v=0"}"#));
    assert!(!names_entry(r#"{"type":"chat","room":"x"}"#));
    assert!(!names_entry(r#"{"type":7}"#));
    assert!(!names_entry("not json"));
}

#[test]
fn refuses_bad_input_with_a_reason() {
    let cases = [
        ("not json", "invalid JSON"),
        ("[1,2]", "JSON object"),
        (r#"{"kind":"join"}"#, "missing field `type`"),
        (r#"{"type":"dance"}"#, "unknown message type `dance`"),
        (r#"{"type":7}"#, "`type` must be a string"),
        (r#"{"type":"chat","room":"x","text":"hi"}"#, "room must be"),
        (
            r#"{"type":"typing","room":"0123456789abcdef0123456789abcdef","active":"yes"}"#,
            "invalid message",
        ),
        (
            r#"{"type":"join","interests":["a","b","c","d","e","f","g","h","i"]}"#,
            "at most 8",
        ),
        (r#"{"type":"join","interests":["   "]}"#, "1–32"),
        (r#"{"type":"join","adult":"yes"}"#, "invalid message"),
        (r#"{"type":"next","pow":-1}"#, "invalid message"),
        (r#"{"type":"next","pow":4294967296}"#, "invalid message"),
        (
            r#"{"type":"join","mode":"audio"}"#,
            r#"mode must be "video" or "text""#,
        ),
        (
            r#"{"type":"next","mode":"TEXT"}"#,
            r#"mode must be "video" or "text""#,
        ),
        (r#"{"type":"join","mode":7}"#, "invalid message"),
        (r#"{"type":"join","lang":"de-AT"}"#, "lang must be"),
        (r#"{"type":"join","lang":"x"}"#, "lang must be"),
        (r#"{"type":"join","lang":"germ"}"#, "lang must be"),
        (r#"{"type":"join","lang":"d1"}"#, "lang must be"),
        (r#"{"type":"join","lang":""}"#, "lang must be"),
    ];
    for (input, expected) in cases {
        let err = ClientMessage::parse(input).unwrap_err();
        assert_eq!(err.code, ErrorCode::BadMessage, "{input}");
        assert!(
            err.message.contains(expected),
            "{input}: {:?} should mention {expected:?}",
            err.message
        );
    }
}

#[test]
fn chat_length_is_counted_in_characters() {
    let ok = format!(
        r#"{{"type":"chat","room":"{ROOM}","text":"{}"}}"#,
        "é".repeat(MAX_CHAT_CHARS)
    );
    assert!(ClientMessage::parse(&ok).is_ok());
    let long = format!(
        r#"{{"type":"chat","room":"{ROOM}","text":"{}"}}"#,
        "a".repeat(MAX_CHAT_CHARS + 1)
    );
    assert!(ClientMessage::parse(&long).is_err());
    let blank = format!(r#"{{"type":"chat","room":"{ROOM}","text":"   "}}"#);
    assert!(ClientMessage::parse(&blank).is_err());
}

/// A chat line cannot pass for two: a line break (or any control character, or a
/// direction override) followed by "You:" would render as a line of the reader's own.
#[test]
fn chat_text_cannot_imitate_the_pages_labels() {
    for text in [
        r"hi\nYou: I am 12",
        r"a\rb",
        r"tab\there",
        "\u{2028}You: x",
        "\u{202e}:uoY",
    ] {
        let msg = format!(r#"{{"type":"chat","room":"{ROOM}","text":"{text}"}}"#);
        let err = ClientMessage::parse(&msg).expect_err(text);
        assert_eq!(err.code, ErrorCode::BadMessage, "{text}");
        assert!(err.message.contains("one line"), "{}", err.message);
    }
    let fine = format!(r#"{{"type":"chat","room":"{ROOM}","text":"You: and me, ☕ çà"}}"#);
    assert!(
        ClientMessage::parse(&fine).is_ok(),
        "labels themselves are just words"
    );
}

/// A join or next says whether the client takes early offers in `matched`; a client
/// that says nothing does not.
#[test]
fn join_and_next_say_whether_the_client_takes_early_offers() {
    assert!(matches!(
        ClientMessage::parse(r#"{"type":"join","ahead":true}"#),
        Ok(ClientMessage::Join { ahead: true, .. })
    ));
    assert!(matches!(
        ClientMessage::parse(r#"{"type":"next","ahead":true}"#),
        Ok(ClientMessage::Next { ahead: true, .. })
    ));
    assert!(matches!(
        ClientMessage::parse(r#"{"type":"next","ahead":false}"#),
        Ok(ClientMessage::Next { ahead: false, .. })
    ));
    for bad in [
        r#"{"type":"join","ahead":1}"#,
        r#"{"type":"next","ahead":"yes"}"#,
    ] {
        assert_eq!(
            ClientMessage::parse(bad).unwrap_err().code,
            ErrorCode::BadMessage,
            "{bad}"
        );
    }
}

/// An early offer is checked like any offer: an SDP of 1–32 KiB, nothing else.
#[test]
fn early_offers_are_checked_like_offers() {
    assert_eq!(
        ClientMessage::parse(r#"{"type":"early_offer","sdp":"v=0"}"#),
        Ok(ClientMessage::EarlyOffer { sdp: "v=0".into() })
    );
    let long = format!(
        r#"{{"type":"early_offer","sdp":"{}"}}"#,
        "a".repeat(MAX_SDP_BYTES + 1)
    );
    for bad in [
        r#"{"type":"early_offer","sdp":""}"#,
        r#"{"type":"early_offer"}"#,
        r#"{"type":"early_offer","sdp":7}"#,
        long.as_str(),
    ] {
        let err = ClientMessage::parse(bad).unwrap_err();
        assert_eq!(err.code, ErrorCode::BadMessage, "{bad:.60}");
    }
}

#[test]
fn oversize_text_is_too_large() {
    let big = format!(
        r#"{{"type":"join","pad":"{}"}}"#,
        "x".repeat(MAX_MESSAGE_BYTES)
    );
    assert_eq!(
        ClientMessage::parse(&big).unwrap_err().code,
        ErrorCode::TooLarge
    );
}

#[test]
fn room_ids_round_trip_and_reject_other_spellings() {
    let id = RoomId(0xdead_beef);
    assert_eq!(id.to_string().parse::<RoomId>(), Ok(id));
    assert!(
        "DEADBEEF000000000000000000000000"
            .parse::<RoomId>()
            .is_err()
    );
    assert!("+eadbeef00000000000000000000000".parse::<RoomId>().is_err());
    assert!("".parse::<RoomId>().is_err());
}

/// Two members' proofs pair with each other and with nobody else: not with a proof
/// made up around the same partner hash, nor with one of another room's pair.
#[test]
fn member_proofs_pair_only_the_two_members() {
    let (a, b) = MemberProof::pair(11, 22);
    assert!(a.pairs_with(&b) && b.pairs_with(&a));
    assert!(!a.pairs_with(&a), "a member is not its own partner");
    let forged = MemberProof {
        secret: 99,
        partner: a.me(),
    };
    assert!(
        !forged.pairs_with(&a),
        "knowing a's hash is not knowing b's secret"
    );
    let (c, _) = MemberProof::pair(33, 44);
    assert!(!c.pairs_with(&b));
    assert_eq!(a.to_string().parse(), Ok(a));
    assert!("00".repeat(31).parse::<MemberProof>().is_err());
    let resume = format!(r#"{{"type":"resume","room":"{}"}}"#, "a".repeat(32));
    assert_eq!(
        ClientMessage::parse(&resume).unwrap_err().code,
        ErrorCode::BadMessage
    );
}

#[test]
fn server_messages_have_the_documented_shape() {
    let room = RoomId(1);
    assert_eq!(
        ServerMessage::Matched {
            room,
            role: Role::Offerer,
            mode: Mode::Text,
            common: &["chess".to_string()],
            same_lang: true,
            proof: MemberProof {
                secret: 2,
                partner: 3
            },
            ice_servers: &[],
            offer: None,
            offered: false,
        }
        .to_json(),
        r#"{"type":"matched","room":"00000000000000000000000000000001","role":"offerer","mode":"text","common":["chess"],"same_lang":true,"proof":"0000000000000000000000000000000200000000000000000000000000000003","iceServers":[]}"#
    );
    let proof = MemberProof {
        secret: 2,
        partner: 3,
    };
    let answerer = ServerMessage::Matched {
        room,
        role: Role::Answerer,
        mode: Mode::Video,
        common: &[],
        same_lang: false,
        proof,
        ice_servers: &[],
        offer: Some("v=0\r\n"),
        offered: false,
    };
    assert!(answerer.to_json().ends_with(r#""offer":"v=0\r\n"}"#));
    let offerer = ServerMessage::Matched {
        room,
        role: Role::Offerer,
        mode: Mode::Video,
        common: &[],
        same_lang: false,
        proof,
        ice_servers: &[],
        offer: None,
        offered: true,
    };
    assert!(offerer.to_json().ends_with(r#""offered":true}"#));
    assert_eq!(
        ServerMessage::Left {
            room,
            reason: LeftReason::Disconnected
        }
        .to_json(),
        r#"{"type":"left","room":"00000000000000000000000000000001","reason":"disconnected"}"#
    );
    assert_eq!(ServerMessage::Waiting.to_json(), r#"{"type":"waiting"}"#);
    let challenge = Challenge { seed: 5, bits: 18 };
    assert_eq!(
        ServerMessage::Challenge { challenge }.to_json(),
        r#"{"type":"challenge","seed":"00000000000000000000000000000005","bits":18}"#
    );
    assert_eq!(
        ServerMessage::Welcome {
            online: 3,
            modes: ModeCounts([2, 1]),
            ice_servers: &[],
            challenge: Some(challenge)
        }
        .to_json(),
        r#"{"type":"welcome","online":3,"modes":{"video":2,"text":1},"iceServers":[],"challenge":{"seed":"00000000000000000000000000000005","bits":18}}"#
    );
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            ".{0,40}".prop_map(serde_json::Value::from),
            Just(serde_json::Value::from(ROOM)),
            prop_oneof![
                Just("join"),
                Just("next"),
                Just("offer"),
                Just("candidate"),
                Just("chat"),
                Just("typing")
            ]
            .prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("type".to_string()),
                        Just("room".to_string()),
                        Just("sdp".to_string()),
                        Just("text".to_string()),
                        Just("candidate".to_string()),
                        Just("active".to_string()),
                        Just("interests".to_string()),
                        "[a-z]{1,8}"
                    ],
                    inner,
                    0..6,
                )
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// Arbitrary text never panics the parser; a refusal always says why.
        #[test]
        fn any_text_is_parsed_or_refused(text in ".{0,300}") {
            if let Err(e) = ClientMessage::parse(&text) {
                prop_assert!(!e.message.is_empty());
            }
        }

        /// Arbitrary JSON shaped like our messages: parsed or refused, and whatever is
        /// accepted for relay serializes back to JSON that parses to the same message.
        #[test]
        fn message_shaped_json_round_trips(value in json_value()) {
            match ClientMessage::parse(&value.to_string()) {
                Ok(ClientMessage::Relay(relay)) => {
                    prop_assert_eq!(
                        ClientMessage::parse(&relay.to_json()),
                        Ok(ClientMessage::Relay(relay))
                    );
                }
                Ok(_) => {}
                Err(e) => prop_assert_eq!(e.code, ErrorCode::BadMessage),
            }
        }
    }
}
