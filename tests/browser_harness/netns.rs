//! A private network namespace for the calling thread, made for Firefox: loopback plus one
//! veth pair whose end `sv0` holds a test-subnet address and carries the default route.
//!
//! Firefox gathers ICE candidates only on the interface of its default route. In a
//! namespace that has only `lo` (CI runs the whole suite in one, `unshare -n`) it gathers
//! none, even with `media.peerconnection.ice.loopback`, and no call connects. With a
//! default route through `sv0` it offers `198.18.0.1` (RFC 2544's benchmarking range), an
//! address of this namespace only: packets to it never leave the namespace, and the route's
//! gateway (`198.18.0.254`) does not exist, so nothing can get out either way.
//!
//! The namespace belongs to the thread that called [`PrivateNet::enter`] and to the threads
//! and processes it starts afterwards (the runtime's workers, the server they run, the
//! drivers and browsers), so a scenario's server and browsers must all start from it:
//! [`block_on_inside`] does that. The machine's own namespace is never changed: `enter`
//! checks that it is in a new namespace before configuring anything. Dropping the
//! [`PrivateNet`] deletes the veth pair and puts the thread back where it was; the kernel
//! frees the namespace once its last thread and process are gone, also on a crash.

use std::fs::File;
use std::future::Future;
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};

use super::tools::skip_or_fail;

/// The address pages in the namespace have besides loopback.
pub const ADDRESS: &str = "198.18.0.1";

/// The calling thread's stay in its private network namespace.
pub struct PrivateNet {
    /// The namespace the thread came from, to go back to.
    home: File,
}

impl PrivateNet {
    /// Moves the calling thread into a new network namespace and sets it up. Needs root
    /// (`CAP_SYS_ADMIN`) and `ip` from iproute2.
    pub fn enter() -> Result<PrivateNet, String> {
        let home = File::open("/proc/thread-self/ns/net")
            .map_err(|e| format!("cannot open this thread's network namespace: {e}"))?;
        let home_id = namespace_id()?;
        // SAFETY: unshare(2) with CLONE_NEWNET only changes the calling thread's namespace;
        // it touches no memory of ours.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return Err(format!(
                "cannot make a network namespace: {}",
                std::io::Error::last_os_error()
            ));
        }
        let net = PrivateNet { home };
        if namespace_id()? == home_id {
            // Never configure the namespace we started in.
            return Err("unshare(CLONE_NEWNET) left the thread where it was".into());
        }
        for args in [
            "link set lo up",
            "link add sv0 type veth peer name sv1",
            &format!("addr add {ADDRESS}/24 dev sv0"),
            "link set sv1 up",
            "link set sv0 up",
            "route add default via 198.18.0.254 dev sv0",
        ] {
            ip(args)?; // on failure, dropping `net` undoes what was done
        }
        Ok(net)
    }
}

impl Drop for PrivateNet {
    fn drop(&mut self) {
        // Deleting one end deletes the pair.
        let _ = ip("link del sv0");
        // SAFETY: setns(2) on a namespace file we opened; only this thread moves.
        unsafe {
            libc::setns(self.home.as_raw_fd(), libc::CLONE_NEWNET);
        }
    }
}

/// The identity of the calling thread's network namespace (`net:[inode]`).
fn namespace_id() -> Result<String, String> {
    std::fs::read_link("/proc/thread-self/ns/net")
        .map(|p| p.display().to_string())
        .map_err(|e| format!("cannot read this thread's network namespace: {e}"))
}

/// Runs `ip ARGS` (from this thread, so in its namespace).
fn ip(args: &str) -> Result<(), String> {
    let program = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .into_iter()
        .find(|p| std::path::Path::new(p).is_file())
        .unwrap_or("ip");
    let out = Command::new(program)
        .args(args.split_whitespace())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {args}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Runs `scenario` to completion on a fresh two-worker runtime inside a private network
/// namespace, which is gone again when this returns (or panics). Without one (not root),
/// `None` after a loud notice, or a failure in CI.
pub fn block_on_inside<F: Future>(scenario: impl FnOnce() -> F) -> Option<F::Output> {
    let net = match PrivateNet::enter() {
        Ok(net) => net,
        Err(e) => {
            return skip_or_fail(
                &e,
                "a private network namespace for Firefox (root and iproute2)",
                "run as root, as .ci/run does",
            );
        }
    };
    // Built after entering: its worker threads, and everything they start, are inside.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let output = runtime.block_on(scenario());
    // Every thread and process of the scenario ends before the namespace is taken down.
    drop(runtime);
    drop(net);
    Some(output)
}
