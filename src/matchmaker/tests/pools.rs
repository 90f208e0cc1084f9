//! Pools and languages: text users meet only text users, the language is preferred the way
//! interests are, and, under any sequence of joins, leaves, fallbacks and partings, every
//! pairing is one the policy's order allows and the indexes stay in step.

use super::*;
use proptest::prelude::*;

fn lang(code: &str) -> Option<Lang> {
    Some(code.parse().unwrap())
}

/// A user of `mode`, speaking `code` ("" for none), with these interests.
fn user(mode: Mode, code: &str, list: &[&str]) -> Want {
    Want {
        mode,
        lang: if code.is_empty() { None } else { lang(code) },
        tags: tags(list),
    }
}

const SECOND: Duration = Duration::from_secs(1);

/// Text users meet text users; a video user and a text user never meet, not even after the
/// fallback, when each would meet anyone of its own pool.
#[test]
fn text_users_meet_only_text_users() {
    let mut mm = seeded(11);
    let t0 = Instant::now();
    let text = user(Mode::Text, "", &[]);
    let video = Want::default();
    assert_eq!(mm.join(s(1), &video, t0), None);
    assert_eq!(
        mm.join(s(2), &text, t0),
        None,
        "the only one waiting is in video"
    );
    assert_eq!((mm.len_in(Mode::Video), mm.len_in(Mode::Text)), (1, 1));
    assert!(mm.expire(t0 + 60 * SECOND).is_empty());
    check_indexes(&mm);
    let p = mm
        .join(s(3), &text, t0 + 61 * SECOND)
        .expect("a text user waits");
    assert_eq!((p.waiter, p.mode), (s(2), Mode::Text));
    let p = mm
        .join(s(4), &video, t0 + 61 * SECOND)
        .expect("a video user waits");
    assert_eq!((p.waiter, p.mode), (s(1), Mode::Video));
    assert!(mm.is_empty());
}

/// Interests and languages are kept apart by pool too: a text user sharing every interest
/// and the language of a waiting video user still does not meet it.
#[test]
fn sharing_everything_does_not_cross_pools() {
    let mut mm = seeded(12);
    let t0 = Instant::now();
    mm.join(s(1), &user(Mode::Video, "de", &["chess"]), t0);
    assert_eq!(mm.join(s(2), &user(Mode::Text, "de", &["chess"]), t0), None);
    let p = mm
        .join(s(3), &user(Mode::Text, "de", &["chess"]), t0)
        .unwrap();
    assert_eq!(p.waiter, s(2));
    assert_eq!((p.common.clone(), p.same_lang), (tags(&["chess"]), true));
}

/// Without interests, a user meets someone of its own language at once, and a user of
/// another language only after the fallback time; `same_lang` says which it was.
#[test]
fn the_same_language_first_then_anyone_after_the_fallback() {
    let mut mm = seeded(13);
    let t0 = Instant::now();
    assert_eq!(mm.join(s(1), &user(Mode::Video, "de", &[]), t0), None);
    assert_eq!(
        mm.join(s(2), &user(Mode::Video, "fr", &[]), t0 + SECOND),
        None,
        "a German speaker waits, but not a French one"
    );
    let p = mm
        .join(s(3), &user(Mode::Video, "de", &[]), t0 + 2 * SECOND)
        .expect("a German speaker waits");
    assert_eq!((p.waiter, p.same_lang), (s(1), true));
    assert_eq!(
        mm.join(s(4), &user(Mode::Video, "es", &[]), t0 + 3 * SECOND),
        None
    );
    assert!(
        mm.expire(t0 + 6 * SECOND).is_empty(),
        "the French speaker meets anyone now, but the Spanish one still hopes for Spanish"
    );
    let p = mm.expire(t0 + 8 * SECOND);
    assert_eq!(p.len(), 1, "the Spanish speaker's fallback came");
    assert_eq!(
        (p[0].joiner, p[0].waiter, p[0].same_lang),
        (s(4), s(2), false)
    );
}

