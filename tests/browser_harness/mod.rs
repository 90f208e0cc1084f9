//! Real-browser harness: one headless Chromium per page, driven over WebDriver by
//! [fantoccini] through the Debian `chromedriver` (built from the same source package as
//! `chromium`, so the two versions always match).
//!
//! Shared by `tests/browser.rs` and the benchmarks (`#[path = "../tests/browser_harness/mod.rs"]`),
//! so it depends only on crates every test target has; it knows nothing about the server
//! beyond the URL it is given, apart from the page test hook `window.__strangers`.
//!
//! Rules it enforces:
//! - every browser is a separate Chromium with a fresh profile (background tabs are throttled,
//!   and both sides of a call must decode video at the same time);
//! - all traffic stays on loopback: chromedriver listens on 127.0.0.1, pages load from the
//!   URL the test gives (127.0.0.1);
//! - waiting is done inside the page ([`Page::wait_for`]): a promise that resolves when a
//!   condition holds or rejects after a deadline saying what did not happen; no fixed sleeps;
//! - console errors and uncaught exceptions are collected from chromedriver's browser log and
//!   checked by [`assert_no_console_errors`].
//!
//! Set `E2E_TRACE=1` to print a timestamped line for every launch, navigation, click and
//! wait (with `-- --nocapture`), to see where a scenario spends its time.
#![allow(dead_code)] // the benchmark uses a different part of the harness

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// How long a scenario step may take before the test fails: generous, because two cores
/// run the server, several Chromiums and their video codecs at once.
pub const PATIENCE: Duration = Duration::from_secs(20);

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

/// How often an in-page wait re-checks its condition.
const POLL_MS: u64 = 25;

/// Where the two programs are.
#[derive(Clone, Debug)]
pub struct Tools {
    pub chromium: PathBuf,
    pub chromedriver: PathBuf,
}

/// Finds Chromium and chromedriver (`$CHROMIUM` / `$CHROMEDRIVER` override the `PATH` search).
pub fn find_tools() -> Result<Tools, String> {
    let chromium = from_env_or_path("CHROMIUM", &["chromium", "chromium-browser"]);
    let chromedriver = from_env_or_path("CHROMEDRIVER", &["chromedriver"]);
    match (chromium, chromedriver) {
        (Some(chromium), Some(chromedriver)) => Ok(Tools {
            chromium,
            chromedriver,
        }),
        (chromium, chromedriver) => Err(format!(
            "missing {}",
            [
                chromium.is_none().then_some("chromium"),
                chromedriver.is_none().then_some("chromedriver"),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" and ")
        )),
    }
}

fn from_env_or_path(var: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(var).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    let dirs = std::env::var_os("PATH")?;
    std::env::split_paths(&dirs)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|p| p.is_file())
}

/// Whether we run in CI (`CI` set to anything but empty, `0` or `false`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// The tools, or `None` after a loud notice when they are missing on a developer machine.
/// In CI a missing browser is a failure, never a silent skip.
pub fn tools_or_skip() -> Option<Tools> {
    match find_tools() {
        Ok(tools) => Some(tools),
        Err(missing) if in_ci() => panic!(
            "browser tests need Chromium and chromedriver in CI ({missing}): \
             apt-get install chromium chromium-driver"
        ),
        Err(missing) => {
            static ONCE: std::sync::Once = std::sync::Once::new();
            ONCE.call_once(|| {
                // Straight to stderr, past the test harness's output capture, so it is seen.
                let _ = writeln!(
                    std::io::stderr(),
                    "\n********************************************************************\n\
                     SKIPPED browser tests ({missing}): install chromium chromium-driver\n\
                     (apt-get install chromium chromium-driver)\n\
                     ********************************************************************\n"
                );
            });
            None
        }
    }
}

