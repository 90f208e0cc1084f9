//! How a run stops: Ctrl-C, its hard time bound, and the waits that a stop cuts short.

use std::time::{Duration, Instant};

use tokio::sync::watch;

/// Ctrl-C stops the run, which still prints what was measured; a second one quits at once.
/// Returns the receiver that turns `true` on the first Ctrl-C.
pub fn stop_on_ctrl_c() -> watch::Receiver<bool> {
    let (stop_tx, stop) = watch::channel(false);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("stopping (Ctrl-C again to quit at once)");
            let _ = stop_tx.send(true);
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
    stop
}

/// Ends the process (exit code 3) once `bound` has passed, whatever the server does: a run
/// is bounded in time even if every wait of it hangs.
pub fn exit_after(bound: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(bound);
        eprintln!(
            "error: the run exceeded its time bound ({}s); exiting",
            bound.as_secs()
        );
        std::process::exit(3);
    });
}

/// Sleeps for `d`, or less if the run is stopped.
pub async fn sleep_or_stop(d: Duration, stop: &mut watch::Receiver<bool>) {
    if *stop.borrow() {
        return;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = stop.changed() => {}
    }
}

/// Waits until `done()` reaches `want`, printing progress once a second, or until `limit`
/// or a stop. Returns how long it took.
pub async fn wait_for(
    label: &str,
    want: u64,
    done: impl Fn() -> (u64, u64),
    limit: Duration,
    stop: &mut watch::Receiver<bool>,
    quiet: bool,
) -> Duration {
    let start = Instant::now();
    let mut last_print = start;
    let mut last_done = 0;
    loop {
        let (ok, failed) = done();
        if ok + failed >= want || start.elapsed() >= limit || *stop.borrow() {
            return start.elapsed();
        }
        if !quiet && last_print.elapsed() >= Duration::from_secs(1) {
            let dt = last_print.elapsed().as_secs_f64();
            eprintln!(
                "[{:>5.1}s] {label}: {ok}/{want} ({:.0}/s), failed {failed}",
                start.elapsed().as_secs_f64(),
                (ok - last_done) as f64 / dt,
            );
            last_print = Instant::now();
            last_done = ok;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(5)) => {}
            _ = stop.changed() => {}
        }
    }
}
