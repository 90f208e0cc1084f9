//! Many instances, one pool of strangers, through Redis (`--redis-url`).
//!
//! With a shared queue, every instance's waiting users are in Redis, and pairing is a Lua
//! script ([`join.lua`](./join.lua) and its friends), so each pairing is one atomic step on
//! the Redis server: no user is taken twice, none is lost, whichever instances join at once.
//! A script rather than `MULTI`/`WATCH`: the choice of partner depends on what the queue
//! holds (interests, cool-downs, liveness), and a script reads and decides in one round trip
//! with no retries under contention.
//!
//! The parts:
//! - [`queue`]: the lobby's half, with no I/O: which local users wait under which ticket,
//!   and the [`Op`]s Redis must run;
//! - [`engine`]: the tasks that do the I/O: run the ops in order, publish [`BusMessage`]s to
//!   other instances in pipelines, hold the one subscription of this instance, beat;
//! - [`bus`]: the text form of what instances tell each other (no Redis in it);
//! - [`reports`]: the report store in Redis, so bans hold on every instance.
//!
//! The lobby's shell holds a [`Link`]: it passes the core's ops and messages to the engine
//! with `try_send` (the lobby never awaits Redis), and receives the engine's
//! [`SharedEvent`]s on a bounded channel the engine awaits (the engine never awaits the
//! lobby's answer, so there is no cycle of awaited sends). Every Redis call has a timeout.
//! While Redis is unreachable, sessions stay connected and calls in progress go on (browser
//! to browser); `/healthz` says `redis: unreachable`; once it answers again, every local
//! waiting user is entered into the queue again and matching resumes.

pub(crate) mod bus;
mod engine;
pub(crate) mod queue;
pub(crate) mod reports;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use rand::{Rng, RngExt};
use tokio::sync::mpsc;

use crate::ids::ClientKey;
use crate::ids::{InstanceId, SessionId, UserRef};
use crate::matchmaker::Policy;
use crate::protocol::{ModeCounts, RoomId};
use crate::telemetry;
use bus::BusMessage;
pub(crate) use engine::start;
pub(crate) use queue::{Op, SharedQueue};

/// How many queue operations may wait for Redis before the lobby's are dropped (and the
/// queue re-entered once Redis keeps up again).
const OPS_QUEUE: usize = 16_384;
/// How many messages for other instances may wait to be published before new ones are
/// dropped.
const BUS_QUEUE: usize = 65_536;
/// How many of the engine's events may wait for the lobby before the engine waits.
const EVENTS_QUEUE: usize = 4096;

/// Where the shared queue is and how instances keep each other honest.
#[derive(Clone, Debug)]
pub(crate) struct SharedConfig {
    /// `redis://[user:password@]host:port[/db]`.
    pub url: String,
    /// Prefix of every key and channel, so several deployments can share one Redis.
    pub prefix: String,
    /// How long an instance counts as alive after its last heartbeat; after that, its
    /// waiting users are dropped and its users' partners are told `disconnected`.
    pub ttl: Duration,
    /// How often each instance beats (a third of `ttl` or less).
    pub beat: Duration,
    /// The longest any Redis call may take before it counts as failed.
    pub timeout: Duration,
    /// The pairing policy (fallback wait, cool-down), the same as the in-process queue's.
    pub policy: Policy,
}

impl SharedConfig {
    /// The hash-tagged prefix: every key lands in one cluster slot, as scripts need.
    fn key_prefix(&self) -> String {
        format!("{{{}}}", self.prefix)
    }
}

/// What the engine tells the lobby.
#[derive(Debug)]
pub(crate) enum SharedEvent {
    /// The queue paired our waiting user `joiner` (its wait `ticket`) with `partner` (its
    /// wait `partner_ticket`).
    Paired {
        joiner: SessionId,
        ticket: u64,
        partner: UserRef,
        partner_ticket: u64,
        /// Who the partner is for reports and bans, if known.
        partner_client: Option<ClientKey>,
        common: Vec<String>,
        /// Whether the two gave the same language.
        same_lang: bool,
        /// The early offer the partner waited with, if any.
        partner_offer: Option<String>,
        /// The early offer `joiner` waited with, if any (a fallback pairs two waiters).
        offer: Option<String>,
    },
    /// Another instance's message about one of our users.
    Bus(BusMessage),
    /// A heartbeat: the online count of every live instance, and the instances that died
    /// in the last minute (their users' partners here are told `disconnected`).
    /// `forgotten` says this instance itself had been presumed dead (it could not reach
    /// Redis for longer than the ttl): the others have ended their users' rooms with ours.
    Pool {
        online: usize,
        /// Of those, how many wait for or are in a chat of each mode.
        modes: ModeCounts,
        dead: HashSet<InstanceId>,
        forgotten: bool,
    },
    /// `user` asked to resume `room` after a restart, and `other` (who asked too, or whose
    /// partner was restarting) is the other member.
    Resumed {
        user: SessionId,
        room: RoomId,
        other: UserRef,
        other_client: Option<ClientKey>,
    },
    /// Another instance stored a report: it counts towards bans here too.
    Report(crate::moderation::Report),
    /// Redis answers again after failing: the queue may have lost our waiting users, so
    /// every one is entered again.
    Resync,
}

