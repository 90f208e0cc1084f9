//! Per-session message budgets: how fast one client may send, and what happens when it
//! sends faster.
//!
//! Two token buckets (GCRA, from `governor`): one for every message a client sends, sized for
//! the burst of candidates at the start of a call; one more for `join` and `next`, so a client
//! cannot churn the queue (a skip-flood). A message over budget is dropped and answered with
//! `rate_limited` once per run of drops; a client that keeps flooding is disconnected.

use std::num::NonZeroU32;

use governor::clock::MonotonicClock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

/// Dropped messages in a row after which the client is disconnected (close 1008).
pub const STRIKES_TO_CLOSE: u32 = 200;

type Bucket =
    RateLimiter<NotKeyed, InMemoryState, MonotonicClock, NoOpMiddleware<std::time::Instant>>;

/// The sizes of the buckets, shared by all sessions.
#[derive(Clone, Copy, Debug)]
pub struct Rates {
    /// Every message: sustained per second.
    pub messages_per_second: NonZeroU32,
    /// Every message: burst.
    pub message_burst: NonZeroU32,
    /// `join` and `next`: sustained per minute.
    pub joins_per_minute: NonZeroU32,
    /// `join` and `next`: burst.
    pub join_burst: NonZeroU32,
}

impl Rates {
    /// Rates from plain numbers; zero is raised to one.
    pub fn new(per_second: u32, burst: u32, joins_per_minute: u32, join_burst: u32) -> Rates {
        let nz = |n: u32| NonZeroU32::new(n.max(1)).expect("at least one");
        Rates {
            messages_per_second: nz(per_second),
            message_burst: nz(burst),
            joins_per_minute: nz(joins_per_minute),
            join_burst: nz(join_burst),
        }
    }
}

/// One session's buckets and its count of drops in a row.
pub struct Budget {
    messages: Bucket,
    joins: Bucket,
    /// Messages dropped since the last one that was allowed.
    strikes: u32,
}

/// Which bucket a charge draws on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cost {
    /// Any frame from the client.
    Message,
    /// A `join` or `next`, on top of its message cost.
    Join,
}

/// What to do with one message.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Within budget: handle it.
    Allow,
    /// Over budget: drop it; `tell` says whether to send `rate_limited` (the first drop of a
    /// run).
    Drop { tell: bool },
    /// Flooding on: disconnect with 1008.
    Close,
}

impl Budget {
    pub fn new(rates: Rates) -> Budget {
        let messages =
            Quota::per_second(rates.messages_per_second).allow_burst(rates.message_burst);
        let joins = Quota::per_minute(rates.joins_per_minute).allow_burst(rates.join_burst);
        Budget {
            messages: RateLimiter::direct_with_clock(messages, MonotonicClock),
            joins: RateLimiter::direct_with_clock(joins, MonotonicClock),
            strikes: 0,
        }
    }

    /// Charges `cost`: every frame is charged [`Cost::Message`] before it is even parsed
    /// (so a flood costs us little more than reading it), and a `join` or `next` is charged
    /// [`Cost::Join`] as well.
    pub fn charge(&mut self, cost: Cost) -> Verdict {
        let bucket = match cost {
            Cost::Message => &self.messages,
            Cost::Join => &self.joins,
        };
        if bucket.check().is_ok() {
            self.strikes = 0;
            return Verdict::Allow;
        }
        self.strikes += 1;
        if self.strikes >= STRIKES_TO_CLOSE {
            Verdict::Close
        } else {
            Verdict::Drop {
                tell: self.strikes == 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_drops_are_told_once_then_a_flood_is_closed() {
        let mut b = Budget::new(Rates::new(1, 5, 60, 20));
        for _ in 0..5 {
            assert_eq!(b.charge(Cost::Message), Verdict::Allow);
        }
        assert_eq!(b.charge(Cost::Message), Verdict::Drop { tell: true });
        assert_eq!(b.charge(Cost::Message), Verdict::Drop { tell: false });
        let mut last = Verdict::Allow;
        for _ in 0..STRIKES_TO_CLOSE {
            last = b.charge(Cost::Message);
        }
        assert_eq!(last, Verdict::Close);
    }

    #[test]
    fn joins_have_their_own_smaller_budget() {
        let mut b = Budget::new(Rates::new(100, 100, 1, 3));
        for _ in 0..3 {
            assert_eq!(b.charge(Cost::Join), Verdict::Allow);
        }
        assert_eq!(b.charge(Cost::Join), Verdict::Drop { tell: true });
        assert_eq!(
            b.charge(Cost::Message),
            Verdict::Allow,
            "other messages still pass"
        );
    }
}
