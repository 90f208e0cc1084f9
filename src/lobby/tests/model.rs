//! The lobby core under arbitrary interleavings, with either queue.
//!
//! Simulated sessions follow the same rules as `session.rs` (a command counter, their own
//! [`Presence`], events applied only when they still fit). With the in-process queue, one
//! core serves them all. With the shared queue, two cores (two instances) serve them, and a
//! small model of Redis stands between them: it runs the cores' queue operations (join,
//! fallback, withdraw, resume) in the order each core sent them, and carries each core's bus
//! messages to the other in order, whenever the scheduler says. After every step each
//! core's own invariants hold; once everything is delivered, every session agrees with its
//! core, every room across the two instances has two members who point at each other, and
//! the two members of every room joined in the same mode (video or text).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio::sync::mpsc;

use crate::ids::ClientKey;
use crate::ids::{InstanceId, SessionId, UserRef};
use crate::lobby::backend::Backend;
use crate::lobby::core::{Core, Input, Output, Time};
use crate::lobby::users::{Partner, Status};
use crate::matchmaker::{Policy, Want};
use crate::moderation::Moderation;
use crate::presence::{Presence, Request, Status as PStatus};
use crate::protocol::{MemberProof, Mode, ReportReason, RoomId};
use crate::room::{Event, Peer};
use crate::shared::bus::BusMessage;
use crate::shared::{Bus, Op, SharedEvent, SharedQueue};

const USERS: usize = 6;
const TAGS: [&str; 2] = ["chess", "jazz"];

#[derive(Clone, Debug)]
enum Step {
    Connect(usize),
    /// Join with the interests picked by the mask's two low bits, in text mode if its
    /// third bit is set, speaking German if its fourth.
    Join(usize, u8),
    /// Next, switching to the mode given (text if true), if one is.
    Next(usize, Option<bool>),
    Leave(usize),
    Gone(usize),
    Deliver(usize),
    Relay(usize),
    /// The user, if its session sees it waiting, sends an early offer for that wait.
    Offer(usize),
    Report(usize),
    Resume(usize),
    /// The user asks for another user's last room, with a proof it made up.
    Hijack(usize, usize),
    /// The user's connection is lost to the network (the server has not noticed): it comes
    /// back on a new one and asks for its room with its proof.
    Reconnect(usize),
    /// The server notices a lost connection (the oldest one left): it is gone.
    Notice,
    /// Redis runs the oldest queue operation of instance `n % instances`.
    Redis(usize),
    /// The oldest bus message for instance `n % instances` arrives.
    Bus(usize),
    /// Time passes (milliseconds).
    Tick(u64),
}

fn step() -> impl Strategy<Value = Step> {
    let user = 0..USERS;
    prop_oneof![
        2 => user.clone().prop_map(Step::Connect),
        2 => (user.clone(), 0..16u8).prop_map(|(i, tags)| Step::Join(i, tags)),
        2 => (user.clone(), proptest::option::of(any::<bool>())).prop_map(|(i, m)| Step::Next(i, m)),
        1 => user.clone().prop_map(Step::Leave),
        1 => user.clone().prop_map(Step::Gone),
        4 => user.clone().prop_map(Step::Deliver),
        2 => user.clone().prop_map(Step::Relay),
        2 => user.clone().prop_map(Step::Offer),
        1 => user.clone().prop_map(Step::Report),
        2 => user.clone().prop_map(Step::Resume),
        2 => (user.clone(), user.clone()).prop_map(|(i, victim)| Step::Hijack(i, victim)),
        1 => user.prop_map(Step::Reconnect),
        1 => Just(Step::Notice),
        3 => (0..2usize).prop_map(Step::Redis),
        3 => (0..2usize).prop_map(Step::Bus),
        1 => (0..12_000u64).prop_map(Step::Tick),
    ]
}

/// One simulated session.
struct Sim {
    id: SessionId,
    /// The instance (core) it is connected to.
    instance: usize,
    rx: crate::mailbox::Receiver<Event>,
    presence: Presence,
    /// The last room this user was in, to ask for it back as after a restart, the proof of
    /// membership `matched` gave for it, and its mode.
    last_room: Option<(RoomId, MemberProof, Mode)>,
    /// The room it last asked for with a made-up proof (until its next request): that room
    /// must never open for it.
    forged: Option<RoomId>,
    /// The mode its last request that queued it asked for: every room it is matched into
    /// must be of this mode.
    mode: Mode,
}

