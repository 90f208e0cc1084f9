//! "Hide my IP" through a real TURN relay: Debian's coturn on 127.0.0.1 with the TURN REST
//! API secret (`use-auth-secret`), the server handing out credentials signed with the same
//! (or, once, a wrong) secret, and headless Chromium pages calling each other through it.
//!
//! - Both sides hiding their address: the call connects and the selected candidate pair is
//!   relay to relay on both pages.
//! - Only A hiding: every candidate of A's that B ever learns (signaled, in an SDP, or seen
//!   by B's ICE agent) is A's relay address, never a host or server-reflexive one.
//! - A server whose secret is not coturn's: relay-only calls never connect (coturn answers
//!   the allocations with 401) and end in "failed".
//!
//! Traffic stays on loopback: coturn listens and relays on 127.0.0.1 only. Without
//! `turnserver` the tests say so loudly and skip, except in CI (`CI=true`), where that is a
//! failure. Scenarios run one at a time (`harness::exclusive`).

mod browser_harness;
mod common;

use std::fmt::Write as _;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use browser_harness as harness;
use browser_harness::{Browser, Media, PATIENCE, Page, Tools, assert_no_console_errors};
use common::TestServer;
use serde_json::Value;

/// coturn's `static-auth-secret`.
const SECRET: &str = "north-wind-loopback";

/// How many UDP ports coturn may use for relay endpoints (Chromium allocates one per
/// network interface per call, and an ICE restart may allocate again).
const RELAY_PORTS: u16 = 40;

/// A coturn process on 127.0.0.1, killed (by its pid) when dropped.
struct Coturn {
    child: Child,
    /// The TURN listening port (UDP).
    port: u16,
    /// The relay port range (inclusive).
    relay: (u16, u16),
    dir: PathBuf,
}

impl Coturn {
    /// Starts coturn with `secret` and waits until it answers a STUN Binding request.
    fn start(turnserver: &Path, secret: &str) -> Coturn {
        let dir = common::scratch_file("coturn")
            .parent()
            .unwrap()
            .to_path_buf();
        let mut last = String::new();
        // A port picked free may be taken before coturn binds it: then try other ports.
        for _attempt in 0..3 {
            let port = free_udp_port();
            let relay = free_relay_range(port);
            let log = std::fs::File::create(dir.join("turnserver.log")).expect("a log file");
            let args = [
                // Take every setting from this command line, never /etc/turnserver.conf.
                "-n".to_string(),
                // Listen and relay on loopback only, on ports we chose.
                "--listening-ip=127.0.0.1".into(),
                "--relay-ip=127.0.0.1".into(),
                format!("--listening-port={port}"),
                format!("--min-port={}", relay.0),
                format!("--max-port={}", relay.1),
                // UDP TURN only (the server hands out `?transport=udp`): no TCP, TLS or DTLS
                // listeners, no telnet CLI, no RFC 5780 second port.
                "--no-tcp".into(),
                "--no-tls".into(),
                "--no-dtls".into(),
                "--no-cli".into(),
                "--no-rfc5780".into(),
                // The TURN REST API: credentials are HMAC-SHA1(secret, "<expiry>:<id>").
                "--use-auth-secret".into(),
                format!("--static-auth-secret={secret}"),
                "--realm=strangers".into(),
                "--fingerprint".into(),
                // Both browsers and their relay endpoints are on 127.0.0.1, which coturn
                // refuses as a peer unless told otherwise; multicast stays refused.
                "--allow-loopback-peers".into(),
                "--no-multicast-peers".into(),
                // Everything coturn writes goes into our scratch directory.
                "--log-file=stdout".into(),
                "--simple-log".into(),
                format!("--pidfile={}", dir.join("turnserver.pid").display()),
                format!("--userdb={}", dir.join("turndb").display()),
            ];
            let child = Command::new(turnserver)
                .args(&args)
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(Stdio::from(log))
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", turnserver.display()));
            let mut coturn = Coturn {
                child,
                port,
                relay,
                dir: dir.clone(),
            };
            match coturn.await_ready(Duration::from_secs(10)) {
                Ok(()) => {
                    harness::trace(&format!(
                        "coturn ready on 127.0.0.1:{port}, relay ports {}-{}",
                        relay.0, relay.1
                    ));
                    return coturn;
                }
                Err(e) => last = format!("{e}\n--- coturn log ---\n{}", coturn.log()),
            }
            // Dropping `coturn` kills it; the next attempt picks other ports.
        }
        panic!("coturn did not start: {last}");
    }

