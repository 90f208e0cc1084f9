//! Network namespaces: running `ip`, `nft` and programs inside one, and opening sockets or
//! devices in one from a thread of this process (`setns`), never in the machine's own.

use std::fs::File;
use std::io::Write as _;
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};

/// Runs `ip` with `args` (use `-n <ns>` to act inside a namespace) and fails with its
/// stderr when it fails.
pub fn ip(args: &[&str]) -> Result<(), String> {
    run("ip", args, None)
}

/// Runs `ip netns exec <ns> <program> <args>`: a program wholly inside the namespace.
pub fn exec(ns: &str, program: &str, args: &[&str]) -> Result<(), String> {
    let mut all = vec!["netns", "exec", ns, program];
    all.extend_from_slice(args);
    run("ip", &all, None)
}

/// Loads an nftables ruleset (`nft -f -`) in the namespace.
pub fn nft(ns: &str, ruleset: &str) -> Result<(), String> {
    run(
        "ip",
        &["netns", "exec", ns, "nft", "-f", "-"],
        Some(ruleset),
    )
}

/// The output of `nft <args>` run in the namespace.
pub fn nft_output(ns: &str, args: &[&str]) -> Result<String, String> {
    let mut all = vec!["netns", "exec", ns, "nft"];
    all.extend_from_slice(args);
    let out = Command::new("ip")
        .args(&all)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ip {}: {}",
            all.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<(), String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .map_err(|e| format!("{program}: writing its input: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Runs `f` on a new thread that has entered the namespace `ns`: sockets and TAP devices it
/// opens belong to that namespace, whatever thread uses them later. If the thread cannot
/// enter the namespace, `f` never runs (nothing is ever opened in the machine's own).
pub fn within<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> Result<T, String> {
    let path = format!("/run/netns/{ns}");
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let handle = File::open(&path).map_err(|e| format!("{path}: {e}"))?;
                // SAFETY: setns on a namespace file descriptor we own; it changes only the
                // network namespace of this thread, which ends when `f` returns.
                let rc = unsafe { libc::setns(handle.as_raw_fd(), libc::CLONE_NEWNET) };
                if rc != 0 {
                    return Err(format!(
                        "setns({path}): {}",
                        std::io::Error::last_os_error()
                    ));
                }
                Ok(f())
            })
            .join()
            .map_err(|_| format!("a thread inside {ns} panicked"))?
    })
}

/// The pids of every process in the namespace (`ip netns pids`).
pub fn pids(ns: &str) -> Vec<u32> {
    Command::new("ip")
        .args(["netns", "pids", ns])
        .stderr(Stdio::null())
        .output()
        .map(|out| {
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Kills every process in the namespace (by pid) and deletes it. Best effort: used on
/// every exit path, including a panic.
pub fn destroy(ns: &str) {
    for _round in 0..20 {
        let left = pids(ns);
        if left.is_empty() {
            break;
        }
        for pid in left {
            kill(pid, libc::SIGKILL);
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    let _ = ip(&["netns", "del", ns]);
}

/// Sends `signal` to one process.
pub fn kill(pid: u32, signal: i32) {
    if let Ok(pid) = i32::try_from(pid)
        && pid > 1
    {
        // SAFETY: kill(2) on a pid we started or found in our own namespace.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

/// The lab namespaces on this machine: `(name, pid of the test process that made them)`.
pub fn lab_namespaces(prefix: &str) -> Vec<(String, u32)> {
    let Ok(entries) = std::fs::read_dir("/run/netns") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter_map(|name| {
            let pid = name.strip_prefix(prefix)?.split('-').next()?.parse().ok()?;
            Some((name, pid))
        })
        .collect()
}

/// Deletes the namespaces left by lab runs whose process is gone (killed with SIGKILL, where
/// no destructor runs).
pub fn sweep_stale(prefix: &str) {
    for (name, pid) in lab_namespaces(prefix) {
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            destroy(&name);
        }
    }
}