/// Serializes scenarios: tests in one binary run on parallel threads, and two cores cannot
/// run two multi-browser scenarios at once without timing noise.
pub async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// What getUserMedia gives the page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Media {
    /// Chromium's fake camera (a moving test pattern) and microphone (a beep), allowed at once.
    Fake,
    /// The user refuses: getUserMedia rejects with NotAllowedError.
    Denied,
}

/// One Chromium with one page, driven by its own chromedriver. Dropping it ends the session,
/// stops chromedriver and deletes the temporary profile, also when the test panicked.
pub struct Browser {
    page: Page,
    driver: Option<Child>,
    driver_port: u16,
    profile: PathBuf,
    session_ended: bool,
}

impl Deref for Browser {
    type Target = Page;
    fn deref(&self) -> &Page {
        &self.page
    }
}

/// A page: WebDriver helpers plus the console errors seen so far.
pub struct Page {
    /// Short name used in every failure message ("A", "B", …).
    pub name: String,
    pub client: Client,
    session: String,
    base: String,
    log: Mutex<Vec<LogEntry>>,
}

/// One entry of chromedriver's browser log.
#[derive(Clone, Debug)]
pub struct LogEntry {
    pub level: String,
    pub source: String,
    pub message: String,
}

impl Browser {
    /// Starts chromedriver on a free loopback port and a fresh Chromium through it.
    /// `base` is the server's origin, e.g. `http://127.0.0.1:1234`.
    pub async fn launch(tools: &Tools, name: &str, base: &str, media: Media) -> Browser {
        Browser::try_launch(tools, name, base, media)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts several browsers at once (they take a second or two each). If one fails, the
    /// others are shut down before the panic.
    pub async fn launch_all(tools: &Tools, base: &str, specs: &[(&str, Media)]) -> Vec<Browser> {
        let launched = futures_util::future::join_all(
            specs
                .iter()
                .map(|(name, media)| Browser::try_launch(tools, name, base, *media)),
        )
        .await;
        // Collecting into a Result drops (and so shuts down) every browser that did start.
        launched
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`Browser::launch`], without panicking, so a failure can clean up after itself
    /// (and does not cancel other launches halfway, which would leak their processes).
    pub async fn try_launch(
        tools: &Tools,
        name: &str,
        base: &str,
        media: Media,
    ) -> Result<Browser, String> {
        trace(&format!("{name}: launching"));
        let profile = temp_profile(name);
        let (driver, port) = match start_driver(tools, &profile).await {
            Ok(started) => started,
            Err(e) => {
                cleanup(None, 0, None, &profile);
                return Err(format!("{name}: could not start chromedriver: {e}"));
            }
        };
        let client = match connect(tools, port, &profile, media).await {
            Ok(client) => client,
            Err(e) => {
                cleanup(Some(driver), port, None, &profile);
                return Err(format!(
                    "{name}: could not start Chromium through chromedriver: {e}"
                ));
            }
        };
        let session = client.session_id().await.ok().flatten().unwrap_or_default();
        trace(&format!("{name}: browser up"));
        Ok(Browser {
            page: Page {
                name: name.to_string(),
                client,
                session,
                base: base.trim_end_matches('/').to_string(),
                log: Mutex::new(Vec::new()),
            },
            driver: Some(driver),
            driver_port: port,
            profile,
            session_ended: false,
        })
    }

    /// Closes the page's only window, as a user closing the tab; chromedriver then ends the
    /// session and Chromium quits. Fetch the log first if you want to check it.
    pub async fn close_window(&mut self) {
        let result = self.page.client.close_window().await;
        self.session_ended = true;
        if let Err(e) = result {
            panic!("{}: closing the window failed: {e}", self.name);
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let session = (!self.session_ended).then_some(self.page.session.as_str());
        cleanup(self.driver.take(), self.driver_port, session, &self.profile);
    }
}

/// Ends the session (Chromium quits and chromedriver reaps it), stops chromedriver, kills any
/// Chromium process still using the profile (by pid: only processes this browser started),
/// and deletes the profile. Synchronous so it also runs from Drop during a panic.
fn cleanup(driver: Option<Child>, port: u16, session: Option<&str>, profile: &Path) {
    trace(&format!("cleanup {}", profile.display()));
    if let Some(session) = session.filter(|s| !s.is_empty()) {
        let _ = blocking_request(port, "DELETE", &format!("/session/{session}"));
    }
    if let Some(mut driver) = driver {
        let _ = driver.kill();
        let _ = driver.wait();
    }
    kill_processes_using(profile);
    let _ = std::fs::remove_dir_all(profile);
    trace("cleanup done");
}

/// A bodyless HTTP/1.1 request to chromedriver with bounded waits; returns the raw response.
/// chromedriver keeps the connection open despite `Connection: close`, so the response is
/// read up to its `Content-Length`.
fn blocking_request(port: u16, method: &str, path: &str) -> std::io::Result<String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&raw);
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length = text[..head_end].lines().find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.trim()
                    .eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().ok())
                    .flatten()
            });
            if length.is_some_and(|len| raw.len() >= head_end + 4 + len) {
                break;
            }
        }
    }
    Ok(String::from_utf8_lossy(&raw).into_owned())
}

