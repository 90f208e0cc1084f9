// The signaling suite, run against each queue: included by tests/signaling.rs (this
// process's own queue) and tests/signaling_shared.rs (the queue shared through Redis), which
// each define `start(extra) -> TestServer`.

use common::{Client, TestServer, wait_waiting};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// A new connection is greeted first, with the online count and the ICE servers to use.
#[tokio::test]
async fn welcome_comes_first_and_counts_users() {
    let server = start(&[]).await;
    let (_a, welcome) = server.client_with_welcome().await;
    assert_eq!(welcome["online"], 1);
    assert!(welcome["iceServers"].is_array());
    let (_b, welcome) = server.client_with_welcome().await;
    assert_eq!(welcome["online"], 2, "the second user sees both");
}

/// Everyone already connected learns the new count, coalesced, without asking.
#[tokio::test]
async fn online_count_is_pushed_when_it_changes() {
    let server = start(&[]).await;
    let mut a = server.client().await;
    let _b = server.client().await;
    // The first update may still say 1 if a tick fell between the two connections; the
    // count settles at 2 within about a second.
    loop {
        let msg = a.recv_any().await;
        if msg["type"] == "online" && msg["count"] == 2 {
            break;
        }
        assert!(
            msg["type"] == "online" && msg["count"] == 1,
            "unexpected {msg}"
        );
    }
}

/// The online count says how many wait for or are in a chat of each mode: a user who has
/// not pressed Start counts only in the total, and one who presses Stop leaves its mode.
#[tokio::test]
async fn the_online_count_says_how_many_are_in_each_mode() {
    let server = start(&[]).await;
    let (mut watcher, welcome) = server.client_with_welcome().await;
    assert_eq!(welcome["modes"], json!({"video": 0, "text": 0}));
    let mut text = server.client().await;
    let mut video = server.client().await;
    join_with(&mut text, json!({"mode": "text"})).await;
    join_with(&mut video, json!({})).await;
    watcher.recv_online(json!({"count": 3, "modes": {"video": 1, "text": 1}})).await;
    text.send(json!({"type": "leave"})).await;
    watcher.recv_online(json!({"count": 3, "modes": {"video": 1, "text": 0}})).await;
    // Stop, then Next with a mode: the user counts in that mode now.
    video.send(json!({"type": "leave"})).await;
    watcher.recv_online(json!({"count": 3, "modes": {"video": 0, "text": 0}})).await;
    video.send(json!({"type": "next", "mode": "text"})).await;
    watcher.recv_online(json!({"count": 3, "modes": {"video": 0, "text": 1}})).await;
}

/// Two users who press Start meet in one room: one offerer, one answerer.
#[tokio::test]
async fn two_joiners_are_paired_with_opposite_roles() {
    let server = start(&[]).await;
    let mut a = server.client().await;
    let mut b = server.client().await;
    a.send(json!({"type": "join", "interests": ["Chess", "music"]}))
        .await;
    a.recv_type("waiting").await;
    b.send(json!({"type": "join", "interests": ["chess"]}))
        .await;
    b.recv_type("waiting").await;
    let ma = a.recv_type("matched").await;
    let mb = b.recv_type("matched").await;
    assert_eq!(ma["room"], mb["room"]);
    let room = ma["room"].as_str().unwrap();
    assert_eq!(room.len(), 32, "128-bit room id in hex");
    assert!(room.bytes().all(|c| c.is_ascii_hexdigit()));
    let mut roles = [ma["role"].as_str().unwrap(), mb["role"].as_str().unwrap()];
    roles.sort();
    assert_eq!(roles, ["answerer", "offerer"]);
    assert_eq!(ma["common"], json!(["chess"]));
    let health = server.health().await;
    assert_eq!(
        (health["rooms"].as_u64(), health["waiting"].as_u64()),
        (Some(1), Some(0))
    );
}

/// Every signaling message crosses from each side to the other unchanged in meaning.
#[tokio::test]
async fn every_relay_message_reaches_the_partner_both_ways() {
    let server = start(&[]).await;
    let (mut offerer, mut answerer, room) = server.pair().await;
    let candidate = json!({"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host",
                           "sdpMid": "0", "sdpMLineIndex": 0, "usernameFragment": "abcd"});
    let messages = [
        json!({"type": "offer", "room": room, "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"}),
        json!({"type": "answer", "room": room, "sdp": "v=0\r\n"}),
        json!({"type": "candidate", "room": room, "candidate": candidate}),
        json!({"type": "candidate", "room": room, "candidate": null}),
        json!({"type": "chat", "room": room, "text": "hello, stranger ✋"}),
        json!({"type": "typing", "room": room, "active": true}),
        json!({"type": "typing", "room": room, "active": false}),
        json!({"type": "media", "room": room, "video": false, "audio": true}),
    ];
    for msg in &messages {
        offerer.send(msg.clone()).await;
        assert_eq!(&answerer.recv().await, msg, "offerer → answerer");
        answerer.send(msg.clone()).await;
        assert_eq!(&offerer.recv().await, msg, "answerer → offerer");
    }
}

/// A message naming a room the sender is not in is never delivered: not a made-up one, not
/// a stale one after Next.
#[tokio::test]
async fn messages_for_other_rooms_are_never_delivered() {
    let server = start(&[]).await;
    let (mut a, mut b, room) = server.pair().await;

    // Made up: b receives the marker sent after it, and nothing before.
    a.send(json!({"type": "chat", "room": "0".repeat(32), "text": "injected"}))
        .await;
    a.send(json!({"type": "chat", "room": room, "text": "marker"}))
        .await;
    assert_eq!(b.recv().await["text"], "marker");

    // Stale: a skips b, then b (idle now) writes to the old room, then rejoins and is paired
    // with a again. a's next message must be the new match, not b's stale chat.
    a.send(json!({"type": "next"})).await;
    a.recv_type("waiting").await;
    let left = b.recv_type("left").await;
    assert_eq!(left["reason"], "skipped");
    b.send(json!({"type": "chat", "room": room, "text": "stale"}))
        .await;
    b.send(json!({"type": "join"})).await;
    let again = a.recv().await;
    assert_eq!(again["type"], "matched", "got {again}");
    assert_ne!(again["room"], room.as_str(), "a new room each time");
    b.recv_type("waiting").await;
    b.recv_type("matched").await;

    // Stale from the other side too: a writes to the old room, then to the new one.
    let new_room = again["room"].as_str().unwrap();
    a.send(json!({"type": "chat", "room": room, "text": "old room"}))
        .await;
    a.send(json!({"type": "chat", "room": new_room, "text": "new room"}))
        .await;
    assert_eq!(b.recv().await["text"], "new room");
}

