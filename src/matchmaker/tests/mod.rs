//! The matchmaker's unit and property tests: the policy, uniformity among equals, the pools
//! and languages, and the indexes kept in step with the queue.

mod pools;

use super::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

/// Every index holds exactly the waiting users it should, each under its own pool (and
/// language) only; the per-pool counts add up.
fn check_indexes<R: Rng>(mm: &Matchmaker<R>) {
    let mut subset_entries = 0;
    let mut in_lang = 0;
    for (id, w) in &mm.waiting {
        for key in subset_keys(&mm.keys, &w.want).into_iter().skip(1) {
            assert!(mm.by_subset[&key].contains(*id), "indexed by its interests");
        }
        subset_entries += (1usize << w.want.tags.len()) - 1;
        assert_eq!(
            mm.open[&w.want.mode].contains(*id),
            w.open,
            "open in its pool iff open"
        );
        for other in Mode::ALL.iter().filter(|o| **o != w.want.mode) {
            assert!(!mm.open[other].contains(*id), "in no other pool");
        }
        if let Some(lang) = w.want.lang
            && w.want.meets_its_language(w.open)
        {
            assert!(mm.by_lang[&(w.want.mode, lang)].contains(*id));
            in_lang += 1;
        }
    }
    let buckets: usize = mm
        .by_subset
        .values()
        .map(|b| match b {
            Bucket::One(_) => 1,
            Bucket::Many(set) => set.len(),
        })
        .sum();
    assert_eq!(buckets, subset_entries, "no stale subset entries");
    let langs: usize = mm.by_lang.values().map(|set| set.len()).sum();
    assert_eq!(langs, in_lang, "no stale language entries");
    for ((mode, lang), set) in &mm.by_lang {
        for id in &set.items {
            let w = &mm.waiting[id].want;
            assert_eq!((w.mode, w.lang), (*mode, Some(*lang)));
        }
    }
    let open: usize = mm.open.values().map(|set| set.len()).sum();
    assert_eq!(open, mm.waiting.values().filter(|w| w.open).count());
    for mode in Mode::ALL {
        let n = mm.waiting.values().filter(|w| w.want.mode == mode).count();
        assert_eq!(mm.len_in(mode), n);
    }
}

fn seeded(seed: u64) -> Matchmaker<StdRng> {
    Matchmaker::new(StdRng::seed_from_u64(seed), Policy::default())
}

fn tags(list: &[&str]) -> Vec<String> {
    list.iter().map(|t| t.to_string()).collect()
}

/// A video user of no language with these interests.
fn want(list: &[&str]) -> Want {
    Want::interests(&tags(list))
}

fn s(n: u64) -> SessionId {
    SessionId(n)
}

#[test]
fn first_user_waits_second_is_paired_with_them() {
    let mut mm = seeded(1);
    let now = Instant::now();
    assert_eq!(mm.join(s(1), &Want::default(), now), None);
    assert!(mm.is_waiting(s(1)));
    let p = mm
        .join(s(2), &Want::default(), now)
        .expect("a waiting user is there");
    assert_eq!((p.joiner, p.waiter), (s(2), s(1)));
    assert!(mm.is_empty(), "both members left the queue");
}

#[test]
fn joining_twice_keeps_one_place_and_never_pairs_with_self() {
    let mut mm = seeded(2);
    let now = Instant::now();
    assert_eq!(mm.join(s(7), &Want::default(), now), None);
    assert_eq!(mm.join(s(7), &Want::default(), now), None);
    assert_eq!(mm.len(), 1);
    assert!(mm.expire(now + Duration::from_secs(60)).is_empty());
}

#[test]
fn same_seed_same_decisions() {
    let run = |seed| {
        let mut mm = seeded(seed);
        let now = Instant::now();
        (0..100)
            .filter_map(|i| mm.join(s(i), &Want::default(), now))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(42), run(42));
    assert_ne!(run(42), run(43));
}

/// Chi-squared over `counts` against a uniform expectation; the critical values are for
/// p = 0.001, so a fair choice fails about once in a thousand seeds (the seeds are fixed).
fn assert_uniform(counts: &[u64], critical: f64) {
    let trials: u64 = counts.iter().sum();
    let expected = trials as f64 / counts.len() as f64;
    let chi2: f64 = counts
        .iter()
        .map(|&c| (c as f64 - expected).powi(2) / expected)
        .sum();
    assert!(chi2 < critical, "chi² = {chi2:.1}, counts {counts:?}");
}

/// With ten users waiting, the joiner's partner is uniform over them.
#[test]
fn partner_choice_is_uniform() {
    let mut mm = seeded(2024);
    let now = Instant::now();
    let mut counts = [0u64; 10];
    for _ in 0..20_000 {
        for id in 0..10 {
            mm.enqueue(s(id), Want::default(), now, true);
        }
        let p = mm.join(s(1000), &Want::default(), now).unwrap();
        counts[p.waiter.0 as usize] += 1;
        for id in 0..10 {
            mm.remove(s(id));
        }
    }
    assert_uniform(&counts, 27.88);
}

