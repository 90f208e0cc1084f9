//! Pacing: spreading the churn clients' relayed messages evenly over time at a set rate.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

/// Spaces relayed messages across all clients: a thread of its own adds `rate` permits per
/// second to a fair semaphore, in small steps (about every 100 µs, finer than tokio's 1 ms
/// timer, so the load is not a train of 1 ms bursts), and a client takes one permit per
/// relayed message. Unused permits are banked only up to [`BANK`] worth of them, so a lull is
/// not followed by a burst.
pub struct Pacer {
    /// The permits the thread adds and the clients take; the thread ends once the run drops
    /// them.
    pub permits: Arc<Semaphore>,
}

/// How much of the rate unused permits may bank up.
const BANK: Duration = Duration::from_micros(250);

impl Pacer {
    /// Starts the pacer's thread, adding `rate` permits a second.
    pub fn start(rate: f64) -> Pacer {
        let permits = Arc::new(Semaphore::new(0));
        let weak = Arc::downgrade(&permits);
        let cap = ((rate * BANK.as_secs_f64()).ceil() as usize).max(1);
        std::thread::Builder::new()
            .name("pacer".into())
            .spawn(move || {
                let mut credit = 0.0_f64;
                let mut last = Instant::now();
                // Ends when the run drops its semaphore.
                while let Some(permits) = weak.upgrade() {
                    std::thread::sleep(Duration::from_micros(100));
                    let now = Instant::now();
                    credit += (now - last).as_secs_f64() * rate;
                    last = now;
                    let whole = credit.floor();
                    credit -= whole;
                    let room = cap.saturating_sub(permits.available_permits());
                    let add = (whole as usize).min(room);
                    if add > 0 {
                        permits.add_permits(add);
                    }
                }
            })
            .expect("can start the pacer thread");
        Pacer { permits }
    }
}
