//! The matchmaking actor: one task that knows every connected user's state and makes every
//! pairing decision.
//!
//! Sessions talk to it through a cloneable [`Lobby`] handle over a bounded channel and await
//! those sends; the actor answers with `try_send` into the sessions' own bounded queues and
//! never waits on a session, so there is no cycle of awaited sends. A session whose queue is
//! full is dropped from the lobby (its partner is told `disconnected`), and the session ends
//! once its queue runs dry.
//!
//! A user is in exactly one of idle, waiting or in a room; the actor's map is the truth, and
//! the queue itself is the [`Matchmaker`]'s.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use rand::RngExt;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, MissedTickBehavior};

use crate::matchmaker::{Matchmaker, Pairing, Policy, Queue, SessionId};
use crate::moderation::{ClientKey, Moderation, Report, ReportLog, now_ms};
use crate::protocol::{LeftReason, ReportReason, Role, RoomId};
use crate::room::{Event, Matched, Partner, Peer};
use crate::shared::bus::BusMessage;
use crate::shared::{SharedEvent, SharedQueue};
use crate::telemetry;

/// How many commands may queue up for the actor before senders wait.
const MAILBOX: usize = 4096;
/// How long a user back after a restart waits for its stranger to come back too.
pub const RESUME_WAIT: Duration = Duration::from_secs(10);
/// How often the online count is published to sessions (the protocol promises at most one
/// `online` message per second).
///
/// Sessions are split into [`ONLINE_SHARDS`] groups, each told in its own slice of the
/// second: telling every session at the same instant would wake tens of thousands of tasks
/// and write as many frames in one burst, holding up everyone's relays for a moment.
const ONLINE_EVERY: Duration = Duration::from_secs(1);
/// How many groups of sessions hear of the online count in turn.
const ONLINE_SHARDS: usize = 16;

/// A cloneable handle to the matchmaking actor.
#[derive(Clone, Debug)]
pub struct Lobby {
    /// The actor's mailbox.
    tx: mpsc::Sender<Command>,
    /// The online count, published to each group of sessions at most once per
    /// [`ONLINE_EVERY`].
    online: Arc<[watch::Receiver<usize>]>,
}

/// Counts read from the actor, for `/healthz`, metrics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connected users.
    pub online: usize,
    /// Users in the queue.
    pub waiting: usize,
    /// Rooms with two members.
    pub rooms: usize,
    /// Pairings made since start.
    pub matches: u64,
    /// With a shared queue, whether Redis answers.
    pub redis: Option<bool>,
}

#[derive(Debug)]
enum Command {
    Register {
        peer: Peer,
        client: Option<ClientKey>,
        reply: oneshot::Sender<usize>,
    },
    Join {
        id: SessionId,
        seq: u64,
        interests: Vec<String>,
    },
    Next {
        id: SessionId,
        seq: u64,
    },
    Leave {
        id: SessionId,
        seq: u64,
    },
    Report {
        id: SessionId,
        seq: u64,
        reason: ReportReason,
    },
    Resume {
        id: SessionId,
        seq: u64,
        room: RoomId,
        role: Option<Role>,
    },
    /// The session ended, or cannot keep up: forget it.
    Gone {
        id: SessionId,
        /// The server is restarting: a partner on another instance is told to expect the
        /// user back, not that it left.
        restarting: bool,
    },
    Stats {
        reply: oneshot::Sender<Stats>,
    },
    /// News from the shared queue's engine.
    Shared(SharedEvent),
}

impl Lobby {
    /// Starts the actor; it runs until every handle is dropped. Reports go to `log` and
    /// decide bans through `moderation`.
    ///
    /// With `shared`, waiting users wait in the queue shared by every instance, and `rng`
    /// draws this instance's room ids and roles; otherwise in this process's own queue.
    pub fn start(
        rng: StdRng,
        policy: Policy,
        moderation: Moderation,
        log: Option<ReportLog>,
        shared: Option<SharedQueue>,
    ) -> Lobby {
        let (mut actor, lobby) = match shared {
            Some(queue) => {
                let (mut actor, lobby) = Actor::new(StdRng::seed_from_u64(0), policy);
                actor.queue = Waiting::Shared(queue, rng);
                (actor, lobby)
            }
            None => Actor::new(rng, policy),
        };
        actor.moderation = moderation;
        actor.reports = log;
        tokio::spawn(actor.run());
        lobby
    }

    async fn send(&self, cmd: Command) {
        // Fails only when the actor has stopped, i.e. the server is shutting down.
        let _ = self.tx.send(cmd).await;
    }

    /// Adds a connected user (idle), known for reports and bans by `client`; returns the
    /// online count including them.
    pub async fn register(&self, peer: Peer, client: Option<ClientKey>) -> Option<usize> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Register {
            peer,
            client,
            reply,
        })
        .await;
        rx.await.ok()
    }

    /// The user is back after a restart, or on a new connection, and asks for `room` (in
    /// which it had `role`, if it says) again.
    pub async fn resume(&self, id: SessionId, seq: u64, room: RoomId, role: Option<Role>) {
        self.send(Command::Resume {
            id,
            seq,
            room,
            role,
        })
        .await
    }

    /// The user reports its partner: the room ends and the report is stored.
    pub async fn report(&self, id: SessionId, seq: u64, reason: ReportReason) {
        self.send(Command::Report { id, seq, reason }).await
    }

    /// The user wants a partner (it was idle).
    pub async fn join(&self, id: SessionId, seq: u64, interests: Vec<String>) {
        self.send(Command::Join { id, seq, interests }).await
    }

    /// The user ends its room, if any, and wants a new partner.
    pub async fn next(&self, id: SessionId, seq: u64) {
        self.send(Command::Next { id, seq }).await
    }

    /// The user leaves its room or the queue and stays connected.
    pub async fn leave(&self, id: SessionId, seq: u64) {
        self.send(Command::Leave { id, seq }).await
    }

    /// The user is gone (socket closed) or must be dropped (cannot keep up).
    pub async fn gone(&self, id: SessionId) {
        self.send(Command::Gone {
            id,
            restarting: false,
        })
        .await
    }

    /// The user's session ended because this server is restarting; the user will likely
    /// come back (here or to another instance) and ask for its room.
    pub async fn restarting(&self, id: SessionId) {
        self.send(Command::Gone {
            id,
            restarting: true,
        })
        .await
    }

    /// A snapshot of the counts.
    pub async fn stats(&self) -> Stats {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Stats { reply }).await;
        rx.await.unwrap_or_default()
    }

    /// News from the shared queue's engine (it awaits this; the lobby never awaits it).
    pub async fn shared(&self, event: SharedEvent) {
        self.send(Command::Shared(event)).await
    }

    /// The online count as last published (at most a second old).
    pub fn online_count(&self) -> usize {
        self.online.iter().map(|rx| *rx.borrow()).max().unwrap_or(0)
    }

    /// A receiver of the online count for session `id`, updated at most once a second.
    pub fn online(&self, id: SessionId) -> watch::Receiver<usize> {
        self.online[id.0 as usize % ONLINE_SHARDS].clone()
    }
}