fn kill_processes_using(profile: &Path) {
    let Some(needle) = profile.to_str().map(|p| format!("--user-data-dir={p}")) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if cmdline
            .split(|&b| b == 0)
            .any(|arg| arg == needle.as_bytes())
        {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn temp_profile(name: &str) -> PathBuf {
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
    std::fs::create_dir_all(&dir).expect("create a temporary Chromium profile");
    dir
}

/// Starts chromedriver on a free loopback port and waits until it accepts connections.
async fn start_driver(tools: &Tools, profile: &Path) -> Result<(Child, u16), String> {
    let mut last_error = String::new();
    for _attempt in 0..3 {
        // Another process may grab the port between this probe and chromedriver's bind;
        // then chromedriver exits and we try another port.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let log = std::fs::File::create(profile.join("chromedriver.log")).ok();
        let mut child = Command::new(&tools.chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log.map_or_else(Stdio::null, Stdio::from))
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", tools.chromedriver.display()))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok((child, port));
            }
            if let Ok(Some(status)) = child.try_wait() {
                last_error = format!("chromedriver exited with {status} before listening");
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                last_error = "chromedriver did not listen within 10 s".into();
                break;
            }
            // Readiness poll with a bounded deadline (there is no event to wait on).
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Err(last_error)
}

async fn connect(tools: &Tools, port: u16, profile: &Path, media: Media) -> Result<Client, String> {
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
        format!("--user-data-dir={}", profile.display()),
    ];
    match media {
        // Answer every camera/microphone prompt with "allow".
        Media::Fake => args.push("--use-fake-ui-for-media-stream".into()),
        // No fake UI: the prompt is refused at once, so getUserMedia rejects with
        // NotAllowedError ("Permission denied"), as when a user clicks Block.
        Media::Denied => args.push("--deny-permission-prompts".into()),
    }
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
            client,
            session,
            base: base.trim_end_matches('/').to_string(),
            log: Mutex::new(Vec::new()),
        }
    }

    /// Loads `path` (e.g. `/` or `/chat?start=1`) from the server.
    pub async fn open(&self, path: &str) {
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

    /// Runs a Chrome DevTools Protocol command through chromedriver.
    pub async fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.session_cmd(
            http::Method::POST,
            "goog/cdp/execute",
            Some(json!({ "cmd": cmd, "params": params })),
        )
        .await
    }

    /// Emulates a phone screen of `width`×`height` CSS pixels (touch, mobile viewport).
    pub async fn emulate_phone(&self, width: u32, height: u32) {
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 3, "mobile": true }),
        )
        .await;
        self.cdp(
            "Emulation.setTouchEmulationEnabled",
            json!({ "enabled": true, "maxTouchPoints": 5 }),
        )
        .await;
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

    /// Moves the browser log gathered so far into this page's record and returns all of it.
    pub async fn collect_log(&self) -> Vec<LogEntry> {
        let fresh = self
            .session_cmd(
                http::Method::POST,
                "se/log",
                Some(json!({ "type": "browser" })),
            )
            .await;
        let mut log = self.log.lock().unwrap();
        for entry in fresh.as_array().into_iter().flatten() {
            let field = |k: &str| entry[k].as_str().unwrap_or_default().to_string();
            let entry = LogEntry {
                level: field("level"),
                source: field("source"),
                message: field("message"),
            };
            trace(&format!(
                "{}: console {} [{}] {}",
                self.name, entry.level, entry.source, entry.message
            ));
            log.push(entry);
        }
        log.clone()
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
///   resource loads. The one exception is a 404 for `/favicon.ico`, which Chromium may ask
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

/// Where test artifacts (screenshots) go: `$CARGO_TARGET_DIR/e2e` or `target/e2e`.
pub fn artifact_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("e2e")
}

