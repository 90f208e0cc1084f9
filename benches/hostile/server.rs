//! The release `strangers` process under attack: starting it with the caps that are not
//! measured lifted, reading its RSS and CPU time from /proc, and tallying how its sessions
//! and HTTP connections ended from its JSON log.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The niceness of the server and of the healthy pair's thread: ahead of whatever else
/// runs on a shared machine (other builds), as the server is on a machine of its own. The
/// attack's clients keep the default. Without the privilege to raise it, the server runs at
/// the default (`nice` says so on stderr) and the pair's thread too.
pub const NICE: i32 = -10;

/// Raises the calling thread (Linux niceness is per thread) to [`NICE`]; false if not allowed.
pub fn raise_this_thread() -> bool {
    // SAFETY: gettid and setpriority take plain integers and touch no memory of ours.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, NICE) == 0
    }
}

/// The niceness of process `pid` (field 19 of /proc/PID/stat).
pub fn nice_of(pid: u32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let close = stat.rfind(')')?;
    stat[close + 2..].split_whitespace().nth(16)?.parse().ok()
}

/// What the server's log says ended: per kind of end, how many and how long they lived.
#[derive(Default, Debug)]
pub struct Ends {
    /// `session end` reason (or an HTTP connection's error) → lifetimes in milliseconds
    /// (HTTP errors carry none: 0).
    pub by_reason: BTreeMap<String, Vec<u64>>,
}

/// A running server and what its log has told so far.
pub struct Server {
    /// The process; killed when dropped.
    _child: Child,
    /// Its pid, for /proc.
    pub pid: u32,
    /// Where it listens.
    pub addr: SocketAddr,
    /// The tally of its log, kept by a task reading its stderr.
    pub ends: Arc<Mutex<Ends>>,
    /// The report log it writes (removed on drop).
    report: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.report);
        let _ = std::fs::remove_file(self.report.with_extension("salt"));
    }
}

/// Starts the release binary on a free loopback port with the server's own defences at
/// their defaults (header timeout, idle timeout, message deadline, write timeout, relay
/// rate) and the limits the benchmark does not measure lifted: the connection caps (the
/// attack comes from a few hundred addresses), the join budget and the re-match cool-down
/// (attack pairs re-join often).
pub async fn start(phase: &str) -> Server {
    let report = std::env::temp_dir().join(format!(
        "strangers-hostile-{}-{phase}.jsonl",
        std::process::id()
    ));
    // `nice` execs the server, so the child's pid is the server's.
    let mut child = Command::new("nice")
        .args(["-n", &NICE.to_string(), env!("CARGO_BIN_EXE_strangers")])
        .args(["--listen", "127.0.0.1:0", "--stun", ""])
        .args(["--max-connections", "15000", "--max-per-ip", "15000"])
        .args(["--max-pending-per-ip", "15000"])
        .args(["--join-rate", "1000000", "--join-burst", "1000000"])
        .args(["--rematch-cooldown", "0s", "--log-format", "json"])
        .args(["--header-timeout", "10s", "--idle-timeout", "5s"])
        .args(["--message-deadline", "5s", "--write-timeout", "10s"])
        .arg("--report-log")
        .arg(&report)
        // HTTP connections that end with an error are logged at debug.
        .env("RUST_LOG", "info,strangers::http=debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the release server starts");
    let pid = child.id().expect("the server runs");
    let url = crate::support::ws_url(&mut child).await;
    let addr = url
        .trim_start_matches("ws://")
        .trim_end_matches("/ws")
        .parse()
        .expect("the server prints its address");
    let ends = Arc::new(Mutex::new(Ends::default()));
    let stderr = child.stderr.take().expect("stderr is piped");
    tokio::spawn(tally(stderr, ends.clone()));
    Server {
        _child: child,
        pid,
        addr,
        ends,
        report,
    }
}

/// Reads the server's JSON log and counts how sessions and HTTP connections ended.
async fn tally(stderr: tokio::process::ChildStderr, ends: Arc<Mutex<Ends>>) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let fields = &v["fields"];
        let (key, ms) = match fields["message"].as_str() {
            Some("session end") => (
                format!("session {}", fields["reason"].as_str().unwrap_or("?")),
                fields["duration_ms"].as_u64().unwrap_or(0),
            ),
            Some("http connection ended with an error") => (
                format!("http {}", fields["error"].as_str().unwrap_or("?")),
                0,
            ),
            Some(other) if v["level"] == "ERROR" || v["level"] == "WARN" => {
                (format!("log {other}"), 0)
            }
            _ => continue,
        };
        let mut ends = ends.lock().unwrap();
        ends.by_reason.entry(key).or_default().push(ms);
    }
}

/// The resident set of process `pid`, in KiB (`VmRSS` in /proc/PID/status).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU time (user + system) of process `pid` so far, in seconds.
pub fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let Some(close) = stat.rfind(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    // utime and stime, fields 14 and 15 of stat(5); 100 ticks a second on Linux.
    (ticks(11).unwrap_or(0.0) + ticks(12).unwrap_or(0.0)) / 100.0
}

/// The one-minute load average.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// Memory of every TCP socket's buffers on this machine (both ends of loopback), in KiB:
/// the `mem` pages of /proc/net/sockstat. Not part of any RSS.
pub fn tcp_kib() -> u64 {
    let Ok(stat) = std::fs::read_to_string("/proc/net/sockstat") else {
        return 0;
    };
    let Some(line) = stat.lines().find(|l| l.starts_with("TCP:")) else {
        return 0;
    };
    let words: Vec<&str> = line.split_whitespace().collect();
    let pages = words
        .iter()
        .position(|w| *w == "mem")
        .and_then(|i| words.get(i + 1)?.parse::<u64>().ok());
    pages.unwrap_or(0) * 4
}
