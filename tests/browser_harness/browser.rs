//! One browser process with one page: starting its WebDriver program and the browser
//! through it, and tearing both down (also when a test panicked), whatever the engine.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::page::Page;
use super::{Engine, Media, Tools, chromium, firefox, temp_dir, trace};

/// One browser with one page, driven by its own driver process. Dropping it ends the
/// session, stops the driver and deletes the temporary profile, also when the test panicked.
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

impl Browser {
    /// Starts chromedriver on a free loopback port and a fresh Chromium through it.
    /// `base` is the server's origin, e.g. `http://127.0.0.1:1234`.
    pub async fn launch(tools: &Tools, name: &str, base: &str, media: Media) -> Browser {
        Browser::launch_as(tools, Engine::Chromium, name, base, media).await
    }

    /// Like [`Browser::launch`], in the engine given.
    pub async fn launch_as(
        tools: &Tools,
        engine: Engine,
        name: &str,
        base: &str,
        media: Media,
    ) -> Browser {
        Browser::try_launch(tools, engine, name, base, media)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts several Chromiums at once (see [`Browser::launch_each`]).
    pub async fn launch_all(tools: &Tools, base: &str, specs: &[(&str, Media)]) -> Vec<Browser> {
        let specs: Vec<_> = specs
            .iter()
            .map(|&(name, media)| (Engine::Chromium, name, media))
            .collect();
        Browser::launch_each(tools, base, &specs).await
    }

    /// Starts several browsers at once, each in its engine (they take a second or two each).
    /// If one fails, the others are shut down before the panic.
    pub async fn launch_each(
        tools: &Tools,
        base: &str,
        specs: &[(Engine, &str, Media)],
    ) -> Vec<Browser> {
        let launched =
            futures_util::future::join_all(specs.iter().map(|&(engine, name, media)| {
                Browser::try_launch(tools, engine, name, base, media)
            }))
            .await;
        // Collecting into a Result drops (and so shuts down) every browser that did start.
        launched
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`Browser::launch_as`], without panicking, so a failure can clean up after
    /// itself (and does not cancel other launches halfway, which would leak their processes).
    pub async fn try_launch(
        tools: &Tools,
        engine: Engine,
        name: &str,
        base: &str,
        media: Media,
    ) -> Result<Browser, String> {
        Browser::try_launch_with(tools, engine, name, base, media, &[]).await
    }

    /// Starts a Chromium with extra command-line switches (a video file as the fake camera,
    /// a JavaScript engine without WebAssembly, `--accept-lang=es` for a user who prefers
    /// Spanish).
    pub async fn launch_chromium_with(
        tools: &Tools,
        name: &str,
        base: &str,
        media: Media,
        switches: &[String],
    ) -> Browser {
        Browser::try_launch_with(tools, Engine::Chromium, name, base, media, switches)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    async fn try_launch_with(
        tools: &Tools,
        engine: Engine,
        name: &str,
        base: &str,
        media: Media,
        switches: &[String],
    ) -> Result<Browser, String> {
        trace(&format!("{name}: launching {}", engine.name()));
        let profile = temp_dir(name);
        let (driver, port) = match start_driver(tools, engine, &profile).await {
            Ok(started) => started,
            Err(e) => {
                cleanup(None, 0, None, &profile);
                return Err(format!(
                    "{name}: could not start the {} driver: {e}",
                    engine.name()
                ));
            }
        };
        let connected = match engine {
            Engine::Chromium => chromium::connect(tools, port, &profile, media, switches)
                .await
                .map(|client| (client, None)),
            Engine::Firefox => firefox::connect(tools, name, port, &profile, media)
                .await
                .map(|(client, bidi)| (client, Some(bidi))),
        };
        let (client, bidi) = match connected {
            Ok(connected) => connected,
            Err(e) => {
                cleanup(Some(driver), port, None, &profile);
                return Err(format!("{name}: could not start {}: {e}", engine.name()));
            }
        };
        trace(&format!("{name}: browser up"));
        Ok(Browser {
            page: Page::new(name, engine, client, bidi, base).await,
            driver: Some(driver),
            driver_port: port,
            profile,
            session_ended: false,
        })
    }

    /// Closes the page's only window, as a user closing the tab; the driver then ends the
    /// session and the browser quits. Fetch the log first if you want to check it.
    pub async fn close_window(&mut self) {
        let result = self.page.client.close_window().await;
        self.session_ended = true;
        if let Err(e) = result {
            panic!("{}: closing the window failed: {e}", self.name);
        }
    }
}

impl Browser {
    /// The CPU time (user + system, in clock ticks) this browser's processes have used so
    /// far: every process whose command line names its profile, and their descendants (the
    /// renderers, GPU and utility processes), for benchmarks.
    pub fn cpu_ticks(&self) -> u64 {
        let stats: Vec<(u32, u32, u64)> = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
                let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
                // The fields after the command name, which is in parentheses and may hold
                // spaces: state, ppid, ... utime (12th), stime (13th).
                let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
                let ppid = fields.get(1)?.parse().ok()?;
                let ticks =
                    fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
                Some((pid, ppid, ticks))
            })
            .collect();
        let mut ours: std::collections::HashSet<u32> =
            processes_using(&self.profile).into_iter().collect();
        // Bounded: each pass adds at least one process or ends.
        for _ in 0..stats.len() {
            let before = ours.len();
            ours.extend(
                stats
                    .iter()
                    .filter(|s| ours.contains(&s.1))
                    .map(|s| s.0)
                    .collect::<Vec<_>>(),
            );
            if ours.len() == before {
                break;
            }
        }
        stats
            .iter()
            .filter(|s| ours.contains(&s.0))
            .map(|s| s.2)
            .sum()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Firefox takes seconds to quit when its session is ended (more on a busy machine);
        // its profile is thrown away, so it is killed with its driver instead, and its
        // child processes exit as their parent goes.
        let graceful = !self.session_ended && self.page.engine == Engine::Chromium;
        let session = graceful.then_some(self.page.session.as_str());
        cleanup(self.driver.take(), self.driver_port, session, &self.profile);
    }
}