/// One waiting user in the model of the shared queue.
struct Entry {
    user: UserRef,
    ticket: u64,
    want: Want,
    open: bool,
    client: Option<ClientKey>,
    /// The early offer stored with this wait.
    offer: Option<String>,
}

/// What the queue scripts do, minus cool-downs, liveness and the language preference
/// (policy, not consistency); pools are kept apart, as the scripts do.
#[derive(Default)]
struct Redis {
    waiting: Vec<Entry>,
    /// Per room, the users waiting for it.
    resume: HashMap<RoomId, Vec<Resuming>>,
}

/// One entry of the model's resume table.
struct Resuming {
    /// The hash of the user's secret.
    me: u128,
    user: UserRef,
    client: Option<ClientKey>,
    /// The hash of its partner's secret.
    partner: u128,
}

impl Redis {
    /// Runs `op` for `me`; the answer for its instance, if any.
    fn run(&mut self, me: InstanceId, op: Op, rng: &mut StdRng) -> Option<SharedEvent> {
        match op {
            Op::Join {
                user,
                ticket,
                want,
                open,
                client,
            } => {
                let user = UserRef {
                    instance: me,
                    session: user,
                };
                self.waiting.retain(|e| e.user != user);
                let entry = Entry {
                    user,
                    ticket,
                    want,
                    open,
                    client,
                    offer: None,
                };
                self.pair_or_wait(entry, rng)
            }
            Op::Offer { user, ticket, sdp } => {
                if let Some(e) = self
                    .waiting
                    .iter_mut()
                    .find(|e| e.user.session == user && e.user.instance == me && e.ticket == ticket)
                    .filter(|e| e.want.mode == Mode::Video)
                {
                    e.offer = Some(sdp);
                }
                None
            }
            Op::Fallback { user, ticket } => {
                let at = self
                    .waiting
                    .iter()
                    .position(|e| e.user.session == user && e.ticket == ticket)?;
                let mut entry = self.waiting.remove(at);
                entry.open = true;
                self.pair_or_wait(entry, rng)
            }
            Op::Withdraw { user, ticket } => {
                self.waiting
                    .retain(|e| !(e.user.session == user && e.ticket == ticket));
                None
            }
            Op::Parted { .. } => None,
            Op::Resume {
                user,
                room,
                client,
                me: mine,
                partner,
                ..
            } => {
                let user = UserRef {
                    instance: me,
                    session: user,
                };
                self.resume(user, room, client, (mine, partner))
            }
        }
    }

    /// What the resume script does: meets the other member if it is back, else waits.
    fn resume(
        &mut self,
        user: UserRef,
        room: RoomId,
        client: Option<ClientKey>,
        (mine, partner): (u128, u128),
    ) -> Option<SharedEvent> {
        let entries = self.resume.entry(room).or_default();
        let found = entries
            .iter()
            .position(|e| e.me == partner && e.partner == mine && e.user != user);
        match found {
            Some(at) => {
                let other = entries.remove(at);
                Some(SharedEvent::Resumed {
                    user: user.session,
                    room,
                    other: other.user,
                    other_client: other.client,
                })
            }
            None => {
                entries.retain(|e| e.me != mine);
                if entries.len() < 4 {
                    entries.push(Resuming {
                        me: mine,
                        user,
                        client,
                        partner,
                    });
                }
                None
            }
        }
    }

