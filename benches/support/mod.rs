//! What the benchmarks that run the real server share.

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

/// Reads the line a just-started `strangers` prints (`… open http://ADDR/ …`, stdout piped)
/// and returns its WebSocket URL, `ws://ADDR/ws`.
pub async fn ws_url(server: &mut Child) -> String {
    let line = BufReader::new(server.stdout.take().expect("stdout is piped"))
        .lines()
        .next_line()
        .await
        .expect("the server prints where it listens")
        .unwrap_or_default();
    let http = line
        .split("http://")
        .nth(1)
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .trim_end_matches(|c| c != '/');
    format!("ws://{http}ws")
}
