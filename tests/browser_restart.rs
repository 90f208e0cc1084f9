//! A deploy in the middle of a call, in real browsers: A and B are talking when the server
//! restarts (every client is told `bye` and closed with 1012; a new server takes the same
//! port). The video between them goes browser to browser, so it must not notice: frames keep
//! decoding and the peer connection stays connected. Both pages get back on the signaling
//! channel by themselves, and a Next afterwards works on the new server. The scenario is
//! `scenarios::restart`; this runs it in two Chromiums (`tests/browser_firefox.rs` runs it
//! with Firefox).

mod browser_harness;
mod common;
mod scenarios;

use browser_harness as harness;
use browser_harness::Engine;

/// See [`scenarios::restart::restart_keeps_the_call`].
///
/// A race this catches: while the old server says goodbye, the session of whichever page is
/// closed first tells the lobby it has gone, and the lobby tells the partner `left`; if the
/// partner's session forwarded that before its own `bye`, that page ended the call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_mid_call_keeps_the_call() {
    let _lock = harness::exclusive().await;
    let Some(tools) = harness::tools_or_skip() else {
        return;
    };
    scenarios::restart::restart_keeps_the_call(&tools, [Engine::Chromium, Engine::Chromium]).await;
}