/// The order: most shared interests among those of the same language, then the same
/// language, then (after the fallback) anyone; a stranger of another language who shares
/// more interests waits behind one of the same language who shares fewer, or none.
#[test]
fn interests_within_the_language_then_the_language_then_anyone() {
    let mut mm = seeded(14);
    let t0 = Instant::now();
    let video = |code, list: &[&str]| user(Mode::Video, code, list);
    mm.enqueue(s(1), video("en", &["chess", "go"]), t0, false);
    mm.enqueue(s(2), video("de", &["chess"]), t0, false);
    let p = mm.join(s(10), &video("de", &["chess", "go"]), t0).unwrap();
    assert_eq!(
        p.waiter,
        s(2),
        "one shared interest in German beats two in English"
    );
    assert_eq!((p.common.clone(), p.same_lang), (tags(&["chess"]), true));
    // Nobody of its language shares one: it holds out, then meets the German speaker
    // without interests before the English one who shares two.
    assert_eq!(mm.join(s(11), &video("de", &["chess", "go"]), t0), None);
    assert_eq!(mm.join(s(3), &video("de", &[]), t0 + SECOND), None);
    // At t0 + 5 the English speaker falls back first (and is open to anyone from then on),
    // then 11.
    let p = mm.expire(t0 + 5 * SECOND);
    let s11 = p.iter().find(|p| p.joiner == s(11)).expect("11 fell back");
    assert_eq!((s11.waiter, s11.same_lang), (s(3), true));
    assert!(s11.common.is_empty());
    check_indexes(&mm);
}

/// Among those equally good, the choice is uniform: every waiting speaker of the joiner's
/// language is as likely, and those of other languages never chosen.
#[test]
fn the_choice_among_speakers_of_the_language_is_uniform() {
    let mut mm = seeded(15);
    let now = Instant::now();
    let mut counts = [0u64; 8];
    for _ in 0..16_000 {
        for id in 0..8 {
            mm.enqueue(s(id), user(Mode::Text, "pt", &[]), now, false);
        }
        mm.enqueue(s(20), user(Mode::Text, "es", &[]), now, true);
        mm.enqueue(s(21), user(Mode::Text, "", &[]), now, true);
        let p = mm.join(s(100), &user(Mode::Text, "pt", &[]), now).unwrap();
        assert!(p.waiter.0 < 8 && p.same_lang, "{p:?}");
        counts[p.waiter.0 as usize] += 1;
        for id in (0..8).chain([20, 21]) {
            mm.remove(s(id));
        }
    }
    assert_uniform(&counts, 24.32);
}

/// A join without a language or interests (a client from before languages) meets anyone
/// open at once, as before: others without a preference, and those past their fallback.
#[test]
fn no_language_and_no_interests_is_no_preference() {
    let mut mm = seeded(16);
    let t0 = Instant::now();
    mm.join(s(1), &user(Mode::Video, "de", &[]), t0);
    assert_eq!(
        mm.join(s(2), &Want::default(), t0),
        None,
        "1 hopes for German"
    );
    assert!(
        mm.join(s(3), &Want::default(), t0).is_some(),
        "2 meets 3 at once"
    );
    mm.join(s(4), &Want::default(), t0 + SECOND);
    let p = mm.expire(t0 + 5 * SECOND);
    assert_eq!(
        (p[0].joiner, p[0].waiter, p[0].same_lang),
        (s(1), s(4), false)
    );
}

/// One step of the model: what a lobby asks of its matchmaker.
#[derive(Clone, Debug)]
enum Op {
    /// User `n` joins with the want of that index of [`wants`].
    Join(u64, usize),
    Remove(u64),
    Parted(u64, u64),
    /// Time passes (ms), then the lobby lets fallbacks happen.
    Expire(u64),
}

/// A few wants that overlap in every way: both pools, two languages and none, and
/// interests that are shared, partly shared or not at all.
fn wants() -> Vec<Want> {
    let mut out = Vec::new();
    for mode in Mode::ALL {
        for code in ["", "de", "fr"] {
            for list in [&[][..], &["chess"], &["chess", "go"], &["tea"]] {
                out.push(user(mode, code, list));
            }
        }
    }
    out
}

fn op() -> impl Strategy<Value = Op> {
    let n = wants().len();
    prop_oneof![
        6 => (0..12u64, 0..n).prop_map(|(u, w)| Op::Join(u, w)),
        2 => (0..12u64).prop_map(Op::Remove),
        1 => (0..12u64, 0..12u64).prop_map(|(a, b)| Op::Parted(a, b)),
        2 => (0..4000u64).prop_map(Op::Expire),
    ]
}

