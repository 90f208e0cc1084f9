//! A page in a browser: the WebDriver helpers a test uses on it (open, evaluate, wait inside
//! the page, click by accessible name, type, screenshot), the same for every engine; what
//! differs by engine is handed to [`super::chromium`] or [`super::firefox`].

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, Locator};
use serde_json::{Value, json};

use super::bidi::Bidi;
use super::console::LogEntry;
use super::firefox::ExternalFirefox;
use super::{Engine, POLL_MS, chromium, firefox, trace};

/// A page: WebDriver helpers plus the console errors seen so far.
pub struct Page {
    /// Short name used in every failure message ("A", "B", …).
    pub name: String,
    pub engine: Engine,
    pub client: Client,
    pub(super) session: String,
    pub(super) base: String,
    pub(super) log: Mutex<Vec<LogEntry>>,
    /// Firefox's WebDriver BiDi connection (console events, preload scripts).
    pub(super) bidi: Option<Bidi>,
    /// Whether the 18+ box has been ticked in this browser (the first [`open`](Self::open)
    /// does it, on the landing page, as a user must before a first Start).
    pub(super) confirmed: AtomicBool,
}

/// A WebDriver command fantoccini has no method for, relative to the session URL.
#[derive(Debug)]
struct SessionCommand {
    method: http::Method,
    path: String,
    body: Option<Value>,
}

impl WebDriverCompatibleCommand for SessionCommand {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/{}",
            session_id.unwrap_or_default(),
            self.path
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (
            self.method.clone(),
            self.body.as_ref().map(|body| body.to_string()),
        )
    }
}

/// Quotes a string as an XPath 1.0 literal.
fn xpath_literal(s: &str) -> String {
    if !s.contains('\'') {
        format!("'{s}'")
    } else if !s.contains('"') {
        format!("\"{s}\"")
    } else {
        let parts: Vec<String> = s.split('\'').map(|p| format!("'{p}'")).collect();
        format!("concat({})", parts.join(", \"'\", "))
    }
}

impl Page {
    /// A page of a Chromium started by other code (the network lab starts its own, inside a
    /// network namespace); `base` is the origin [`Page::open`] loads paths from.
    pub async fn attach(name: &str, client: Client, base: &str) -> Page {
        let session = client.session_id().await.ok().flatten().unwrap_or_default();
        Page {
            name: name.to_string(),
            engine: Engine::Chromium,
            client,
            session,
            base: base.trim_end_matches('/').to_string(),
            log: Mutex::new(Vec::new()),
            bidi: None,
            confirmed: AtomicBool::new(false),
        }
    }

    /// A page of a Firefox that an [`ExternalFirefox`] geckodriver starts (the network lab
    /// runs one inside a home); `base` is the origin [`Page::open`] loads paths from.
    pub async fn attach_firefox(
        name: &str,
        external: &ExternalFirefox,
        base: &str,
    ) -> Result<Page, String> {
        let (client, bidi) = firefox::connect_external(name, external).await?;
        Ok(Page::new(name, Engine::Firefox, client, Some(bidi), base).await)
    }

    pub(super) async fn new(
        name: &str,
        engine: Engine,
        client: Client,
        bidi: Option<Bidi>,
        base: &str,
    ) -> Page {
        let session = client.session_id().await.ok().flatten().unwrap_or_default();
        Page {
            name: name.to_string(),
            engine,
            client,
            session,
            base: base.trim_end_matches('/').to_string(),
            log: Mutex::new(Vec::new()),
            bidi,
            confirmed: AtomicBool::new(false),
        }
    }

    /// Loads `path` (e.g. `/` or `/chat?start=1`) from the server; the first time, after
    /// ticking the 18+ box on the landing page ([`confirm_adult`](Self::confirm_adult)).
    pub async fn open(&self, path: &str) {
        if !self.confirmed.swap(true, Ordering::Relaxed) {
            self.confirm_adult().await;
        }
        self.open_as_is(path).await;
    }

    /// Loads `path` as it is: an unconfirmed browser stays unconfirmed.
    pub async fn open_as_is(&self, path: &str) {
        let url = format!("{}{path}", self.base);
        trace(&format!("{}: open {path}", self.name));
        self.client
            .goto(&url)
            .await
            .unwrap_or_else(|e| panic!("{}: could not open {url}: {e}", self.name));
    }

    /// Evaluates a JavaScript expression (it may use `await`) and returns its JSON value.
    pub async fn eval(&self, expr: &str) -> Value {
        let script = format!("return (async () => ({expr}))();");
        self.client
            .execute(&script, vec![])
            .await
            .unwrap_or_else(|e| panic!("{}: script failed: {e}\n  script: {expr}", self.name))
    }

