//! Real-browser harness: headless Chromium and Firefox pages, one browser per page, each
//! driven over W3C WebDriver by [fantoccini] through its own driver process: the Debian
//! `chromedriver` (built from the same source package as `chromium`, so the two versions
//! always match) or `geckodriver` for Debian's `firefox-esr`.
//!
//! Shared by the browser tests and the benchmarks (`#[path = "../tests/browser_harness/mod.rs"]`),
//! so it depends only on crates every test target has; it knows nothing about the server
//! beyond the URL it is given, apart from the page test hook `window.__strangers` (in
//! [`app`]).
//!
//! Rules it enforces:
//! - every browser is a separate process with a fresh profile (background tabs are
//!   throttled, and both sides of a call must decode video at the same time);
//! - all traffic stays on loopback: the drivers listen on 127.0.0.1, pages load from the URL
//!   the test gives (127.0.0.1); Firefox, which gathers ICE candidates only on the interface
//!   of the default route, runs inside a private network namespace ([`netns`]);
//! - waiting is done inside the page ([`Page::wait_for`]): a promise that resolves when a
//!   condition holds or rejects after a deadline saying what did not happen; no fixed sleeps;
//! - console errors and uncaught exceptions are collected (chromedriver's browser log,
//!   Firefox's WebDriver BiDi `log.entryAdded` events) and checked by
//!   [`assert_no_console_errors`].
//!
//! Where the engines differ (init scripts, logs, phone emulation) the page dispatches to
//! [`chromium`] or [`firefox`]; tests say which engine a page runs and nothing else.
//!
//! Set `E2E_TRACE=1` to print a timestamped line for every launch, navigation, click and
//! wait (with `-- --nocapture`), to see where a scenario spends its time.
// Each test binary and the benchmark use a different part of the harness.
#![allow(dead_code, unused_imports)]

mod app;
mod bidi;
mod browser;
mod chromium;
mod console;
mod firefox;
pub mod netns;
mod page;
mod server;
pub mod timeline;
mod tools;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use app::{FRAMES_DECODED, RECORDER, VIDEO_FLOWING};
pub use browser::Browser;
pub use console::{LogEntry, assert_no_console_errors, is_app_error};
pub use firefox::ExternalFirefox;
pub use page::Page;
pub use server::LocalServer;
pub use tools::{Tools, find_tools, firefox_tools_or_skip, in_ci, tools_or_skip};

/// How long a scenario step may take before the test fails: generous, because two cores
/// run the server, several browsers and their video codecs at once.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// How often an in-page wait re-checks its condition.
const POLL_MS: u64 = 25;

/// Prints `msg` with the time since the first trace when `E2E_TRACE` is set (to see where a
/// scenario spends its time).
pub fn trace(msg: &str) {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("E2E_TRACE").is_some()) {
        let t = START.get_or_init(Instant::now).elapsed();
        let _ = writeln!(std::io::stderr(), "[{:>8.3}s] {msg}", t.as_secs_f64());
    }
}

/// Which browser engine a page runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// Debian's `chromium`, through `chromedriver`.
    Chromium,
    /// Debian's `firefox-esr`, through `geckodriver`.
    Firefox,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Chromium => "Chromium",
            Engine::Firefox => "Firefox",
        }
    }
}

/// What getUserMedia gives the page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Media {
    /// The engine's fake camera (a moving test pattern) and microphone (a tone), allowed at
    /// once.
    Fake,
    /// The user refuses: getUserMedia rejects with NotAllowedError.
    Denied,
}

/// Serializes scenarios: tests in one binary run on parallel threads, and two cores cannot
/// run two multi-browser scenarios at once without timing noise.
pub async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// Where test artifacts (screenshots) go: `$CARGO_TARGET_DIR/e2e` or `target/e2e`.
pub fn artifact_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("e2e")
}

/// A fresh, empty directory under the system temp dir, named after `name` (a browser
/// profile, a server's scratch files).
fn temp_dir(name: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "strangers-e2e-{}-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        name.to_ascii_lowercase()
    ));
    std::fs::create_dir_all(&dir).expect("create a temporary directory");
    dir
}