/// Relay while idle or waiting is dropped like a stale message, without an error.
#[tokio::test]
async fn relay_while_not_in_a_room_is_dropped() {
    let server = start(&[]).await;
    let mut a = server.client().await;
    let room = "ab".repeat(16);
    a.send(json!({"type": "chat", "room": room, "text": "anyone?"}))
        .await;
    a.join().await;
    a.send(json!({"type": "offer", "room": room, "sdp": "v=0"}))
        .await;
    let mut b = server.client().await;
    b.join().await;
    // a's next message is the match: nothing was echoed or refused in between.
    assert_eq!(a.recv().await["type"], "matched");
    b.recv_type("matched").await;
}

/// Next ends the room for the partner with `skipped`; Stop with `left`; closing the socket
/// with `disconnected`.
#[tokio::test]
async fn partner_learns_why_the_room_ended() {
    // Each case on a server of its own, so that a user re-queued by Next is not matched
    // with the next case's users.
    let server = start(&[]).await;
    let (mut a, mut b, room) = server.pair().await;
    a.send(json!({"type": "next"})).await;
    assert_eq!(
        b.recv_type("left").await,
        json!({"type": "left", "room": room, "reason": "skipped"})
    );

    let server = start(&[]).await;
    let (mut a, mut b, room) = server.pair().await;
    a.send(json!({"type": "leave"})).await;
    assert_eq!(
        b.recv_type("left").await,
        json!({"type": "left", "room": room, "reason": "left"})
    );

    let server = start(&[]).await;
    let (a, mut b, room) = server.pair().await;
    drop(a); // the tab closes: TCP goes away without a WebSocket close
    assert_eq!(
        b.recv_type("left").await,
        json!({"type": "left", "room": room, "reason": "disconnected"})
    );
}

/// With A and B talking and C waiting, A's Next pairs A with C; B is told and can rejoin.
#[tokio::test]
async fn three_users_next_repairs_correctly() {
    let server = start(&[]).await;
    let (mut a, mut b, room_ab) = server.pair().await;
    let mut c = server.client().await;
    c.join().await;

    a.send(json!({"type": "next"})).await;
    a.recv_type("waiting").await;
    let ma = a.recv_type("matched").await;
    let mc = c.recv_type("matched").await;
    assert_eq!(ma["room"], mc["room"], "a meets the one who was waiting");
    assert_ne!(ma["room"], room_ab.as_str());
    assert_eq!(b.recv_type("left").await["reason"], "skipped");

    // b rejoins and waits: nobody else is free.
    b.join().await;
    let health = server.health().await;
    assert_eq!(
        (
            health["online"].as_u64(),
            health["waiting"].as_u64(),
            health["rooms"].as_u64()
        ),
        (Some(3), Some(1), Some(1))
    );
}

/// Join twice, Next while waiting: still waiting, exactly once in the queue.
#[tokio::test]
async fn repeated_join_and_next_while_waiting_keep_one_place() {
    let server = start(&[]).await;
    let mut a = server.client().await;
    a.join().await;
    a.join().await;
    a.send(json!({"type": "next"})).await;
    a.recv_type("waiting").await;
    assert_eq!(server.health().await["waiting"], 1);
    let mut b = server.client().await;
    b.join().await;
    a.recv_type("matched").await;
    b.recv_type("matched").await;
    assert_eq!(server.health().await["waiting"], 0);
}

/// Bad input gets a clear error and the connection keeps working.
#[tokio::test]
async fn bad_messages_get_an_error_and_the_session_survives() {
    let server = start(&[]).await;
    let mut a = server.client().await;
    let cases: [(String, &str); 6] = [
        ("{not json".into(), "invalid JSON"),
        (json!({"type": "dance"}).to_string(), "unknown message type"),
        (
            json!({"type": "chat", "room": 5, "text": "x"}).to_string(),
            "invalid message",
        ),
        (
            json!({"type": "join", "interests": ["x".repeat(33)]}).to_string(),
            "1–32",
        ),
        (
            json!({"type": "chat", "room": "a".repeat(32), "text": "y".repeat(2001)}).to_string(),
            "1–2000",
        ),
        (json!([1, 2, 3]).to_string(), "JSON object"),
    ];
    for (input, says) in cases {
        a.send_text(input.clone()).await;
        let err = a.recv_type("error").await;
        assert_eq!(err["code"], "bad_message", "{input}");
        assert!(
            err["message"].as_str().unwrap().contains(says),
            "{input}: {err}"
        );
    }
    a.ws.send(tokio_tungstenite::tungstenite::Message::Binary(
        vec![1, 2, 3].into(),
    ))
    .await
    .unwrap();
    assert_eq!(a.recv_type("error").await["code"], "bad_message");
    // Still a working session: it can be matched.
    a.join().await;
    let mut b = server.client().await;
    b.join().await;
    a.recv_type("matched").await;
}

use futures_util::SinkExt;

/// A frame over 64 KiB is refused with `too_large` and the socket closed with 1009; the
/// partner is told the user disconnected.
#[tokio::test]
async fn oversize_message_closes_with_1009() {
    let server = start(&[]).await;
    let (mut a, mut b, room) = server.pair().await;
    let huge = json!({"type": "chat", "room": room, "text": "z".repeat(70 * 1024)}).to_string();
    a.send_text(huge).await;
    assert_eq!(a.recv_type("error").await["code"], "too_large");
    assert_eq!(a.closed().await, Some(CloseCode::Size));
    assert_eq!(b.recv_type("left").await["reason"], "disconnected");
}

