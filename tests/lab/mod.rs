//! The network lab: the real product in a small Internet of its own, made of Linux network
//! namespaces by the test itself, and removed on every exit path.
//!
//! ```text
//!            public segment 203.0.113.0/24 (a bridge)
//!            strangers :8080 and coturn :3478 on 203.0.113.10
//!              |                         |
//!   cable (delay, loss, unplug)    cable (delay, loss, unplug)
//!              |                         |
//!   router 0 .101: NAT + firewall  router 1 .102: NAT + firewall   ...
//!              |                         |
//!   home 0 192.168.10.2 Chromium   home 1 192.168.11.2 Chromium (or Firefox)
//! ```
//!
//! A home holds one browser: a Chromium ([`browser`]) or a Firefox ([`firefox`]), whose
//! drivers the test reaches without the browser ever seeing the test's loopback.
//!
//! Rules it keeps: nothing is made or changed in the namespace this process runs in (veths
//! are made inside a router, TAP devices by a thread that entered one, forwarding is turned
//! on only inside routers); every process is stopped by pid and every namespace deleted when
//! the [`Lab`] is dropped (also during a panic); namespaces left by a run killed outright are
//! swept by the next run; the routers drop and count anything meant for an address outside
//! the lab, and [`Lab::assert_contained`] checks that count is zero.
//!
//! It needs root (network namespaces) and `ip`, `nft`, `turnserver`, Chromium and
//! chromedriver (and Firefox and geckodriver for a Firefox in a home). Without them it says
//! so loudly and skips, except in CI, where that fails.
#![allow(dead_code)] // the tests and the benchmark use different parts

pub mod browser;
pub mod firefox;
pub mod forward;
pub mod link;
pub mod netns;
pub mod pages;
pub mod privacy;
pub mod services;
pub mod topology;

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::browser_harness::{self as harness, Tools};
use browser::HomeBrowser;
use link::Link;
use services::{Offer, Service};
pub use topology::Home;
use topology::{PUBLIC_HOST, Topology};

/// Namespace names of the lab start with this, then the pid of the process that made them.
const PREFIX: &str = "slab-";

/// A lab: its public services and its namespaces. Field order is drop order: processes
/// stop before their namespaces go.
pub struct Lab {
    server: Option<Service>,
    extra: Vec<Service>,
    coturn: Service,
    pub topology: Topology,
    scratch: Scratch,
    tools: Tools,
    forwarding_before: String,
}

