//! A headless Firefox living in a home of the lab. geckodriver and Firefox both run inside
//! the home's namespace (geckodriver talks to Firefox over the home's own loopback), and
//! the test reaches geckodriver and Firefox's BiDi socket through forwarded ports
//! ([`super::forward`]). Firefox gathers ICE candidates only on the interface of its
//! default route: a home has one (`eth0`, towards its router), so Firefox offers the home's
//! real address, as Chromium does. DNS inside points at 127.0.0.1 (a bind-mounted
//! `resolv.conf` in the driver's own mount namespace), so no lookup leaves the lab.

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::forward::Forward;
use super::topology::PUBLIC_HOST;
use super::{Lab, netns};
use crate::browser_harness::{Engine, ExternalFirefox, Page, Tools, trace};

/// Firefox's Marionette port (geckodriver's way to Firefox) on the home's loopback, set
/// so that it cannot take a port meant for a forward (those are ephemeral ones).
const MARIONETTE_PORT: u16 = 2828;

/// One Firefox in a home, with its page. Field order is drop order: the page's session,
/// then the forwarded ports, then geckodriver and every process left in the home (all of
/// them this browser's), then the profile.
pub struct HomeFirefox {
    /// The page the scenario drives.
    page: Page,
    /// The test's ways in: geckodriver's port and Firefox's BiDi port.
    forwards: [Forward; 2],
    /// geckodriver, inside the home (its pid is the program's: `ip netns exec` and the
    /// wrapper shell exec it).
    driver: Option<Child>,
    /// The home's namespace, whose processes are killed on drop.
    home: String,
    /// The browser's scratch directory (profile, logs), removed on drop.
    dir: PathBuf,
}

impl Deref for HomeFirefox {
    type Target = Page;
    fn deref(&self) -> &Page {
        &self.page
    }
}

impl Lab {
    /// Starts a Firefox in home `home` (panics on failure, after cleaning up). The lab's
    /// tools must include Firefox (`harness::firefox_tools_or_skip` says whether they can).
    pub async fn firefox(&self, home: usize, name: &str) -> HomeFirefox {
        let ns = &self.topology.homes[home];
        HomeFirefox::launch(&self.tools, ns, name, &self.base(), &self.scratch.0)
            .await
            .unwrap_or_else(|e| panic!("lab: {e}"))
    }
}

impl HomeFirefox {
    async fn launch(
        tools: &Tools,
        home: &str,
        name: &str,
        base: &str,
        scratch: &Path,
    ) -> Result<HomeFirefox, String> {
        trace(&format!("{name}: launching Firefox in {home}"));
        let dir = scratch.join(format!("firefox-{}", name.to_ascii_lowercase()));
        let profile = dir.join("profile");
        std::fs::create_dir_all(&profile).map_err(|e| e.to_string())?;
        let (firefox, geckodriver) = tools.programs(Engine::Firefox);
        // The test's ways in: geckodriver's port and Firefox's BiDi port.
        let forwards = [Forward::open(home)?, Forward::open(home)?];
        let ports = [forwards[0].port, forwards[1].port];
        let driver = start_driver(geckodriver, home, &dir, ports)?;
        // From here on, dropping `browser` cleans up whatever was started.
        let mut browser = Starting {
            driver: Some(driver),
            home: home.to_string(),
            dir: dir.clone(),
        };
        wait_listening(home, ports[0], browser.driver.as_mut().unwrap())?;
        let external = ExternalFirefox {
            driver: format!("http://127.0.0.1:{}", ports[0]),
            binary: firefox.clone(),
            profile,
            secure_hosts: vec![PUBLIC_HOST.to_string()],
        };
        let page = Page::attach_firefox(name, &external, base)
            .await
            .map_err(|e| format!("{name}: Firefox did not start in its home: {e}"))?;
        trace(&format!("{name}: Firefox up in {home}"));
        Ok(HomeFirefox {
            page,
            forwards,
            driver: browser.driver.take(),
            home: home.to_string(),
            dir,
        })
    }
}

impl Drop for HomeFirefox {
    fn drop(&mut self) {
        stop(self.driver.take(), &self.home, &self.dir);
    }
}

/// What is started before the page exists: cleaned up if the launch fails half-way.
struct Starting {
    /// geckodriver, until the launch succeeds and [`HomeFirefox`] takes it.
    driver: Option<Child>,
    /// The home whose processes are killed if the launch fails.
    home: String,
    /// The browser's scratch directory, removed if the launch fails.
    dir: PathBuf,
}

impl Drop for Starting {
    fn drop(&mut self) {
        if self.driver.is_some() {
            stop(self.driver.take(), &self.home, &self.dir);
        }
    }
}

/// Kills geckodriver, then (by pid) every process left in the home, the browser's; removes
/// its directory.
fn stop(driver: Option<Child>, home: &str, dir: &Path) {
    if let Some(mut driver) = driver {
        let _ = driver.kill();
        let _ = driver.wait();
    }
    for pid in netns::pids(home) {
        netns::kill(pid, libc::SIGKILL);
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// geckodriver inside `home` on `ports[0]`, its Firefox's BiDi socket on `ports[1]`, with
/// a private `resolv.conf`; Firefox inherits both.
fn start_driver(
    geckodriver: &Path,
    home: &str,
    dir: &Path,
    ports: [u16; 2],
) -> Result<Child, String> {
    let resolv = dir.join("resolv.conf");
    std::fs::write(&resolv, "nameserver 127.0.0.1\n").map_err(|e| e.to_string())?;
    let log = std::fs::File::create(dir.join("geckodriver.log")).map_err(|e| e.to_string())?;
    let err = log.try_clone().map_err(|e| e.to_string())?;
    Command::new("ip")
        .args(["netns", "exec", home, "sh", "-c"])
        .arg("mount --bind \"$0\" /etc/resolv.conf && exec \"$@\"")
        .arg(&resolv)
        .arg(geckodriver)
        .args(["--host", "127.0.0.1", "--port", &ports[0].to_string()])
        .args(["--websocket-port", &ports[1].to_string()])
        .args(["--marionette-port", &MARIONETTE_PORT.to_string()])
        .arg("--profile-root")
        .arg(dir)
        // No crash reporter process, no crash report upload.
        .env("MOZ_CRASHREPORTER_DISABLE", "1")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot run geckodriver in {home}: {e}"))
}

/// Waits until geckodriver accepts connections on `port` of the home's loopback.
fn wait_listening(home: &str, port: u16, driver: &mut Child) -> Result<(), String> {
    let target = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let up = netns::within(home, || {
            std::net::TcpStream::connect_timeout(&target, Duration::from_millis(200)).is_ok()
        })?;
        if up {
            return Ok(());
        }
        if let Ok(Some(status)) = driver.try_wait() {
            return Err(format!("geckodriver exited with {status}"));
        }
        if Instant::now() > deadline {
            return Err("geckodriver did not listen within 10 s".into());
        }
        // Readiness poll with a bounded deadline (there is no event to wait on).
        std::thread::sleep(Duration::from_millis(20));
    }
}