/// Leaving keeps the connection: the user can start again later.
#[tokio::test]
async fn leave_keeps_the_user_connected_and_idle() {
    let server = start(&[]).await;
    let mut a = server.client().await;
    a.join().await;
    a.send(json!({"type": "leave"})).await;
    let mut b = server.client().await;
    b.join().await;
    assert_eq!(server.health().await["waiting"], 1, "only b waits");
    a.join().await;
    a.recv_type("matched").await;
    b.recv_type("matched").await;
}

/// Beyond the connection cap, an upgrade gets a clean 503 and existing users are unaffected.
#[tokio::test]
async fn connections_beyond_the_cap_get_503() {
    let server = start(&["--max-connections", "2"]).await;
    let (mut a, mut b, room) = server.pair().await;
    let err = tokio_tungstenite::connect_async(server.ws_url())
        .await
        .expect_err("the third connection is refused");
    match err {
        tokio_tungstenite::tungstenite::Error::Http(res) => assert_eq!(res.status(), 503),
        other => panic!("expected an HTTP 503, got {other:?}"),
    }
    a.send(json!({"type": "chat", "room": room, "text": "still here"}))
        .await;
    assert_eq!(b.recv().await["text"], "still here");
}

/// On shutdown every client is told `bye` and the socket closes with 1012.
#[tokio::test]
async fn shutdown_says_bye_to_everyone() {
    let server = start(&[]).await;
    let (mut a, mut b, _room) = server.pair().await;
    let mut c: Client = server.client().await;
    server.shutdown().await;
    for client in [&mut a, &mut b, &mut c] {
        assert_eq!(
            client.recv().await,
            json!({"type": "bye", "reason": "restart"})
        );
        assert_eq!(client.closed().await, Some(CloseCode::Restart));
    }
}

/// A restart is not the stranger leaving: while the server says goodbye to a hundred calls,
/// no one is told `left` before their own `bye` (which would end a call that could resume
/// on the new server), whichever member of each room the server happens to close first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_never_tells_a_partner_left() {
    let server = start(&["--max-per-ip", "1000"]).await;
    let mut clients = Vec::new();
    for _ in 0..100 {
        let (a, b, _room) = server.pair().await;
        clients.extend([a, b]);
    }
    server.shutdown().await;
    for (i, client) in clients.iter_mut().enumerate() {
        let first = client.recv().await;
        assert_eq!(first["type"], "bye", "client {i} was told {first} first");
        assert_eq!(client.closed().await, Some(CloseCode::Restart));
    }
}

/// After a server restart, the two members of a call each ask for their room back; once both
/// are back the room works again (chat, Next) without a new match.
#[tokio::test]
async fn both_members_resume_their_room_after_a_restart() {
    let old = start(&[]).await;
    let ((a, proof_a), (b, proof_b), room) = old.pair_with_proofs().await;
    old.shutdown().await;
    drop((a, b));

    let server = start(&[]).await;
    let mut a = server.client().await;
    let mut b = server.client().await;
    a.send(json!({"type": "resume", "room": room, "proof": proof_a}))
        .await;
    b.send(json!({"type": "resume", "room": room, "proof": proof_b}))
        .await;
    let back = json!({"type": "resumed", "room": room});
    assert_eq!(a.recv().await, back);
    assert_eq!(b.recv().await, back);
    a.send(json!({"type": "chat", "room": room, "text": "we're back"}))
        .await;
    assert_eq!(b.recv().await["text"], "we're back");
    b.send(json!({"type": "next"})).await;
    b.recv_type("waiting").await;
    assert_eq!(a.recv_type("left").await["reason"], "skipped");

    // A room id nobody else asks for opens nothing; joining instead finds a new stranger
    // (b, who pressed Next, is waiting).
    let mut c = server.client().await;
    c.send(json!({"type": "resume", "room": "ab".repeat(16), "proof": "cd".repeat(32)}))
        .await;
    c.join().await;
    c.recv_type("matched").await;
    b.recv_type("matched").await;
}

/// After a restart a room is bound to its members, not to its id: a stranger who knows the
/// id and asks first, with a proof it made up, does not become anyone's partner (the two
/// members still find each other), and a `resume` with no proof is refused.
#[tokio::test]
async fn a_room_id_alone_does_not_resume_a_room() {
    let old = start(&[]).await;
    let ((a, proof_a), (b, proof_b), room) = old.pair_with_proofs().await;
    old.shutdown().await;
    drop((a, b));

    let server = start(&[]).await;
    let mut thief = server.client().await;
    thief
        .send(json!({"type": "resume", "room": room}))
        .await;
    assert_eq!(thief.recv().await["code"], "bad_message", "no proof, no resume");
    let forged = format!("{}{}", "ab".repeat(16), &proof_a[32..]);
    thief
        .send(json!({"type": "resume", "room": room, "proof": forged}))
        .await;
    let mut a = server.client().await;
    let mut b = server.client().await;
    b.send(json!({"type": "resume", "room": room, "proof": proof_b}))
        .await;
    a.send(json!({"type": "resume", "room": room, "proof": proof_a}))
        .await;
    let back = json!({"type": "resumed", "room": room});
    assert_eq!(a.recv().await, back);
    assert_eq!(b.recv().await, back);
    a.send(json!({"type": "chat", "room": room, "text": "only you"}))
        .await;
    assert_eq!(b.recv().await["text"], "only you");
    // The thief was never let in: the next thing it hears answers its own join.
    thief.join().await;
}

/// Sends an early offer, then a ping. The pong says the server has read the offer and
/// handed it to its lobby, which takes inputs in the order they come: anything another
/// client sends after this pong is handled after the offer.
async fn offer_ahead(client: &mut Client, sdp: &str) {
    client
        .send(json!({"type": "early_offer", "sdp": sdp}))
        .await;
    client.send(json!({"type": "ping"})).await;
    client.recv_type("pong").await;
}