/// The lab's scratch directory (logs, profiles, wrapper scripts), removed on drop unless a
/// test failed (then its path is printed, for the logs).
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("network lab logs kept in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Lab {
    /// A lab with one home per entry and the server offering `offer`, or `None` (after a loud
    /// notice) when this machine cannot run it and we are not in CI.
    pub fn start(homes: &[Home], offer: Offer) -> Option<Lab> {
        let tools = tools_or_skip()?;
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        netns::sweep_stale(PREFIX);
        let prefix = format!("{PREFIX}{pid}-{n}-");
        let scratch = Scratch(std::env::temp_dir().join(format!("strangers-lab-{pid}-{n}")));
        std::fs::create_dir_all(&scratch.0).expect("a scratch directory");
        let forwarding_before = forwarding_here();
        let topology = Topology::build(&prefix, homes).unwrap_or_else(|e| panic!("lab: {e}"));
        let coturn = services::start_coturn(&topology.public, &scratch.0)
            .unwrap_or_else(|e| panic!("lab: {e}"));
        let server =
            services::start_server(&topology.public, &scratch.0, services::SERVER_PORT, offer)
                .unwrap_or_else(|e| panic!("lab: {e}"));
        Some(Lab {
            server: Some(server),
            extra: Vec::new(),
            coturn,
            topology,
            scratch,
            tools,
            forwarding_before,
        })
    }

    /// The origin of the lab's server, as browsers in the homes reach it.
    pub fn base(&self) -> String {
        format!("http://{PUBLIC_HOST}:{}", services::SERVER_PORT)
    }

    /// Starts one Chromium per `(home, name)`, one after the other (two cores starting
    /// several at once under other load have been seen to time out). If one fails, those
    /// started are shut down before the panic.
    pub async fn browsers(&self, specs: &[(usize, &str)]) -> Vec<HomeBrowser> {
        let base = self.base();
        let mut started = Vec::new();
        for (home, name) in specs {
            let home = &self.topology.homes[*home];
            match HomeBrowser::launch(&self.tools, home, name, &base, &self.scratch.0).await {
                Ok(browser) => started.push(browser),
                Err(e) => panic!("lab: {e}"),
            }
        }
        started
    }

    /// Home `i`'s cable to the public segment.
    pub fn link(&self, i: usize) -> &Link {
        &self.topology.links[i]
    }

    /// A second server on the public address at `port`, offering `offer`; its origin.
    pub fn extra_server(&mut self, port: u16, offer: Offer) -> String {
        let service = services::start_server(&self.topology.public, &self.scratch.0, port, offer)
            .unwrap_or_else(|e| panic!("lab: {e}"));
        self.extra.push(service);
        format!("http://{PUBLIC_HOST}:{port}")
    }

    /// A deploy: SIGTERM to the server (it tells every client `bye` and drains), then a new
    /// process on the same address, offering `offer`.
    pub fn restart_server(&mut self, offer: Offer) {
        if let Some(old) = self.server.take() {
            old.terminate(Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("lab: {e}"));
        }
        let new = services::start_server(
            &self.topology.public,
            &self.scratch.0,
            services::SERVER_PORT,
            offer,
        )
        .unwrap_or_else(|e| panic!("lab: {e}"));
        self.server = Some(new);
    }

    /// Home `i`'s router gets a new public address (as after a new DHCP lease): every NAT
    /// mapping it had is flushed with the old one, so the home's public address and ports
    /// change under a running call. Returns the new address.
    pub fn rebind(&self, i: usize) -> String {
        let router = &self.topology.routers[i];
        let old = format!("{}/24", topology::router_wan(i));
        let new = format!("203.0.113.{}", 201 + i);
        netns::ip(&["-n", router, "addr", "del", &old, "dev", "wan"])
            .and_then(|()| {
                netns::ip(&[
                    "-n",
                    router,
                    "addr",
                    "add",
                    &format!("{new}/24"),
                    "dev",
                    "wan",
                ])
            })
            .unwrap_or_else(|e| panic!("lab: {e}"));
        new
    }

    /// What coturn logged so far.
    pub fn coturn_log(&self) -> String {
        self.coturn.log()
    }

    /// Fails unless the routers dropped no packet meant for outside the lab, and forwarding
    /// in this process's own namespace is as it was.
    pub fn assert_contained(&self) {
        let leaks = self.topology.leaks().unwrap_or_else(|e| panic!("lab: {e}"));
        let leaked: Vec<_> = leaks.iter().filter(|(_, n)| *n > 0).collect();
        assert!(
            leaked.is_empty(),
            "packets meant for addresses outside the lab reached a router: {leaked:?}"
        );
        assert_eq!(
            forwarding_here(),
            self.forwarding_before,
            "IPv4 forwarding of this machine's namespace changed during the lab"
        );
    }
}

/// `net.ipv4.ip_forward` of the namespace this process runs in.
fn forwarding_here() -> String {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap_or_default()
}

/// Runs a scenario with a hard deadline, so a hang fails (and cleans up) instead of
/// stalling the suite.
pub async fn bounded<F: std::future::Future>(limit: Duration, scenario: F) -> F::Output {
    tokio::time::timeout(limit, scenario)
        .await
        .unwrap_or_else(|_| panic!("the scenario did not finish within {limit:?}"))
}

/// Chromium and chromedriver when this machine can run the lab (root, `ip`, `nft`,
/// coturn, `/dev/net/tun`); otherwise a loud notice and `None`, or a panic in CI.
fn tools_or_skip() -> Option<Tools> {
    let missing = missing_prerequisites();
    if missing.is_empty() {
        return harness::tools_or_skip();
    }
    let what = missing.join(", ");
    if harness::in_ci() {
        panic!("the network lab cannot run in CI: {what}");
    }
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = writeln!(
            std::io::stderr(),
            "\n********************************************************************\n\
             SKIPPED the network lab: {what}\n\
             (it runs as root: sudo -E cargo test --test network_lab)\n\
             ********************************************************************\n"
        );
    });
    None
}

fn missing_prerequisites() -> Vec<String> {
    let mut missing = Vec::new();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        missing.push("not root (network namespaces need it)".to_string());
    }
    for (var, program, package) in [
        ("IP", "ip", "iproute2"),
        ("NFT", "nft", "nftables"),
        ("TURNSERVER", "turnserver", "coturn"),
    ] {
        if services::find_program(var, program).is_err() {
            missing.push(format!("no {program} (apt-get install {package})"));
        }
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        missing.push("no /dev/net/tun".into());
    }
    missing
}