    /// Waits, inside the page, until the JavaScript expression `condition` (it may use
    /// `await`) is truthy, and returns its value. Fails after `timeout` saying `what` did
    /// not happen, with the last value seen and the page's state.
    pub async fn wait_for(&self, condition: &str, what: &str, timeout: Duration) -> Value {
        let script = format!(
            r#"
const timeoutMs = arguments[0];
const done = arguments[arguments.length - 1];
const deadline = performance.now() + timeoutMs;
const probe = async () => ({condition});
let last;
const tick = async () => {{
  try {{
    const value = await probe();
    if (value) return done({{ ok: true, value }});
    last = value;
  }} catch (err) {{
    last = 'threw ' + ((err && err.stack) || err);
  }}
  if (performance.now() >= deadline) return done({{ ok: false, last: String(JSON.stringify(last) ?? last) }});
  setTimeout(tick, {POLL_MS});
}};
tick();
"#
        );
        let started = Instant::now();
        trace(&format!("{}: waiting for {what}", self.name));
        loop {
            let left = timeout.saturating_sub(started.elapsed());
            let call = self
                .client
                .execute_async(&script, vec![json!(left.as_millis() as u64)]);
            let outcome = tokio::time::timeout(left + Duration::from_secs(15), call).await;
            match outcome {
                Ok(Ok(result)) if result["ok"] == true => {
                    trace(&format!(
                        "{}: done after {:.2?}: {what}",
                        self.name,
                        started.elapsed()
                    ));
                    return result["value"].clone();
                }
                Ok(Ok(result)) => {
                    let state = self.describe().await;
                    panic!(
                        "{}: {what} did not happen within {:.1?}\n  waited for: {}\n  last value: {}\n  page: {state}",
                        self.name,
                        timeout,
                        condition.trim(),
                        result["last"].as_str().unwrap_or("?"),
                    );
                }
                // The page navigated or reloaded under the script: check again on the new
                // page while time is left.
                Ok(Err(e)) if started.elapsed() < timeout && is_navigation_error(&e) => {
                    tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
                    continue;
                }
                Ok(Err(e)) => panic!(
                    "{}: waiting for {what} failed: {e}\n  waited for: {}",
                    self.name,
                    condition.trim()
                ),
                Err(_) => panic!(
                    "{}: waiting for {what}: the browser did not answer within {:.1?}",
                    self.name,
                    timeout + Duration::from_secs(15)
                ),
            }
        }
    }

