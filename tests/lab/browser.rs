//! A headless Chromium living in a home of the lab: chromedriver stays on this machine's
//! loopback, Chromium itself runs inside the home's namespace (a wrapper enters it) and
//! talks to chromedriver over a pipe; no loopback flag, so ICE sees the home's real
//! addresses. DNS inside points at 127.0.0.1 (a bind-mounted `resolv.conf` in the
//! browser's own mount namespace), so no lookup leaves the lab.

use std::net::{TcpListener, TcpStream};
use std::ops::Deref;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::ClientBuilder;
use serde_json::{Value, json};

use super::netns;
use crate::browser_harness::{Page, Tools, trace};

/// One Chromium in a home, with its page; dropping it kills chromedriver and every process
/// using its profile, by pid, and removes the profile.
pub struct HomeBrowser {
    page: Page,
    driver: Option<Child>,
    dir: PathBuf,
}

impl Deref for HomeBrowser {
    type Target = Page;
    fn deref(&self) -> &Page {
        &self.page
    }
}

impl HomeBrowser {
    /// Starts a Chromium inside `home` (a namespace) whose pages load from `base`; tries a
    /// second time if the first browser does not come up.
    pub async fn launch(
        tools: &Tools,
        home: &str,
        name: &str,
        base: &str,
        scratch: &Path,
    ) -> Result<HomeBrowser, String> {
        match HomeBrowser::try_launch(tools, home, name, base, scratch).await {
            Ok(browser) => Ok(browser),
            Err(first) => {
                eprintln!("lab: {first}; trying once more");
                HomeBrowser::try_launch(tools, home, name, base, scratch).await
            }
        }
    }

    async fn try_launch(
        tools: &Tools,
        home: &str,
        name: &str,
        base: &str,
        scratch: &Path,
    ) -> Result<HomeBrowser, String> {
        trace(&format!("{name}: launching Chromium in {home}"));
        let dir = scratch.join(format!("browser-{}", name.to_ascii_lowercase()));
        std::fs::create_dir_all(dir.join("profile")).map_err(|e| e.to_string())?;
        let wrapper = write_wrapper(tools, home, &dir)?;
        let (mut driver, port) = start_driver(tools, &dir)?;
        let connected = match connect(port, &wrapper, &dir, base).await {
            Ok(client) => responsive(client).await,
            Err(e) => Err(e),
        };
        let client = match connected {
            Ok(client) => client,
            Err(e) => {
                let _ = driver.kill();
                let _ = driver.wait();
                kill_profile_users(&dir.join("profile"));
                let _ = std::fs::remove_dir_all(&dir);
                return Err(format!("{name}: {e}"));
            }
        };
        trace(&format!("{name}: Chromium up in {home}"));
        Ok(HomeBrowser {
            page: Page::attach(name, client, base).await,
            driver: Some(driver),
            dir,
        })
    }
}

impl Drop for HomeBrowser {
    fn drop(&mut self) {
        if let Some(mut driver) = self.driver.take() {
            let _ = driver.kill();
            let _ = driver.wait();
        }
        kill_profile_users(&self.dir.join("profile"));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A script chromedriver runs as "Chromium": it enters the home's namespace, gives the
/// browser a private `resolv.conf` and execs the real binary with the arguments given.
fn write_wrapper(tools: &Tools, home: &str, dir: &Path) -> Result<PathBuf, String> {
    let resolv = dir.join("resolv.conf");
    std::fs::write(&resolv, "nameserver 127.0.0.1\n").map_err(|e| e.to_string())?;
    // The Debian /usr/bin/chromium is a shell wrapper reading /etc/chromium.d; run the
    // binary itself.
    let real = Path::new("/usr/lib/chromium/chromium");
    let binary = if real.is_file() {
        real
    } else {
        &tools.chromium
    };
    let script = format!(
        "#!/bin/sh\nexec ip netns exec '{home}' sh -c 'b=$1; shift; mount --bind \"$0\" /etc/resolv.conf && exec \"$b\" \"$@\"' '{}' '{}' \"$@\"\n",
        resolv.display(),
        binary.display()
    );
    let path = dir.join("chromium-in-home");
    std::fs::write(&path, script).map_err(|e| e.to_string())?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| e.to_string())?;
    Ok(path)
}

/// chromedriver on a free loopback port of this machine, once it accepts connections.
fn start_driver(tools: &Tools, dir: &Path) -> Result<(Child, u16), String> {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let log = std::fs::File::create(dir.join("chromedriver.log")).map_err(|e| e.to_string())?;
    let mut child = Command::new(&tools.chromedriver)
        .arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run chromedriver: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok((child, port));
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("chromedriver exited with {status}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    Err("chromedriver did not listen within 10 s".into())
}

async fn connect(
    port: u16,
    wrapper: &Path,
    dir: &Path,
    base: &str,
) -> Result<fantoccini::Client, String> {
    let args = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-crash-reporter",
        "--disable-breakpad",
        "--disable-dev-shm-usage",
        "--disable-domain-reliability",
        "--disable-client-side-phishing-detection",
        "--metrics-recording-only",
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        // chromedriver and Chromium are in different namespaces: no TCP between them.
        "--remote-debugging-pipe",
        "--window-size=1024,768",
    ]
    .into_iter()
    .map(String::from)
    .chain([
        format!("--user-data-dir={}", dir.join("profile").display()),
        // The camera needs a secure context; the lab serves plain http on a public address.
        format!("--unsafely-treat-insecure-origin-as-secure={base}"),
        // Debian's chromedriver waits for the first tab; make it a blank one.
        "about:blank".into(),
    ])
    .collect::<Vec<_>>();
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": { "binary": wrapper, "args": args },
        "goog:loggingPrefs": { "browser": "ALL" },
        "timeouts": { "script": 120_000, "pageLoad": 30_000, "implicit": 0 },
    });
    let Value::Object(caps) = caps else {
        unreachable!()
    };
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .map_err(|e| format!("Chromium did not start in its home: {e}"))
}

/// Checks that the new browser answers a script (a renderer that does not, seen on a busy
/// machine, would only fail the first step of the scenario after 30 s).
async fn responsive(client: fantoccini::Client) -> Result<fantoccini::Client, String> {
    let probe = client.execute("return document.readyState", vec![]);
    match tokio::time::timeout(Duration::from_secs(10), probe).await {
        Ok(Ok(_)) => Ok(client),
        Ok(Err(e)) => Err(format!("the new page does not run scripts: {e}")),
        Err(_) => Err("the new page did not answer a script within 10 s".into()),
    }
}

/// Kills (by pid) every process whose command line names this profile.
fn kill_profile_users(profile: &Path) {
    let needle = format!("--user-data-dir={}", profile.display());
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
        if cmdline.split(|&b| b == 0).any(|a| a == needle.as_bytes()) {
            netns::kill(pid, libc::SIGKILL);
        }
    }
}