/// Pairs an idle `joiner` with `waiter` (waiting already); returns their `matched`. The
/// joiner takes early offers inside `matched`.
async fn meet_waiter(joiner: &mut Client, waiter: &mut Client) -> (Value, Value) {
    joiner.send(json!({"type": "join", "ahead": true})).await;
    let from_joiner = joiner.recv().await;
    let mj = if from_joiner["type"] == "waiting" {
        joiner.recv_type("matched").await
    } else {
        from_joiner
    };
    (mj, waiter.recv_type("matched").await)
}

/// Whether a `matched` carries anything of an early offer.
fn ahead_in(matched: &Value) -> bool {
    matched.get("offer").is_some() || matched.get("offered").is_some()
}

/// A waiting user's early offer reaches the stranger it is paired with, inside that
/// stranger's `matched`; the waiter offers and is told its offer went; it reaches nobody
/// else, then or later, and is not sent again.
#[tokio::test]
async fn an_early_offer_reaches_only_the_stranger_it_is_paired_with() {
    let server = start(&[]).await;
    let sdp = "v=0\r\no=- 7 2 IN IP4 127.0.0.1\r\na=candidate:1 1 udp 1 127.0.0.1 5000 typ host\r\n";
    let mut w = server.client().await;
    let mut bystander = server.client().await;
    w.join().await;
    offer_ahead(&mut w, sdp).await;

    let mut x = server.client().await;
    let (mx, mw) = meet_waiter(&mut x, &mut w).await;
    assert_eq!(mx["room"], mw["room"]);
    assert_eq!(mx["role"], "answerer", "the one who gets the offer answers");
    assert_eq!(mx["offer"], sdp, "matched carries the offer unchanged");
    assert_eq!(mw["role"], "offerer", "the waiter whose offer it is offers");
    assert_eq!(mw["offered"], true);
    assert!(mw.get("offer").is_none(), "{mw}");

    // Not sent again: what x gets next is what w sends next.
    let room = mw["room"].as_str().unwrap();
    w.send(json!({"type": "chat", "room": room, "text": "marker"}))
        .await;
    assert_eq!(x.recv().await["text"], "marker");

    // Used once: the next pairing carries nothing of it.
    let mut y = server.client().await;
    y.join().await;
    let (mb, my) = meet_waiter(&mut bystander, &mut y).await;
    assert!(!ahead_in(&mb) && !ahead_in(&my), "{mb} {my}");
}

/// An early offer belongs to one wait: one made before a Stop, a Next, a disconnect, or
/// while not waiting at all is never delivered to anyone.
#[tokio::test]
async fn stale_early_offers_are_never_delivered() {
    let server = start(&[]).await;
    let mut a = server.client().await;
    let mut b = server.client().await;

    // Idle: ignored. Then a waits without one.
    offer_ahead(&mut a, "v=0 idle").await;
    a.join().await;
    let (mb, ma) = meet_waiter(&mut b, &mut a).await;
    assert!(!ahead_in(&mb) && !ahead_in(&ma), "{mb} {ma}");

    // In a room: ignored, and not kept for after Next.
    offer_ahead(&mut a, "v=0 in a room").await;
    b.send(json!({"type": "next"})).await;
    b.recv_type("waiting").await;
    a.recv_type("left").await;
    let (ma, mb) = meet_waiter(&mut a, &mut b).await;
    assert!(!ahead_in(&ma) && !ahead_in(&mb), "{ma} {mb}");

    // Stop: dropped with the wait.
    a.send(json!({"type": "leave"})).await;
    b.recv_type("left").await;
    b.join().await;
    offer_ahead(&mut b, "v=0 before stop").await;
    b.send(json!({"type": "leave"})).await;
    b.join().await;
    let (ma, mb) = meet_waiter(&mut a, &mut b).await;
    assert!(!ahead_in(&ma) && !ahead_in(&mb), "{ma} {mb}");

    // Next: the offer of the wait before it is gone with that wait.
    a.send(json!({"type": "leave"})).await;
    b.recv_type("left").await;
    b.join().await;
    offer_ahead(&mut b, "v=0 first wait").await;
    let (ma, mb) = meet_waiter(&mut a, &mut b).await;
    assert_eq!(ma["offer"], "v=0 first wait");
    b.send(json!({"type": "next"})).await;
    b.recv_type("waiting").await;
    a.recv_type("left").await;
    let (ma, mb2) = meet_waiter(&mut a, &mut b).await;
    assert!(mb["offered"] == true && !ahead_in(&mb2) && !ahead_in(&ma));

    // Disconnect: gone with the user.
    a.send(json!({"type": "leave"})).await;
    b.recv_type("left").await;
    let mut c = server.client().await;
    c.join().await;
    offer_ahead(&mut c, "v=0 gone").await;
    drop(c);
    wait_waiting(server.addr, 0, "the one who left is out of the queue").await;
    b.join().await;
    let (ma, mb) = meet_waiter(&mut a, &mut b).await;
    assert!(!ahead_in(&ma) && !ahead_in(&mb), "{ma} {mb}");
}

