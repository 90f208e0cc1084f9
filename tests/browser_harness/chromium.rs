//! What is Chromium's own: its command line and capabilities, its browser log (through
//! chromedriver's legacy log endpoint) and the DevTools commands for init scripts and phone
//! emulation.

use std::path::Path;

use fantoccini::{Client, ClientBuilder};
use serde_json::{Value, json};

use super::console::LogEntry;
use super::page::Page;
use super::{Media, Tools};

/// chromedriver's command line.
pub(super) fn driver_args(port: u16) -> Vec<String> {
    vec![format!("--port={port}")]
}

/// Opens a session: a fresh headless Chromium with a fake camera, using `profile`, with
/// `switches` added to its command line.
pub(super) async fn connect(
    tools: &Tools,
    port: u16,
    profile: &Path,
    media: Media,
    switches: &[String],
) -> Result<Client, String> {
    let mut args = vec![
        "--headless=new".to_string(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-quic".into(),
        "--no-first-run".into(),
        "--no-default-browser-check".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--disable-crash-reporter".into(),
        "--disable-breakpad".into(),
        "--disable-dev-shm-usage".into(),
        "--use-fake-device-for-media-stream".into(),
        "--allow-loopback-in-peer-connection".into(),
        "--window-size=1280,900".into(),
        // English pages whatever the machine's locale (tests find controls by their words);
        // a test may ask for another language with its own `--accept-lang` (the last wins).
        "--accept-lang=en-US".into(),
        format!("--user-data-dir={}", profile.display()),
    ];
    match media {
        // Answer every camera/microphone prompt with "allow".
        Media::Fake => args.push("--use-fake-ui-for-media-stream".into()),
        // No fake UI: the prompt is refused at once, so getUserMedia rejects with
        // NotAllowedError ("Permission denied"), as when a user clicks Block.
        Media::Denied => args.push("--deny-permission-prompts".into()),
    }
    args.extend_from_slice(switches);
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": tools.chromium,
            "args": args,
        },
        "goog:loggingPrefs": { "browser": "ALL" },
        // In-page waits carry their own deadline; this only bounds a runaway script.
        "timeouts": { "script": 120_000, "pageLoad": 30_000, "implicit": 0 },
    });
    let Value::Object(caps) = caps else {
        unreachable!()
    };
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .map_err(|e| e.to_string())
}

/// The browser log entries since the last call (chromedriver hands each out once).
pub(super) async fn fresh_log(page: &Page) -> Vec<LogEntry> {
    let fresh = page
        .session_cmd(
            http::Method::POST,
            "se/log",
            Some(json!({ "type": "browser" })),
        )
        .await;
    fresh
        .as_array()
        .into_iter()
        .flatten()
        .map(|entry| {
            let field = |k: &str| entry[k].as_str().unwrap_or_default().to_string();
            LogEntry {
                level: field("level"),
                source: field("source"),
                message: field("message"),
            }
        })
        .collect()
}

/// Runs `source` in every document loaded from now on, before the page's own scripts.
pub(super) async fn add_init_script(page: &Page, source: &str) {
    page.cdp(
        "Page.addScriptToEvaluateOnNewDocument",
        json!({ "source": source }),
    )
    .await;
}

/// Emulates a phone screen of `width`×`height` CSS pixels (touch, mobile viewport).
pub(super) async fn emulate_phone(page: &Page, width: u32, height: u32) {
    page.cdp(
        "Emulation.setDeviceMetricsOverride",
        json!({ "width": width, "height": height, "deviceScaleFactor": 3, "mobile": true }),
    )
    .await;
    page.cdp(
        "Emulation.setTouchEmulationEnabled",
        json!({ "enabled": true, "maxTouchPoints": 5 }),
    )
    .await;
}