// ------------------------------------------------------------------ strangers-specific

/// A JavaScript expression (for [`Page::wait_for`]) that is truthy once this page is in a
/// call whose peer connection is connected, whose incoming video has decoded frames and
/// whose `#remote-video` shows a picture; its value is `{room, frames, width, height}`.
pub const VIDEO_FLOWING: &str = r#"await (async () => {
  const s = window.__strangers;
  const pc = s && s.pc;
  if (!pc || pc.connectionState !== 'connected') return false;
  let frames = 0;
  (await pc.getStats()).forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'video') frames += r.framesDecoded || 0;
  });
  const video = document.getElementById('remote-video');
  if (!(frames > 0 && video.videoWidth > 0)) return false;
  return { room: s.room, role: s.role, frames, width: video.videoWidth, height: video.videoHeight };
})()"#;

impl Page {
    /// Waits until this page shows the stranger's video; returns the room id.
    pub async fn wait_video(&self, timeout: Duration) -> String {
        let v = self
            .wait_for(
                VIDEO_FLOWING,
                "a connected call decoding the stranger's video",
                timeout,
            )
            .await;
        v["room"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: no room in {v}", self.name))
            .to_string()
    }

    /// `window.__strangers.debug()`.
    pub async fn debug_counts(&self) -> Value {
        self.eval("window.__strangers.debug()").await
    }

    /// Waits until the chat log has a line containing `text`.
    pub async fn wait_log_line(&self, text: &str, timeout: Duration) {
        let condition = format!(
            "[...document.querySelectorAll('#chat-log li')].some((li) => li.textContent.includes({}))",
            json!(text)
        );
        self.wait_for(
            &condition,
            &format!("a chat log line with {text:?}"),
            timeout,
        )
        .await;
    }
}

// ------------------------------------------------------------------ recording, servers
//
// Added for `tests/turn.rs`, `tests/browser_restart.rs` and `benches/browser.rs`; nothing
// above depends on it.

/// An in-page recorder, installed with [`Page::install_recorder`] before the app's scripts
/// run (on every document the page loads). It only observes; the app is unchanged. It keeps,
/// in `window.__rec`, with times in epoch milliseconds (`performance.timeOrigin +
/// performance.now()`, sub-millisecond and comparable across browsers on one machine):
///
/// - `clicks`: every click on a button or input (`{id, t, done}`: `t` the event's own
///   timestamp, `done` when the page's click handlers had run, unless one stopped it);
/// - `msgs`: every signaling message the page received (`{type, t, room, candidate, sdp}`,
///   `candidate` the ICE candidate line of a `candidate` message), and the events of every
///   WebSocket the page opened (`{type: "_open" | "_close", t, code}`);
/// - `sent`: the type and time of every message the page sent (`{type, t}`);
/// - `pcs`: every `RTCPeerConnection`, as `{created, policy, states, ice, added, sdps,
///   errors, firstCandidate}`: its `iceTransportPolicy`, its `connectionState` and
///   `iceConnectionState` changes (`{s, t}`), the candidate lines given to its
///   `addIceCandidate`, the SDPs given to its `setRemoteDescription`, its
///   `icecandidateerror` events (`{code, text, url}`) and when it gathered its first local
///   candidate; `window.__recPcs` holds the objects themselves, for `getStats()`;
/// - `frames`: the first picture `#remote-video` presented in each room (`{room, t,
///   receive}`, from `requestVideoFrameCallback`: `t` the frame's presentation time,
///   `receive` when its last packet arrived), and `frameCount`, pictures presented so far.
pub const RECORDER: &str = r#"(() => {
  if (window.__rec) return;
  const now = () => performance.timeOrigin + performance.now();
  const rec = (window.__rec = { clicks: [], msgs: [], sent: [], pcs: [], frames: [], frameCount: 0 });
  const pcs = (window.__recPcs = []);
  let lastClick = null;
  document.addEventListener('click', (e) => {
    const el = e.target && e.target.closest ? e.target.closest('button, input') : null;
    lastClick = { id: el ? el.id : '', t: performance.timeOrigin + e.timeStamp, done: null };
    rec.clicks.push(lastClick);
  }, true);
  // Bubbling to the window comes after the app's own click handlers have run.
  window.addEventListener('click', () => { if (lastClick) lastClick.done = now(); });
  const NativeWebSocket = window.WebSocket;
  window.WebSocket = class extends NativeWebSocket {
    constructor(...args) {
      super(...args);
      this.addEventListener('open', () => rec.msgs.push({ type: '_open', t: now() }));
      this.addEventListener('close', (e) => rec.msgs.push({ type: '_close', t: now(), code: e.code }));
      this.addEventListener('message', (e) => {
        const t = now();
        let m;
        try { m = JSON.parse(e.data); } catch { return; }
        if (!m || typeof m.type !== 'string' || m.type === 'online') return;
        rec.msgs.push({
          type: m.type, t, room: m.room || null,
          candidate: m.type === 'candidate' ? (m.candidate ? m.candidate.candidate : null) : undefined,
          sdp: typeof m.sdp === 'string' ? m.sdp : undefined,
        });
      });
    }
    send(data) {
      try { rec.sent.push({ type: JSON.parse(data).type, t: now() }); } catch { /* not JSON */ }
      return super.send(data);
    }
  };
  const NativePeerConnection = window.RTCPeerConnection;
  if (typeof NativePeerConnection === 'function') {
    window.RTCPeerConnection = class extends NativePeerConnection {
      constructor(config, ...rest) {
        super(config, ...rest);
        const entry = { created: now(), policy: (config && config.iceTransportPolicy) || 'all', states: [], ice: [], added: [], sdps: [], errors: [], firstCandidate: null };
        this.__rec = entry;
        rec.pcs.push(entry);
        pcs.push(this);
        this.addEventListener('connectionstatechange', () => entry.states.push({ s: this.connectionState, t: now() }));
        this.addEventListener('icecandidateerror', (e) => entry.errors.push({ code: e.errorCode, text: e.errorText, url: e.url }));
        this.addEventListener('iceconnectionstatechange', () => entry.ice.push({ s: this.iceConnectionState, t: now() }));
        this.addEventListener('icecandidate', (e) => { if (e.candidate && entry.firstCandidate === null) entry.firstCandidate = now(); });
      }
      addIceCandidate(candidate, ...rest) {
        if (this.__rec && candidate && candidate.candidate) this.__rec.added.push(candidate.candidate);
        return super.addIceCandidate(candidate, ...rest);
      }
      setRemoteDescription(description, ...rest) {
        if (this.__rec && description && description.sdp) this.__rec.sdps.push(description.sdp);
        return super.setRemoteDescription(description, ...rest);
      }
    };
  }
  const watchFrames = () => {
    const video = document.getElementById('remote-video');
    if (!video || typeof video.requestVideoFrameCallback !== 'function') return;
    let lastRoom = null;
    const onFrame = (_now, meta) => {
      rec.frameCount += 1;
      const s = window.__strangers;
      const room = s ? s.room : null;
      if (room && room !== lastRoom) {
        lastRoom = room;
        rec.frames.push({
          room,
          t: performance.timeOrigin + meta.presentationTime,
          receive: meta.receiveTime ? performance.timeOrigin + meta.receiveTime : null,
        });
      }
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  };
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', watchFrames);
  else watchFrames();
})();"#;

