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