    fn pair_or_wait(&mut self, entry: Entry, rng: &mut StdRng) -> Option<SharedEvent> {
        let tags = &entry.want.tags;
        let shared = |e: &Entry| e.want.tags.iter().filter(|t| tags.contains(t)).count();
        let candidates: Vec<usize> = (0..self.waiting.len())
            .filter(|&i| {
                let e = &self.waiting[i];
                if e.want.mode != entry.want.mode {
                    false
                } else if tags.is_empty() || entry.open {
                    e.open || e.want.tags.is_empty()
                } else {
                    shared(e) > 0
                }
            })
            .collect();
        if candidates.is_empty() {
            self.waiting.push(entry);
            return None;
        }
        let partner = self
            .waiting
            .remove(candidates[rng.random_range(0..candidates.len())]);
        let mut common: Vec<String> = partner
            .want
            .tags
            .iter()
            .filter(|t| tags.contains(t))
            .cloned()
            .collect();
        common.sort();
        Some(SharedEvent::Paired {
            joiner: entry.user.session,
            ticket: entry.ticket,
            partner: partner.user,
            partner_ticket: partner.ticket,
            partner_client: partner.client,
            common,
            same_lang: entry.want.lang.is_some() && entry.want.lang == partner.want.lang,
            partner_offer: partner.offer,
            offer: entry.offer,
        })
    }
}

/// The instances, their sessions, and what is in flight between them.
struct World {
    cores: Vec<Core>,
    /// Each instance's id.
    ids: Vec<InstanceId>,
    /// What sessions of each instance published to partners elsewhere (relays).
    buses: Vec<mpsc::Receiver<(InstanceId, BusMessage)>>,
    /// Bus messages not yet arrived, per receiving instance, in order.
    inboxes: Vec<VecDeque<BusMessage>>,
    /// Queue operations not yet run, per sending instance, in order.
    ops: Vec<VecDeque<Op>>,
    redis: Redis,
    rng: StdRng,
    now: Time,
    sims: Vec<Option<Sim>>,
    /// Connections lost to the network that the server still has, oldest first.
    lost: VecDeque<Sim>,
    /// What members were told of early offers, by room.
    aheads: Aheads,
    /// The user slot each session was opened for: a message a member sent from a connection
    /// it has since replaced (and taken its place in the room with) is still that person's.
    owners: HashMap<SessionId, usize>,
}

impl World {
    fn new(shared: bool, seed: u64) -> World {
        let now = Time {
            at: std::time::Instant::now(),
            unix_ms: 1_000_000,
        };
        let policy = Policy::default();
        let mut world = World {
            cores: Vec::new(),
            ids: Vec::new(),
            buses: Vec::new(),
            inboxes: Vec::new(),
            ops: Vec::new(),
            redis: Redis::default(),
            rng: StdRng::seed_from_u64(seed),
            now,
            sims: (0..USERS).map(|_| None).collect(),
            lost: VecDeque::new(),
            aheads: Aheads::default(),
            owners: HashMap::new(),
        };
        let instances = if shared { 2 } else { 1 };
        for n in 0..instances {
            let rng = StdRng::seed_from_u64(seed.wrapping_add(n));
            let moderation = Moderation::default();
            let core = if shared {
                let id = InstanceId(2 * n + 1);
                let (bus, rx) = Bus::channel(1024);
                world.ids.push(id);
                world.buses.push(rx);
                Core::shared(SharedQueue::new(id, bus, policy), rng, moderation, now)
            } else {
                world.ids.push(InstanceId::SOLO);
                Core::local(rng, policy, moderation, now)
            };
            world.cores.push(core);
            world.inboxes.push(VecDeque::new());
            world.ops.push(VecDeque::new());
        }
        world
    }

    fn instance_of(&self, id: InstanceId) -> usize {
        self.ids
            .iter()
            .position(|i| *i == id)
            .expect("a known instance")
    }

    /// Hands `input` to core `n` and carries out what it decides.
    fn input(&mut self, n: usize, input: Input) {
        self.cores[n].handle(self.now, input);
        self.carry(n);
    }

    fn carry(&mut self, n: usize) {
        while let Some(output) = self.cores[n].poll_output() {
            match output {
                Output::Deliver { to, event } => {
                    if to.send(event).is_err() {
                        self.cores[n].handle(self.now, Input::Undeliverable(to.id));
                    }
                }
                Output::Publish { instance, msg } => {
                    let to = self.instance_of(instance);
                    self.inboxes[to].push_back(msg);
                }
                Output::Queue(op) => self.ops[n].push_back(op),
                Output::Store(_) => {}
            }
        }
        if let Some(bus) = self.buses.get_mut(n) {
            while let Ok((instance, msg)) = bus.try_recv() {
                let to = self.ids.iter().position(|i| *i == instance).unwrap();
                self.inboxes[to].push_back(msg);
            }
        }
    }