    /// Sends STUN Binding requests until coturn answers one (it answers only once its
    /// listener is up), coturn exits, or the deadline passes.
    fn await_ready(&mut self, within: Duration) -> Result<(), String> {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("a UDP socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let deadline = Instant::now() + within;
        let mut request = [0u8; 20];
        request[..2].copy_from_slice(&0x0001u16.to_be_bytes()); // Binding request
        request[4..8].copy_from_slice(&0x2112_A442u32.to_be_bytes()); // magic cookie
        request[8..20].copy_from_slice(b"strangers-rd"); // transaction id
        let mut buf = [0u8; 1500];
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("turnserver exited with {status}"));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no STUN answer on 127.0.0.1:{} within {within:?}",
                    self.port
                ));
            }
            let _ = socket.send_to(&request, ("127.0.0.1", self.port));
            // The read timeout paces the probes; a reply ends the wait at once.
            if let Ok((n, _)) = socket.recv_from(&mut buf)
                && n >= 20
                && buf[..2] == 0x0101u16.to_be_bytes()
                && buf[8..20] == request[8..20]
            {
                return Ok(());
            }
        }
    }

    /// The `turn:` URL browsers are given.
    fn url(&self) -> String {
        format!("turn:127.0.0.1:{}?transport=udp", self.port)
    }

    /// What coturn logged so far.
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("turnserver.log")).unwrap_or_default()
    }

    /// Whether `port` is one of coturn's relay endpoints.
    fn is_relay_port(&self, port: u16) -> bool {
        (self.relay.0..=self.relay.1).contains(&port)
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Keep the log of a failed test for a look; otherwise leave nothing behind.
        if std::thread::panicking() {
            eprintln!("coturn's log is in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free UDP port")
        .port()
}

/// A run of [`RELAY_PORTS`] free UDP ports below Linux's ephemeral range (32768–60999), so
/// no host candidate of a browser (those take ephemeral ports) can fall inside it: a port in
/// this range identifies a relay address.
fn free_relay_range(avoid: u16) -> (u16, u16) {
    let seed = std::process::id() as u64
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() as u64)
            .unwrap_or(0);
    for i in 0..50u64 {
        let slots = (32000 - 20000) / RELAY_PORTS as u64;
        let base = 20000 + ((seed + i * 7919) % slots) as u16 * RELAY_PORTS;
        let end = base + RELAY_PORTS - 1;
        if (base..=end).contains(&avoid) {
            continue;
        }
        let held: Result<Vec<UdpSocket>, _> = (base..=end)
            .map(|p| UdpSocket::bind(("127.0.0.1", p)))
            .collect();
        if held.is_ok() {
            return (base, end);
        }
    }
    panic!("no run of {RELAY_PORTS} free UDP ports between 20000 and 32000");
}

/// `turnserver` (`$TURNSERVER` overrides the `PATH` search), or `None` after a loud notice
/// on a developer machine. In CI a missing coturn is a failure.
fn turnserver_or_skip() -> Option<PathBuf> {
    let found = match std::env::var_os("TURNSERVER").filter(|v| !v.is_empty()) {
        Some(path) => Some(PathBuf::from(path)).filter(|p| p.is_file()),
        None => std::env::var_os("PATH").and_then(|dirs| {
            std::env::split_paths(&dirs)
                .map(|dir| dir.join("turnserver"))
                .find(|p| p.is_file())
        }),
    };
    if found.is_none() {
        if harness::in_ci() {
            panic!("the TURN tests need coturn's turnserver in CI: apt-get install coturn");
        }
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "\n********************************************************************\n\
                 SKIPPED TURN tests (no turnserver): install coturn\n\
                 (apt-get install coturn)\n\
                 ********************************************************************\n"
            );
        });
    }
    found
}