/// Those sharing the most interests win, uniformly among them; those sharing fewer, and
/// those sharing none, never do while a better one waits.
#[test]
fn interests_pick_uniformly_among_those_sharing_the_most() {
    let mut mm = seeded(77);
    let now = Instant::now();
    let mut counts = [0u64; 3];
    for _ in 0..9_000 {
        // Queued directly: joining one by one would pair them with each other.
        for id in 0..3 {
            mm.enqueue(s(id), want(&["chess", "go", "jazz"]), now, false);
        }
        mm.enqueue(s(10), want(&["chess"]), now, false);
        mm.enqueue(s(11), want(&["jazz", "tea"]), now, false);
        mm.enqueue(s(12), Want::default(), now, true);
        let p = mm.join(s(100), &want(&["jazz", "chess"]), now).unwrap();
        assert!(
            p.waiter.0 < 3,
            "someone sharing two tags exists: got {:?}",
            p.waiter
        );
        assert_eq!(p.common, tags(&["chess", "jazz"]));
        counts[p.waiter.0 as usize] += 1;
        for id in [0, 1, 2, 10, 11, 12] {
            mm.remove(s(id));
        }
    }
    assert_uniform(&counts, 13.82);
}

/// No one shares an interest: both wait, and after the fallback wait they meet.
#[test]
fn without_a_shared_interest_users_fall_back_to_anyone() {
    let mut mm = seeded(5);
    let t0 = Instant::now();
    assert_eq!(mm.join(s(1), &want(&["chess"]), t0), None);
    assert_eq!(
        mm.join(s(2), &want(&["jazz"]), t0 + Duration::from_secs(1)),
        None
    );
    assert_eq!(
        mm.join(s(3), &Want::default(), t0 + Duration::from_secs(2)),
        None,
        "1 and 2 hold out"
    );
    assert!(mm.expire(t0 + Duration::from_millis(4999)).is_empty());
    let p = mm.expire(t0 + Duration::from_secs(5));
    assert_eq!(p.len(), 1);
    assert_eq!(
        p[0].joiner,
        s(1),
        "the first to fall back meets an open user"
    );
    assert_eq!(p[0].waiter, s(3));
    assert!(p[0].common.is_empty());
    let p = mm.expire(t0 + Duration::from_secs(60));
    assert!(p.is_empty(), "2 is alone now");
    assert!(mm.is_waiting(s(2)));
    assert_eq!(mm.next_deadline(), None, "every deadline was handled");
}

#[test]
fn a_newcomer_without_interests_meets_only_open_users() {
    let mut mm = seeded(6);
    let t0 = Instant::now();
    mm.join(s(1), &want(&["chess"]), t0);
    assert_eq!(
        mm.join(s(2), &Want::default(), t0),
        None,
        "1 still hopes for chess"
    );
    let p = mm.expire(t0 + Duration::from_secs(5));
    assert_eq!((p[0].joiner, p[0].waiter), (s(1), s(2)));
}

/// Two who just parted are not paired again while someone else can be.
#[test]
fn parted_users_are_kept_apart_for_the_cooldown() {
    let mut mm = seeded(8);
    let t0 = Instant::now();
    mm.parted(s(1), s(2), t0);
    mm.join(s(1), &Want::default(), t0);
    assert_eq!(
        mm.join(s(2), &Want::default(), t0),
        None,
        "not again at once"
    );
    let p = mm.join(s(3), &Want::default(), t0).unwrap();
    assert!(p.waiter == s(1) || p.waiter == s(2));
    // After the cooldown they may meet.
    let mut mm = seeded(8);
    mm.parted(s(1), s(2), t0);
    let later = t0 + Duration::from_secs(30);
    mm.join(s(1), &Want::default(), later);
    assert!(mm.join(s(2), &Want::default(), later).is_some());
}

/// The exception: if they are the only two waiting, past the fallback, they meet again.
#[test]
fn the_only_two_waiting_meet_again_after_the_fallback() {
    let mut mm = seeded(9);
    let t0 = Instant::now();
    mm.parted(s(1), s(2), t0);
    mm.join(s(1), &Want::default(), t0);
    mm.join(s(2), &Want::default(), t0 + Duration::from_secs(1));
    assert!(
        mm.expire(t0 + Duration::from_secs(5)).is_empty(),
        "2 waited only 4 s"
    );
    let p = mm.expire(t0 + Duration::from_secs(6));
    assert_eq!(p.len(), 1, "both waited past the fallback");
    // With a third user around, the cooldown holds.
    let mut mm = seeded(9);
    mm.parted(s(1), s(2), t0);
    mm.join(s(1), &Want::default(), t0);
    mm.join(s(2), &Want::default(), t0);
    mm.join(s(3), &want(&["chess"]), t0);
    let p = mm.expire(t0 + Duration::from_secs(5));
    assert_eq!(p.len(), 1, "3 falls back and meets 1 or 2");
    assert_eq!(p[0].joiner, s(3));
    assert_eq!(mm.len(), 1);
}

#[test]
fn removal_cleans_every_index() {
    let mut mm = seeded(3);
    let now = Instant::now();
    mm.join(s(1), &want(&["a", "b", "c"]), now);
    assert_eq!(mm.by_subset.len(), 7);
    assert!(mm.remove(s(1)));
    assert!(!mm.remove(s(1)), "removing twice is a no-op");
    assert!(mm.by_subset.is_empty() && mm.open.values().all(|set| set.items.is_empty()));
    check_indexes(&mm);
}

#[test]
fn roles_are_balanced_and_rooms_unique() {
    let mut mm = seeded(9);
    let now = Instant::now();
    let mut offerers = 0;
    let mut rooms = std::collections::HashSet::new();
    for i in 0..2000 {
        mm.join(s(i * 2), &Want::default(), now);
        let p = mm.join(s(i * 2 + 1), &Want::default(), now).unwrap();
        offerers += (p.joiner_role == Role::Offerer) as u32;
        assert!(rooms.insert(p.room), "room ids never repeat");
    }
    assert!((850..1150).contains(&offerers), "{offerers} of 2000");
}
