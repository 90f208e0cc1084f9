//! A strangers server in this process that a test can stop and start again on the same
//! port (a deploy in the middle of a call).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::{temp_dir, trace};

/// A strangers server in this process on a chosen address (port 0 for any), built as
/// `tests/common`'s `TestServer` builds it (no STUN, seed 1, no re-match cooldown, a
/// scratch report log), so that a test can stop it and start a new one on the same port.
pub struct LocalServer {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    /// Holds the report log; removed on drop.
    dir: PathBuf,
}

impl LocalServer {
    /// Binds `addr` (with `SO_REUSEADDR`, so a port just given up can be taken again) and
    /// serves with the extra flags given.
    pub async fn start_on(addr: SocketAddr, extra: &[&str]) -> LocalServer {
        use clap::CommandFactory;
        let dir = temp_dir("server");
        let log = dir.join("reports.jsonl");
        let log = log.to_str().expect("a UTF-8 temporary path").to_string();
        let args = ["strangers", "--stun", "", "--seed", "1"]
            .into_iter()
            .chain(["--rematch-cooldown", "0s", "--report-log", &log])
            .chain(extra.iter().copied());
        let matches = strangers::config::Config::command()
            .try_get_matches_from(args)
            .expect("test flags are valid");
        let config =
            strangers::config::Config::from_matches(&matches, None).expect("test config is valid");
        let listener = strangers::server::bind(addr)
            .unwrap_or_else(|e| panic!("cannot listen on {addr}: {e}"));
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(strangers::server::run(listener, config, async {
            let _ = stopped.await;
        }));
        trace(&format!("server listening on {addr}"));
        LocalServer {
            addr,
            stop: Some(stop),
            task,
            dir,
        }
    }

    /// The origin pages load from, `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Signals shutdown (every client is sent `bye` and closed with 1012) and waits for the
    /// server to finish draining.
    pub async fn shutdown(mut self) {
        trace(&format!("server on {} shutting down", self.addr));
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(15), &mut self.task)
            .await
            .expect("the server stops within its drain time")
            .expect("the server task ends cleanly");
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