    fn run_op(&mut self, n: usize) -> bool {
        let Some(op) = self.ops[n].pop_front() else {
            return false;
        };
        if let Some(event) = self.redis.run(self.ids[n], op, &mut self.rng) {
            self.input(n, Input::Shared(event));
        }
        true
    }

    fn arrive(&mut self, n: usize) -> bool {
        let Some(msg) = self.inboxes[n].pop_front() else {
            return false;
        };
        self.input(n, Input::Shared(SharedEvent::Bus(msg)));
        true
    }

    fn tick(&mut self, ms: u64) {
        self.now.at += Duration::from_millis(ms);
        self.now.unix_ms += ms;
        for n in 0..self.cores.len() {
            let due = self.cores[n].poll_timeout();
            if due.is_some_and(|at| at <= self.now.at) {
                self.input(n, Input::Timeout);
            }
        }
    }

    fn apply(&mut self, step: Step) {
        let instances = self.cores.len();
        match step {
            Step::Connect(i) => self.connect(i),
            Step::Gone(i) => {
                if let Some(sim) = self.sims[i].take() {
                    let input = Input::Gone {
                        id: sim.id,
                        restarting: false,
                    };
                    self.input(sim.instance, input);
                }
            }
            Step::Deliver(i) => {
                if let Some(sim) = self.sims[i].as_mut() {
                    deliver(sim, &mut self.aheads, &self.owners);
                }
            }
            Step::Offer(i) => {
                if let Some(sim) = &self.sims[i]
                    && let Some(seq) = sim.presence.wait()
                {
                    let sdp = format!("{} {seq}", sim.id.0);
                    let input = Input::EarlyOffer {
                        id: sim.id,
                        seq,
                        sdp,
                    };
                    self.input(sim.instance, input);
                }
            }
            Step::Relay(i) => {
                if let Some(sim) = &self.sims[i]
                    && let Some(room) = sim.presence.room()
                {
                    let text = Box::new(sim.id.0.to_string());
                    let _ = room.partner.send(Event::Relay {
                        room: room.id,
                        text,
                    });
                    let n = sim.instance;
                    self.carry(n);
                }
            }
            Step::Redis(n) => {
                self.run_op(n % instances);
            }
            Step::Bus(n) => {
                self.arrive(n % instances);
            }
            Step::Tick(ms) => self.tick(ms),
            Step::Hijack(i, victim) => self.hijack(i, victim),
            Step::Reconnect(i) => self.reconnect(i),
            Step::Notice => self.notice(),
            command => self.command(command),
        }
        for core in &self.cores {
            check_core(core);
        }
    }

    fn connect(&mut self, i: usize) {
        if self.sims[i].is_some() {
            return;
        }
        let id = SessionId::next();
        let instance = i % self.cores.len();
        let (tx, rx) = crate::mailbox::channel(64);
        // Distinct per slot, so reports add up to bans sometimes.
        let client = Some(ClientKey([i as u8; 16]));
        let peer = Peer::new(id, tx);
        self.owners.insert(id, i);
        self.input(instance, Input::Register { peer, client });
        self.sims[i] = Some(Sim {
            id,
            instance,
            rx,
            presence: Presence::default(),
            last_room: None,
            forged: None,
            mode: Mode::Video,
        });
    }

