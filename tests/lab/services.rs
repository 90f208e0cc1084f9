//! The lab's public services: the real `strangers` binary and a real coturn, each a process
//! inside the public namespace, stopped by pid when dropped.

use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::netns;
use super::topology::PUBLIC_HOST;

/// coturn's shared secret (`static-auth-secret`), also given to the server.
pub const TURN_SECRET: &str = "lab-shared-secret";
/// coturn's listening port (UDP and TCP).
pub const TURN_PORT: u16 = 3478;
/// coturn's relay ports.
pub const RELAY_PORTS: (u16, u16) = (49152, 49251);
/// The server's port on the public address.
pub const SERVER_PORT: u16 = 8080;

/// Peer ranges coturn must never relay to: a browser's private host candidates (relaying
/// to one fails with "Network is unreachable", after which coturn closes the whole
/// allocation), loopback, link-local and carrier-grade NAT space.
pub const DENIED_PEERS: [&str; 6] = [
    "10.0.0.0-10.255.255.255",
    "172.16.0.0-172.31.255.255",
    "192.168.0.0-192.168.255.255",
    "127.0.0.0-127.255.255.255",
    "169.254.0.0-169.254.255.255",
    "100.64.0.0-100.127.255.255",
];

/// A process in a lab namespace; killed by its pid on drop.
pub struct Service {
    pub name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Service {
    /// Starts `program args` inside `ns` (`ip netns exec` replaces itself with the
    /// program, so the child's pid is the program's), its output into `log`.
    fn spawn(
        name: &'static str,
        ns: &str,
        program: &Path,
        args: &[String],
        log: PathBuf,
    ) -> Result<Service, String> {
        let out = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(program)
            .args(args)
            .current_dir(log.parent().unwrap_or(Path::new("/")))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
        Ok(Service { name, child, log })
    }

    /// What the process wrote so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM (as a supervisor does before a deploy) and waits for the exit.
    pub fn terminate(mut self, within: Duration) -> Result<(), String> {
        netns::kill(self.child.id(), libc::SIGTERM);
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!("{} did not exit within {within:?}", self.name))
    }

    /// Waits until `ready` holds (probed from inside `ns`), the process exits, or time is up.
    fn await_ready(
        &mut self,
        ns: &str,
        within: Duration,
        ready: impl Fn() -> bool + Send + Sync,
    ) -> Result<(), String> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "{} exited with {status}:\n{}",
                    self.name,
                    self.log()
                ));
            }
            if netns::within(ns, &ready)? {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} not ready within {within:?}:\n{}",
                    self.name,
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// coturn on the public address: STUN and TURN (UDP and TCP), REST API credentials.
pub fn start_coturn(ns: &str, dir: &Path) -> Result<Service, String> {
    let mut args: Vec<String> = [
        "-n",
        "--no-tls",
        "--no-dtls",
        "--no-cli",
        "--no-rfc5780",
        "--fingerprint",
        "--use-auth-secret",
        "--realm=strangers",
        "--no-multicast-peers",
        "--log-file=stdout",
        "--simple-log",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    args.extend([
        format!("--static-auth-secret={TURN_SECRET}"),
        format!("--listening-ip={PUBLIC_HOST}"),
        format!("--relay-ip={PUBLIC_HOST}"),
        format!("--listening-port={TURN_PORT}"),
        format!("--min-port={}", RELAY_PORTS.0),
        format!("--max-port={}", RELAY_PORTS.1),
        format!("--pidfile={}", dir.join("turnserver.pid").display()),
        format!("--userdb={}", dir.join("turndb").display()),
    ]);
    args.extend(DENIED_PEERS.iter().map(|r| format!("--denied-peer-ip={r}")));
    let program = find_program("TURNSERVER", "turnserver")?;
    let mut service = Service::spawn("coturn", ns, &program, &args, dir.join("coturn.log"))?;
    let addr: SocketAddr = format!("{PUBLIC_HOST}:{TURN_PORT}").parse().unwrap();
    service.await_ready(ns, Duration::from_secs(10), move || {
        stun_answers(addr) && TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
    })?;
    Ok(service)
}

/// Whether a STUN Binding request to `addr` is answered within a moment.
fn stun_answers(addr: SocketAddr) -> bool {
    let Ok(socket) = UdpSocket::bind("0.0.0.0:0") else {
        return false;
    };
    let _ = socket.set_read_timeout(Some(Duration::from_millis(100)));
    let mut request = [0u8; 20];
    request[..2].copy_from_slice(&0x0001u16.to_be_bytes());
    request[4..8].copy_from_slice(&0x2112_A442u32.to_be_bytes());
    request[8..20].copy_from_slice(b"lab-probe-01");
    let mut buf = [0u8; 1500];
    socket.send_to(&request, addr).is_ok()
        && socket
            .recv_from(&mut buf)
            .is_ok_and(|(n, _)| n >= 20 && buf[8..20] == request[8..20])
}

/// What the server offers browsers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offer {
    /// STUN and TURN (UDP and TCP), credentials signed with coturn's secret.
    Turn,
    /// STUN only: no relay, so no Hide my IP.
    StunOnly,
}

/// The real `strangers` binary on `PUBLIC_HOST:port` inside `ns`.
pub fn start_server(ns: &str, dir: &Path, port: u16, offer: Offer) -> Result<Service, String> {
    let listen = format!("{PUBLIC_HOST}:{port}");
    let stun = format!("stun:{PUBLIC_HOST}:{TURN_PORT}");
    let mut args: Vec<String> = vec![
        "--listen".into(),
        listen.clone(),
        "--stun".into(),
        stun,
        "--seed".into(),
        "1".into(),
        "--rematch-cooldown".into(),
        "0s".into(),
        "--drain".into(),
        "1s".into(),
        "--report-log".into(),
        dir.join(format!("reports-{port}.jsonl"))
            .display()
            .to_string(),
    ];
    if offer == Offer::Turn {
        let urls = format!(
            "turn:{PUBLIC_HOST}:{TURN_PORT}?transport=udp,turn:{PUBLIC_HOST}:{TURN_PORT}?transport=tcp"
        );
        args.extend(["--turn-url".into(), urls]);
        args.extend(["--turn-secret".into(), TURN_SECRET.into()]);
    }
    let program = PathBuf::from(env!("CARGO_BIN_EXE_strangers"));
    let log = dir.join(format!("server-{port}.log"));
    let mut service = Service::spawn("strangers", ns, &program, &args, log)?;
    let addr: SocketAddr = listen.parse().unwrap();
    service.await_ready(ns, Duration::from_secs(10), move || {
        TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
    })?;
    Ok(service)
}

/// `$VAR` or the first `name` on `PATH`.
pub fn find_program(var: &str, name: &str) -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(var).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let dirs = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&dirs)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| format!("no {name} on PATH"))
}