/// Browsers, coturn and a server whose TURN credentials are signed with `server_secret`.
/// `None` when the tests are skipped.
async fn setup(server_secret: &str) -> Option<(Tools, Coturn, TestServer)> {
    let tools = harness::tools_or_skip()?;
    let turnserver = turnserver_or_skip()?;
    let coturn = Coturn::start(&turnserver, SECRET);
    let url = coturn.url();
    let server = TestServer::start(&["--turn-url", &url, "--turn-secret", server_secret]).await;
    Some((tools, coturn, server))
}

/// Opens the chat page with the recorder on and waits for the server's welcome (the
/// connection indicator says Connected and the Hide my IP offer has been decided).
async fn open_chat(page: &Page) {
    page.install_recorder().await;
    page.open("/chat").await;
    page.wait_for(
        "document.getElementById('conn').dataset.status === 'connected' && window.__rec.msgs.some((m) => m.type === 'welcome')",
        "the server's welcome",
        PATIENCE,
    )
    .await;
}

/// Checks "Hide my IP" (it must be offered: the server hands out a TURN URL).
async fn hide_my_ip(page: &Page) {
    assert!(
        page.is_displayed("#hide-ip").await,
        "{}: Hide my IP is offered when the server has a TURN relay\n  page: {}",
        page.name,
        page.describe().await
    );
    page.click_css("#hide-ip").await;
    assert_eq!(
        page.eval("window.__strangers.hideIp").await,
        true,
        "{}: Hide my IP is checked",
        page.name
    );
}

/// The current call's selected candidate pair: `{local: {type, address, port}, remote: …}`,
/// or `false` while there is none.
const SELECTED_PAIR: &str = r#"await (async () => {
  const pc = window.__strangers && window.__strangers.pc;
  if (!pc || pc.connectionState !== 'connected') return false;
  const stats = await pc.getStats();
  let pairId = null;
  stats.forEach((r) => { if (r.type === 'transport' && r.selectedCandidatePairId) pairId = r.selectedCandidatePairId; });
  const pair = pairId && stats.get(pairId);
  if (!pair) return false;
  const cand = (id) => { const c = stats.get(id); return c ? { type: c.candidateType, address: c.address, port: c.port, protocol: c.protocol } : null; };
  return { local: cand(pair.localCandidateId), remote: cand(pair.remoteCandidateId), policy: pc.getConfiguration().iceTransportPolicy };
})()"#;