    /// A user's command, decided by its session's presence as `session.rs` does.
    fn command(&mut self, step: Step) {
        let (Step::Join(i, _)
        | Step::Next(i, _)
        | Step::Leave(i)
        | Step::Report(i)
        | Step::Resume(i)) = step
        else {
            return;
        };
        let Some(sim) = self.sims[i].as_mut() else {
            return;
        };
        let id = sim.id;
        sim.forged = None;
        let mut want = Want::default();
        let mut next_mode = None;
        let mut shown = None;
        let request = match step {
            Step::Join(_, mask) if sim.presence.room().is_none() => {
                want.tags = (0..2)
                    .filter(|b| mask & (1 << b) != 0)
                    .map(|b| TAGS[b].to_string())
                    .collect();
                if mask & 4 != 0 {
                    want.mode = Mode::Text;
                }
                if mask & 8 != 0 {
                    want.lang = Some("de".parse().unwrap());
                }
                next_mode = Some(want.mode);
                sim.presence.join()
            }
            Step::Next(_, text) => {
                next_mode = text.map(|t| if t { Mode::Text } else { Mode::Video });
                sim.presence.skip()
            }
            Step::Leave(_) => sim.presence.leave(),
            Step::Report(_) => match sim.presence.room().map(|r| r.id) {
                Some(room) => sim.presence.report(room),
                None => None,
            },
            Step::Resume(_) => match sim.last_room {
                Some((room, proof, mode)) => {
                    shown = Some((proof, mode));
                    sim.presence.resume(room)
                }
                None => None,
            },
            _ => None,
        };
        // As the session does: the mode is the one the request acts on, kept for the next.
        if let (Some(Request::Join { .. } | Request::Next { .. }), Some(mode)) =
            (request, next_mode)
        {
            sim.mode = mode;
        }
        let input = match request {
            Some(Request::Join { seq }) => {
                want.mode = sim.mode;
                Input::Join { id, seq, want }
            }
            Some(Request::Next { seq }) => Input::Next {
                id,
                seq,
                mode: next_mode,
            },
            Some(Request::Leave { seq }) => Input::Leave { id, seq },
            Some(Request::Report { seq }) => Input::Report {
                id,
                seq,
                reason: ReportReason::Spam,
            },
            Some(Request::Resume { seq }) => match (sim.presence.status(), shown) {
                (PStatus::Resuming(room), Some((proof, mode))) => {
                    // The lobby keeps the mode the room is resumed in for the next `next`.
                    sim.mode = mode;
                    Input::Resume {
                        id,
                        seq,
                        room: *room,
                        proof,
                        mode,
                    }
                }
                _ => return,
            },
            None => return,
        };
        let n = sim.instance;
        self.input(n, input);
    }

    /// User `i` asks for `victim`'s last room (whose id it has learnt somehow), with a proof
    /// made up around the hash its own last room's partner gave it.
    fn hijack(&mut self, i: usize, victim: usize) {
        let Some((room, _, _)) = self.sims[victim].as_ref().and_then(|v| v.last_room) else {
            return;
        };
        let forged = MemberProof {
            secret: self.rng.random(),
            partner: self.rng.random(),
        };
        let Some(sim) = self.sims[i].as_mut() else {
            return;
        };
        let Some(Request::Resume { seq }) = sim.presence.resume(room) else {
            return;
        };
        sim.forged = Some(room);
        let input = Input::Resume {
            id: sim.id,
            seq,
            room,
            proof: forged,
            mode: sim.mode,
        };
        let n = sim.instance;
        self.input(n, input);
    }

    /// User `i`'s connection is lost; it connects again and asks for its last room.
    fn reconnect(&mut self, i: usize) {
        let Some(old) = self.sims[i].take() else {
            return;
        };
        let last = old.last_room;
        self.lost.push_back(old);
        self.connect(i);
        let Some((room, proof, mode)) = last else {
            return;
        };
        let sim = self.sims[i].as_mut().expect("just connected");
        sim.last_room = last;
        let Some(Request::Resume { seq }) = sim.presence.resume(room) else {
            return;
        };
        sim.mode = mode;
        let input = Input::Resume {
            id: sim.id,
            seq,
            room,
            proof,
            mode,
        };
        let n = sim.instance;
        self.input(n, input);
    }

    /// The server notices the oldest lost connection.
    fn notice(&mut self) {
        if let Some(lost) = self.lost.pop_front() {
            let input = Input::Gone {
                id: lost.id,
                restarting: false,
            };
            self.input(lost.instance, input);
        }
    }

    /// Delivers everything in flight until nothing moves.
    fn quiesce(&mut self) {
        while !self.lost.is_empty() {
            self.notice();
        }
        loop {
            for sim in self.sims.iter_mut().flatten() {
                deliver(sim, &mut self.aheads, &self.owners);
            }
            let mut moved = false;
            for n in 0..self.cores.len() {
                while self.run_op(n) {
                    moved = true;
                }
                while self.arrive(n) {
                    moved = true;
                }
            }
            if !moved {
                break;
            }
        }
        for sim in self.sims.iter_mut().flatten() {
            deliver(sim, &mut self.aheads, &self.owners);
        }
    }