    /// A one-line summary of the app's state for failure messages.
    pub async fn describe(&self) -> String {
        let script = r#"return (() => {
  const s = window.__strangers;
  const text = (id) => { const el = document.getElementById(id); return el ? el.textContent.trim() : null; };
  return JSON.stringify({
    url: location.pathname + location.search,
    state: s ? s.state : null,
    room: s ? s.room : null,
    pc: s && s.pc ? s.pc.connectionState : null,
    ice: s && s.pc ? [s.pc.signalingState, s.pc.iceGatheringState, s.pc.iceConnectionState] : null,
    status: text('status'),
    notice: text('video-notice'),
    log: text('chat-log'),
    debug: s ? s.debug() : null,
  });
})();"#;
        match self.client.execute(script, vec![]).await {
            Ok(Value::String(s)) => s,
            Ok(other) => other.to_string(),
            Err(e) => format!("(could not read the page: {e})"),
        }
    }

    /// Clicks the one visible `<button>` (or button-like `<input>`) whose accessible name is
    /// exactly `name`, after checking that name with WebDriver's computed label and that the
    /// button is enabled.
    pub async fn click_button(&self, name: &str) {
        trace(&format!("{}: click {name:?}", self.name));
        let lit = xpath_literal(name);
        let xpath = format!(
            "//button[normalize-space(.)={lit} or normalize-space(@aria-label)={lit}] | \
             //input[(@type='submit' or @type='button' or @type='reset') and \
             (normalize-space(@value)={lit} or normalize-space(@aria-label)={lit})]"
        );
        let found = self
            .client
            .find_all(Locator::XPath(&xpath))
            .await
            .unwrap_or_else(|e| panic!("{}: looking for button {name:?} failed: {e}", self.name));
        let mut visible = Vec::new();
        for el in found {
            if el.is_displayed().await.unwrap_or(false) {
                visible.push(el);
            }
        }
        let button = match visible.len() {
            1 => visible.pop().unwrap(),
            0 => panic!(
                "{}: no visible button named {name:?}\n  page: {}",
                self.name,
                self.describe().await
            ),
            n => panic!("{}: {n} visible buttons named {name:?}", self.name),
        };
        let label = self
            .session_cmd(
                http::Method::GET,
                &format!("element/{}/computedlabel", button.element_id()),
                None,
            )
            .await;
        assert_eq!(
            label.as_str().map(str::trim),
            Some(name),
            "{}: the button found as {name:?} has the accessible name {label}",
            self.name
        );
        let enabled = button.is_enabled().await.unwrap_or(false);
        assert!(
            enabled,
            "{}: button {name:?} is disabled\n  page: {}",
            self.name,
            self.describe().await
        );
        button
            .click()
            .await
            .unwrap_or_else(|e| panic!("{}: clicking {name:?} failed: {e}", self.name));
    }

    /// Types into the element matching the CSS selector, as a user would (key events).
    pub async fn type_into(&self, css: &str, text: &str) {
        let el = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{}: no element {css}: {e}", self.name));
        el.send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("{}: typing into {css} failed: {e}", self.name));
    }

    /// Sends a session command fantoccini has no method for; returns its `value`.
    pub async fn session_cmd(
        &self,
        method: http::Method,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let cmd = SessionCommand {
            method,
            path: path.to_string(),
            body,
        };
        let what = format!("{} {}", cmd.method, cmd.path);
        self.client
            .issue_cmd(cmd)
            .await
            .unwrap_or_else(|e| panic!("{}: WebDriver {what} failed: {e}", self.name))
    }

    /// Runs a Chrome DevTools Protocol command through chromedriver (Chromium only).
    pub async fn cdp(&self, cmd: &str, params: Value) -> Value {
        assert_eq!(
            self.engine,
            Engine::Chromium,
            "{}: DevTools commands are Chromium's",
            self.name
        );
        self.session_cmd(
            http::Method::POST,
            "goog/cdp/execute",
            Some(json!({ "cmd": cmd, "params": params })),
        )
        .await
    }

    /// Runs a WebDriver BiDi command (Firefox only); returns its result.
    pub async fn bidi(&self, method: &str, params: Value) -> Value {
        let Some(bidi) = &self.bidi else {
            panic!(
                "{}: no WebDriver BiDi connection in {:?}",
                self.name, self.engine
            );
        };
        bidi.command(method, params)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Emulates a phone screen of `width`×`height` CSS pixels.
    pub async fn emulate_phone(&self, width: u32, height: u32) {
        match self.engine {
            Engine::Chromium => chromium::emulate_phone(self, width, height).await,
            Engine::Firefox => firefox::emulate_phone(self, width, height).await,
        }
    }

    /// Saves a PNG of the viewport.
    pub async fn screenshot_to(&self, path: &Path) {
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("{}: screenshot failed: {e}", self.name));
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("create the screenshot directory");
        }
        std::fs::write(path, png).expect("write the screenshot");
    }
}

impl Page {
    /// Runs `source` in every document this page loads from now on, before the page's own
    /// scripts.
    pub async fn add_init_script(&self, source: &str) {
        match self.engine {
            Engine::Chromium => chromium::add_init_script(self, source).await,
            Engine::Firefox => firefox::add_init_script(self, source).await,
        }
    }

    /// Loads an absolute URL (a page of another server than the one the page was made for).
    pub async fn open_url(&self, url: &str) {
        trace(&format!("{}: open {url}", self.name));
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("{}: could not open {url}: {e}", self.name));
    }

    /// Clicks the element matching the CSS selector (a checkbox, say), after checking that
    /// it is displayed and enabled, as a user could only click it then.
    pub async fn click_css(&self, css: &str) {
        trace(&format!("{}: click {css}", self.name));
        let el = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{}: no element {css}: {e}", self.name));
        let shown = el.is_displayed().await.unwrap_or(false);
        let enabled = el.is_enabled().await.unwrap_or(false);
        assert!(
            shown && enabled,
            "{}: {css} is not clickable (displayed: {shown}, enabled: {enabled})\n  page: {}",
            self.name,
            self.describe().await
        );
        el.click()
            .await
            .unwrap_or_else(|e| panic!("{}: clicking {css} failed: {e}", self.name));
    }

    /// Whether the element matching the CSS selector is displayed (WebDriver's notion).
    pub async fn is_displayed(&self, css: &str) -> bool {
        let el = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{}: no element {css}: {e}", self.name));
        el.is_displayed().await.unwrap_or(false)
    }
}

fn is_navigation_error(e: &fantoccini::error::CmdError) -> bool {
    let text = e.to_string();
    [
        "unloaded",
        "navigat",
        "Execution context was destroyed",
        "detached",
        "target frame",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}