/// Ends the session if given (the browser quits and its driver reaps it), stops the driver,
/// kills any browser process still using the profile (by pid: only processes this browser
/// started), and deletes the profile. Synchronous so it also runs from Drop during a panic.
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

/// A bodyless HTTP/1.1 request to the driver with bounded waits; returns the raw response.
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
        if response_complete(&raw) {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&raw).into_owned())
}

/// Whether `raw` holds a whole response: its head and `Content-Length` bytes of body.
fn response_complete(raw: &[u8]) -> bool {
    let text = String::from_utf8_lossy(raw);
    let Some(head_end) = text.find("\r\n\r\n") else {
        return false;
    };
    let length = text[..head_end].lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())
            .flatten()
    });
    length.is_some_and(|len| raw.len() >= head_end + 4 + len)
}

/// Kills every process whose command line names `profile` (Chromium's
/// `--user-data-dir=PROFILE`, Firefox's `-profile PROFILE`).
fn kill_processes_using(profile: &Path) {
    for pid in processes_using(profile) {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The pids of every process whose command line names `profile`.
fn processes_using(profile: &Path) -> Vec<u32> {
    let Some(profile) = profile.to_str() else {
        return Vec::new();
    };
    let suffix = format!("={profile}");
    let names_profile = |arg: &[u8]| arg == profile.as_bytes() || arg.ends_with(suffix.as_bytes());
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids = Vec::new();
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
        if cmdline.split(|&b| b == 0).any(names_profile) {
            pids.push(pid);
        }
    }
    pids
}

/// Starts the engine's driver on a free loopback port and waits until it accepts
/// connections.
async fn start_driver(
    tools: &Tools,
    engine: Engine,
    profile: &Path,
) -> Result<(Child, u16), String> {
    let (_, program) = tools.programs(engine);
    let mut last_error = String::new();
    for _attempt in 0..3 {
        // Another process may grab the port between this probe and the driver's bind;
        // then the driver exits and we try another port.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let args = match engine {
            Engine::Chromium => chromium::driver_args(port),
            Engine::Firefox => firefox::driver_args(port, profile),
        };
        let log = std::fs::File::create(profile.join("driver.log")).ok();
        let mut child = Command::new(program)
            .args(&args)
            // Firefox inherits it: no crash reporter process, no crash report upload.
            .env("MOZ_CRASHREPORTER_DISABLE", "1")
            .stdin(Stdio::null())
            .stdout(log.map_or_else(Stdio::null, Stdio::from))
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
        match wait_listening(&mut child, port).await {
            Ok(()) => return Ok((child, port)),
            Err(e) => last_error = format!("{}: {e}", program.display()),
        }
    }
    Err(last_error)
}

/// Waits until `child` accepts connections on `port`; kills it after 10 s.
async fn wait_listening(child: &mut Child, port: u16) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("exited with {status} before listening"));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err("did not listen within 10 s".into());
        }
        // Readiness poll with a bounded deadline (there is no event to wait on).
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
