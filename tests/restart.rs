//! A deploy as an operator does it: the real binary gets SIGTERM, tells every client `bye`,
//! closes their sockets with 1012 and exits within its drain deadline; a new process on the
//! same port takes the reconnecting clients back.

mod common;

use std::time::Duration;

use common::process::Process;
use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn sigterm_drains_and_a_new_process_takes_the_clients_back() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut old = Process::start(&listen, &["--drain", "3s"]).await;
    let mut a = old.client().await;
    let mut b = old.client().await;
    a.join().await;
    b.join().await;
    a.recv_type("matched").await;
    b.recv_type("matched").await;
    let mut idle = old.client().await;

    old.terminate();
    let started = tokio::time::Instant::now();
    for client in [&mut a, &mut b, &mut idle] {
        assert_eq!(
            client.recv().await,
            json!({"type": "bye", "reason": "restart"})
        );
        assert_eq!(client.closed().await, Some(CloseCode::Restart));
    }
    let status = tokio::time::timeout(Duration::from_secs(10), old.child.wait())
        .await
        .expect("the process exits")
        .unwrap();
    assert!(status.success(), "exit status {status}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "exited within the 3 s drain deadline ({:?})",
        started.elapsed()
    );

    // The clients reconnect to the new process and meet again.
    let new = Process::start(&listen, &["--drain", "3s"]).await;
    let mut a = new.client().await;
    let mut b = new.client().await;
    a.join().await;
    b.join().await;
    a.recv_type("matched").await;
    b.recv_type("matched").await;
}

/// A hijack after a deploy: a third client who learnt the room id asks for the room first on
/// the new process. The two members get their call back with each other; the third gets
/// nothing of it.
#[tokio::test]
async fn after_a_restart_a_room_id_alone_does_not_take_a_members_place() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let old = Process::start(&listen, &["--drain", "3s"]).await;
    let mut a = old.client().await;
    let mut b = old.client().await;
    a.join().await;
    b.join().await;
    let ma = a.recv_type("matched").await;
    let mb = b.recv_type("matched").await;
    let room = ma["room"].as_str().unwrap().to_string();
    let (proof_a, proof_b) = (ma["proof"].clone(), mb["proof"].clone());

    old.terminate();
    for client in [&mut a, &mut b] {
        assert_eq!(client.recv().await["type"], "bye");
    }
    let mut old = old;
    let _ = tokio::time::timeout(Duration::from_secs(10), old.child.wait()).await;

    let new = Process::start(&listen, &["--drain", "3s"]).await;
    let mut thief = new.client().await;
    let guess = format!("{}{}", "0".repeat(32), "1".repeat(32));
    thief
        .send(json!({"type": "resume", "room": room, "proof": guess}))
        .await;
    let mut a = new.client().await;
    let mut b = new.client().await;
    b.send(json!({"type": "resume", "room": room, "proof": proof_b}))
        .await;
    a.send(json!({"type": "resume", "room": room, "proof": proof_a}))
        .await;
    let back = json!({"type": "resumed", "room": room});
    assert_eq!(a.recv().await, back);
    assert_eq!(b.recv().await, back);
    b.send(json!({"type": "chat", "room": room, "text": "still us"}))
        .await;
    assert_eq!(a.recv().await["text"], "still us");
    // The thief was never let in: the next thing it hears answers its own join.
    thief.join().await;
}
