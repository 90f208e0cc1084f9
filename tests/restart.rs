//! A deploy as an operator does it: the real binary gets SIGTERM, tells every client `bye`,
//! closes their sockets with 1012 and exits within its drain deadline; a new process on the
//! same port takes the reconnecting clients back.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::Client;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// The real `strangers` binary, listening on `port`.
struct Process {
    child: Child,
    port: u16,
}

impl Process {
    /// Starts the binary and waits for the line that says it is listening.
    async fn start(port: u16) -> Process {
        let mut child = Command::new(env!("CARGO_BIN_EXE_strangers"))
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--stun",
                "",
                "--drain",
                "3s",
            ])
            .arg("--report-log")
            .arg(common::scratch_file("reports.jsonl"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("the binary starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .expect("the server says it is listening")
            .unwrap()
            .unwrap_or_default();
        assert!(
            line.contains(&format!("http://127.0.0.1:{port}/")),
            "{line}"
        );
        Process { child, port }
    }

    async fn client(&self) -> Client {
        let url = format!("ws://127.0.0.1:{}/ws", self.port);
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let mut client = Client { ws };
        client.recv_type("welcome").await;
        client
    }

    /// Sends SIGTERM, as Fly.io and every supervisor do.
    fn terminate(&self) {
        let pid = self.child.id().expect("still running");
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

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
    let mut old = Process::start(port).await;
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
    let new = Process::start(port).await;
    let mut a = new.client().await;
    let mut b = new.client().await;
    a.join().await;
    b.join().await;
    a.recv_type("matched").await;
    b.recv_type("matched").await;
}
