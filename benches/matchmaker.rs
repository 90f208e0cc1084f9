//! What one matchmaking decision costs as the waiting queue grows: `Matchmaker::join` against
//! queues of 10, 10,000 and 1,000,000 waiting users. Run with `cargo bench --bench matchmaker`
//! (about a minute; peak memory about 2.2 GB). Other lengths:
//! `MATCHMAKER_SIZES=100000,3000000 cargo bench --bench matchmaker` (about 1.6 GB per million).
//!
//! The claim under test (see `src/matchmaker.rs`) is that a join costs the same whatever the
//! queue length: at most 255 subset look-ups for a joiner with interests, an O(1) random pick
//! for one without. Every case leaves the queue exactly as it found it, so the length measured
//! is the length named:
//!
//! - `unmatched_join/N`: a joiner with 2 interests nobody waiting shares is queued, then removed
//!   (the user leaves again).
//! - `random_pair/N`: a joiner without interests is paired with a random one of the N waiting
//!   users, who then queues again.
//! - `eight_interests_pair/N`: a joiner with 8 interests, one of which a random waiting user
//!   has: every one of the 255 subsets is looked up before the pick; the partner queues again.
//! - `eight_interests_unmatched/N`: a joiner with 8 interests nobody shares: 255 look-ups, 255
//!   index insertions when it is queued and 255 removals when it leaves. The worst case.
//!
//! With two modes and 20 languages (`lang_*`, every waiting user in one of the 40 pools and
//! languages, as evenly as ids go, with 1–3 interests of its own):
//!
//! - `lang_unmatched_join/N`: a text user speaking German with 2 interests nobody of its
//!   language shares: its language's subsets are looked up, it is queued, then removed.
//! - `lang_pair/N`: a user of a random pool and language without interests is paired with a
//!   random one of the N/40 waiting users of its pool and language, who then queues again
//!   (built with a zero fallback, as `random_pair` is, so everyone is open).
//! - `lang_nobody_speaks_join/N`: a user of a language nobody waiting speaks, without
//!   interests: one look-up of its language, queued, then removed.
//!
//! Two users waiting at the same time never share an interest (the second to come would have
//! been paired), so in the queues built here every waiting user has 1–3 interests of their own
//! and the fallback to "anyone" is an hour away. Likewise two users open to anyone are never
//! both waiting, so for `random_pair` the queue is built with a zero fallback: everyone is open
//! at once. That state lasts only until the lobby's next `expire`, which this bench never calls;
//! it is the one that makes the random pick range over N users.
//!
//! Probes use fresh session ids and random interest names each time so that hash look-ups land
//! on different buckets, as real traffic does, rather than on one cached line. Times come from
//! `std::time::Instant::now()` and the RNG is seeded, so runs repeat.
//! Each left user leaves an entry in the matchmaker's deadline queue until its fallback time
//! (an hour here), so memory grows by about 24 bytes per measured join while the bench runs.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::time::Instant;
use strangers::ids::SessionId;
use strangers::matchmaker::{Matchmaker, Policy, Want};
use strangers::protocol::{Lang, Mode};

/// The 20 languages of the `lang_*` cases.
const LANGS: [&str; 20] = [
    "ar", "bn", "de", "en", "es", "fa", "fr", "hi", "id", "it", "ja", "ko", "nl", "pl", "pt", "ru",
    "sv", "th", "tr", "zh",
];

/// The pool and language of waiting user `i` of the `lang_*` queues.
fn pool_of(i: usize) -> (Mode, Lang) {
    let mode = Mode::ALL[i % 2];
    (mode, LANGS[(i / 2) % LANGS.len()].parse().unwrap())
}

/// Queue lengths measured, unless `MATCHMAKER_SIZES` (comma-separated) says otherwise.
const SIZES: [usize; 3] = [10, 10_000, 1_000_000];

/// Session ids of probes start here, far above those of the waiting users (0..N).
const FIRST_PROBE: u64 = 1 << 40;

/// A queue of `tags.len()` waiting users; user `i` has session id `i` and interests `tags[i]`.
struct Queue {
    mm: Matchmaker<StdRng>,
    tags: Vec<Vec<String>>,
}