/// How good `v` (waiting) is for `w`: the tiers of the policy, best first, as a number, or
/// `None` if `w` does not take `v` now. Written from the policy's words, by brute force.
fn tier(w: &Want, w_open: bool, v: &Waiter) -> Option<usize> {
    if v.want.mode != w.mode {
        return None;
    }
    let shared = w.tags.iter().filter(|t| v.want.tags.contains(t)).count();
    if shared > 0 && v.want.lang == w.lang {
        return Some(MAX_TAGS - shared); // most shared first
    }
    if !w.tags.is_empty() {
        return None; // a joiner with interests meets others only at its fallback
    }
    let v_meets_lang = v.want.lang.is_some() && (v.want.tags.is_empty() || v.open);
    let same_lang = w.lang.is_some() && v.want.lang == w.lang;
    let w_meets_lang = w.lang.is_some() && (w.tags.is_empty() || w_open);
    if same_lang && w_meets_lang && v_meets_lang {
        return Some(MAX_TAGS);
    }
    (w_open && v.open).then_some(MAX_TAGS + 1)
}
const MAX_TAGS: usize = crate::protocol::MAX_INTERESTS;

/// The best tier any eligible waiting user is in for `w`, and who is in it.
fn best(
    mm: &Matchmaker<StdRng>,
    me: SessionId,
    w: &Want,
    open: bool,
) -> Option<(usize, Vec<SessionId>)> {
    let excluded = mm.excluded(me);
    let mut found: Option<(usize, Vec<SessionId>)> = None;
    for (id, v) in &mm.waiting {
        if *id == me || excluded.contains(id) {
            continue;
        }
        let Some(t) = tier(w, open, v) else { continue };
        match &mut found {
            Some((bt, ids)) if *bt == t => ids.push(*id),
            Some((bt, _)) if *bt < t => {}
            _ => found = Some((t, vec![*id])),
        }
    }
    found
}

fn run_model(ops: Vec<Op>, seed: u64) {
    let policy = Policy {
        fallback_after: Duration::from_secs(2),
        cooldown: Duration::from_secs(3),
    };
    let mut mm = Matchmaker::new(StdRng::seed_from_u64(seed), policy);
    let wants = wants();
    let mut now = Instant::now();
    let mut last: HashMap<SessionId, Want> = HashMap::new();
    for op in ops {
        match op {
            Op::Join(u, i) => {
                let id = s(u);
                let w = wants[i].normalized();
                let waiting = mm.is_waiting(id);
                let expected = best(&mm, id, &w, w.open_at_once());
                let got = mm.join(id, &w, now);
                if !waiting {
                    last.insert(id, w.clone());
                }
                match (waiting, got, expected) {
                    (true, got, _) => assert_eq!(got, None, "a waiting user stays waiting"),
                    (false, Some(p), Some((_, ids))) => {
                        assert!(ids.contains(&p.waiter), "{p:?} is not among {ids:?}");
                        assert_eq!(p.mode, w.mode);
                    }
                    (false, None, None) => assert!(mm.is_waiting(id)),
                    (false, got, expected) => panic!("paired {got:?}, expected {expected:?}"),
                }
            }
            Op::Remove(u) => {
                mm.remove(s(u));
            }
            Op::Parted(a, b) if a != b && !mm.is_waiting(s(a)) && !mm.is_waiting(s(b)) => {
                mm.parted(s(a), s(b), now);
            }
            Op::Parted(..) => {}
            Op::Expire(ms) => {
                now += Duration::from_millis(ms);
                for p in mm.expire(now) {
                    assert!(!mm.is_waiting(p.joiner) && !mm.is_waiting(p.waiter));
                    assert_ne!(p.joiner, p.waiter);
                    assert_eq!(last[&p.joiner].mode, p.mode, "pools never mix");
                    assert_eq!(last[&p.waiter].mode, p.mode, "pools never mix");
                    let same = last[&p.joiner].lang.is_some()
                        && last[&p.joiner].lang == last[&p.waiter].lang;
                    assert_eq!(p.same_lang, same);
                }
            }
        }
        check_indexes(&mm);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Whatever the lobby does, a user is in one pool's indexes only, and every join pairs
    /// with someone of the best tier there is (uniformly among equals is the unit tests'
    /// business), or queues only if nobody is acceptable.
    #[test]
    fn every_join_takes_the_best_there_is_and_pools_never_mix(
        ops in proptest::collection::vec(op(), 1..80),
        seed in any::<u64>(),
    ) {
        run_model(ops, seed);
    }
}
