//! Startup mode: how long a server command takes from spawn to an accepting socket.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::net::Target;

/// Start-up times of a server command, in milliseconds.
#[derive(Serialize, Debug)]
pub struct StartupReport {
    /// The command timed, so the figure says what it is of.
    pub command: Vec<String>,
    /// Starts timed.
    pub runs: usize,
    /// The fastest start.
    pub min_ms: f64,
    /// The typical start.
    pub median_ms: f64,
    /// The slowest start.
    pub max_ms: f64,
    /// Every start, in the order they ran, to see a trend or an outlier.
    pub all_ms: Vec<f64>,
}

/// Startup mode: spawn the command, poll the URL's address until it accepts, kill it; `runs`
/// times.
pub async fn run(target: &Target, runs: u32, command: &[String]) -> Result<StartupReport, String> {
    let addr = target.addr;
    let command = command.to_vec();
    tokio::task::spawn_blocking(move || {
        let mut all = Vec::new();
        for _ in 0..runs.max(1) {
            all.push(time_one_start(addr, &command)?);
            // Let the port's sockets go before the next start.
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut sorted = all.clone();
        sorted.sort_by(f64::total_cmp);
        Ok(StartupReport {
            command,
            runs: all.len(),
            min_ms: sorted[0],
            median_ms: sorted[sorted.len() / 2],
            max_ms: sorted[sorted.len() - 1],
            all_ms: all,
        })
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Starts `command` once, waits (at most 10 s) until `addr` accepts a TCP connection, kills
/// it, and returns how long that took in milliseconds (two decimals).
fn time_one_start(addr: SocketAddr, command: &[String]) -> Result<f64, String> {
    if std::net::TcpStream::connect(addr).is_ok() {
        return Err(format!(
            "something already listens on {addr}; stop it or choose another --url port"
        ));
    }
    let t0 = Instant::now();
    let mut child = Command::new(&command[0])
        .args(&command[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {:?}: {e}", command[0]))?;
    let mut up = None;
    while t0.elapsed() < Duration::from_secs(10) {
        if std::net::TcpStream::connect(addr).is_ok() {
            up = Some(t0.elapsed());
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("the server exited before listening: {status}"));
        }
        std::thread::sleep(Duration::from_micros(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    let up = up.ok_or("the server did not listen within 10s")?;
    Ok((up.as_secs_f64() * 1e5).round() / 100.0)
}
