//! The lobby's state machine, with no I/O: every connected user's state and every pairing
//! decision, driven by [`Input`]s and the time the caller passes in, answered with
//! [`Output`]s the caller carries out.
//!
//! Sans-IO, as str0m's `Rtc` is: the core never reads a clock, never awaits and never sends.
//! [`Core::handle`] takes one input with the current time; [`Core::poll_output`] hands out
//! what must happen as a result (events for sessions, messages for other instances,
//! operations for the shared queue, reports to store), in order; [`Core::poll_timeout`]
//! says when to call again with [`Input::Timeout`]. The shell ([`super`]) does the I/O, and
//! tests drive the core faster than real time.
//!
//! The work is split by concern, each an `impl Core` in its own file: [`rooms`](super::rooms)
//! (pairing, entering and leaving rooms, delivering), [`resume`](super::resume) (rooms that
//! survive a restart), [`remote`](super::remote) (the shared queue's pairings and other
//! instances' messages), [`reports`](super::reports) (reports and bans) and
//! [`ahead`](super::ahead) (early offers).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::backend::Backend;
use super::users::{Status, User, Users};
use crate::ids::ClientKey;
use crate::ids::{InstanceId, SessionId, UserRef};
use crate::matchmaker::{Matchmaker, Policy, Want};
use crate::moderation::{Moderation, Report};
use crate::protocol::{LeftReason, MemberProof, Mode, ModeCounts, ReportReason, RoomId};
use crate::room::{Event, Peer};
use crate::shared::bus::BusMessage;
use crate::shared::{Op, SharedEvent, SharedQueue};

/// How long a user back after a restart waits for its stranger to come back too.
pub(crate) const RESUME_WAIT: Duration = Duration::from_secs(10);

/// The time of an input: a monotonic instant for waits and deadlines, and the wall clock
/// for reports and bans (which outlive restarts).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Time {
    pub at: Instant,
    pub unix_ms: u64,
}

/// What the core is told.
#[derive(Debug)]
pub(crate) enum Input {
    /// A new connection (idle), known for reports and bans by `client`.
    Register {
        peer: Peer,
        client: Option<ClientKey>,
    },
    /// The user wants a partner (it was idle), as `want` says.
    Join { id: SessionId, seq: u64, want: Want },
    /// The user ends its room, if any, and wants a new partner: in `mode` if given, else in
    /// the pool of its last join.
    Next {
        id: SessionId,
        seq: u64,
        mode: Option<Mode>,
    },
    /// The user leaves its room or the queue and stays connected.
    Leave { id: SessionId, seq: u64 },
    /// The user reports its partner: the room ends and the report is stored.
    Report {
        id: SessionId,
        seq: u64,
        reason: ReportReason,
    },
    /// The user is back after a restart and asks for `room` again, with the proof of
    /// membership its `matched` gave; the room was of `mode`, as the client says.
    Resume {
        id: SessionId,
        seq: u64,
        room: RoomId,
        proof: MemberProof,
        mode: Mode,
    },
    /// The user, waiting since its request `seq`, hands over the offer of the call to come.
    EarlyOffer {
        id: SessionId,
        seq: u64,
        sdp: String,
    },
    /// The session ended. `restarting`: because this server is restarting, so a partner
    /// on another instance is told to expect the user back, not that it left.
    Gone { id: SessionId, restarting: bool },
    /// An event for `id` could not be queued (its queue is full, or it has ended): it
    /// cannot keep up, and is dropped.
    Undeliverable(SessionId),
    /// News from the shared queue's engine.
    Shared(SharedEvent),
    /// The time of [`Core::poll_timeout`] has come.
    Timeout,
}

/// What the core asks to be done, in order.
#[derive(Debug)]
pub(crate) enum Output {
    /// Queue `event` for the session behind `to` without waiting; if it cannot take it,
    /// answer with [`Input::Undeliverable`].
    Deliver { to: Peer, event: Event },
    /// Send `msg` to `instance` over the bus.
    Publish {
        instance: InstanceId,
        msg: BusMessage,
    },
    /// Run `op` on the shared queue.
    Queue(Op),
    /// Store this report.
    Store(Report),
}

