//! The lobby through its handle, as sessions use it; the core's state machine under any
//! interleaving is in [`model`].

mod model;

use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;

use tokio::sync::mpsc;

use super::core::RESUME_WAIT;
use super::*;
use crate::matchmaker::{Policy, Want};
use crate::moderation::Moderation;
use crate::protocol::{LeftReason, MemberProof, Mode};
use crate::room::{Event, Matched};

struct Client {
    id: SessionId,
    rx: crate::mailbox::Receiver<Event>,
}

async fn connect(lobby: &Lobby) -> Client {
    let id = SessionId::next();
    let (tx, rx) = crate::mailbox::channel(8);
    lobby.register(Peer::new(id, tx), None).await.unwrap();
    Client { id, rx }
}

async fn matched(c: &mut Client) -> Box<Matched> {
    match c.rx.recv().await {
        Some(Event::Matched(m)) => m,
        other => panic!("expected matched, got {other:?}"),
    }
}

fn lobby() -> Lobby {
    let rng = StdRng::seed_from_u64(7);
    let core = Core::local(rng, Policy::default(), Moderation::default(), now());
    Lobby::start(core, None, None)
}

#[tokio::test]
async fn two_joiners_share_a_room_with_opposite_roles() {
    let lobby = lobby();
    let mut a = connect(&lobby).await;
    let mut b = connect(&lobby).await;
    lobby
        .join(a.id, 1, Want::interests(&["chess".into(), "jazz".into()]))
        .await;
    lobby.join(b.id, 1, Want::interests(&["jazz".into()])).await;
    let (ma, mb) = (matched(&mut a).await, matched(&mut b).await);
    assert_eq!(ma.room, mb.room);
    assert_eq!(ma.role, mb.role.map(crate::protocol::Role::other));
    assert_eq!((ma.partner.id, mb.partner.id), (b.id, a.id));
    assert_eq!(ma.common, vec!["jazz".to_string()]);
    let s = lobby.stats().await;
    assert_eq!((s.online, s.waiting, s.rooms, s.matches), (2, 0, 1, 1));
}

#[tokio::test]
async fn next_tells_the_partner_skipped_and_requeues() {
    let lobby = lobby();
    let mut a = connect(&lobby).await;
    let mut b = connect(&lobby).await;
    lobby.join(a.id, 1, Want::default()).await;
    lobby.join(b.id, 1, Want::default()).await;
    let room = matched(&mut a).await.room;
    matched(&mut b).await;
    lobby.next(a.id, 2, None).await;
    match b.rx.recv().await {
        Some(Event::Left { room: r, reason }) => {
            assert_eq!((r, reason), (room, LeftReason::Skipped))
        }
        other => panic!("expected left, got {other:?}"),
    }
    let s = lobby.stats().await;
    assert_eq!((s.waiting, s.rooms), (1, 0), "a waits again, b is idle");
}

#[tokio::test]
async fn a_vanished_user_frees_its_partner_and_its_place() {
    let lobby = lobby();
    let mut a = connect(&lobby).await;
    let b = connect(&lobby).await;
    let c = connect(&lobby).await;
    lobby.join(a.id, 1, Want::default()).await;
    lobby.join(b.id, 1, Want::default()).await;
    matched(&mut a).await;
    lobby.gone(b.id, false).await;
    assert!(matches!(
        a.rx.recv().await,
        Some(Event::Left {
            reason: LeftReason::Disconnected,
            ..
        })
    ));
    lobby.join(c.id, 1, Want::default()).await;
    lobby.gone(c.id, false).await;
    let s = lobby.stats().await;
    assert_eq!((s.online, s.waiting, s.rooms), (1, 0, 0));
}

/// With the clock under the test's control: two users with no interest in common hold
/// out for the fallback wait, then meet; "common" is empty.
#[tokio::test(start_paused = true)]
async fn users_without_common_interests_meet_after_the_fallback() {
    let lobby = lobby();
    let mut a = connect(&lobby).await;
    let mut b = connect(&lobby).await;
    lobby
        .join(a.id, 1, Want::interests(&["chess".into()]))
        .await;
    lobby.join(b.id, 1, Want::interests(&["jazz".into()])).await;
    tokio::time::advance(Duration::from_millis(4900)).await;
    assert_eq!(lobby.stats().await.waiting, 2, "still holding out at 4.9 s");
    tokio::time::advance(Duration::from_millis(200)).await;
    let (ma, mb) = (matched(&mut a).await, matched(&mut b).await);
    assert_eq!(ma.room, mb.room);
    assert!(ma.common.is_empty());
}

/// A shared interest wins over arriving first.
#[tokio::test(start_paused = true)]
async fn a_shared_interest_is_preferred() {
    let lobby = lobby();
    let mut plain = connect(&lobby).await;
    let mut chess = connect(&lobby).await;
    let mut joiner = connect(&lobby).await;
    lobby.join(plain.id, 1, Want::default()).await;
    lobby
        .join(chess.id, 1, Want::interests(&["chess".into()]))
        .await;
    lobby
        .join(
            joiner.id,
            1,
            Want::interests(&["chess".into(), "go".into()]),
        )
        .await;
    let m = matched(&mut joiner).await;
    assert_eq!(m.partner.id, chess.id);
    assert_eq!(m.common, vec!["chess".to_string()]);
    matched(&mut chess).await;
    assert!(plain.rx.try_recv().is_err());
}