/// Both sides check Hide my IP: the call connects through coturn, video decodes on both
/// pages, and on both the selected candidate pair is relay to relay. The checkbox is offered
/// only because the server has a TURN relay: on a server without one it is hidden.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hide_my_ip_on_both_sides_connects_relay_to_relay() {
    let _lock = harness::exclusive().await;
    let Some((tools, coturn, server)) = setup(SECRET).await else {
        return;
    };
    let base = format!("http://{}", server.addr);
    let pages = Browser::launch_all(&tools, &base, &[("A", Media::Fake), ("B", Media::Fake)]).await;
    let [a, b] = &pages[..] else { unreachable!() };

    // Without a relay there is nothing to hide behind: no checkbox.
    let plain = TestServer::start(&[]).await;
    a.open_url(&format!("http://{}/chat", plain.addr)).await;
    a.wait_for(
        "document.getElementById('conn').dataset.status === 'connected'",
        "the server without TURN welcoming A",
        PATIENCE,
    )
    .await;
    assert!(
        !a.is_displayed("#hide-ip").await,
        "Hide my IP must not be offered by a server without TURN"
    );
    plain.shutdown().await;

    for page in [a, b] {
        open_chat(page).await;
        hide_my_ip(page).await;
    }
    a.click_button("Start").await;
    common::wait_waiting(server.addr, 1, "a page pressed Start").await;
    b.click_button("Start").await;
    let (room_a, room_b) = tokio::join!(a.wait_video(PATIENCE), b.wait_video(PATIENCE));
    assert_eq!(room_a, room_b);

    for page in [a, b] {
        let pair = page
            .wait_for(
                SELECTED_PAIR,
                "a selected candidate pair",
                Duration::from_secs(5),
            )
            .await;
        let pair = wait_pair_types(page, pair).await;
        assert_eq!(pair["policy"], "relay", "{}: {pair}", page.name);
        for side in ["local", "remote"] {
            assert_eq!(
                pair[side]["type"], "relay",
                "{}: the selected pair's {side} candidate is a relay one: {pair}",
                page.name
            );
            let port = pair[side]["port"].as_u64().unwrap_or(0) as u16;
            assert!(
                coturn.is_relay_port(port) && pair[side]["address"] == "127.0.0.1",
                "{}: the {side} candidate is one of coturn's relay addresses \
                 (127.0.0.1:{}-{}): {pair}",
                page.name,
                coturn.relay.0,
                coturn.relay.1
            );
        }
        // Nothing but relay candidates was gathered.
        let local_types = page
            .eval(
                "(async () => { const t = []; (await __strangers.pc.getStats()).forEach((r) => { \
                   if (r.type === 'local-candidate') t.push(r.candidateType); }); return t; })()",
            )
            .await;
        let local_types = local_types.as_array().cloned().unwrap_or_default();
        assert!(
            !local_types.is_empty() && local_types.iter().all(|t| t == "relay"),
            "{}: a relay-only call gathers relay candidates only: {local_types:?}",
            page.name
        );
        eprintln!("{}: selected pair {pair}", page.name);
    }
    let log = coturn.log();
    assert!(
        !log.contains("check_stun_auth"),
        "coturn accepted every credential the server signed; its log:\n{log}"
    );
    assert_no_console_errors(&[a, b]).await;
}

/// The remote candidate of a relay-to-relay pair can first be known as peer-reflexive (the
/// stranger's check arrived before its candidate did); Chromium renames it once the
/// signaled candidate comes. Waits (briefly) for both types to settle; returns the pair.
async fn wait_pair_types(page: &Page, first: Value) -> Value {
    if first["local"]["type"] == "relay" && first["remote"]["type"] == "relay" {
        return first;
    }
    let condition = format!(
        "await (async () => {{ const p = {SELECTED_PAIR}; \
           return p && p.local && p.remote && p.local.type === 'relay' && p.remote.type === 'relay' && p; }})()"
    );
    page.wait_for(
        &condition,
        &format!("a relay-to-relay selected pair (first seen: {first})"),
        Duration::from_secs(5),
    )
    .await
}