/// The online count as users see it: everyone connected, and how many of them wait for or
/// are in a chat of each mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Online {
    /// Connected users (those on neither mode's count have not pressed Start, or stopped).
    pub total: usize,
    /// Per mode, so the landing page can say how many are on video and on text.
    pub modes: ModeCounts,
}

/// Counts read from the core, for `/healthz`, metrics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Stats {
    /// Connected users.
    pub online: usize,
    /// Users in the queue.
    pub waiting: usize,
    /// Rooms with a member here.
    pub rooms: usize,
    /// Pairings made since start.
    pub matches: u64,
    /// With a shared queue, whether Redis answers (filled in by the shell).
    pub redis: Option<bool>,
}

/// The lobby's state.
pub(crate) struct Core {
    /// Every connected user and where it is.
    pub(super) users: Users,
    /// Where waiting users wait.
    pub(super) backend: Backend,
    /// The time of the input being handled.
    pub(super) now: Time,
    /// With a shared queue: the global online count at the last heartbeat, and ours then.
    pub(super) pool_online: Option<(Online, Online)>,
    /// Pairings made since start.
    pub(super) matches: u64,
    /// Recent reports and bans in force.
    pub(super) moderation: Moderation,
    /// Users back after a restart who wait for their stranger, by room, with the proof
    /// each showed (in process; with a shared queue this table is in Redis). A few per room
    /// at most: whoever knows a room id can ask for it, but only the member whose proof
    /// pairs with the other's gets in.
    pub(super) resuming: HashMap<RoomId, Vec<(SessionId, MemberProof)>>,
    /// Draws the secrets of each new room's proofs of membership.
    pub(super) secrets: StdRng,
    /// When each resuming user stops waiting, earliest first (the wait is the same for all).
    pub(super) resume_deadlines: VecDeque<(Instant, SessionId)>,
    /// Users whose partner's instance is restarting, with the partner they had: told the
    /// stranger left if it has not come back by then.
    pub(super) awaiting: VecDeque<(Instant, SessionId, UserRef)>,
    /// What must be done, oldest first.
    pub(super) out: VecDeque<Output>,
}

impl Core {
    /// A lobby whose users wait in this process's own queue, drawn from `rng`.
    pub(crate) fn local(
        mut rng: StdRng,
        policy: Policy,
        moderation: Moderation,
        now: Time,
    ) -> Core {
        let secrets = StdRng::seed_from_u64(rng.random());
        let backend = Backend::Local(Matchmaker::new(rng, policy));
        Core::new(backend, secrets, moderation, now)
    }

    /// A lobby whose users wait in the queue every instance shares; `rng` draws the room
    /// ids and roles of the pairings this instance announces.
    pub(crate) fn shared(
        queue: SharedQueue,
        mut rng: StdRng,
        moderation: Moderation,
        now: Time,
    ) -> Core {
        let secrets = StdRng::seed_from_u64(rng.random());
        Core::new(Backend::Shared { queue, rng }, secrets, moderation, now)
    }

    fn new(backend: Backend, secrets: StdRng, moderation: Moderation, now: Time) -> Core {
        Core {
            secrets,
            users: Users::default(),
            backend,
            now,
            pool_online: None,
            matches: 0,
            moderation,
            resuming: HashMap::new(),
            resume_deadlines: VecDeque::new(),
            awaiting: VecDeque::new(),
            out: VecDeque::new(),
        }
    }

    /// Handles one input at `now`.
    pub(crate) fn handle(&mut self, now: Time, input: Input) {
        self.now = now;
        match input {
            Input::Register { peer, client } => {
                let id = peer.id;
                if let Some(queue) = self.backend.shared() {
                    queue.register(id, client);
                }
                self.users.insert(id, User::new(peer, client, now.at));
            }
            Input::Join { id, seq, want } => {
                let idle = self.users.status(id) == Some(Status::Idle);
                if let Some(user) = self.command(id, seq)
                    && idle
                {
                    // Only from idle: a user waits in one pool, with what it joined with.
                    user.want = want;
                    self.pair_or_queue(id);
                }
            }
            Input::Next { id, seq, mode } => self.next(id, seq, mode),
            Input::Leave { id, seq } => self.leave(id, seq),
            Input::Resume {
                id,
                seq,
                room,
                proof,
                mode,
            } => {
                if self.command(id, seq).is_some() && self.users.status(id) == Some(Status::Idle) {
                    if let Some(user) = self.users.get_mut(id) {
                        // The room it resumes is of this mode (`matched` and the relay
                        // rule follow it), and so is its next `next`.
                        user.want.mode = mode;
                    }
                    self.resume(id, room, proof);
                }
            }
            Input::Report { id, seq, reason } => {
                if self.command(id, seq).is_some() {
                    self.report(id, reason);
                }
            }
            Input::EarlyOffer { id, seq, sdp } => self.early_offer(id, seq, sdp),
            Input::Gone { id, restarting } => {
                if restarting {
                    self.keep_remote_partner(id);
                }
                self.drop_user(id);
            }
            Input::Undeliverable(id) => self.drop_user(id),
            Input::Shared(event) => self.on_shared(event),
            Input::Timeout => self.timeout(),
        }
        if let Some(queue) = self.backend.shared() {
            self.out.extend(queue.take_ops().map(Output::Queue));
        }
    }

