//! The signaling service as a browser sees it: real WebSocket clients against a real server
//! on 127.0.0.1, checking pairing, relay, Next/Stop/disconnect and bad input; with the
//! process's own queue (the default).

mod common;

/// A server with its own in-process queue.
async fn start(extra: &[&str]) -> TestServer {
    TestServer::start(extra).await
}

include!("suites/signaling.rs");
