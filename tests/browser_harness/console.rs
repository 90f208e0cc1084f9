//! Console errors and uncaught exceptions: gathering them from each engine into one
//! record per page, the rule for what counts as the app going wrong, and the check every
//! browser test ends with.

use std::fmt::Write as _;

use serde_json::json;

use super::page::Page;
use super::{Engine, chromium, trace};

/// One entry of a browser's log, in chromedriver's terms (Firefox's are mapped onto them).
#[derive(Clone, Debug)]
pub struct LogEntry {
    pub level: String,
    pub source: String,
    pub message: String,
}

impl Page {
    /// Moves the browser log gathered so far into this page's record and returns all of it.
    pub async fn collect_log(&self) -> Vec<LogEntry> {
        let fresh = match self.engine {
            Engine::Chromium => chromium::fresh_log(self).await,
            Engine::Firefox => self.fresh_bidi_log().await,
        };
        let mut log = self.log.lock().unwrap();
        for entry in fresh {
            if self.engine == Engine::Chromium {
                trace(&format!(
                    "{}: console {} [{}] {}",
                    self.name, entry.level, entry.source, entry.message
                ));
            }
            log.push(entry);
        }
        log.clone()
    }

    /// Firefox's log entries gathered since the last call. They come as events, so first a
    /// script runs in the page and answers: what the page logged before has been sent by
    /// then.
    async fn fresh_bidi_log(&self) -> Vec<LogEntry> {
        let Some(bidi) = &self.bidi else {
            return Vec::new();
        };
        let tree = self.bidi("browsingContext.getTree", json!({})).await;
        self.bidi(
            "script.evaluate",
            json!({
                "expression": "0",
                "target": { "context": tree["contexts"][0]["context"] },
                "awaitPromise": false,
            }),
        )
        .await;
        bidi.take_log()
    }

    /// The console errors and uncaught exceptions seen on this page so far.
    pub async fn console_errors(&self) -> Vec<String> {
        self.collect_log()
            .await
            .into_iter()
            .filter(is_app_error)
            .map(|e| format!("{} [{}] {}", e.level, e.source, e.message))
            .collect()
    }
}

/// Whether a browser log entry means something went wrong in the app.
///
/// - SEVERE covers `console.error`, uncaught exceptions, unhandled rejections and failed
///   resource loads. The one exception is a 404 for `/favicon.ico`, which a browser may ask
///   for on its own (our pages declare `/static/favicon.svg`); it is not the app's request.
/// - The app logs `console.warn("strangers: …")` only when something failed (Start failed, a
///   message handler threw), so those count too. Its `console.info` diagnostics do not.
pub fn is_app_error(entry: &LogEntry) -> bool {
    match entry.level.as_str() {
        "SEVERE" => {
            !(entry.source == "network"
                && entry.message.contains("/favicon.ico ")
                && entry.message.contains("404"))
        }
        "WARNING" => entry.source == "console-api" && entry.message.contains("strangers:"),
        _ => false,
    }
}

/// Fails if any page logged an error or an uncaught exception (see [`is_app_error`]).
pub async fn assert_no_console_errors(pages: &[&Page]) {
    let mut report = String::new();
    for page in pages {
        for line in page.console_errors().await {
            let _ = writeln!(report, "  {}: {line}", page.name);
        }
    }
    assert!(
        report.is_empty(),
        "console errors or uncaught exceptions:\n{report}"
    );
}
