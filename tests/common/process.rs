//! The real `strangers` binary as a child process, for the tests that signal or kill it.

use std::net::SocketAddr;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::{Client, PATIENCE};

/// A running `strangers` process and the address it said it listens on.
pub struct Process {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Process {
    /// Starts the binary on `listen` (port 0 for any) with no STUN servers, a report log of
    /// its own and the extra flags, and waits for the line that says where it listens.
    pub async fn start(listen: &str, extra: &[&str]) -> Process {
        let mut child = Command::new(env!("CARGO_BIN_EXE_strangers"))
            .args(["--listen", listen, "--stun", ""])
            .args(["--metrics-token", super::METRICS_TOKEN])
            .args(super::test_pow(extra))
            .args(extra)
            .arg("--report-log")
            .arg(super::scratch_file("reports.jsonl"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("the binary starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(PATIENCE * 2, lines.next_line())
            .await
            .expect("the server says where it listens")
            .unwrap()
            .unwrap_or_default();
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        Process { child, addr }
    }

    /// A client of this process that has read its `welcome`.
    pub async fn client(&self) -> Client {
        let url = format!("ws://{}/ws", self.addr);
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let mut client = Client::new(ws);
        client.recv_type("welcome").await;
        client
    }

    /// Sends SIGTERM, as Fly.io and every supervisor do.
    pub fn terminate(&self) {
        let pid = self.child.id().expect("still running");
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}
