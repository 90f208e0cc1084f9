//! A router's WAN cable with a userspace middle: two TAP devices and a forwarder between
//! them that holds each frame going up for a set delay, drops a set share of them, or drops
//! everything while the cable is "unplugged". (This kernel has no `sch_netem`.)
//!
//! One TAP is the router's WAN interface; the other is moved into the public namespace and
//! joins its bridge. The devices live as long as this process holds their descriptors, so
//! they vanish with the [`Link`], with the process, or with their namespaces.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::netns;

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;
/// How often a blocked reader or writer looks at the stop flag.
const TICK_MS: i32 = 50;

/// What the cable does to frames, changeable while it runs.
#[derive(Default)]
struct Impairment {
    /// One-way delay on the uplink (router → public), microseconds.
    uplink_delay_us: AtomicU64,
    /// Share of uplink frames dropped, in millionths.
    uplink_loss_ppm: AtomicU32,
    /// Unplugged: every frame, both ways, is dropped.
    down: AtomicBool,
}

/// The cable; dropping it stops the forwarder and removes both devices.
pub struct Link {
    impairment: Arc<Impairment>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Link {
    /// Makes `router_if` in `router_ns` and `public_if` in `public_ns` (on `bridge`), and
    /// starts forwarding between them. Addresses are the caller's business.
    pub fn create(
        router_ns: &str,
        router_if: &str,
        public_ns: &str,
        public_if: &str,
        bridge: &str,
    ) -> Result<Link, String> {
        let (wan, far) = netns::within(router_ns, || -> Result<(File, File), String> {
            Ok((open_tap(router_if)?, open_tap(public_if)?))
        })??;
        netns::ip(&[
            "-n", router_ns, "link", "set", public_if, "netns", public_ns,
        ])?;
        netns::ip(&["-n", public_ns, "link", "set", public_if, "master", bridge])?;
        netns::ip(&["-n", public_ns, "link", "set", public_if, "up"])?;
        netns::ip(&["-n", router_ns, "link", "set", router_if, "up"])?;

        let impairment = Arc::new(Impairment::default());
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for (from, to, uplink) in [(clone(&wan)?, clone(&far)?, true), (far, wan, false)] {
            let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
            let (imp, halt) = (impairment.clone(), stop.clone());
            threads.push(spawn("lab-link-read", move || {
                read_frames(from, tx, &imp, &halt, uplink)
            }));
            let halt = stop.clone();
            threads.push(spawn("lab-link-write", move || write_frames(to, rx, &halt)));
        }
        Ok(Link {
            impairment,
            stop,
            threads,
        })
    }

    /// Sets the one-way delay of frames going up (home → Internet).
    pub fn set_uplink_delay(&self, delay: Duration) {
        let us = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        self.impairment.uplink_delay_us.store(us, Ordering::Relaxed);
    }

    /// Sets the share (0.0–1.0) of frames going up that are lost.
    pub fn set_uplink_loss(&self, share: f64) {
        let ppm = (share.clamp(0.0, 1.0) * 1e6) as u32;
        self.impairment
            .uplink_loss_ppm
            .store(ppm, Ordering::Relaxed);
    }

    /// Unplugs (`true`) or plugs the cable back in (`false`).
    pub fn set_down(&self, down: bool) {
        self.impairment.down.store(down, Ordering::Relaxed);
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .expect("a forwarder thread")
}

fn clone(file: &File) -> Result<File, String> {
    file.try_clone().map_err(|e| format!("dup a TAP fd: {e}"))
}

/// Opens `/dev/net/tun` and makes the TAP device `name` in this thread's namespace.
fn open_tap(name: &str) -> Result<File, String> {
    let file = File::options()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .map_err(|e| format!("/dev/net/tun: {e}"))?;
    let mut request = [0u8; 40]; // struct ifreq: 16 bytes of name, then the flags
    let bytes = name.as_bytes();
    if bytes.len() >= 16 {
        return Err(format!("interface name {name:?} is too long"));
    }
    request[..bytes.len()].copy_from_slice(bytes);
    request[16..18].copy_from_slice(&(IFF_TAP | IFF_NO_PI).to_ne_bytes());
    // SAFETY: TUNSETIFF reads and writes a struct ifreq, which `request` is large enough for.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF as _, request.as_mut_ptr()) };
    if rc != 0 {
        return Err(format!(
            "TUNSETIFF {name}: {}",
            std::io::Error::last_os_error()
        ));
    }
    // The descriptor stays blocking; readers poll with a timeout to notice the stop flag.
    Ok(file)
}

/// Whether `file` has a frame to read within one tick.
fn readable(file: &File) -> bool {
    let mut fds = libc::pollfd {
        fd: file.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut fds, 1, TICK_MS) > 0 }
}

fn read_frames(
    mut from: File,
    to: mpsc::Sender<(Instant, Vec<u8>)>,
    imp: &Impairment,
    stop: &AtomicBool,
    uplink: bool,
) {
    let mut random = Xorshift(0x9E37_79B9_7F4A_7C15 ^ u64::from(uplink));
    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::Relaxed) {
        if !readable(&from) {
            continue;
        }
        let Ok(n) = from.read(&mut buf) else { return };
        if imp.down.load(Ordering::Relaxed) {
            continue;
        }
        let mut due = Instant::now();
        if uplink {
            let loss = imp.uplink_loss_ppm.load(Ordering::Relaxed);
            if loss > 0 && (random.next() % 1_000_000) < u64::from(loss) {
                continue;
            }
            due += Duration::from_micros(imp.uplink_delay_us.load(Ordering::Relaxed));
        }
        if to.send((due, buf[..n].to_vec())).is_err() {
            return;
        }
    }
}

/// Writes each frame once its time has come. The delay is the same for every frame of a
/// direction, so arrival order is kept.
fn write_frames(mut to: File, from: mpsc::Receiver<(Instant, Vec<u8>)>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let (due, frame) = match from.recv_timeout(Duration::from_millis(TICK_MS as u64)) {
            Ok(next) => next,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        let wait = due.saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
        // A frame the device refuses (it is going away, say) is a lost frame.
        let _ = to.write(&frame);
    }
}

/// A small deterministic generator for the loss decisions.
struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}
