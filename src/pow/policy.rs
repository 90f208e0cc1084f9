//! How hard a join's challenge is: the base difficulty, one bit more for each doubling of a
//! client's join rate past what a person pressing Next does, and one more for each doubling
//! of the server's join rate past what it calls busy. No clock of its own: every call is
//! given the time, so tests run it faster than real time.
//!
//! Rates are exponentially decayed counts (a count that halves every half-life): a burst of
//! a few quick Nexts costs little, a client that keeps joining fast climbs a bit per
//! doubling of its rate, and comes back down within minutes of slowing down. A client is
//! its [`ClientKey`] (one IPv4 address or IPv6 /64), so the many sockets of a bot farm on
//! one network add up. With a shared queue each instance counts the joins it sees.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::ids::ClientKey;

/// How fast a client's count of joins fades: its rate is judged over about a minute.
const KEY_HALF_LIFE: Duration = Duration::from_secs(60);
/// How fast the server's count fades: pressure is judged over about ten seconds.
const LOAD_HALF_LIFE: Duration = Duration::from_secs(10);
/// The most clients tracked at once (a few MiB); past it new ones are not tracked until
/// the quiet ones are forgotten, and only the server's pressure raises their difficulty.
const MAX_KEYS: usize = 100_000;
/// Joins between two sweeps that forget clients whose count has faded away.
const SWEEP_EVERY: u32 = 4096;
/// A count below this is forgotten at a sweep (the client has been quiet for minutes).
const FORGOTTEN: f64 = 0.5;

/// The knobs of the policy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct PowPolicy {
    /// Bits of every challenge (`--pow-bits`); 0 turns the proof of work off.
    pub(crate) base_bits: u8,
    /// Bits no challenge goes past (`--pow-max-bits`), whatever the rates.
    pub(crate) max_bits: u8,
    /// Joins a minute one client may make before its challenges get harder: a person
    /// skipping fast, or a household behind one address.
    pub(crate) free_joins_per_minute: f64,
    /// Joins a second, server-wide, past which every challenge gets harder.
    pub(crate) busy_joins_per_second: f64,
}

impl PowPolicy {
    /// The policy with these bits and the default rates.
    pub(crate) fn new(base_bits: u8, max_bits: u8) -> PowPolicy {
        PowPolicy {
            base_bits,
            max_bits,
            free_joins_per_minute: 30.0,
            busy_joins_per_second: 200.0,
        }
    }
}

/// A count that halves every half-life.
#[derive(Clone, Copy, Debug)]
struct Decayed {
    /// The count at `at`.
    level: f64,
    /// When `level` was last brought up to date.
    at: Instant,
}

impl Decayed {
    fn new(now: Instant) -> Decayed {
        Decayed {
            level: 0.0,
            at: now,
        }
    }

    fn value(&self, now: Instant, half_life: Duration) -> f64 {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.level * (-elapsed / half_life.as_secs_f64()).exp2()
    }

    fn add(&mut self, now: Instant, half_life: Duration) {
        self.level = self.value(now, half_life) + 1.0;
        self.at = now.max(self.at);
    }

    /// The rate this count stands for, per `unit`: a steady rate r keeps the count at
    /// r × half-life / ln 2.
    fn rate(&self, now: Instant, half_life: Duration, unit: Duration) -> f64 {
        self.value(now, half_life) * std::f64::consts::LN_2 * unit.as_secs_f64()
            / half_life.as_secs_f64()
    }
}

/// The policy and the counts it judges by.
#[derive(Debug)]
pub(crate) struct Difficulty {
    /// The knobs.
    policy: PowPolicy,
    /// Each recent client's decayed count of joins.
    keys: HashMap<ClientKey, Decayed>,
    /// The server's decayed count of joins.
    all: Decayed,
    /// Joins since the last sweep of faded counts.
    since_sweep: u32,
}

impl Difficulty {
    pub(crate) fn new(policy: PowPolicy, now: Instant) -> Difficulty {
        Difficulty {
            policy,
            keys: HashMap::new(),
            all: Decayed::new(now),
            since_sweep: 0,
        }
    }

    /// Whether challenges must be solved at all.
    pub(crate) fn enabled(&self) -> bool {
        self.policy.base_bits > 0
    }

    /// The bits of the next challenge for `client` (`None`: a client of unknown address).
    pub(crate) fn bits(&self, client: Option<ClientKey>, now: Instant) -> u8 {
        let policy = &self.policy;
        if !self.enabled() {
            return 0;
        }
        let minute = Duration::from_secs(60);
        let own = client
            .and_then(|key| self.keys.get(&key))
            .map_or(0.0, |count| count.rate(now, KEY_HALF_LIFE, minute));
        let load = self.all.rate(now, LOAD_HALF_LIFE, Duration::from_secs(1));
        let extra = doublings(own, policy.free_joins_per_minute)
            + doublings(load, policy.busy_joins_per_second);
        policy
            .base_bits
            .saturating_add(extra)
            .min(policy.max_bits.max(policy.base_bits))
            .min(super::MAX_BITS)
    }