    /// The next thing to do, if any.
    pub(crate) fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When to call [`handle`](Self::handle) with [`Input::Timeout`] next.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        [
            self.backend.next_deadline(),
            self.resume_deadlines.front().map(|(at, _)| *at),
            self.awaiting.front().map(|(at, _, _)| *at),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The online count to show: every instance's with a shared queue (as of the last
    /// heartbeat, corrected for our own users since), else ours.
    pub(crate) fn online(&self) -> Online {
        let ours = self.local_online();
        match self.pool_online {
            Some((all, then)) => Online {
                total: (all.total + ours.total).saturating_sub(then.total),
                modes: all.modes.corrected(ours.modes, then.modes),
            },
            None => ours,
        }
    }

    /// This instance's own users: what its heartbeat adds to the pool's count.
    pub(crate) fn local_online(&self) -> Online {
        Online {
            total: self.users.len(),
            modes: self.users.in_modes(),
        }
    }

    /// A snapshot of the counts.
    pub(crate) fn stats(&self) -> Stats {
        Stats {
            online: self.users.len(),
            waiting: self.backend.len(),
            rooms: self.users.rooms(),
            matches: self.matches,
            redis: None,
        }
    }

    /// Records `seq` as `id`'s latest command; the user, if connected.
    fn command(&mut self, id: SessionId, seq: u64) -> Option<&mut User> {
        let user = self.users.get_mut(id)?;
        user.seq = seq;
        Some(user)
    }

    fn next(&mut self, id: SessionId, seq: u64, mode: Option<Mode>) {
        if self.command(id, seq).is_none() {
            return;
        }
        match self.users.status(id) {
            Some(Status::Idle) => {}
            Some(Status::InRoom { .. }) => self.end_room(id, LeftReason::Skipped),
            Some(Status::Resuming { .. }) => self.stop_resuming(id),
            Some(Status::Waiting) | None => return,
        }
        // Idle now: it queues again in the pool asked for, if any.
        if let (Some(mode), Some(user)) = (mode, self.users.get_mut(id)) {
            user.want.mode = mode;
        }
        self.pair_or_queue(id);
    }

    fn leave(&mut self, id: SessionId, seq: u64) {
        if self.command(id, seq).is_none() {
            return;
        }
        match self.users.status(id) {
            Some(Status::Waiting) => {
                self.backend.remove(id);
                self.users.set_status(id, Status::Idle);
            }
            Some(Status::InRoom { .. }) => self.end_room(id, LeftReason::Left),
            Some(Status::Resuming { .. }) => self.stop_resuming(id),
            Some(Status::Idle) | None => {}
        }
    }

    /// Whatever was due by now: fallbacks, resumes nobody answered, partners who did not
    /// come back from a restart.
    fn timeout(&mut self) {
        let now = self.now.at;
        for pairing in self.backend.expire(now) {
            self.open_room(pairing, None);
        }
        self.expire_resumes(now);
        self.expire_awaiting(now);
    }

    /// Forgets `id`; a partner it had is told `disconnected`.
    pub(super) fn drop_user(&mut self, id: SessionId) {
        if !self.users.contains(id) {
            return;
        }
        self.stop_resuming(id);
        self.end_room(id, LeftReason::Disconnected);
        self.backend.forget(id);
        self.users.remove(id);
    }
}
