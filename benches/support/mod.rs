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

/// The release-built load generator, `strangers-load`, beside the server this bench runs (the
/// same target directory): a package of its own (`tools/load`), so cargo does not build it
/// for this bench. Panics, saying how to build it, when it is missing.
pub fn load_generator() -> std::path::PathBuf {
    let path =
        std::path::Path::new(env!("CARGO_BIN_EXE_strangers")).with_file_name("strangers-load");
    assert!(
        path.is_file(),
        "{} is missing: build it first with `cargo build --release -p strangers-load`",
        path.display()
    );
    path
}