/// Only A checks Hide my IP. The call connects, and nothing B ever learns about A is
/// anything but A's relay address on coturn: every `candidate` message B receives, every
/// candidate line of A's SDPs, every candidate B's page hands to `addIceCandidate`, and
/// every remote candidate B's ICE agent knows (including peer-reflexive ones it learns from
/// A's checks). A, which hides nothing from nobody, does receive B's host candidates (so
/// the recording would have seen A's, had A sent any).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hiding_one_side_never_reveals_its_address() {
    let _lock = harness::exclusive().await;
    let Some((tools, coturn, server)) = setup(SECRET).await else {
        return;
    };
    let base = format!("http://{}", server.addr);
    let pages = Browser::launch_all(&tools, &base, &[("A", Media::Fake), ("B", Media::Fake)]).await;
    let [a, b] = &pages[..] else { unreachable!() };

    open_chat(a).await;
    hide_my_ip(a).await;
    open_chat(b).await;
    a.click_button("Start").await;
    common::wait_waiting(server.addr, 1, "a page pressed Start").await;
    b.click_button("Start").await;
    let (room_a, room_b) = tokio::join!(a.wait_video(PATIENCE), b.wait_video(PATIENCE));
    assert_eq!(room_a, room_b);
    // Let the trickle finish (both sides have sent end-of-candidates) before reading.
    for page in [a, b] {
        page.wait_for(
            "window.__rec.msgs.some((m) => m.type === 'candidate' && m.candidate === null)",
            "the stranger's end-of-candidates",
            PATIENCE,
        )
        .await;
    }
    let policies = (
        a.eval("__strangers.pc.getConfiguration().iceTransportPolicy")
            .await,
        b.eval("__strangers.pc.getConfiguration().iceTransportPolicy")
            .await,
    );
    assert_eq!(policies.0, "relay", "A hides its address");
    assert_eq!(policies.1, "all", "B does not");
    let pair = a
        .wait_for(
            SELECTED_PAIR,
            "A's selected candidate pair",
            Duration::from_secs(5),
        )
        .await;
    assert_eq!(
        pair["local"]["type"], "relay",
        "A's media leaves through its relay: {pair}"
    );

    // Everything B learned of A.
    let learned = b
        .eval(
            "(async () => { \
               const rec = window.__rec; \
               const signaled = rec.msgs.filter((m) => m.type === 'candidate' && m.candidate).map((m) => m.candidate); \
               const sdp = rec.msgs.filter((m) => m.sdp).flatMap((m) => m.sdp.split(/\\r?\\n/).filter((l) => l.startsWith('a=candidate:'))); \
               const added = rec.pcs.flatMap((p) => p.added); \
               const applied = rec.pcs.flatMap((p) => p.sdps).flatMap((s) => s.split(/\\r?\\n/).filter((l) => l.startsWith('a=candidate:'))); \
               const seen = []; \
               for (const pc of window.__recPcs) { if (pc.signalingState === 'closed') continue; \
                 (await pc.getStats()).forEach((r) => { if (r.type === 'remote-candidate') \
                   seen.push({ type: r.candidateType, address: r.address, port: r.port }); }); } \
               return { signaled, sdp, added, applied, seen }; })()",
        )
        .await;
    let mut leaks = String::new();
    let mut lines = 0;
    for key in ["signaled", "sdp", "added", "applied"] {
        for line in learned[key].as_array().into_iter().flatten() {
            let line = line.as_str().unwrap_or_default();
            lines += 1;
            match parse_candidate(line) {
                Some((typ, address, port))
                    if typ == "relay" && address == "127.0.0.1" && coturn.is_relay_port(port) => {}
                _ => {
                    let _ = writeln!(leaks, "  {key}: {line}");
                }
            }
        }
    }
    let seen = learned["seen"].as_array().cloned().unwrap_or_default();
    for c in &seen {
        let port = c["port"].as_u64().unwrap_or(0) as u16;
        let relay_address = c["address"] == "127.0.0.1" && coturn.is_relay_port(port);
        // A peer-reflexive remote candidate is where A's checks came from: its relay.
        if !(relay_address && (c["type"] == "relay" || c["type"] == "prflx")) {
            let _ = writeln!(leaks, "  B's ICE agent knows {c}");
        }
    }
    assert!(
        learned["signaled"]
            .as_array()
            .is_some_and(|v| !v.is_empty())
            && !seen.is_empty(),
        "B learned A's relay candidates: {learned}"
    );
    assert!(
        leaks.is_empty(),
        "B learned candidates of A's that are not its relay address \
         (coturn relays on 127.0.0.1:{}-{}):\n{leaks}",
        coturn.relay.0,
        coturn.relay.1
    );
    eprintln!(
        "B learned {lines} candidate lines and {} remote candidates of A's, all relay",
        seen.len()
    );

    // The control: what A received from B includes B's own (host) address.
    let from_b = a
        .eval(
            "window.__rec.msgs.filter((m) => m.type === 'candidate' && m.candidate).map((m) => m.candidate)",
        )
        .await;
    let from_b: Vec<&str> = from_b
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        from_b
            .iter()
            .any(|l| parse_candidate(l).is_some_and(|(typ, ..)| typ == "host")),
        "A saw B's host candidates (the recording sees what is sent): {from_b:?}"
    );
    assert_no_console_errors(&[a, b]).await;
}

/// `candidate:… <address> <port> typ <type> …` → (type, address, port).
fn parse_candidate(line: &str) -> Option<(String, String, u16)> {
    let line = line.strip_prefix("a=").unwrap_or(line);
    let fields: Vec<&str> = line.split_whitespace().collect();
    let typ = fields
        .iter()
        .position(|f| *f == "typ")
        .and_then(|i| fields.get(i + 1))?;
    // candidate:<foundation> <component> <protocol> <priority> <address> <port> typ <type>
    let address = fields.get(4)?;
    let port = fields.get(5)?.parse().ok()?;
    Some((typ.to_string(), address.to_string(), port))
}