    /// A join by `client` was accepted (its proof was good).
    pub(crate) fn record(&mut self, client: Option<ClientKey>, now: Instant) {
        self.all.add(now, LOAD_HALF_LIFE);
        self.since_sweep += 1;
        if self.since_sweep >= SWEEP_EVERY || self.keys.len() >= MAX_KEYS {
            self.sweep(now);
        }
        let Some(key) = client else { return };
        if let Some(count) = self.keys.get_mut(&key) {
            count.add(now, KEY_HALF_LIFE);
        } else if self.keys.len() < MAX_KEYS {
            let mut count = Decayed::new(now);
            count.add(now, KEY_HALF_LIFE);
            self.keys.insert(key, count);
        }
    }

    /// Forgets the clients that have been quiet for minutes.
    fn sweep(&mut self, now: Instant) {
        self.since_sweep = 0;
        self.keys
            .retain(|_, count| count.value(now, KEY_HALF_LIFE) >= FORGOTTEN);
    }

    /// How many clients are tracked (for tests).
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.keys.len()
    }
}

/// How many times `rate` doubles `free`: 0 up to `free`, 1 up to twice it, 2 up to four
/// times, and so on.
fn doublings(rate: f64, free: f64) -> u8 {
    if free <= 0.0 || rate <= free {
        return 0;
    }
    (rate / free).log2().ceil().clamp(0.0, 32.0) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Option<ClientKey> = Some(ClientKey([1; 16]));
    const B: Option<ClientKey> = Some(ClientKey([2; 16]));

    fn policy() -> PowPolicy {
        PowPolicy {
            base_bits: 16,
            max_bits: 24,
            free_joins_per_minute: 30.0,
            busy_joins_per_second: 200.0,
        }
    }

    /// `n` joins by `client`, evenly spread over `over`, from `start`; returns the end.
    fn joins(
        d: &mut Difficulty,
        client: Option<ClientKey>,
        n: u32,
        over: Duration,
        start: Instant,
    ) -> Instant {
        let step = over / n;
        let mut now = start;
        for _ in 0..n {
            now += step;
            d.record(client, now);
        }
        now
    }

    #[test]
    fn a_person_skipping_pays_the_base() {
        let start = Instant::now();
        let mut d = Difficulty::new(policy(), start);
        assert_eq!(d.bits(A, start), 16);
        // Twenty Nexts a minute for ten minutes, and a burst of ten quick ones.
        let now = joins(&mut d, A, 200, Duration::from_secs(600), start);
        assert_eq!(d.bits(A, now), 16);
        let now = joins(&mut d, A, 10, Duration::from_secs(5), now);
        assert_eq!(d.bits(A, now), 16, "a burst is not a rate");
    }

    #[test]
    fn a_client_that_joins_very_often_pays_more_and_others_do_not() {
        let start = Instant::now();
        let mut d = Difficulty::new(policy(), start);
        // 200 joins a minute is between four and eight times the free rate: three bits more.
        let now = joins(&mut d, A, 2000, Duration::from_secs(600), start);
        assert_eq!(d.bits(A, now), 19);
        assert_eq!(d.bits(B, now), 16, "another network is not charged");
        assert_eq!(d.bits(None, now), 16);
        // Quiet for ten minutes: back to the base.
        assert_eq!(d.bits(A, now + Duration::from_secs(600)), 16);
    }

    #[test]
    fn pressure_raises_everyone_and_the_cap_holds() {
        let start = Instant::now();
        let mut d = Difficulty::new(policy(), start);
        // 800 joins a second from unknown addresses: four times busy, two bits more.
        let now = joins(&mut d, None, 48_000, Duration::from_secs(60), start);
        assert_eq!(d.bits(B, now), 18);
        // One client at 100 times the free rate on top: capped.
        let now = joins(&mut d, A, 30_000, Duration::from_secs(10), now);
        assert_eq!(d.bits(A, now), 24);
        assert_eq!(d.bits(A, now + Duration::from_secs(3600)), 16);
    }

    #[test]
    fn zero_bits_is_off_whatever_the_rates() {
        let start = Instant::now();
        let mut d = Difficulty::new(PowPolicy::new(0, 20), start);
        let now = joins(&mut d, A, 10_000, Duration::from_secs(10), start);
        assert!(!d.enabled());
        assert_eq!(d.bits(A, now), 0);
    }

    #[test]
    fn quiet_clients_are_forgotten() {
        let start = Instant::now();
        let mut d = Difficulty::new(policy(), start);
        for i in 0..100u8 {
            d.record(Some(ClientKey([i; 16])), start);
        }
        assert_eq!(d.tracked(), 100);
        // An hour later, a sweep's worth of joins by one client: the others are gone.
        let later = start + Duration::from_secs(3600);
        joins(&mut d, A, SWEEP_EVERY, Duration::from_secs(1), later);
        assert_eq!(d.tracked(), 1);
    }

    #[test]
    fn doublings_count_powers_of_two() {
        assert_eq!(doublings(10.0, 30.0), 0);
        assert_eq!(doublings(30.0, 30.0), 0);
        assert_eq!(doublings(31.0, 30.0), 1);
        assert_eq!(doublings(60.0, 30.0), 1);
        assert_eq!(doublings(61.0, 30.0), 2);
        assert_eq!(doublings(f64::INFINITY, 30.0), 32);
    }
}