    /// Once nothing is in flight: every session agrees with its core, every room across
    /// instances is symmetric, and no core knows a user who is gone.
    fn check_settled(&self) {
        for sim in self.sims.iter().flatten() {
            let core = &self.cores[sim.instance];
            let status = core.users.status(sim.id).expect("a live session is known");
            match (sim.presence.status(), status) {
                (PStatus::Idle, Status::Idle) | (PStatus::Waiting, Status::Waiting) => {}
                (PStatus::InRoom(room), Status::InRoom { room: r, partner }) => {
                    assert_eq!(room.id, r);
                    let partner_sim =
                        self.sims.iter().flatten().find(|s| {
                            s.presence.room().is_some_and(|pr| pr.id == r) && s.id != sim.id
                        });
                    if let Some(other) = partner_sim {
                        let mode = other.presence.room().unwrap().mode;
                        assert_eq!(room.mode, mode, "both members of a room have one mode");
                    }
                    let other = match partner {
                        Partner::Here(other) => other,
                        Partner::There { user, .. } => user.session,
                    };
                    assert_eq!(room.partner.id, other, "the session relays to its partner");
                }
                (PStatus::Resuming(room), Status::Resuming { room: r, .. }) => {
                    assert_eq!(*room, r);
                }
                (local, status) => panic!("session thinks {local:?}, lobby says {status:?}"),
            }
            if let Status::InRoom {
                room,
                partner: Partner::There { user, .. },
            } = status
            {
                let there = &self.cores[self.instance_of(user.instance)];
                let me = UserRef {
                    instance: self.ids[sim.instance],
                    session: sim.id,
                };
                assert!(
                    matches!(
                        there.users.status(user.session),
                        Some(Status::InRoom { room: r, partner: Partner::There { user: u, .. } })
                            if r == room && u == me
                    ),
                    "a room across instances has two members who point at each other"
                );
            }
        }
        for (n, core) in self.cores.iter().enumerate() {
            let live = self.sims.iter().flatten().filter(|s| s.instance == n);
            assert_eq!(core.users.len(), live.count(), "no ghost users");
        }
    }
}

/// What holds in one core after every step.
fn check_core(core: &Core) {
    let (mut here, mut there, mut waiting) = (0, 0, 0);
    let shared = matches!(core.backend, Backend::Shared { .. });
    for (id, user) in core.users.iter() {
        match user.status() {
            Status::InRoom {
                room,
                partner: Partner::Here(partner),
            } => {
                here += 1;
                assert_eq!(
                    core.users.status(partner),
                    Some(Status::InRoom {
                        room,
                        partner: Partner::Here(id)
                    }),
                    "rooms have exactly two members who point at each other"
                );
                assert!(!core.backend.is_waiting(id));
            }
            Status::InRoom { .. } => {
                assert!(shared, "one process has no partners elsewhere");
                there += 1;
                assert!(!core.backend.is_waiting(id));
            }
            Status::Waiting => {
                waiting += 1;
                assert!(core.backend.is_waiting(id));
            }
            Status::Idle => assert!(!core.backend.is_waiting(id)),
            Status::Resuming { room, .. } => {
                assert!(!core.backend.is_waiting(id));
                if !shared {
                    let waiting = core.resuming.get(&room).map_or(&[][..], |w| &w[..]);
                    assert!(
                        waiting.iter().any(|(w, _)| *w == id),
                        "it waits in the table"
                    );
                }
            }
        }
    }
    for (room, waiting) in &core.resuming {
        assert!(!waiting.is_empty() && waiting.len() <= 4, "a few per room");
        for (id, _) in waiting {
            assert!(
                matches!(core.users.status(*id), Some(Status::Resuming { room: r, .. }) if r == *room),
                "the resume table holds only users resuming that room"
            );
        }
    }
    assert_eq!(
        core.stats().rooms,
        here / 2 + there,
        "rooms are counted right"
    );
    for mode in Mode::ALL {
        let in_mode = core
            .users
            .iter()
            .filter(|(_, u)| u.status() != Status::Idle && u.want.mode == mode);
        assert_eq!(
            core.local_online().modes.get(mode),
            in_mode.count(),
            "the {} count is the users waiting, talking or resuming in it",
            mode.as_str()
        );
    }
    assert_eq!(
        core.backend.len(),
        waiting,
        "the queue holds only waiting users"
    );
    let (offers, all_wait) = core.users.offers_held_by_waiters();
    assert!(all_wait, "an early offer never outlives its wait");
    assert!(offers <= waiting && (!shared || offers == 0));
}