/// Completes at `deadline`, or never.
async fn fallback(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// One connected user as the actor knows it.
#[derive(Debug)]
struct User {
    /// Where this user's events go.
    peer: Peer,
    /// The counter of the user's latest command, echoed in `Matched` so the session can tell
    /// a decision it has since overridden.
    seq: u64,
    /// Interests from the last join, kept for `next` and for `common`.
    interests: Vec<String>,
    status: Status,
    /// When the user last asked for a partner, for the time-to-match histogram.
    asked_at: Instant,
    /// Who this is for reports and bans (a salted hash of the IP), if known.
    client: Option<ClientKey>,
    /// The role this user was given in its room (local rooms only), which says whose place
    /// a member back on a new connection takes.
    role: Option<Role>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Idle,
    Waiting,
    InRoom {
        room: RoomId,
        partner: Partner,
    },
    /// Back after a restart, waiting (until the deadline) for the other member of `room`.
    Resuming {
        room: RoomId,
        until: Instant,
    },
}

struct Actor {
    rx: mpsc::Receiver<Command>,
    /// Every connected user, keyed by session.
    users: HashMap<SessionId, User>,
    /// Waiting users and the pairing policy.
    queue: Waiting,
    /// With a shared queue: the global online count at the last heartbeat, and ours then.
    pool_online: Option<(usize, usize)>,
    /// Rooms now open (each has two users with `Status::InRoom`).
    rooms: usize,
    /// Pairings made since start.
    matches: u64,
    /// Publishes the online count to each group of sessions.
    online_tx: Vec<watch::Sender<usize>>,
    /// Recent reports and bans in force.
    moderation: Moderation,
    /// Where reports are stored.
    reports: Option<ReportLog>,
    /// Rooms of a previous server process whose first member is back, by room.
    resuming: HashMap<RoomId, SessionId>,
    /// When each resuming user stops waiting, earliest first (the wait is the same for all).
    resume_deadlines: VecDeque<(Instant, SessionId)>,
    /// Users whose partner's instance is restarting, with the partner they had: told the
    /// stranger left if it has not come back by then.
    awaiting: VecDeque<(Instant, SessionId, crate::room::UserRef)>,
}

impl Actor {
    fn new(rng: StdRng, policy: Policy) -> (Actor, Lobby) {
        let (tx, rx) = mpsc::channel(MAILBOX);
        let (online_tx, online): (Vec<_>, Vec<_>) =
            (0..ONLINE_SHARDS).map(|_| watch::channel(0)).unzip();
        let online: Arc<[watch::Receiver<usize>]> = online.into();
        let actor = Actor {
            rx,
            users: HashMap::new(),
            queue: Waiting::Local(Matchmaker::new(rng, policy)),
            pool_online: None,
            rooms: 0,
            matches: 0,
            online_tx,
            moderation: Moderation::default(),
            reports: None,
            resuming: HashMap::new(),
            resume_deadlines: VecDeque::new(),
            awaiting: VecDeque::new(),
        };
        (actor, Lobby { tx, online })
    }

    async fn run(mut self) {
        let slice = ONLINE_EVERY / ONLINE_SHARDS as u32;
        let mut publish = tokio::time::interval_at(Instant::now() + slice, slice);
        publish.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut shard = 0;
        loop {
            tokio::select! {
                cmd = self.rx.recv() => match cmd {
                    Some(cmd) => {
                        self.handle(cmd);
                        self.publish_gauges();
                    }
                    None => break,
                },
                _ = fallback(self.queue.next_deadline()) => {
                    for pairing in self.queue.expire(Instant::now()) {
                        self.open_room(pairing);
                    }
                    self.publish_gauges();
                }
                _ = fallback(self.resume_deadlines.front().map(|(at, _)| *at)) => {
                    self.expire_resumes(Instant::now());
                }
                _ = fallback(self.awaiting.front().map(|(at, _, _)| *at)) => {
                    self.expire_awaiting(Instant::now());
                }
                _ = publish.tick() => {
                    let online = self.online();
                    shard = (shard + 1) % ONLINE_SHARDS;
                    self.online_tx[shard]
                        .send_if_modified(|n| std::mem::replace(n, online) != online);
                }
            }
        }
    }

    fn publish_gauges(&self) {
        let metrics = telemetry::metrics();
        metrics.waiting.set(self.queue.len() as f64);
        metrics.rooms.set(self.rooms as f64);
    }

    fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Register {
                peer,
                client,
                reply,
            } => {
                let id = peer.id;
                if let Waiting::Shared(queue, _) = &mut self.queue {
                    queue.register(id, client);
                }
                self.users.insert(
                    id,
                    User {
                        peer,
                        seq: 0,
                        interests: Vec::new(),
                        status: Status::Idle,
                        asked_at: Instant::now(),
                        client,
                        role: None,
                    },
                );
                let _ = reply.send(self.online());
            }
            Command::Join { id, seq, interests } => {
                let Some(user) = self.users.get_mut(&id) else {
                    return;
                };
                user.seq = seq;
                user.interests = interests;
                if user.status == Status::Idle {
                    self.pair_or_queue(id);
                }
            }
            Command::Next { id, seq } => {
                let Some(user) = self.users.get_mut(&id) else {
                    return;
                };
                user.seq = seq;
                match user.status {
                    Status::Waiting => {}
                    Status::Idle => self.pair_or_queue(id),
                    Status::InRoom { .. } => {
                        self.end_room(id, LeftReason::Skipped);
                        self.pair_or_queue(id);
                    }
                    Status::Resuming { .. } => {
                        self.stop_resuming(id);
                        self.pair_or_queue(id);
                    }
                }
            }
            Command::Leave { id, seq } => {
                let Some(user) = self.users.get_mut(&id) else {
                    return;
                };
                user.seq = seq;
                match user.status {
                    Status::Idle => {}
                    Status::Waiting => {
                        self.queue.remove(id);
                        user.status = Status::Idle;
                    }
                    Status::InRoom { .. } => self.end_room(id, LeftReason::Left),
                    Status::Resuming { .. } => self.stop_resuming(id),
                }
            }
            Command::Resume {
                id,
                seq,
                room,
                role,
            } => {
                let Some(user) = self.users.get_mut(&id) else {
                    return;
                };
                user.seq = seq;
                if user.status != Status::Idle {
                    return;
                }
                match role.and_then(|r| self.replaced(id, room, r)) {
                    Some((old, partner)) => self.take_place(old, id, partner, room),
                    None => self.resume(id, room),
                }
            }
            Command::Report { id, seq, reason } => {
                let Some(user) = self.users.get_mut(&id) else {
                    return;
                };
                user.seq = seq;
                let Status::InRoom { partner, .. } = user.status else {
                    return;
                };
                let reporter = user.client;
                let reported = match partner {
                    Partner::Here(partner) => self.users.get(&partner).and_then(|p| p.client),
                    Partner::There { client, .. } => client,
                };
                if let (Some(reporter), Some(reported)) = (reporter, reported) {
                    self.file_report(Report {
                        at_ms: now_ms(),
                        reporter,
                        reported,
                        reason,
                    });
                }
                // The reported user sees an ordinary skip: never who reported them.
                self.end_room(id, LeftReason::Skipped);
            }
            Command::Gone { id, restarting } => {
                if restarting {
                    self.keep_remote_partner(id);
                }
                self.drop_user(id)
            }
            Command::Stats { reply } => {
                let _ = reply.send(Stats {
                    online: self.users.len(),
                    waiting: self.queue.len(),
                    rooms: self.rooms,
                    matches: self.matches,
                    redis: match &self.queue {
                        Waiting::Shared(queue, _) => Some(queue.health.reachable()),
                        Waiting::Local(_) => None,
                    },
                });
            }
            Command::Shared(event) => self.on_shared(event),
        }
        if let Waiting::Shared(queue, _) = &self.queue {
            queue
                .local_online
                .store(self.users.len(), std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// The online count to show: every instance's with a shared queue (as of the last
    /// heartbeat, corrected for our own users since), else ours.
    fn online(&self) -> usize {
        match self.pool_online {
            Some((all, ours_then)) => (all + self.users.len()).saturating_sub(ours_then),
            None => self.users.len(),
        }
    }

    fn file_report(&mut self, report: Report) {
        if let Some(until) = self.moderation.record(&report) {
            tracing::info!(
                client = %report.reported,
                minutes = (until.saturating_sub(report.at_ms)) / 60_000,
                "client banned after reports"
            );
        }
        if let Some(log) = &self.reports {
            log.append(report);
        }
    }

    /// `id` (idle) is back after a restart and asks for `room`: if the other member is
    /// already back, the room opens again; otherwise `id` waits for it, for [`RESUME_WAIT`].
    /// Knowing the room id is the proof of membership: it is 128 random bits that only the
    /// two members were ever sent.
    fn resume(&mut self, id: SessionId, room: RoomId) {
        let now = Instant::now();
        // With a shared queue the table of returning users is in Redis: the other member
        // may come back to another instance.
        if let Waiting::Shared(queue, _) = &mut self.queue {
            let until = now + RESUME_WAIT;
            self.resume_deadlines.push_back((until, id));
            if let Some(user) = self.users.get_mut(&id) {
                user.status = Status::Resuming { room, until };
            }
            queue.resume(id, room);
            return;
        }
        let other = self.resuming.get(&room).copied().filter(|other| {
            *other != id
                && self.users.get(other).is_some_and(
                    |u| matches!(u.status, Status::Resuming { room: r, .. } if r == room),
                )
        });
        let Some(other) = other else {
            let until = now + RESUME_WAIT;
            self.resuming.insert(room, id);
            self.resume_deadlines.push_back((until, id));
            if let Some(user) = self.users.get_mut(&id) {
                user.status = Status::Resuming { room, until };
            }
            return;
        };
        self.resuming.remove(&room);
        self.relink_local(id, other, room);
    }

    /// The member of local `room` that had `role`, if a new connection `id` may take its
    /// place (its own network dropped and the server has not noticed yet), and its partner.
    fn replaced(&self, id: SessionId, room: RoomId, role: Role) -> Option<(SessionId, SessionId)> {
        self.users
            .iter()
            .find_map(|(&member, user)| match user.status {
                Status::InRoom {
                    room: r,
                    partner: Partner::Here(partner),
                } if r == room && member != id && partner != id && user.role == Some(role) => {
                    Some((member, partner))
                }
                _ => None,
            })
    }

    /// The new connection `id` takes `old`'s place in `room` with `partner`: both are told
    /// the room works again (`resumed`), and `old` is quietly out of it.
    fn take_place(&mut self, old: SessionId, id: SessionId, partner: SessionId, room: RoomId) {
        let role = self.users.get_mut(&old).and_then(|u| {
            u.status = Status::Idle;
            u.role.take()
        });
        if let Some(u) = self.users.get(&old) {
            let _ = u.peer.send(Event::Left {
                room,
                reason: LeftReason::Left,
            });
        }
        if let Some(u) = self.users.get_mut(&id) {
            u.role = role;
        }
        self.relink_local(id, partner, room);
    }

    /// `id` no longer waits to resume (it left, pressed Next, or is gone).
    fn stop_resuming(&mut self, id: SessionId) {
        let Some(user) = self.users.get_mut(&id) else {
            return;
        };
        if let Status::Resuming { room, .. } = user.status {
            user.status = Status::Idle;
            if self.resuming.get(&room) == Some(&id) {
                self.resuming.remove(&room);
            }
        }
    }

    /// Users whose stranger did not come back in time are told the stranger is gone.
    fn expire_resumes(&mut self, now: Instant) {
        while let Some(&(at, id)) = self.resume_deadlines.front() {
            if at > now {
                break;
            }
            self.resume_deadlines.pop_front();
            let Some(user) = self.users.get(&id) else {
                continue;
            };
            let Status::Resuming { room, until } = user.status else {
                continue;
            };
            if until != at {
                continue; // a later attempt has its own deadline
            }
            self.stop_resuming(id);
            let user = &self.users[&id];
            let gone = Event::Unresumed {
                seq: user.seq,
                room,
            };
            if user.peer.send(gone).is_err() {
                self.drop_user(id);
            }
        }
    }

    /// Forgets `id`; a partner it had is told `disconnected`.
    fn drop_user(&mut self, id: SessionId) {
        if !self.users.contains_key(&id) {
            return;
        }
        self.stop_resuming(id);
        self.end_room(id, LeftReason::Disconnected);
        self.queue.forget(id);
        self.users.remove(&id);
    }

    /// Ends `id`'s room if it has one: both become idle and the partner is told `reason`.
    fn end_room(&mut self, id: SessionId, reason: LeftReason) {
        let Some(Status::InRoom { room, partner }) = self.users.get(&id).map(|u| u.status) else {
            return;
        };
        self.rooms -= 1;
        self.queue.parted(id, partner, Instant::now());
        if let Some(user) = self.users.get_mut(&id) {
            user.status = Status::Idle;
        }
        let partner = match partner {
            Partner::Here(partner) => partner,
            Partner::There { user, .. } => {
                if let Waiting::Shared(queue, _) = &self.queue {
                    queue.bus.publish(
                        user.instance,
                        BusMessage::Left {
                            to: user.session,
                            room,
                            reason,
                        },
                    );
                }
                return;
            }
        };
        let Some(other) = self.users.get_mut(&partner) else {
            return;
        };
        other.status = Status::Idle;
        if other.peer.send(Event::Left { room, reason }).is_err() {
            // Full or closed: it cannot keep up or is already gone; either way, drop it.
            self.drop_user(partner);
        }
    }

    /// `id` (idle) wants a partner: pair it at random with a waiting user, or queue it;
    /// unless it is banned, then it is told so and stays idle.
    fn pair_or_queue(&mut self, id: SessionId) {
        let Some(user) = self.users.get_mut(&id) else {
            return;
        };
        user.asked_at = Instant::now();
        let ban = user
            .client
            .and_then(|key| self.moderation.banned_until(key, now_ms()));
        if let Some(until_ms) = ban {
            let refused = Event::Refused {
                seq: user.seq,
                until_ms,
            };
            if user.peer.send(refused).is_err() {
                self.drop_user(id);
            }
            return;
        }
        loop {
            let Some(user) = self.users.get(&id) else {
                return;
            };
            let Some(pairing) = self.queue.join(id, &user.interests, Instant::now()) else {
                if let Some(user) = self.users.get_mut(&id) {
                    user.status = Status::Waiting;
                }
                return;
            };
            // A waiter whose session just ended has not been reported yet: skip it.
            if self.users[&pairing.waiter].peer.is_closed() {
                self.drop_user(pairing.waiter);
                continue;
            }
            self.open_room(pairing);
            return;
        }
    }

    fn open_room(&mut self, p: Pairing) {
        self.rooms += 1;
        self.matches += 1;
        let metrics = telemetry::metrics();
        metrics.matches.increment(1);
        for id in [p.joiner, p.waiter] {
            metrics.waited(self.users[&id].asked_at.elapsed());
        }
        let common = &p.common;
        let members = [
            (p.joiner, p.waiter, p.joiner_role),
            (p.waiter, p.joiner, p.joiner_role.other()),
        ];
        for (me, other, role) in members {
            let user = self.users.get_mut(&me).expect("paired users exist");
            user.status = Status::InRoom {
                room: p.room,
                partner: Partner::Here(other),
            };
            user.role = Some(role);
        }
        for (me, other, role) in members {
            let (Some(user), Some(partner)) = (self.users.get(&me), self.users.get(&other)) else {
                // An earlier delivery failure already dropped one of them.
                return;
            };
            let event = Event::Matched(Box::new(Matched {
                seq: user.seq,
                room: p.room,
                role: Some(role),
                common: common.clone(),
                partner: partner.peer.clone(),
            }));
            if user.peer.send(event).is_err() {
                self.drop_user(me);
            }
        }
    }
}

/// Where this lobby's users wait: in this process's own queue, or in the one every instance
/// shares (with the generator of the room ids and roles this instance draws).
enum Waiting {
    Local(Matchmaker<StdRng>),
    Shared(SharedQueue, StdRng),
}

impl std::ops::Deref for Waiting {
    type Target = dyn Queue;

    fn deref(&self) -> &Self::Target {
        match self {
            Waiting::Local(queue) => queue,
            Waiting::Shared(queue, _) => queue,
        }
    }
}

impl std::ops::DerefMut for Waiting {
    fn deref_mut(&mut self) -> &mut Self::Target {
        match self {
            Waiting::Local(queue) => queue,
            Waiting::Shared(queue, _) => queue,
        }
    }
}

/// The shared queue's news: pairings it made, messages from other instances, heartbeats.
impl Actor {
    fn on_shared(&mut self, event: SharedEvent) {
        let now = Instant::now();
        match event {
            SharedEvent::Paired {
                joiner,
                ticket,
                partner,
                partner_ticket,
                partner_client,
                common,
            } => self.paired(
                joiner,
                ticket,
                partner,
                partner_ticket,
                partner_client,
                common,
            ),
            SharedEvent::Bus(msg) => self.on_bus(msg),
            SharedEvent::Pool {
                online,
                dead,
                forgotten,
            } => {
                self.pool_online = Some((online, self.users.len()));
                if forgotten || !dead.is_empty() {
                    let orphaned: Vec<SessionId> = self
                        .users
                        .iter()
                        .filter(|(_, u)| match u.status {
                            Status::InRoom {
                                partner: Partner::There { user, .. },
                                ..
                            } => forgotten || dead.contains(&user.instance),
                            _ => false,
                        })
                        .map(|(id, _)| *id)
                        .collect();
                    for id in orphaned {
                        self.partner_gone(id, None, LeftReason::Disconnected);
                    }
                }
            }
            SharedEvent::Resumed {
                user,
                room,
                other,
                other_client,
            } => self.resumed(user, room, other, other_client, true),
            SharedEvent::Report(report) => {
                if let Some(until) = self.moderation.record(&report) {
                    tracing::info!(
                        client = %report.reported,
                        minutes = (until.saturating_sub(report.at_ms)) / 60_000,
                        "client banned after reports (made on another instance)"
                    );
                }
            }
            SharedEvent::Resync => {
                if let Waiting::Shared(queue, _) = &mut self.queue {
                    for id in queue.waiters() {
                        queue.rejoin(id, now);
                    }
                }
            }
        }
    }

    /// The shared queue paired our waiting `joiner` with `partner`.
    fn paired(
        &mut self,
        joiner: SessionId,
        ticket: u64,
        partner: crate::room::UserRef,
        partner_ticket: u64,
        partner_client: Option<ClientKey>,
        common: Vec<String>,
    ) {
        let now = Instant::now();
        let Waiting::Shared(queue, rng) = &mut self.queue else {
            return;
        };
        let room = RoomId(rng.random());
        let role = if rng.random() {
            Role::Offerer
        } else {
            Role::Answerer
        };
        let joiner_waits = queue.waits_with(joiner, ticket);
        if partner.instance == queue.me {
            let partner_waits = queue.waits_with(partner.session, partner_ticket);
            match (joiner_waits, partner_waits) {
                (true, true) => {
                    queue.claim(joiner, ticket);
                    queue.claim(partner.session, partner_ticket);
                    self.open_room(Pairing {
                        room,
                        joiner,
                        joiner_role: role,
                        waiter: partner.session,
                        common,
                    });
                }
                // Whoever still waits goes back in the queue.
                (true, false) => queue.rejoin(joiner, now),
                (false, true) => queue.rejoin(partner.session, now),
                (false, false) => {}
            }
            return;
        }
        if !joiner_waits {
            queue.bus.publish(
                partner.instance,
                BusMessage::Requeue {
                    to: partner.session,
                    ticket: partner_ticket,
                },
            );
            return;
        }
        queue.claim(joiner, ticket);
        let bus = queue.bus.clone();
        let from = queue.user(joiner);
        let Some(user) = self.users.get_mut(&joiner) else {
            return;
        };
        user.status = Status::InRoom {
            room,
            partner: Partner::There {
                user: partner,
                client: partner_client,
            },
        };
        self.rooms += 1;
        self.matches += 1;
        let metrics = telemetry::metrics();
        metrics.matches.increment(1);
        metrics.waited(user.asked_at.elapsed());
        bus.publish(
            partner.instance,
            BusMessage::Matched {
                to: partner.session,
                ticket: partner_ticket,
                room,
                role: role.other(),
                from,
                client: user.client,
                common: common.clone(),
            },
        );
        let event = Event::Matched(Box::new(Matched {
            seq: user.seq,
            room,
            role: Some(role),
            common,
            partner: Peer::remote(partner, bus),
        }));
        if user.peer.send(event).is_err() {
            self.drop_user(joiner);
        }
    }

    /// Another instance's message about one of our users.
    fn on_bus(&mut self, msg: BusMessage) {
        let Waiting::Shared(queue, _) = &mut self.queue else {
            return;
        };
        let now = Instant::now();
        let to = msg.to();
        let in_room = |users: &HashMap<SessionId, User>, room: RoomId| {
            users.get(&to).is_some_and(|u| {
                matches!(u.status, Status::InRoom { room: r, partner: Partner::There { .. } } if r == room)
            })
        };
        match msg {
            BusMessage::Relay { room, text, .. } => {
                if in_room(&self.users, room)
                    && self.users[&to].peer.send(Event::Relay {
                        room,
                        text: Box::new(text),
                    }) == Err(crate::room::Undeliverable::Full)
                {
                    self.drop_user(to);
                }
            }
            BusMessage::Matched {
                ticket,
                room,
                role,
                from,
                client,
                common,
                ..
            } => {
                if !queue.claim(to, ticket) {
                    // Gone, left, or waiting again since: the stranger must look further.
                    queue.bus.publish(
                        from.instance,
                        BusMessage::Left {
                            to: from.session,
                            room,
                            reason: LeftReason::Disconnected,
                        },
                    );
                    return;
                }
                let bus = queue.bus.clone();
                let Some(user) = self.users.get_mut(&to) else {
                    return;
                };
                user.status = Status::InRoom {
                    room,
                    partner: Partner::There { user: from, client },
                };
                self.rooms += 1;
                telemetry::metrics().waited(user.asked_at.elapsed());
                let event = Event::Matched(Box::new(Matched {
                    seq: user.seq,
                    room,
                    role: Some(role),
                    common,
                    partner: Peer::remote(from, bus),
                }));
                if user.peer.send(event).is_err() {
                    self.drop_user(to);
                }
            }
            BusMessage::Left { room, reason, .. } => {
                if in_room(&self.users, room) {
                    self.partner_gone(to, Some(now), reason);
                }
            }
            BusMessage::Requeue { ticket, .. } => {
                if queue.waits_with(to, ticket) {
                    queue.rejoin(to, now);
                }
            }
            BusMessage::Restarting { room, .. } => {
                let Some(Status::InRoom {
                    room: r,
                    partner: Partner::There { user: partner, .. },
                }) = self.users.get(&to).map(|u| u.status)
                else {
                    return;
                };
                if r == room {
                    // The call goes on browser to browser; wait for the stranger to ask for
                    // the room again, wherever it reconnects.
                    self.awaiting.push_back((now + RESUME_WAIT, to, partner));
                    queue.resume(to, room);
                }
            }
            BusMessage::Rejoined {
                room, from, client, ..
            } => self.resumed(to, room, from, client, false),
        }
    }

    /// `id`'s session ended for a restart: a partner on another instance is told to expect
    /// it back, and the room is forgotten here without a `left`.
    fn keep_remote_partner(&mut self, id: SessionId) {
        let Some(user) = self.users.get_mut(&id) else {
            return;
        };
        let Status::InRoom {
            room,
            partner: Partner::There { user: partner, .. },
        } = user.status
        else {
            return;
        };
        user.status = Status::Idle;
        self.rooms -= 1;
        if let Waiting::Shared(queue, _) = &self.queue {
            queue.bus.publish(
                partner.instance,
                BusMessage::Restarting {
                    to: partner.session,
                    room,
                },
            );
        }
    }

    /// `user` and `other` are the two members of `room`, back together after a restart.
    /// `user` is back from a restart (resuming), or still here waiting for its partner to
    /// come back. `announce`: we learnt it from the shared table, so `other`'s instance
    /// must be told (it is not, when its own `rejoined` is what told us).
    fn resumed(
        &mut self,
        user: SessionId,
        room: RoomId,
        other: crate::room::UserRef,
        other_client: Option<ClientKey>,
        announce: bool,
    ) {
        let Waiting::Shared(queue, _) = &mut self.queue else {
            return;
        };
        let me = queue.user(user);
        let bus = queue.bus.clone();
        let status = self.users.get(&user).map(|u| u.status);
        let still_there = match status {
            Some(Status::Resuming { room: r, .. }) => r == room,
            Some(Status::InRoom {
                room: r,
                partner: Partner::There { .. },
            }) => r == room,
            _ => false,
        };
        if !still_there {
            if other.instance != me.instance {
                bus.publish(
                    other.instance,
                    BusMessage::Left {
                        to: other.session,
                        room,
                        reason: LeftReason::Disconnected,
                    },
                );
            }
            return;
        }
        let was_resuming = matches!(status, Some(Status::Resuming { .. }));
        if other.instance == me.instance {
            // Both are here: whoever is still waiting for the other takes the local path.
            if was_resuming
                && let Some(Status::InRoom { .. } | Status::Resuming { .. }) =
                    self.users.get(&other.session).map(|u| u.status)
            {
                self.relink_local(user, other.session, room);
            }
            return;
        }
        let Some(u) = self.users.get_mut(&user) else {
            return;
        };
        u.status = Status::InRoom {
            room,
            partner: Partner::There {
                user: other,
                client: other_client,
            },
        };
        let partner = Peer::remote(other, bus.clone());
        let event = if was_resuming {
            self.rooms += 1;
            Event::Matched(Box::new(Matched {
                seq: u.seq,
                room,
                role: None,
                common: Vec::new(),
                partner,
            }))
        } else {
            // This member never left: its partner is now `other`, wherever that is.
            Event::Rerouted {
                room,
                partner: Box::new(partner),
            }
        };
        if u.peer.send(event).is_err() {
            self.drop_user(user);
            return;
        }
        if !announce {
            return;
        }
        // Tell the other side who we are now (it asked the table first, or is the member
        // who stayed).
        let client = self.users.get(&user).and_then(|u| u.client);
        bus.publish(
            other.instance,
            BusMessage::Rejoined {
                to: other.session,
                room,
                from: me,
                client,
            },
        );
    }

    /// Both members of `room` are here again: `a` has just asked for it, `b` is resuming or
    /// waiting for its partner to come back. Each is told (`b` even if `a` cannot be, so it
    /// is not left resuming; dropping `a` then tells `b` the room is over).
    fn relink_local(&mut self, a: SessionId, b: SessionId, room: RoomId) {
        let b_was_in_room = matches!(
            self.users.get(&b).map(|u| u.status),
            Some(Status::InRoom { .. })
        );
        for (me, partner) in [(a, b), (b, a)] {
            if let Some(u) = self.users.get_mut(&me) {
                u.status = Status::InRoom {
                    room,
                    partner: Partner::Here(partner),
                };
            }
        }
        if !b_was_in_room {
            self.rooms += 1;
        }
        let (Some(ua), Some(ub)) = (self.users.get(&a), self.users.get(&b)) else {
            return;
        };
        let to_a = Event::Matched(Box::new(Matched {
            seq: ua.seq,
            room,
            role: None,
            common: Vec::new(),
            partner: ub.peer.clone(),
        }));
        let to_b = if b_was_in_room {
            Event::Rerouted {
                room,
                partner: Box::new(ua.peer.clone()),
            }
        } else {
            Event::Matched(Box::new(Matched {
                seq: ub.seq,
                room,
                role: None,
                common: Vec::new(),
                partner: ua.peer.clone(),
            }))
        };
        let failed_a = ua.peer.send(to_a).is_err();
        let failed_b = ub.peer.send(to_b).is_err();
        if failed_a {
            self.drop_user(a);
        }
        if failed_b {
            self.drop_user(b);
        }
    }

    /// Users whose partner's instance restarted and who were not rejoined in time: the
    /// stranger is gone.
    fn expire_awaiting(&mut self, now: Instant) {
        while let Some(&(at, id, partner)) = self.awaiting.front() {
            if at > now {
                break;
            }
            self.awaiting.pop_front();
            let still = matches!(
                self.users.get(&id).map(|u| u.status),
                Some(Status::InRoom { partner: Partner::There { user, .. }, .. }) if user == partner
            );
            if still {
                self.partner_gone(id, None, LeftReason::Disconnected);
            }
        }
    }

    /// `id`'s partner on another instance ended the room (or its instance died): `id` is
    /// idle and told `reason`. `parted` says when, for the cool-down (none for a dead
    /// instance).
    fn partner_gone(&mut self, id: SessionId, parted: Option<Instant>, reason: LeftReason) {
        let Some(user) = self.users.get_mut(&id) else {
            return;
        };
        let Status::InRoom { room, partner } = user.status else {
            return;
        };
        user.status = Status::Idle;
        self.rooms -= 1;
        if user.peer.send(Event::Left { room, reason }).is_err() {
            self.drop_user(id);
        }
        if let Some(now) = parted {
            self.queue.parted(id, partner, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

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
        Lobby::start(
            StdRng::seed_from_u64(7),
            Policy::default(),
            Moderation::default(),
            None,
            None,
        )
    }

    #[tokio::test]
    async fn two_joiners_share_a_room_with_opposite_roles() {
        let lobby = lobby();
        let mut a = connect(&lobby).await;
        let mut b = connect(&lobby).await;
        lobby
            .join(a.id, 1, vec!["chess".into(), "jazz".into()])
            .await;
        lobby.join(b.id, 1, vec!["jazz".into()]).await;
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
        lobby.join(a.id, 1, vec![]).await;
        lobby.join(b.id, 1, vec![]).await;
        let room = matched(&mut a).await.room;
        matched(&mut b).await;
        lobby.next(a.id, 2).await;
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
        lobby.join(a.id, 1, vec![]).await;
        lobby.join(b.id, 1, vec![]).await;
        matched(&mut a).await;
        lobby.gone(b.id).await;
        assert!(matches!(
            a.rx.recv().await,
            Some(Event::Left {
                reason: LeftReason::Disconnected,
                ..
            })
        ));
        lobby.join(c.id, 1, vec![]).await;
        lobby.gone(c.id).await;
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
        lobby.join(a.id, 1, vec!["chess".into()]).await;
        lobby.join(b.id, 1, vec!["jazz".into()]).await;
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
        lobby.join(plain.id, 1, vec![]).await;
        lobby.join(chess.id, 1, vec!["chess".into()]).await;
        lobby
            .join(joiner.id, 1, vec!["chess".into(), "go".into()])
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
        lobby.resume(a.id, 1, room, None).await;
        tokio::time::advance(RESUME_WAIT - Duration::from_millis(100)).await;
        assert!(a.rx.try_recv().is_err(), "still waiting for the stranger");
        tokio::time::advance(Duration::from_millis(200)).await;
        match a.rx.recv().await {
            Some(Event::Unresumed { seq: 1, room: r }) => assert_eq!(r, room),
            other => panic!("expected unresumed, got {other:?}"),
        }
        let mut b = connect(&lobby).await;
        lobby.join(a.id, 2, vec![]).await;
        lobby.join(b.id, 1, vec![]).await;
        matched(&mut b).await;
    }

    #[tokio::test]
    async fn a_closed_waiter_is_never_matched() {
        let lobby = lobby();
        let a = connect(&lobby).await;
        let mut b = connect(&lobby).await;
        lobby.join(a.id, 1, vec![]).await;
        drop(a.rx); // the session ended, its Gone not yet sent
        lobby.join(b.id, 1, vec![]).await;
        let s = lobby.stats().await;
        assert_eq!((s.online, s.waiting, s.rooms), (1, 1, 0));
        assert!(b.rx.try_recv().is_err(), "b was not matched with a ghost");
    }

    /// The state machine under arbitrary interleavings: simulated sessions follow the same
    /// rules as `session.rs` (a command counter, local state, events applied only when they
    /// still fit), events arrive whenever the scheduler says, and after every step the actor's
    /// invariants hold; once everything is delivered, every session agrees with the actor.
    mod state_machine {
        use super::*;
        use crate::presence::{Presence, Request, Status as PStatus};
        use proptest::prelude::*;

        const USERS: usize = 5;

        #[derive(Clone, Debug)]
        enum Op {
            Connect(usize),
            Join(usize),
            Next(usize),
            Leave(usize),
            Gone(usize),
            Deliver(usize),
            Relay(usize),
            Report(usize),
            Resume(usize),
        }

        fn op() -> impl Strategy<Value = Op> {
            let user = 0..USERS;
            prop_oneof![
                2 => user.clone().prop_map(Op::Connect),
                2 => user.clone().prop_map(Op::Join),
                2 => user.clone().prop_map(Op::Next),
                1 => user.clone().prop_map(Op::Leave),
                1 => user.clone().prop_map(Op::Gone),
                4 => user.clone().prop_map(Op::Deliver),
                2 => user.clone().prop_map(Op::Relay),
                1 => user.clone().prop_map(Op::Report),
                1 => user.prop_map(Op::Resume),
            ]
        }

        struct Sim {
            id: SessionId,
            rx: crate::mailbox::Receiver<Event>,
            presence: Presence,
            /// The last room this user was in, to ask for it back as after a restart.
            last_room: Option<RoomId>,
        }

        fn check_actor(actor: &Actor) {
            let mut in_room = 0;
            for (id, user) in &actor.users {
                match user.status {
                    Status::InRoom { room, partner } => {
                        in_room += 1;
                        let Partner::Here(partner) = partner else {
                            panic!("one process has no partners elsewhere");
                        };
                        let other = &actor.users[&partner];
                        assert_eq!(
                            other.status,
                            Status::InRoom {
                                room,
                                partner: Partner::Here(*id)
                            },
                            "rooms have exactly two members who point at each other"
                        );
                        assert!(!actor.queue.is_waiting(*id));
                    }
                    Status::Waiting => assert!(actor.queue.is_waiting(*id)),
                    Status::Idle => assert!(!actor.queue.is_waiting(*id)),
                    Status::Resuming { room, .. } => {
                        assert!(!actor.queue.is_waiting(*id));
                        assert_eq!(actor.resuming.get(&room), Some(id), "one waits per room");
                    }
                }
            }
            for (room, id) in &actor.resuming {
                assert!(
                    matches!(actor.users[id].status, Status::Resuming { room: r, .. } if r == *room),
                    "the resume table holds only users resuming that room"
                );
            }
            assert_eq!(actor.rooms * 2, in_room);
            let waiting = actor
                .users
                .values()
                .filter(|u| u.status == Status::Waiting)
                .count();
            assert_eq!(
                actor.queue.len(),
                waiting,
                "the queue holds only waiting users"
            );
        }

        /// Applies queued events the way a session does; checks relays come from the partner.
        fn deliver(sim: &mut Sim) {
            while let Ok(event) = sim.rx.try_recv() {
                match event {
                    Event::Matched(m) => {
                        if let Some(m) = sim.presence.matched(m) {
                            sim.last_room = Some(m.room);
                            for text in sim.presence.take_early(m.room) {
                                assert_eq!(
                                    text.as_str(),
                                    m.partner.id.0.to_string(),
                                    "a message kept for the new room came from the new partner"
                                );
                            }
                        }
                    }
                    Event::Left { room, .. } => {
                        sim.presence.left(room);
                    }
                    Event::Refused { seq, .. } => {
                        sim.presence.refused(seq);
                    }
                    Event::Unresumed { seq, .. } => {
                        sim.presence.unresumed(seq);
                    }
                    Event::Rerouted { room, partner } => {
                        sim.presence.rerouted(room, *partner);
                    }
                    Event::Relay { room, text } => {
                        if sim.presence.in_room(room) {
                            let partner = sim.presence.room().unwrap().partner.id;
                            assert_eq!(
                                text.as_str(),
                                partner.0.to_string(),
                                "a relayed message comes only from the current partner"
                            );
                        } else {
                            sim.presence.early(room, *text);
                        }
                    }
                }
            }
        }

        fn send(actor: &mut Actor, id: SessionId, request: Option<Request>) {
            let cmd = match request {
                Some(Request::Join { seq }) => Command::Join {
                    id,
                    seq,
                    interests: vec![],
                },
                Some(Request::Next { seq }) => Command::Next { id, seq },
                Some(Request::Leave { seq }) => Command::Leave { id, seq },
                Some(Request::Report { seq }) => Command::Report {
                    id,
                    seq,
                    reason: ReportReason::Spam,
                },
                Some(Request::Resume { .. }) | None => return,
            };
            actor.handle(cmd);
        }

        fn run(ops: Vec<Op>, seed: u64) {
            let (mut actor, _lobby) = Actor::new(StdRng::seed_from_u64(seed), Policy::default());
            let mut sims: Vec<Option<Sim>> = (0..USERS).map(|_| None).collect();
            for op in ops {
                match op {
                    Op::Connect(i) => {
                        if sims[i].is_none() {
                            let id = SessionId::next();
                            let (tx, rx) = crate::mailbox::channel(64);
                            let (reply, _) = oneshot::channel();
                            actor.handle(Command::Register {
                                peer: Peer::new(id, tx),
                                // Distinct per slot, so reports add up to bans sometimes.
                                client: Some(ClientKey([i as u8; 16])),
                                reply,
                            });
                            sims[i] = Some(Sim {
                                id,
                                rx,
                                presence: Presence::default(),
                                last_room: None,
                            });
                        }
                    }
                    Op::Gone(i) => {
                        if let Some(sim) = sims[i].take() {
                            actor.handle(Command::Gone {
                                id: sim.id,
                                restarting: false,
                            });
                        }
                    }
                    Op::Join(i)
                    | Op::Next(i)
                    | Op::Leave(i)
                    | Op::Deliver(i)
                    | Op::Relay(i)
                    | Op::Report(i)
                    | Op::Resume(i) => {
                        let Some(sim) = sims[i].as_mut() else {
                            continue;
                        };
                        match op {
                            Op::Join(_) if sim.presence.room().is_none() => {
                                let request = sim.presence.join();
                                send(&mut actor, sim.id, request);
                            }
                            Op::Next(_) => {
                                let request = sim.presence.skip();
                                send(&mut actor, sim.id, request);
                            }
                            Op::Leave(_) => {
                                let request = sim.presence.leave();
                                send(&mut actor, sim.id, request);
                            }
                            Op::Resume(_) => {
                                if let Some(room) = sim.last_room
                                    && let Some(Request::Resume { seq }) = sim.presence.resume(room)
                                {
                                    actor.handle(Command::Resume {
                                        id: sim.id,
                                        seq,
                                        room,
                                        role: None,
                                    });
                                }
                            }
                            Op::Report(_) => {
                                if let Some(room) = sim.presence.room().map(|r| r.id) {
                                    let request = sim.presence.report(room);
                                    send(&mut actor, sim.id, request);
                                }
                            }
                            Op::Deliver(_) => deliver(sim),
                            Op::Relay(_) => {
                                if let Some(room) = sim.presence.room() {
                                    let _ = room.partner.send(Event::Relay {
                                        room: room.id,
                                        text: Box::new(sim.id.0.to_string().into()),
                                    });
                                }
                            }
                            _ => {}
                        }
                    }
                }
                check_actor(&actor);
            }
            // Quiesce: deliver everything; then every session agrees with the actor.
            for sim in sims.iter_mut().flatten() {
                deliver(sim);
            }
            for sim in sims.iter().flatten() {
                let user = &actor.users[&sim.id];
                match (sim.presence.status(), user.status) {
                    (PStatus::Idle, Status::Idle) | (PStatus::Waiting, Status::Waiting) => {}
                    (
                        PStatus::InRoom(room),
                        Status::InRoom {
                            room: r,
                            partner: p,
                        },
                    ) => {
                        assert_eq!((room.id, Partner::Here(room.partner.id)), (r, p));
                    }
                    (PStatus::Resuming(room), Status::Resuming { room: r, .. }) => {
                        assert_eq!(*room, r);
                    }
                    (local, status) => panic!("session thinks {local:?}, lobby says {status:?}"),
                }
            }
            assert_eq!(
                actor.users.len(),
                sims.iter().flatten().count(),
                "no ghost users"
            );
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]
            #[test]
            fn invariants_hold_under_any_interleaving(
                ops in proptest::collection::vec(op(), 1..120),
                seed in any::<u64>(),
            ) {
                run(ops, seed);
            }
        }
    }
}