/// Back after a restart, alone: after the resume wait the user is told the stranger is
/// gone, and can be matched with someone new.
#[tokio::test(start_paused = true)]
async fn a_resume_nobody_answers_ends_after_the_wait() {
    let lobby = lobby();
    let mut a = connect(&lobby).await;
    let room = RoomId(42);
    lobby
        .resume(a.id, 1, room, MemberProof::pair(1, 2).0, Mode::Video)
        .await;
    tokio::time::advance(RESUME_WAIT - Duration::from_millis(100)).await;
    assert!(a.rx.try_recv().is_err(), "still waiting for the stranger");
    tokio::time::advance(Duration::from_millis(200)).await;
    match a.rx.recv().await {
        Some(Event::Unresumed { seq: 1, room: r }) => assert_eq!(r, room),
        other => panic!("expected unresumed, got {other:?}"),
    }
    let mut b = connect(&lobby).await;
    lobby.join(a.id, 2, Want::default()).await;
    lobby.join(b.id, 1, Want::default()).await;
    matched(&mut b).await;
}

#[tokio::test]
async fn a_closed_waiter_is_never_matched() {
    let lobby = lobby();
    let a = connect(&lobby).await;
    let mut b = connect(&lobby).await;
    lobby.join(a.id, 1, Want::default()).await;
    drop(a.rx); // the session ended, its Gone not yet sent
    lobby.join(b.id, 1, Want::default()).await;
    let s = lobby.stats().await;
    assert_eq!((s.online, s.waiting, s.rooms), (1, 1, 0));
    assert!(b.rx.try_recv().is_err(), "b was not matched with a ghost");
}

/// A lobby whose task has died (a panic drops its mailbox) says so, for `/healthz`.
#[tokio::test]
async fn a_lobby_whose_task_died_is_not_alive() {
    let lobby = lobby();
    assert!(lobby.alive());
    let (tx, rx) = mpsc::channel(1);
    drop(rx);
    let dead = Lobby { tx, ..lobby };
    assert!(!dead.alive());
    assert_eq!(
        dead.stats().await,
        Stats::default(),
        "and answers with zeros"
    );
}

/// A session's task that ends without saying goodbye (it panicked) still leaves the lobby:
/// no ghost waits in the queue, and its partner is told.
#[tokio::test]
async fn a_dropped_registration_tells_the_lobby() {
    let lobby = lobby();
    let mut a = connect(&lobby).await;
    let b = connect(&lobby).await;
    lobby.join(a.id, 1, Want::default()).await;
    lobby.join(b.id, 1, Want::default()).await;
    matched(&mut a).await;
    lobby.gone_soon(b.id, false);
    assert!(matches!(
        a.rx.recv().await,
        Some(Event::Left {
            reason: LeftReason::Disconnected,
            ..
        })
    ));
    assert_eq!(lobby.stats().await.online, 1);
}

/// After a restart, knowing a room's id is not enough to take a member's place: a third
/// user who asks for the room first, with a proof it made up, neither gets in nor keeps the
/// two members apart, and is told the room is gone once the wait is over.
#[tokio::test(start_paused = true)]
async fn a_room_id_alone_never_resumes_a_room() {
    let old = lobby();
    let mut a = connect(&old).await;
    let mut b = connect(&old).await;
    old.join(a.id, 1, Want::default()).await;
    old.join(b.id, 1, Want::default()).await;
    let (ma, mb) = (matched(&mut a).await, matched(&mut b).await);
    let room = ma.room;
    let (pa, pb) = (ma.proof.unwrap(), mb.proof.unwrap());

    let new = lobby();
    let mut thief = connect(&new).await;
    let mut a = connect(&new).await;
    let mut b = connect(&new).await;
    let forged = MemberProof {
        secret: 7,
        partner: pa.me(),
    };
    new.resume(thief.id, 1, room, forged, Mode::Video).await;
    new.resume(b.id, 1, room, pb, Mode::Video).await;
    new.resume(a.id, 1, room, pa, Mode::Video).await;
    let (ra, rb) = (matched(&mut a).await, matched(&mut b).await);
    assert_eq!((ra.room, rb.room), (room, room));
    assert_eq!(
        (ra.partner.id, rb.partner.id),
        (b.id, a.id),
        "the members, together"
    );
    tokio::time::advance(RESUME_WAIT + Duration::from_millis(10)).await;
    match thief.rx.recv().await {
        Some(Event::Unresumed { room: r, .. }) => assert_eq!(r, room),
        other => panic!("the thief is told the room is gone, got {other:?}"),
    }
}

/// A member whose connection was lost to the network comes back on a new one before the
/// server notices: the new connection takes its place in the room at once (the stranger's
/// call never stops, it is only rerouted), and the old one is quietly out.
#[tokio::test]
async fn a_member_back_on_a_new_connection_takes_its_own_place() {
    let lobby = lobby();
    let mut a = connect(&lobby).await;
    let mut b = connect(&lobby).await;
    lobby.join(a.id, 1, Want::default()).await;
    lobby.join(b.id, 1, Want::default()).await;
    let ma = matched(&mut a).await;
    matched(&mut b).await;
    let mut again = connect(&lobby).await;
    lobby
        .resume(again.id, 1, ma.room, ma.proof.unwrap(), Mode::Video)
        .await;
    let back = matched(&mut again).await;
    assert_eq!(
        (back.room, back.partner.id, back.role),
        (ma.room, b.id, None)
    );
    match b.rx.recv().await {
        Some(Event::Rerouted { room, partner }) => {
            assert_eq!((room, partner.id), (ma.room, again.id))
        }
        other => panic!("the stranger is rerouted, got {other:?}"),
    }
    assert!(matches!(
        a.rx.recv().await,
        Some(Event::Left {
            reason: LeftReason::Left,
            ..
        })
    ));
    lobby.gone(a.id, false).await;
    let s = lobby.stats().await;
    assert_eq!(
        (s.online, s.rooms),
        (2, 1),
        "the old connection's end ends nothing"
    );
    assert!(b.rx.try_recv().is_err(), "and the stranger is told nothing");
}