impl Queue {
    /// `count(i)`: how many interests user `i` has. Interests are unique to each user.
    fn build(n: usize, policy: Policy, count: impl Fn(usize) -> usize) -> Queue {
        let started = std::time::Instant::now();
        let tags: Vec<Vec<String>> = (0..n)
            .map(|i| (0..count(i)).map(|j| format!("w{i}-{j}")).collect())
            .collect();
        let mut mm = Matchmaker::new(StdRng::seed_from_u64(1), policy);
        let now = Instant::now();
        for (i, t) in tags.iter().enumerate() {
            assert!(
                mm.join(SessionId(i as u64), &Want::interests(t), now)
                    .is_none()
            );
        }
        assert_eq!(mm.len(), n);
        eprintln!(
            "built a queue of {n} in {:.2?}; resident memory now {}",
            started.elapsed(),
            resident()
        );
        Queue { mm, tags }
    }
}

/// The process's resident memory, from `/proc/self/statm` (Linux), assuming 4 KiB pages.
fn resident() -> String {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or_else(
            || "unknown".into(),
            |pages| format!("{} MiB", pages * 4 / 1024),
        )
}

/// Fresh probe session ids and interests nobody in a [`Queue`] has.
struct Probes {
    rng: StdRng,
    next: u64,
}

impl Probes {
    fn new() -> Probes {
        Probes {
            rng: StdRng::seed_from_u64(2),
            next: FIRST_PROBE,
        }
    }

    fn id(&mut self) -> SessionId {
        self.next += 1;
        SessionId(self.next)
    }

    /// `k` distinct interests in a name space no waiting user's interests are in.
    fn tags(&mut self, k: usize) -> Vec<String> {
        let r: u32 = self.rng.random();
        (0..k).map(|j| format!("p{r:08x}-{j}")).collect()
    }
}

/// Users with interests hold out for an hour before they would meet anyone.
fn holding_out() -> Policy {
    Policy {
        fallback_after: Duration::from_secs(3600),
        ..Policy::default()
    }
}

fn bench_queue_with_interests(c: &mut Criterion, n: usize) {
    let mut q = Queue::build(n, holding_out(), |i| 1 + i % 3);
    let mut probes = Probes::new();

    c.bench_function(&format!("unmatched_join/{n}"), |b| {
        b.iter_batched(
            || (probes.id(), probes.tags(2), Instant::now()),
            |(id, tags, now)| {
                let paired = q.mm.join(id, &Want::interests(&tags), now);
                debug_assert!(paired.is_none());
                black_box(paired);
                black_box(q.mm.remove(id));
                tags
            },
            BatchSize::SmallInput,
        )
    });
    assert_eq!(q.mm.len(), n);

    c.bench_function(&format!("eight_interests_pair/{n}"), |b| {
        b.iter_batched(
            || {
                let waiter = probes.rng.random_range(0..n);
                let mut tags = probes.tags(7);
                tags.push(q.tags[waiter][0].clone());
                (probes.id(), tags, waiter, Instant::now())
            },
            |(id, tags, waiter, now)| {
                let p =
                    q.mm.join(id, &Want::interests(&tags), now)
                        .expect("one waiting user shares a tag");
                debug_assert_eq!(p.waiter, SessionId(waiter as u64));
                let requeued = q.mm.join(p.waiter, &Want::interests(&q.tags[waiter]), now);
                debug_assert!(requeued.is_none());
                (tags, p)
            },
            BatchSize::SmallInput,
        )
    });
    assert_eq!(q.mm.len(), n);

    c.bench_function(&format!("eight_interests_unmatched/{n}"), |b| {
        b.iter_batched(
            || (probes.id(), probes.tags(8), Instant::now()),
            |(id, tags, now)| {
                let paired = q.mm.join(id, &Want::interests(&tags), now);
                debug_assert!(paired.is_none());
                black_box(paired);
                black_box(q.mm.remove(id));
                tags
            },
            BatchSize::SmallInput,
        )
    });
    assert_eq!(q.mm.len(), n);
}

fn bench_open_queue(c: &mut Criterion, n: usize) {
    let everyone_open = Policy {
        fallback_after: Duration::ZERO,
        ..Policy::default()
    };
    let mut q = Queue::build(n, everyone_open, |_| 1);
    let mut probes = Probes::new();

    c.bench_function(&format!("random_pair/{n}"), |b| {
        b.iter_batched(
            || (probes.id(), Instant::now()),
            |(id, now)| {
                let p =
                    q.mm.join(id, &Want::interests(&[]), now)
                        .expect("open users wait");
                let waiter = p.waiter.0 as usize;
                let requeued = q.mm.join(p.waiter, &Want::interests(&q.tags[waiter]), now);
                debug_assert!(requeued.is_none());
                p
            },
            BatchSize::SmallInput,
        )
    });
    assert_eq!(q.mm.len(), n);
}