/// What each side of a room said of an early offer: the offer's owner and the wait it was
/// made in (as the answerer read it), and the offerer's wait (as its `Sent` said).
#[derive(Default)]
struct Aheads {
    received: HashMap<RoomId, (SessionId, u64)>,
    sent: HashMap<RoomId, (SessionId, u64)>,
}

/// Checks what a member is told of an early offer: only the stranger's own offer reaches
/// it, as the answerer, and the offerer hears its offer went, for the wait it was made in.
fn check_ahead(sim: &Sim, m: &crate::room::Matched, aheads: &mut Aheads) {
    use crate::protocol::Ahead;
    use crate::protocol::Role;
    if m.mode == Mode::Text {
        assert_eq!(m.ahead, Ahead::None, "a text room has no early offer");
    }
    match &m.ahead {
        Ahead::None => {}
        Ahead::Offer(sdp) => {
            let (owner, seq) = sdp.split_once(' ').expect("the model's offers");
            let owner = SessionId(owner.parse().unwrap());
            assert_eq!(
                owner, m.partner.id,
                "an early offer reaches only its stranger"
            );
            assert_eq!(m.role, Some(Role::Answerer), "its receiver answers");
            aheads
                .received
                .insert(m.room, (owner, seq.parse().unwrap()));
        }
        Ahead::Sent => {
            assert_eq!(m.role, Some(Role::Offerer), "its owner offers");
            aheads.sent.insert(m.room, (sim.id, m.seq));
        }
    }
    if let (Some(got), Some(sent)) = (aheads.received.get(&m.room), aheads.sent.get(&m.room)) {
        assert_eq!(
            got, sent,
            "the offer delivered is the one of the wait that ended here"
        );
    }
}

/// Applies queued events the way a session does; checks relays come from the partner (its
/// current connection, or one it has since replaced: `owners` tells whose a session was).
fn deliver(sim: &mut Sim, aheads: &mut Aheads, owners: &HashMap<SessionId, usize>) {
    while let Ok(event) = sim.rx.try_recv() {
        match event {
            Event::Matched(m) => {
                if let Some(m) = sim.presence.matched(m) {
                    check_ahead(sim, &m, aheads);
                    match m.proof {
                        Some(proof) => {
                            assert_eq!(m.mode, sim.mode, "matched in the mode it asked for");
                            sim.last_room = Some((m.room, proof, m.mode));
                        }
                        None => assert_ne!(
                            sim.forged,
                            Some(m.room),
                            "a made-up proof never opens a room"
                        ),
                    }
                    let partner = owners.get(&m.partner.id);
                    for text in sim.presence.take_early(m.room) {
                        let sender = text.parse().map(SessionId).ok();
                        assert_eq!(
                            sender.and_then(|id| owners.get(&id)),
                            partner,
                            "a message kept for the new room came from the new partner \
                             ({text}, the partner's session is {})",
                            m.partner.id.0
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
                        *text,
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

fn run(steps: Vec<Step>, seed: u64, shared: bool) {
    let mut world = World::new(shared, seed);
    for step in steps {
        world.apply(step);
    }
    world.quiesce();
    for core in &world.cores {
        check_core(core);
    }
    world.check_settled();
}

/// The number of cases: `PROPTEST_CASES` for a long run, a quick thousand by default.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    ProptestConfig::with_cases(cases)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn invariants_hold_under_any_interleaving_in_one_process(
        steps in proptest::collection::vec(step(), 1..120),
        seed in any::<u64>(),
    ) {
        run(steps, seed, false);
    }

    #[test]
    fn invariants_hold_under_any_interleaving_across_two_instances(
        steps in proptest::collection::vec(step(), 1..160),
        seed in any::<u64>(),
    ) {
        run(steps, seed, true);
    }
}
