//! What is Firefox's own: geckodriver's command line, the capabilities and preferences of a
//! headless Firefox with a fake camera, and the WebDriver BiDi commands that stand in for
//! Chromium's DevTools ones (preload scripts, viewport emulation).
//!
//! Firefox gathers ICE candidates only on the interface of its default route: run it in a
//! namespace from [`super::netns`], or a call between two pages never connects.

use std::path::{Path, PathBuf};

use fantoccini::{Client, ClientBuilder};
use serde_json::{Map, Value, json};

use super::bidi::Bidi;
use super::page::Page;
use super::{Media, Tools};

/// geckodriver's command line: WebDriver on `port`, BiDi on a port the system picks (the
/// session says which), any profile it makes under ours.
pub(super) fn driver_args(port: u16, profile: &Path) -> Vec<String> {
    vec![
        "--host".into(),
        "127.0.0.1".into(),
        "--port".into(),
        port.to_string(),
        "--websocket-port".into(),
        "0".into(),
        "--profile-root".into(),
        profile.display().to_string(),
    ]
}

/// The preferences of every test Firefox.
fn prefs(media: Media) -> Map<String, Value> {
    let Value::Object(mut prefs) = json!({
        // A fake camera (a test pattern) and microphone (a tone) instead of real devices.
        "media.navigator.streams.fake": true,
        // English pages whatever the machine's locale (tests find controls by their words).
        "intl.accept_languages": "en-US, en",
        // Real host addresses in candidates instead of mDNS names, as Chromium's are on
        // loopback, so tests can check what a page gathered.
        "media.peerconnection.ice.obfuscate_host_addresses": false,
        // Nothing of its own on the network (there is nowhere to go anyway).
        "network.captive-portal-service.enabled": false,
        "network.connectivity-service.enabled": false,
        "network.dns.disablePrefetch": true,
        "network.prefetch-next": false,
        "media.gmp-manager.updateEnabled": false,
        "browser.safebrowsing.malware.enabled": false,
        "browser.safebrowsing.phishing.enabled": false,
        "browser.safebrowsing.downloads.enabled": false,
        "datareporting.policy.dataSubmissionEnabled": false,
        "toolkit.telemetry.reportingpolicy.firstRun": false,
        "extensions.getAddons.cache.enabled": false,
    }) else {
        unreachable!()
    };
    match media {
        // No prompt: camera and microphone are granted at once.
        Media::Fake => {
            prefs.insert("media.navigator.permission.disabled".into(), true.into());
        }
        // The prompt is answered "Block" at once: getUserMedia rejects with NotAllowedError.
        Media::Denied => {
            prefs.insert("permissions.default.camera".into(), 2.into());
            prefs.insert("permissions.default.microphone".into(), 2.into());
        }
    }
    prefs
}

/// Opens a session: a fresh headless Firefox using `profile`, with its BiDi connection.
pub(super) async fn connect(
    tools: &Tools,
    name: &str,
    port: u16,
    profile: &Path,
    media: Media,
) -> Result<(Client, Bidi), String> {
    let (firefox, _) = tools.programs(super::Engine::Firefox);
    let driver = format!("http://127.0.0.1:{port}");
    open_session(name, &driver, firefox, profile, prefs(media)).await
}

/// A geckodriver that other code started, and what the Firefox it starts needs. The
/// network lab runs one inside a home and forwards its port and Firefox's BiDi port to
/// the same port numbers here (geckodriver and Firefox refuse a `Host` header naming
/// another port), so the BiDi URL the session announces works as it is.
pub struct ExternalFirefox {
    /// geckodriver's WebDriver origin, as this process reaches it.
    pub driver: String,
    /// The Firefox binary geckodriver is to start.
    pub binary: PathBuf,
    /// The browser's profile directory (fresh, thrown away afterwards).
    pub profile: PathBuf,
    /// Hosts whose plain-http pages count as secure contexts, so they may use the camera
    /// (`dom.securecontext.allowlist`; Chromium's `--unsafely-treat-insecure-origin-as-secure`).
    pub secure_hosts: Vec<String>,
}

/// Opens a session on an [`ExternalFirefox`]: a fresh headless Firefox with the fake
/// camera and microphone granted, and its BiDi connection.
pub(super) async fn connect_external(
    name: &str,
    external: &ExternalFirefox,
) -> Result<(Client, Bidi), String> {
    let mut prefs = prefs(Media::Fake);
    if !external.secure_hosts.is_empty() {
        let hosts = external.secure_hosts.join(",");
        prefs.insert("dom.securecontext.allowlist".into(), hosts.into());
    }
    open_session(
        name,
        &external.driver,
        &external.binary,
        &external.profile,
        prefs,
    )
    .await
}

/// Opens a session on the geckodriver at `driver` and connects to the BiDi socket it
/// announces.
async fn open_session(
    name: &str,
    driver: &str,
    firefox: &Path,
    profile: &Path,
    prefs: Map<String, Value>,
) -> Result<(Client, Bidi), String> {
    let caps = json!({
        "browserName": "firefox",
        // Open the WebDriver BiDi WebSocket too: console events and preload scripts.
        "webSocketUrl": true,
        "moz:firefoxOptions": {
            "binary": firefox,
            "args": ["-headless", "-profile", profile],
            "prefs": prefs,
        },
        // In-page waits carry their own deadline; this only bounds a runaway script.
        "timeouts": { "script": 120_000, "pageLoad": 30_000, "implicit": 0 },
    });
    let Value::Object(caps) = caps else {
        unreachable!()
    };
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(driver)
        .await
        .map_err(|e| e.to_string())?;
    let url = client
        .capabilities()
        .and_then(|caps| caps.get("webSocketUrl"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or("the session has no webSocketUrl (WebDriver BiDi)")?;
    // The same size as Chromium's window.
    client
        .set_window_size(1280, 900)
        .await
        .map_err(|e| format!("setting the window size: {e}"))?;
    let bidi = Bidi::connect(name, &url).await?;
    Ok((client, bidi))
}

/// Runs `source` in every document loaded from now on, before the page's own scripts
/// (BiDi `script.addPreloadScript`).
pub(super) async fn add_init_script(page: &Page, source: &str) {
    page.bidi(
        "script.addPreloadScript",
        json!({ "functionDeclaration": format!("() => {{\n{source}\n}}") }),
    )
    .await;
}

/// Emulates a phone screen of `width`×`height` CSS pixels (BiDi
/// `browsingContext.setViewport`; Firefox has no touch emulation there, and the layout
/// only depends on the width).
pub(super) async fn emulate_phone(page: &Page, width: u32, height: u32) {
    let tree = page.bidi("browsingContext.getTree", json!({})).await;
    let context = tree["contexts"][0]["context"].clone();
    page.bidi(
        "browsingContext.setViewport",
        json!({
            "context": context,
            "viewport": { "width": width, "height": height },
            "devicePixelRatio": 3,
        }),
    )
    .await;
}