/// An early offer is only kept for a wait, and only a join the gate let in begins one: a
/// client whose join was refused (no 18+ confirmation, or a made-up solution) is still idle,
/// and the early offers it sends then reach nobody, not even the stranger it meets once its
/// join does pass.
#[tokio::test]
async fn an_early_offer_needs_a_wait_the_gate_let_in() {
    let server = start(&[]).await;
    let mut x = server.client().await;
    x.join_ahead().await;
    let mut minor = server.client().await;

    let nonce = minor.fresh_challenge().await.and_then(|c| c.solve());
    minor
        .send_as_is(json!({"type": "join", "ahead": true, "pow": nonce}))
        .await;
    assert_eq!(minor.recv_type("error").await["code"], "adult_required");
    offer_ahead(&mut minor, "v=0 not confirmed").await;

    let challenge = minor.fresh_challenge().await.unwrap();
    let forged = (0..).find(|&n| !challenge.solved_by(n)).unwrap();
    minor
        .send_as_is(json!({"type": "join", "ahead": true, "adult": true, "pow": forged}))
        .await;
    assert_eq!(minor.recv_type("error").await["code"], "pow_invalid");
    offer_ahead(&mut minor, "v=0 not solved").await;

    assert_eq!(server.health().await["rooms"], 0, "no refused join was paired");
    assert_eq!(x.try_recv_now().await, None, "the waiter heard nothing");
    // Let in at last: a pairing like any other, with nothing of the offers sent before.
    minor.join().await;
    let (mm, mx) = (
        minor.recv_type("matched").await,
        x.recv_type("matched").await,
    );
    assert_eq!(mm["room"], mx["room"]);
    assert!(!ahead_in(&mm) && !ahead_in(&mx), "{mm} {mx}");
    let room = mm["room"].as_str().unwrap();
    minor
        .send(json!({"type": "chat", "room": room, "text": "first"}))
        .await;
    assert_eq!(x.recv().await["text"], "first", "and no offer before it");
}

/// An early offer is checked like any offer: a malformed or oversized one gets
/// `bad_message`, the user keeps waiting, and nothing of it reaches the stranger.
#[tokio::test]
async fn a_bad_early_offer_is_refused_and_the_wait_goes_on() {
    let server = start(&[]).await;
    let mut w = server.client().await;
    w.join().await;
    let oversized = "a".repeat(32 * 1024 + 1);
    for bad in [
        json!({"type": "early_offer"}),
        json!({"type": "early_offer", "sdp": ""}),
        json!({"type": "early_offer", "sdp": 7}),
        json!({"type": "early_offer", "sdp": oversized}),
    ] {
        w.send(bad.clone()).await;
        let err = w.recv_type("error").await;
        assert_eq!(err["code"], "bad_message", "{err} for {bad:.80}");
    }
    let mut x = server.client().await;
    let (mx, mw) = meet_waiter(&mut x, &mut w).await;
    assert_eq!(mx["room"], mw["room"], "still waiting, and paired");
    assert!(!ahead_in(&mx) && !ahead_in(&mw), "{mx} {mw}");
}

/// Two waiters who both made early offers meet when their fallback comes: one offer is
/// used (its owner offers), the other is dropped, and its owner answers the first. (The
/// browser rolls its own offer back: perfect negotiation.)
#[tokio::test]
async fn of_two_early_offers_one_is_used() {
    let server = start(&["--fallback-after", "300ms"]).await;
    let mut a = server.client().await;
    let mut b = server.client().await;
    a.send(json!({"type": "join", "interests": ["chess"], "ahead": true}))
        .await;
    a.recv_type("waiting").await;
    offer_ahead(&mut a, "v=0 a").await;
    b.send(json!({"type": "join", "interests": ["jazz"], "ahead": true}))
        .await;
    b.recv_type("waiting").await;
    offer_ahead(&mut b, "v=0 b").await;
    let (ma, mb) = (a.recv_type("matched").await, b.recv_type("matched").await);
    let (offerer, answerer, sdp) = if ma["role"] == "offerer" {
        (&ma, &mb, "v=0 a")
    } else {
        (&mb, &ma, "v=0 b")
    };
    assert_eq!(offerer["offered"], true, "{offerer}");
    assert_eq!(answerer["role"], "answerer");
    assert_eq!(answerer["offer"], sdp, "the offerer's own offer");
}

/// A client that does not say it takes early offers (one from before them, or a page with
/// `?ahead=0`) paired with a waiter who offered ahead gets today's flow: a plain `matched`
/// as the answerer, then the waiter's offer as an ordinary `offer` for the room, before
/// anything else the waiter sends; its answer reaches the waiter, who was told its offer
/// went. Also when the pairing is a fallback's, whichever of the two it starts from.
#[tokio::test]
async fn a_client_that_takes_no_early_offer_gets_it_as_an_ordinary_offer() {
    let server = start(&["--fallback-after", "300ms"]).await;
    let sdp = "v=0\r\no=- 5 2 IN IP4 127.0.0.1\r\na=candidate:1 1 udp 1 127.0.0.1 5000 typ host\r\n";
    for join in [json!({"type": "join"}), json!({"type": "join", "ahead": false})] {
        let mut w = server.client().await;
        w.join_ahead().await;
        offer_ahead(&mut w, sdp).await;
        let mut old = server.client().await;
        old.send(join.clone()).await;
        let first = old.recv().await;
        let mo = if first["type"] == "waiting" {
            old.recv_type("matched").await
        } else {
            first
        };
        let mw = w.recv_type("matched").await;
        assert_old_flow(&mut old, &mut w, &mo, &mw, sdp).await;
    }
    // A fallback pairs two waiters: the one who offered ahead offers, the other gets the
    // offer relayed, whether its own fallback or the other's made the pair.
    let mut old = server.client().await;
    let mut w = server.client().await;
    old.send(json!({"type": "join", "interests": ["chess"]})).await;
    old.recv_type("waiting").await;
    w.send(json!({"type": "join", "interests": ["jazz"], "ahead": true}))
        .await;
    w.recv_type("waiting").await;
    offer_ahead(&mut w, sdp).await;
    let (mo, mw) = (old.recv_type("matched").await, w.recv_type("matched").await);
    assert_old_flow(&mut old, &mut w, &mo, &mw, sdp).await;
}

/// `old` (matched `mo`) answers as it always has: its `matched` has nothing of an early
/// offer and the next thing it hears is `waiter`'s offer `sdp`, relayed; its answer
/// reaches `waiter` (matched `mw`, told its offer went).
async fn assert_old_flow(old: &mut Client, waiter: &mut Client, mo: &Value, mw: &Value, sdp: &str) {
    assert_eq!(mo["room"], mw["room"]);
    let room = mo["room"].as_str().unwrap();
    assert_eq!(mo["role"], "answerer", "{mo}");
    assert!(!ahead_in(mo), "nothing an old client would ignore: {mo}");
    assert_eq!((&mw["role"], &mw["offered"]), (&json!("offerer"), &json!(true)));
    waiter
        .send(json!({"type": "chat", "room": room, "text": "after the offer"}))
        .await;
    assert_eq!(
        old.recv().await,
        json!({"type": "offer", "room": room, "sdp": sdp}),
        "the offer first, as an offerer would have sent it"
    );
    assert_eq!(old.recv().await["text"], "after the offer", "and only once");
    old.send(json!({"type": "answer", "room": room, "sdp": "v=0 answer"}))
        .await;
    assert_eq!(waiter.recv().await["sdp"], "v=0 answer");
    old.send(json!({"type": "leave"})).await;
    waiter.recv_type("left").await;
}

