//! Per-session message budgets: how fast one client may send, and what happens when it
//! sends faster.
//!
//! Two token buckets (GCRA, from `governor`): one for every message a client sends, sized for
//! the burst of candidates at the start of a call; one more for `join` and `next`, so a client
//! cannot churn the queue (a skip-flood). A message over budget is dropped and answered with
//! `rate_limited` once per run of drops; after a message dropped for the message bucket the
//! session reads nothing more from that client until the bucket has room again, so a flood
//! waits in the flooder's own socket (TCP flow control throttles it) instead of costing us a
//! read, a parse and a drop per frame. A client that keeps flooding is disconnected, and so
//! is one that keeps sending `join`/`next` past that budget (a skip storm at an allowed
//! message rate would otherwise be refused forever and never closed).

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, MonotonicClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

/// Dropped messages after which the client is disconnected (close 1008), counted until a
/// message is allowed with room to spare in the bucket (the client is back within its rate).
/// With reading paused after each drop, a flooder gets here about a second after its burst.
pub const STRIKES_TO_CLOSE: u32 = 50;

/// Refused `join`/`next` messages after which the client is disconnected (close 1008),
/// counted until one is allowed again. The join bucket refills one a second by default, so
/// someone pressing Next a few times a second is refused now and then and never gets
/// here; a storm of 20 a second or more does within about a second.
pub const JOIN_REFUSALS_TO_CLOSE: u32 = 20;

type Bucket<C> = RateLimiter<NotKeyed, InMemoryState, C, StateInformationMiddleware>;

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

/// One session's buckets and its count of drops since it was last within its rate.
pub struct Budget<C: Clock = MonotonicClock> {
    clock: C,
    messages: Bucket<C>,
    joins: Bucket<C>,
    /// Messages dropped since the client was last within its rate.
    strikes: u32,
    /// `join`/`next` refused since one was last allowed.
    join_refusals: u32,
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
    /// run). `pause` is how long to read nothing more from the client: until the message
    /// bucket has room for one message (zero for a dropped `join` or `next`, whose bucket
    /// refills too slowly to hold up everything else the client says).
    Drop { tell: bool, pause: Duration },
    /// Flooding on: disconnect with 1008.
    Close,
}

impl Budget {
    pub fn new(rates: Rates) -> Budget {
        Budget::with_clock(rates, MonotonicClock)
    }
}

impl<C: Clock + Clone> Budget<C> {
    /// A budget on `clock` (tests use a fake one).
    pub fn with_clock(rates: Rates, clock: C) -> Budget<C> {
        let messages =
            Quota::per_second(rates.messages_per_second).allow_burst(rates.message_burst);
        let joins = Quota::per_minute(rates.joins_per_minute).allow_burst(rates.join_burst);
        let bucket = |quota| RateLimiter::direct_with_clock(quota, clock.clone()).with_middleware();
        Budget {
            messages: bucket(messages),
            joins: bucket(joins),
            clock,
            strikes: 0,
            join_refusals: 0,
        }
    }