/// The handle sessions and the lobby use to reach users on other instances.
#[derive(Clone, Debug)]
pub(crate) struct Bus {
    /// Into the engine's publisher, which batches messages into pipelines.
    tx: mpsc::Sender<(InstanceId, BusMessage)>,
}

impl Bus {
    /// A bus, and the receiving end its publisher reads.
    pub(crate) fn channel(capacity: usize) -> (Bus, mpsc::Receiver<(InstanceId, BusMessage)>) {
        let (tx, rx) = mpsc::channel(capacity);
        (Bus { tx }, rx)
    }

    /// Queues `msg` for `instance` without waiting; drops it (counted) if the publisher is
    /// that far behind.
    pub(crate) fn publish(&self, instance: InstanceId, msg: BusMessage) {
        if self.tx.try_send((instance, msg)).is_err() {
            telemetry::metrics().bus_dropped.increment(1);
        }
    }
}

/// Whether Redis answers, for `/healthz` and the logs.
#[derive(Debug, Default)]
pub(crate) struct Health {
    /// Set by the last Redis call's outcome (the heartbeat's, once it recovers).
    reachable: AtomicBool,
    /// Set when one of the engine's tasks has ended: it never should, so it panicked.
    died: AtomicBool,
}

impl Health {
    /// Whether the last Redis call succeeded.
    pub(crate) fn reachable(&self) -> bool {
        self.reachable.load(Ordering::Relaxed)
    }

    /// Whether every task of the engine still runs.
    pub(crate) fn alive(&self) -> bool {
        !self.died.load(Ordering::Relaxed)
    }

    /// Records a failed call; says so in the log the first time.
    fn failed(&self, what: &str, error: &redis::RedisError) {
        if self.reachable.swap(false, Ordering::Relaxed) {
            tracing::warn!(error = %error, during = what, "redis unreachable: sessions go on, matching across instances waits");
        }
    }

    /// Records that Redis answers again. Only the heartbeat says so, once it has asked the
    /// lobby to enter its waiters again: a user who joins after `/healthz` says `ok` is
    /// entered once, after the resync.
    fn recovered(&self) {
        if !self.reachable.swap(true, Ordering::Relaxed) {
            tracing::info!("redis reachable");
        }
    }
}

/// The lobby shell's end of the engine: where the core's ops and messages go, and what the
/// engine reports back.
#[derive(Debug)]
pub(crate) struct Link {
    /// Into the ops task, which runs them on Redis in this order.
    pub ops: mpsc::Sender<Op>,
    /// Into the publisher.
    pub bus: Bus,
    /// Set when an op could not be queued: the engine asks for a resync once Redis keeps up
    /// again.
    pub lost_ops: Arc<AtomicBool>,
    /// This instance's connected users, read by the heartbeat.
    pub local_online: Arc<AtomicUsize>,
    /// Of those, how many are in each mode (indexed by [`crate::protocol::Mode::index`]), read by the
    /// heartbeat.
    pub local_modes: Arc<[AtomicUsize; 2]>,
    /// Whether Redis answers, and whether the engine runs.
    pub health: Arc<Health>,
    /// What the engine tells the lobby.
    pub events: mpsc::Receiver<SharedEvent>,
}

impl Link {
    /// Passes `op` on without waiting; if the engine is that far behind, the op is lost
    /// and the queue is entered again from the lobby's view once it catches up.
    pub(crate) fn send(&self, op: Op) {
        if self.ops.try_send(op).is_err() {
            self.lost_ops.store(true, Ordering::Relaxed);
        }
    }
}

/// What the engine's tasks take from [`queue`]: the receiving ends of the lobby's
/// operations and messages, and the state shared with the lobby's shell.
pub(crate) struct Inbox {
    ops: mpsc::Receiver<Op>,
    bus: mpsc::Receiver<(InstanceId, BusMessage)>,
    events: mpsc::Sender<SharedEvent>,
    me: InstanceId,
    health: Arc<Health>,
    lost_ops: Arc<AtomicBool>,
    local_online: Arc<AtomicUsize>,
    local_modes: Arc<[AtomicUsize; 2]>,
}

/// Builds the lobby's half of the shared queue (a new instance id drawn from `rng`), the
/// shell's link to the engine, and the inbox [`start`] runs the engine on.
pub(crate) fn queue(config: &SharedConfig, rng: &mut impl Rng) -> (SharedQueue, Link, Inbox) {
    let (ops, ops_rx) = mpsc::channel(OPS_QUEUE);
    let (bus, bus_rx) = Bus::channel(BUS_QUEUE);
    let (events_tx, events) = mpsc::channel(EVENTS_QUEUE);
    // Never SOLO: zero is how a process on its own names itself.
    let me = InstanceId(rng.random::<u64>() | 1);
    let link = Link {
        ops,
        bus: bus.clone(),
        lost_ops: Arc::new(AtomicBool::new(false)),
        local_online: Arc::new(AtomicUsize::new(0)),
        local_modes: Arc::default(),
        health: Arc::new(Health::default()),
        events,
    };
    let inbox = Inbox {
        ops: ops_rx,
        bus: bus_rx,
        events: events_tx,
        me,
        health: link.health.clone(),
        lost_ops: link.lost_ops.clone(),
        local_online: link.local_online.clone(),
        local_modes: link.local_modes.clone(),
    };
    (SharedQueue::new(me, bus, config.policy), link, inbox)
}