/// The server signs TURN credentials with a secret that is not coturn's. Two relay-only
/// pages are matched, but coturn refuses their allocations (401), so neither has a single
/// candidate: the call never connects. Chromium does not call a check-less ICE session
/// "failed" (its connectionState stays "new"), so what the user is left with is the app's
/// own hint 15 s after the match: "Still connecting through the relay…". Up to then (and
/// on both pages) the connection was never "connected".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_turn_secret_never_connects() {
    let _lock = harness::exclusive().await;
    let Some((tools, coturn, server)) = setup("wrong").await else {
        return;
    };
    let base = format!("http://{}", server.addr);
    let pages = Browser::launch_all(&tools, &base, &[("A", Media::Fake), ("B", Media::Fake)]).await;
    let [a, b] = &pages[..] else { unreachable!() };
    for page in [a, b] {
        open_chat(page).await;
        hide_my_ip(page).await;
    }
    a.click_button("Start").await;
    common::wait_waiting(server.addr, 1, "a page pressed Start").await;
    b.click_button("Start").await;
    let started = Instant::now();

    // Gathering ends with nothing: the relay refused us, and relay-only allows nothing else.
    let refused = "await (async () => { \
        const pc = window.__strangers.pc; const rec = window.__rec.pcs.at(-1); \
        if (!pc || !rec || pc.iceGatheringState !== 'complete') return false; \
        let local = 0; (await pc.getStats()).forEach((r) => { if (r.type === 'local-candidate') local += 1; }); \
        return { local, errors: rec.errors, state: pc.connectionState, policy: pc.getConfiguration().iceTransportPolicy }; })()";
    let (ra, rb) = tokio::join!(
        a.wait_for(refused, "ICE gathering to end", PATIENCE),
        b.wait_for(refused, "ICE gathering to end", PATIENCE),
    );
    for (page, r) in [(a, &ra), (b, &rb)] {
        assert_eq!(r["policy"], "relay", "{}: {r}", page.name);
        assert_eq!(
            r["local"], 0,
            "{}: no candidate without a relay allocation: {r}",
            page.name
        );
        let errors = r["errors"].as_array().cloned().unwrap_or_default();
        assert!(
            errors.iter().any(|e| e["code"] == 401),
            "{}: the TURN server refused the credentials (icecandidateerror 401): {r}",
            page.name
        );
    }

    // What the user sees once the app gives up waiting.
    let hint = "(() => { const pcs = window.__rec.pcs; \
        if (pcs.some((p) => p.states.some((s) => s.s === 'connected'))) return 'connected'; \
        const status = document.getElementById('status').textContent; \
        return status.startsWith('Still connecting through the relay') && \
          { status, state: window.__strangers.pc.connectionState, states: pcs.map((p) => p.states.map((s) => s.s)) }; })()";
    let (ha, hb) = tokio::join!(
        a.wait_for(hint, "the relay hint after 15 s", PATIENCE),
        b.wait_for(hint, "the relay hint after 15 s", PATIENCE),
    );
    for (page, h) in [(a, &ha), (b, &hb)] {
        assert_ne!(
            *h, "connected",
            "{}: a call with refused TURN credentials connected",
            page.name
        );
        assert!(
            h["state"] == "new" || h["state"] == "failed",
            "{}: never connected: {h}",
            page.name
        );
    }
    eprintln!(
        "{:.1?} after the match, still not connected: A {ha}, B {hb}",
        started.elapsed()
    );

    eprintln!("gathering ended with A {ra}, B {rb}");

    // coturn's side of it: no user has the password the server signed.
    let log = coturn.log();
    assert!(
        log.contains("check_stun_auth: Cannot find credentials of user <"),
        "coturn refused the server's credentials; its log:\n{log}"
    );
    assert_no_console_errors(&[a, b]).await;
}
