//! The server-wide budget of bytes held in unfinished WebSocket messages, and the rules a
//! message lives under while it arrives.
//!
//! A client can announce a large frame and send it a byte at a time, or leave a fragmented
//! message unfinished: either makes the server hold its bytes. Three bounds together cap
//! that: a message (its frames, and the control frames between them) must be finished within
//! [`Reading::deadline`] of its first byte, in at most [`MAX_FRAMES`] frames; and the bytes
//! every connection holds in unfinished messages share one budget. Past the budget, a
//! connection holding more than [`FAIR_SHARE`] is not read until others give bytes back
//! (its deadline still runs), while connections holding less go on: the heaviest holders
//! stop, everyone else's small messages still pass.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

/// The most frames one message may take, control frames sent between its fragments
/// included. Browsers send each message in one frame.
pub const MAX_FRAMES: u32 = 16;

/// What a connection may hold in an unfinished message while the budget is exhausted.
pub const FAIR_SHARE: usize = 16 * 1024;

/// The rules every connection's reading shares, and the budget's count.
#[derive(Debug)]
pub struct Reading {
    /// The largest message accepted, in bytes.
    pub max_message: usize,
    /// How long a message may take to arrive, from its first byte.
    pub deadline: Duration,
    /// The most bytes all connections may hold in unfinished messages.
    pub budget: usize,
    /// Bytes held now, by every connection together.
    held: AtomicUsize,
    /// Wakes the connections waiting for the budget once bytes are given back.
    freed: Arc<Notify>,
}

impl Reading {
    /// Rules for messages of at most `max_message` bytes, arriving within `deadline`, with
    /// `budget` bytes for all unfinished messages together.
    pub fn new(max_message: usize, deadline: Duration, budget: usize) -> Arc<Reading> {
        Arc::new(Reading {
            max_message,
            deadline,
            budget,
            held: AtomicUsize::new(0),
            freed: Arc::new(Notify::new()),
        })
    }

    /// Rules with no deadline worth the name and no budget: for tests of the framing alone.
    pub fn unbounded(max_message: usize) -> Arc<Reading> {
        Reading::new(max_message, Duration::from_secs(24 * 3600), usize::MAX)
    }

    /// Bytes held now in unfinished messages, by every connection.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// Whether the budget is spent.
    pub fn exhausted(&self) -> bool {
        self.held() >= self.budget
    }

    /// A connection now holds `new` bytes where it held `old`.
    pub(super) fn account(&self, old: usize, new: usize) {
        if new > old {
            self.held.fetch_add(new - old, Ordering::Relaxed);
        } else if old > new {
            let before = self.held.fetch_sub(old - new, Ordering::Relaxed);
            if before >= self.budget && before - (old - new) < self.budget {
                self.freed.notify_waiters();
            }
        }
    }

    /// What a connection waits on while the budget is spent.
    pub(super) fn freed(&self) -> Arc<Notify> {
        self.freed.clone()
    }
}
