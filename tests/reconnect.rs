//! A page whose own connection died (a network outage, a new address) comes back on a new
//! one while the server still has it in its room on the old one: the heartbeat it uses to
//! notice (`ping` → `pong`), and the new connection taking the old one's place, without the
//! stranger ever being told the call ended.

mod common;

use std::time::{Duration, Instant};

use common::TestServer;
use serde_json::json;

#[tokio::test]
async fn a_ping_is_answered_with_a_pong() {
    let server = TestServer::start(&[]).await;
    let mut a = server.client().await;
    a.send(json!({"type": "ping"})).await;
    a.recv_type("pong").await;
    server.shutdown().await;
}

/// A member comes back on a new connection with `resume` and its proof of membership:
/// both it and the stranger get `resumed`, the old connection is out of the room, relaying
/// reaches the new one, and when the old connection finally closes the stranger hears
/// nothing of it.
#[tokio::test]
async fn a_new_connection_takes_the_old_ones_place_in_the_room() {
    let server = TestServer::start(&[]).await;
    let mut old = server.client().await;
    let mut b = server.client().await;
    old.join().await;
    b.join().await;
    let matched = old.recv_type("matched").await;
    b.recv_type("matched").await;
    let room = matched["room"].as_str().unwrap().to_string();
    let mut new = server.client().await;
    new.send(json!({"type": "resume", "room": room, "proof": matched["proof"]}))
        .await;
    let back = json!({"type": "resumed", "room": room});
    assert_eq!(new.recv().await, back, "the new connection has the room");
    assert_eq!(b.recv().await, back, "the stranger is told it is back");
    let out = old.recv_type("left").await;
    assert_eq!(
        out["room"],
        room.as_str(),
        "the old connection is out of it"
    );

    b.send(json!({"type": "chat", "room": room, "text": "still there?"}))
        .await;
    assert_eq!(new.recv_type("chat").await["text"], "still there?");
    new.send(json!({"type": "chat", "room": room, "text": "yes"}))
        .await;
    assert_eq!(b.recv_type("chat").await["text"], "yes");

    drop(old);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let health = server.health().await;
        if health["online"] == 2 {
            assert_eq!(health["rooms"], 1, "the room outlives the old connection");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the old connection is gone: {health}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await; // polling /healthz, bounded
    }
    b.send(json!({"type": "chat", "room": room, "text": "good"}))
        .await;
    assert_eq!(
        new.recv_type("chat").await["text"],
        "good",
        "the stranger was not told the call ended: its chat still arrives"
    );
    assert_eq!(
        b.try_recv_now().await,
        None,
        "nothing else for the stranger"
    );
    server.shutdown().await;
}