/// A JavaScript expression: the number of video frames this page's current call has
/// decoded so far (0 without a call).
pub const FRAMES_DECODED: &str = r#"await (async () => {
  const pc = window.__strangers && window.__strangers.pc;
  if (!pc) return 0;
  let frames = 0;
  (await pc.getStats()).forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'video') frames += r.framesDecoded || 0;
  });
  return frames;
})()"#;

impl Page {
    /// Runs `source` in every document this page loads from now on, before the page's own
    /// scripts (Chrome DevTools `Page.addScriptToEvaluateOnNewDocument`).
    pub async fn add_init_script(&self, source: &str) {
        self.cdp(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({ "source": source }),
        )
        .await;
    }

    /// Installs [`RECORDER`] for every document loaded from now on (call before `open`).
    pub async fn install_recorder(&self) {
        self.add_init_script(RECORDER).await;
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

    /// The recorder's `window.__rec` (see [`RECORDER`]).
    pub async fn recorded(&self) -> Value {
        self.eval("window.__rec || null").await
    }

    /// The number of video frames the current call has decoded ([`FRAMES_DECODED`]).
    pub async fn frames_decoded(&self) -> u64 {
        self.eval(FRAMES_DECODED).await.as_u64().unwrap_or(0)
    }
}

/// A strangers server in this process on a chosen address (port 0 for any), built as
/// `tests/common`'s `TestServer` builds it (no STUN, seed 1, no re-match cooldown, a
/// scratch report log), so that a test can stop it and start a new one on the same port.
pub struct LocalServer {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    /// Holds the report log; removed on drop.
    dir: PathBuf,
}

impl LocalServer {
    /// Binds `addr` (with `SO_REUSEADDR`, so a port just given up can be taken again) and
    /// serves with the extra flags given.
    pub async fn start_on(addr: SocketAddr, extra: &[&str]) -> LocalServer {
        use clap::CommandFactory;
        let dir = temp_profile("server");
        let log = dir.join("reports.jsonl");
        let log = log.to_str().expect("a UTF-8 temporary path").to_string();
        let args = ["strangers", "--stun", "", "--seed", "1"]
            .into_iter()
            .chain(["--rematch-cooldown", "0s", "--report-log", &log])
            .chain(extra.iter().copied());
        let matches = strangers::config::Config::command()
            .try_get_matches_from(args)
            .expect("test flags are valid");
        let config =
            strangers::config::Config::from_matches(&matches, None).expect("test config is valid");
        let listener = strangers::server::bind(addr)
            .unwrap_or_else(|e| panic!("cannot listen on {addr}: {e}"));
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(strangers::server::run(listener, config, async {
            let _ = stopped.await;
        }));
        trace(&format!("server listening on {addr}"));
        LocalServer {
            addr,
            stop: Some(stop),
            task,
            dir,
        }
    }

    /// The origin pages load from, `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Signals shutdown (every client is sent `bye` and closed with 1012) and waits for the
    /// server to finish draining.
    pub async fn shutdown(mut self) {
        trace(&format!("server on {} shutting down", self.addr));
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(15), &mut self.task)
            .await
            .expect("the server stops within its drain time")
            .expect("the server task ends cleanly");
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