/// An early offer is for a video call: a text user's is refused with `bad_message` and
/// never kept; an offer made in the video pool stays there (a wait in the text pool after
/// it has none), and the text strangers meet without one.
#[tokio::test]
async fn early_offers_are_for_video_waits_only() {
    let server = start(&[]).await;
    let mut t = server.client().await;
    join_with(&mut t, json!({"mode": "text", "ahead": true})).await;
    t.send(json!({"type": "early_offer", "sdp": "v=0 text"}))
        .await;
    let err = t.recv_type("error").await;
    assert_eq!(err["code"], "bad_message", "{err}");
    assert!(err["message"].as_str().unwrap().contains("video"), "{err}");
    // A video waiter's offer, then it waits in the text pool instead.
    let mut v = server.client().await;
    v.join_ahead().await;
    offer_ahead(&mut v, "v=0 video").await;
    v.send(json!({"type": "leave"})).await;
    join_with(&mut v, json!({"mode": "text", "ahead": true})).await;
    let (mt, mv) = (t.recv_type("matched").await, v.recv_type("matched").await);
    assert_eq!(mt["room"], mv["room"]);
    assert_eq!(mt["mode"], "text");
    assert!(!ahead_in(&mt) && !ahead_in(&mv), "{mt} {mv}");
    // Nothing relayed either: the first thing t hears is v's chat line.
    let room = mt["room"].as_str().unwrap();
    v.send(json!({"type": "chat", "room": room, "text": "hi"})).await;
    assert_eq!(t.recv().await["text"], "hi");
    // In a text room, too.
    t.send(json!({"type": "early_offer", "sdp": "v=0 text"}))
        .await;
    assert_eq!(t.recv_type("error").await["code"], "bad_message");
}

/// The 18+ gate: a `join` or `next` without `"adult": true` gets `adult_required` and
/// meets nobody, though a stranger is waiting; with it, the same connection is paired.
#[tokio::test]
async fn a_join_without_the_18_plus_confirmation_meets_nobody() {
    let server = start(&[]).await;
    let mut waiting = server.client().await;
    waiting.join().await;
    let mut minor = server.client().await;
    for (ty, adult) in [("join", None), ("join", Some(false)), ("next", None)] {
        // With the solution of the challenge it spends: only the confirmation is missing.
        let nonce = minor.fresh_challenge().await.and_then(|c| c.solve());
        let mut msg = json!({"type": ty, "pow": nonce});
        if let Some(adult) = adult {
            msg["adult"] = json!(adult);
        }
        minor.send_as_is(msg.clone()).await;
        let refused = minor.recv_type("error").await;
        assert_eq!(refused["code"], "adult_required", "{msg}: {refused}");
        assert!(
            refused["message"].as_str().unwrap().contains("18 or older"),
            "{refused}"
        );
    }
    assert_eq!(server.health().await["rooms"], 0, "nobody was paired");
    assert_eq!(waiting.try_recv_now().await, None, "the stranger heard nothing");
    // Confirmed: the same connection joins and meets the stranger.
    minor.join().await;
    minor.recv_type("matched").await;
    waiting.recv_type("matched").await;
}

