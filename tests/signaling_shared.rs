//! The same signaling suite as tests/signaling.rs, with the queue shared through a real
//! `redis-server` (started by the test): every behaviour a browser sees must be the same.

mod common;

/// A server whose queue is in Redis, under a key prefix of its own.
async fn start(extra: &[&str]) -> TestServer {
    TestServer::start_shared(extra).await
}

include!("suites/signaling.rs");