    /// Charges `cost`: every frame is charged [`Cost::Message`] before it is even parsed,
    /// and a `join` or `next` is charged [`Cost::Join`] as well.
    pub fn charge(&mut self, cost: Cost) -> Verdict {
        let bucket = match cost {
            Cost::Message => &self.messages,
            Cost::Join => &self.joins,
        };
        let pause = match bucket.check() {
            Ok(state) => {
                // A message that only just fit (the bucket is empty again) does not end a run
                // of drops: after a pause exactly one fits, and a flooder is still flooding.
                if cost == Cost::Message && state.remaining_burst_capacity() > 0 {
                    self.strikes = 0;
                }
                if cost == Cost::Join {
                    self.join_refusals = 0;
                }
                return Verdict::Allow;
            }
            Err(_) if cost == Cost::Join => {
                self.join_refusals += 1;
                if self.join_refusals >= JOIN_REFUSALS_TO_CLOSE {
                    return Verdict::Close;
                }
                Duration::ZERO
            }
            Err(not_until) => not_until.wait_time_from(self.clock.now()),
        };
        self.strikes += 1;
        if self.strikes >= STRIKES_TO_CLOSE {
            Verdict::Close
        } else {
            Verdict::Drop {
                tell: self.strikes == 1,
                pause,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn budget(rates: Rates) -> (Budget<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        (Budget::with_clock(rates, clock.clone()), clock)
    }

    fn dropped(tell: bool) -> Verdict {
        Verdict::Drop {
            tell,
            pause: SECOND,
        }
    }

    #[test]
    fn a_burst_passes_then_drops_are_told_once_then_a_flood_is_closed() {
        let (mut b, _clock) = budget(Rates::new(1, 5, 60, 20));
        for _ in 0..5 {
            assert_eq!(b.charge(Cost::Message), Verdict::Allow);
        }
        // Told once, and told to stop reading until the next token (one a second).
        assert_eq!(b.charge(Cost::Message), dropped(true));
        assert_eq!(b.charge(Cost::Message), dropped(false));
        let mut last = Verdict::Allow;
        for _ in 2..STRIKES_TO_CLOSE {
            last = b.charge(Cost::Message);
        }
        assert_eq!(last, Verdict::Close);
    }

    #[test]
    fn after_a_pause_one_message_fits_but_a_flooder_is_still_closed() {
        let (mut b, clock) = budget(Rates::new(1, 5, 60, 20));
        for _ in 0..5 {
            assert_eq!(b.charge(Cost::Message), Verdict::Allow);
        }
        assert_eq!(b.charge(Cost::Message), dropped(true));
        // A flooder that is read again only after each pause: one message fits, the next is
        // dropped, and the drops add up as one run.
        for _ in 1..STRIKES_TO_CLOSE - 1 {
            clock.advance(SECOND);
            assert_eq!(b.charge(Cost::Message), Verdict::Allow);
            assert_eq!(b.charge(Cost::Message), dropped(false));
        }
        clock.advance(SECOND);
        assert_eq!(b.charge(Cost::Message), Verdict::Allow);
        assert_eq!(b.charge(Cost::Message), Verdict::Close);
    }

    #[test]
    fn a_client_back_within_its_rate_starts_afresh() {
        let (mut b, clock) = budget(Rates::new(1, 5, 60, 20));
        for _ in 0..5 {
            assert_eq!(b.charge(Cost::Message), Verdict::Allow);
        }
        assert_eq!(b.charge(Cost::Message), dropped(true));
        // Slower than the rate for a while: the bucket has room to spare, the run is over.
        clock.advance(3 * SECOND);
        assert_eq!(b.charge(Cost::Message), Verdict::Allow);
        assert_eq!(b.charge(Cost::Message), Verdict::Allow);
        assert_eq!(b.charge(Cost::Message), Verdict::Allow);
        assert_eq!(b.charge(Cost::Message), dropped(true), "a new run is told");
    }

    #[test]
    fn joins_have_their_own_smaller_budget() {
        let (mut b, _clock) = budget(Rates::new(100, 100, 1, 3));
        for _ in 0..3 {
            assert_eq!(b.charge(Cost::Join), Verdict::Allow);
        }
        // No pause: the join bucket refills once a minute, other messages must not wait.
        assert_eq!(
            b.charge(Cost::Join),
            Verdict::Drop {
                tell: true,
                pause: Duration::ZERO
            }
        );
        assert_eq!(
            b.charge(Cost::Message),
            Verdict::Allow,
            "other messages still pass"
        );
    }

    #[test]
    fn a_join_storm_is_closed_but_an_impatient_user_is_not() {
        let (mut b, clock) = budget(Rates::new(100, 100, 60, 3));
        for _ in 0..3 {
            assert_eq!(b.charge(Cost::Join), Verdict::Allow);
        }
        // Someone pressing Next twice a second for a minute: refused at times, never closed.
        for _ in 0..60 {
            clock.advance(SECOND / 2);
            assert_ne!(b.charge(Cost::Join), Verdict::Close);
        }
        // A storm: 20 refusals in a row close the connection.
        let mut last = Verdict::Allow;
        for _ in 0..JOIN_REFUSALS_TO_CLOSE + 1 {
            last = b.charge(Cost::Join);
            if last == Verdict::Close {
                break;
            }
        }
        assert_eq!(last, Verdict::Close);
    }
}