/// The proof of work: the welcome sets a challenge; a join without its solution gets
/// `pow_required`, one with a made-up nonce `pow_invalid`, and a solution already spent
/// (replayed after the join it paid for) `pow_invalid` too; none of them meets the
/// stranger who is waiting. Every join, refused or not, is answered with a new challenge.
#[tokio::test]
async fn a_join_without_a_valid_proof_of_work_meets_nobody() {
    let server = start(&[]).await;
    let mut waiting = server.client().await;
    waiting.join().await;
    let (mut bot, welcome) = server.client_with_welcome().await;
    assert_eq!(welcome["challenge"]["bits"], 10, "the test servers' base");
    assert_eq!(welcome["challenge"]["seed"].as_str().unwrap().len(), 32);

    let first = bot.fresh_challenge().await.unwrap();
    bot.send(json!({"type": "join", "pow": null})).await;
    assert_eq!(bot.recv_type("error").await["code"], "pow_required");

    let second = bot.fresh_challenge().await.unwrap();
    assert_ne!(first, second, "the refused join spent its challenge");
    let forged = (0..).find(|&n| !second.solved_by(n)).unwrap();
    bot.send(json!({"type": "join", "pow": forged})).await;
    let refused = bot.recv_type("error").await;
    assert_eq!(refused["code"], "pow_invalid", "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("latest challenge"));
    assert_eq!(server.health().await["rooms"], 0, "no refused join was paired");
    assert_eq!(waiting.try_recv_now().await, None, "the stranger heard nothing");

    // A good solution pays for one join: the bot meets the stranger, and leaves.
    let paid = bot.fresh_challenge().await.unwrap().solve().unwrap();
    bot.send(json!({"type": "join", "pow": paid})).await;
    bot.recv_type("waiting").await;
    bot.recv_type("matched").await;
    waiting.recv_type("matched").await;
    bot.send(json!({"type": "leave"})).await;
    waiting.recv_type("left").await;
    waiting.join().await;
    // Sent again, it is a replay. (A challenge the old nonce happens to solve too, 1 in
    // 2^10, is spent first by a join without a solution.)
    for _ in 0..8 {
        if !bot.fresh_challenge().await.unwrap().solved_by(paid) {
            break;
        }
        bot.send(json!({"type": "join", "pow": null})).await;
        bot.recv_type("error").await;
    }
    bot.send(json!({"type": "join", "pow": paid})).await;
    assert_eq!(bot.recv_type("error").await["code"], "pow_invalid");
    assert_eq!(server.health().await["rooms"], 0, "the replay was not paired");
    assert_eq!(waiting.try_recv_now().await, None, "the stranger heard nothing");
}

/// Sends `join` with these extra fields (`mode`, `lang`, `interests`) and reads `waiting`.
async fn join_with(client: &mut Client, fields: serde_json::Value) {
    let mut msg = fields;
    msg["type"] = json!("join");
    client.send(msg).await;
    client.recv_type("waiting").await;
}

/// Text users meet text users and video users video users: with one of each waiting, a
/// newcomer of either mode meets the one of its own mode, and `matched` says which.
#[tokio::test]
async fn text_meets_text_and_video_meets_video_never_across() {
    let server = start(&[]).await;
    let mut video = server.client().await;
    let mut text = server.client().await;
    join_with(&mut video, json!({"mode": "video"})).await;
    join_with(&mut text, json!({"mode": "text"})).await;
    let mut text2 = server.client().await;
    join_with(&mut text2, json!({"mode": "text"})).await;
    let (m1, m2) = (text.recv_type("matched").await, text2.recv_type("matched").await);
    assert_eq!(m1["room"], m2["room"]);
    assert_eq!((m1["mode"].as_str(), m2["mode"].as_str()), (Some("text"), Some("text")));
    assert_eq!(server.health().await["waiting"], 1, "the video user still waits");
    // A client that names no mode is a video user.
    let mut old = server.client().await;
    old.join().await;
    let (m1, m2) = (video.recv_type("matched").await, old.recv_type("matched").await);
    assert_eq!(m1["room"], m2["room"]);
    assert_eq!((m1["mode"].as_str(), m2["mode"].as_str()), (Some("video"), Some("video")));
}

/// Even past the fallback, when everyone meets anyone, a text user and a video user who are
/// the only two waiting are never paired; `next` with a mode moves a user to that pool.
#[tokio::test]
async fn modes_never_mix_after_the_fallback_and_next_can_switch() {
    let server = start(&["--fallback-after", "200ms"]).await;
    let mut video = server.client().await;
    let mut a = server.client().await;
    join_with(&mut video, json!({"mode": "video", "lang": "en"})).await;
    join_with(&mut a, json!({"mode": "text", "lang": "de"})).await;
    let mut b = server.client().await;
    join_with(&mut b, json!({"mode": "text", "lang": "fr"})).await;
    // Both text users wait for their language, then meet after the fallback: the video user,
    // as open by then, is never their stranger.
    let (ma, mb) = (a.recv_type("matched").await, b.recv_type("matched").await);
    assert_eq!(ma["room"], mb["room"]);
    assert_eq!(ma["mode"], "text");
    assert_eq!(ma["same_lang"], false);
    assert_eq!(server.health().await["waiting"], 1);
    // a switches to video with Next: it meets the video user, b is told it was skipped.
    a.send(json!({"type": "next", "mode": "video"})).await;
    a.recv_type("waiting").await;
    assert_eq!(b.recv_type("left").await["reason"], "skipped");
    let (ma, mv) = (a.recv_type("matched").await, video.recv_type("matched").await);
    assert_eq!(ma["room"], mv["room"]);
    assert_eq!(ma["mode"], "video");
}

/// A text room carries chat and typing; the signaling of a call (offer, answer, candidate,
/// media) is refused with `bad_message` and never reaches the stranger.
#[tokio::test]
async fn a_text_room_relays_chat_and_typing_only() {
    let server = start(&[]).await;
    let mut a = server.client().await;
    let mut b = server.client().await;
    join_with(&mut a, json!({"mode": "text"})).await;
    join_with(&mut b, json!({"mode": "text"})).await;
    let room = a.recv_type("matched").await["room"].as_str().unwrap().to_string();
    b.recv_type("matched").await;
    let refused = [
        json!({"type": "offer", "room": room, "sdp": "v=0\r\n"}),
        json!({"type": "answer", "room": room, "sdp": "v=0\r\n"}),
        json!({"type": "candidate", "room": room, "candidate": null}),
        json!({"type": "media", "room": room, "video": true, "audio": true}),
    ];
    for msg in &refused {
        a.send(msg.clone()).await;
        let err = a.recv_type("error").await;
        assert_eq!(err["code"], "bad_message", "{msg}");
        let kind = msg["type"].as_str().unwrap();
        assert!(
            err["message"].as_str().unwrap().contains(&format!("`{kind}` is not relayed")),
            "{err}"
        );
    }
    let chat = json!({"type": "chat", "room": room, "text": "hello in text"});
    let typing = json!({"type": "typing", "room": room, "active": true});
    a.send(typing.clone()).await;
    a.send(chat.clone()).await;
    // The first things b hears are the typing and the chat line: nothing refused got through.
    assert_eq!(b.recv().await, typing);
    assert_eq!(b.recv().await, chat);
    b.send(chat.clone()).await;
    assert_eq!(a.recv().await, chat);
}

/// With a German speaker and a French speaker waiting, a German speaker meets the German
/// one at once (`same_lang`); the French speaker meets a Spanish one, but only after the
/// fallback, and `same_lang` is false.
#[tokio::test]
async fn the_same_language_is_preferred_then_anyone_after_the_fallback() {
    // Long enough for every join before the fallback to be in while nobody is past it, on
    // a loaded machine too; the pairs after it are awaited.
    let server = start(&["--fallback-after", "2s"]).await;
    let mut de = server.client().await;
    let mut fr = server.client().await;
    join_with(&mut de, json!({"lang": "de"})).await;
    join_with(&mut fr, json!({"lang": "fr"})).await;
    let mut de2 = server.client().await;
    join_with(&mut de2, json!({"lang": "DE"})).await;
    let (m1, m2) = (de.recv_type("matched").await, de2.recv_type("matched").await);
    assert_eq!(m1["room"], m2["room"]);
    assert_eq!((m1["same_lang"].as_bool(), m2["same_lang"].as_bool()), (Some(true), Some(true)));
    assert_eq!(m1["mode"], "video");
    let mut es = server.client().await;
    join_with(&mut es, json!({"lang": "es"})).await;
    assert_eq!(server.health().await["waiting"], 2, "both hold out for their language");
    let (m1, m2) = (fr.recv_type("matched").await, es.recv_type("matched").await);
    assert_eq!(m1["room"], m2["room"]);
    assert_eq!((m1["same_lang"].as_bool(), m2["same_lang"].as_bool()), (Some(false), Some(false)));
    assert!(m1.get("lang").is_none(), "the stranger's language is never sent: {m1}");
}

/// Interests and language together: among a German speaker sharing an interest, an English
/// speaker sharing it and a German speaker sharing none, a German speaker with that interest
/// meets the first; the other two meet after the fallback.
#[tokio::test]
async fn interests_count_within_the_language() {
    // Long enough for every join before the fallback to be in while nobody is past it, on
    // a loaded machine too; the pairs after it are awaited.
    let server = start(&["--fallback-after", "2s"]).await;
    let mut de_chess = server.client().await;
    let mut en_chess = server.client().await;
    let mut de = server.client().await;
    join_with(&mut en_chess, json!({"lang": "en", "interests": ["chess"]})).await;
    join_with(&mut de_chess, json!({"lang": "de", "interests": ["chess", "go"]})).await;
    join_with(&mut de, json!({"lang": "de"})).await;
    let mut joiner = server.client().await;
    join_with(&mut joiner, json!({"lang": "de", "interests": ["chess"]})).await;
    let (m1, m2) = (joiner.recv_type("matched").await, de_chess.recv_type("matched").await);
    assert_eq!(m1["room"], m2["room"]);
    assert_eq!(m1["common"], json!(["chess"]));
    assert_eq!(m1["same_lang"], true);
    let (m1, m2) = (en_chess.recv_type("matched").await, de.recv_type("matched").await);
    assert_eq!(m1["room"], m2["room"]);
    assert_eq!((m1["same_lang"].as_bool(), m1["common"].clone()), (Some(false), json!([])));
}

/// A client that sends neither mode nor language (one from before them) meets another at
/// once, in video, and is told `same_lang: false`; a bad mode or language is refused with a
/// reason, and the user stays idle and can join again.
#[tokio::test]
async fn old_clients_still_work_and_bad_modes_or_languages_are_refused() {
    let server = start(&[]).await;
    let (mut a, mut b) = (server.client().await, server.client().await);
    a.send(json!({"type": "join", "interests": ["chess"]})).await;
    a.recv_type("waiting").await;
    b.send(json!({"type": "join", "interests": ["chess"], "mode": "video"})).await;
    b.recv_type("waiting").await;
    let (ma, mb) = (a.recv_type("matched").await, b.recv_type("matched").await);
    assert_eq!(ma["room"], mb["room"]);
    assert_eq!((ma["mode"].as_str(), ma["same_lang"].as_bool()), (Some("video"), Some(false)));
    assert_eq!(ma["common"], json!(["chess"]));

    let mut c = server.client().await;
    for (msg, says) in [
        (json!({"type": "join", "mode": "audio"}), r#"mode must be "video" or "text""#),
        (json!({"type": "next", "mode": 1}), "invalid message"),
        (json!({"type": "join", "lang": "de-AT"}), "lang must be"),
        (json!({"type": "join", "lang": "deutsch"}), "lang must be"),
    ] {
        c.send(msg.clone()).await;
        let err = c.recv_type("error").await;
        assert_eq!(err["code"], "bad_message", "{msg}");
        assert!(err["message"].as_str().unwrap().contains(says), "{msg}: {err}");
    }
    assert_eq!(server.health().await["waiting"], 0, "nothing refused queued anyone");
    join_with(&mut c, json!({"mode": "text", "lang": "pt"})).await;
    assert_eq!(server.health().await["waiting"], 1);
}

/// A text user passes the same gate as a video user: a text `join` without the 18+
/// confirmation or without a solution meets nobody, though a text stranger is waiting, and a
/// `join` refused as `bad_message` (an unknown mode) still spends its challenge and is
/// answered with the next, so a client never waits for one that will not come. With both,
/// the text user meets the text stranger.
#[tokio::test]
async fn a_text_join_passes_the_same_gate() {
    let server = start(&[]).await;
    let mut waiting = server.client().await;
    join_with(&mut waiting, json!({"mode": "text", "lang": "es"})).await;
    let mut c = server.client().await;
    let nonce = c.fresh_challenge().await.and_then(|ch| ch.solve());
    let minor = json!({"type": "join", "mode": "text", "lang": "es", "pow": nonce});
    c.send_as_is(minor).await;
    assert_eq!(c.recv_type("error").await["code"], "adult_required");
    let unsolved = json!({"type": "join", "mode": "text", "adult": true, "pow": null});
    c.send_as_is(unsolved).await;
    assert_eq!(c.recv_type("error").await["code"], "pow_required");

    let before = c.fresh_challenge().await.unwrap();
    c.send_as_is(json!({"type": "join", "mode": "audio", "adult": true}))
        .await;
    let after = c.fresh_challenge().await.unwrap();
    assert_ne!(before, after, "the unreadable join was answered with a new challenge");
    let refused = c.recv_type("error").await;
    assert_eq!(refused["code"], "bad_message", "{refused}");
    assert_eq!(server.health().await["rooms"], 0, "nobody was paired");
    assert_eq!(waiting.try_recv_now().await, None, "the stranger heard nothing");

    join_with(&mut c, json!({"mode": "text", "lang": "es"})).await;
    let (mc, mw) = (c.recv_type("matched").await, waiting.recv_type("matched").await);
    assert_eq!(mc["room"], mw["room"]);
    assert_eq!((mc["mode"].as_str(), mc["same_lang"].as_bool()), (Some("text"), Some(true)));
}