/// A queue of `n` users spread over both pools and 20 languages, each with 1–3 interests of
/// its own; `wants[i]` is what user `i` waits with.
fn build_languages(n: usize, policy: Policy) -> (Matchmaker<StdRng>, Vec<Want>) {
    let wants: Vec<Want> = (0..n)
        .map(|i| {
            let (mode, lang) = pool_of(i);
            Want {
                mode,
                lang: Some(lang),
                tags: (0..1 + i % 3).map(|j| format!("w{i}-{j}")).collect(),
            }
        })
        .collect();
    let mut mm = Matchmaker::new(StdRng::seed_from_u64(1), policy);
    let now = Instant::now();
    for (i, w) in wants.iter().enumerate() {
        assert!(mm.join(SessionId(i as u64), w, now).is_none());
    }
    assert_eq!(mm.len(), n);
    eprintln!(
        "built a two-mode, 20-language queue of {n}; resident memory now {}",
        resident()
    );
    (mm, wants)
}

fn bench_languages(c: &mut Criterion, n: usize) {
    let (mut mm, _) = build_languages(n, holding_out());
    let mut probes = Probes::new();
    let german_text = |tags| Want {
        mode: Mode::Text,
        lang: Some("de".parse().unwrap()),
        tags,
    };
    c.bench_function(&format!("lang_unmatched_join/{n}"), |b| {
        b.iter_batched(
            || (probes.id(), german_text(probes.tags(2)), Instant::now()),
            |(id, want, now)| {
                let paired = mm.join(id, &want, now);
                debug_assert!(paired.is_none());
                black_box(paired);
                black_box(mm.remove(id));
                want
            },
            BatchSize::SmallInput,
        )
    });
    let nobody: Lang = "eo".parse().unwrap();
    c.bench_function(&format!("lang_nobody_speaks_join/{n}"), |b| {
        b.iter_batched(
            || {
                let want = Want {
                    mode: Mode::ALL[probes.rng.random_range(0..2)],
                    lang: Some(nobody),
                    tags: Vec::new(),
                };
                (probes.id(), want, Instant::now())
            },
            |(id, want, now)| {
                let paired = mm.join(id, &want, now);
                debug_assert!(paired.is_none());
                black_box(paired);
                black_box(mm.remove(id));
                want
            },
            BatchSize::SmallInput,
        )
    });
    assert_eq!(mm.len(), n);
    drop(mm);

    let everyone_open = Policy {
        fallback_after: Duration::ZERO,
        ..Policy::default()
    };
    let (mut mm, wants) = build_languages(n, everyone_open);
    c.bench_function(&format!("lang_pair/{n}"), |b| {
        b.iter_batched(
            || {
                let (mode, lang) = pool_of(probes.rng.random_range(0..n));
                let want = Want {
                    mode,
                    lang: Some(lang),
                    tags: Vec::new(),
                };
                (probes.id(), want, Instant::now())
            },
            |(id, want, now)| {
                let p = mm.join(id, &want, now).expect("its language's users wait");
                debug_assert!(p.same_lang && p.mode == want.mode);
                let waiter = p.waiter.0 as usize;
                let requeued = mm.join(p.waiter, &wants[waiter], now);
                debug_assert!(requeued.is_none());
                p
            },
            BatchSize::SmallInput,
        )
    });
    assert_eq!(mm.len(), n);
}

fn matchmaker(c: &mut Criterion) {
    // One size at a time, so that only one million-user queue is in memory at once.
    let sizes: Vec<usize> = match std::env::var("MATCHMAKER_SIZES") {
        Ok(list) => list
            .split(',')
            .map(|n| {
                n.trim()
                    .replace('_', "")
                    .parse()
                    .expect("MATCHMAKER_SIZES: numbers")
            })
            .collect(),
        Err(_) => SIZES.to_vec(),
    };
    for n in sizes {
        bench_queue_with_interests(c, n);
        bench_open_queue(c, n);
        bench_languages(c, n);
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .nresamples(20_000);
    targets = matchmaker
}
criterion_main!(benches);
