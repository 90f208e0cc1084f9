//! The shared engine: many instances, one pool of strangers, through Redis.
//!
//! With `--redis-url`, the waiting queue is Redis's, not the process's: every instance's
//! waiting users are in it, and pairing is a Lua script ([`join.lua`](./join.lua) and its
//! friends), so each pairing is one atomic step on the Redis server: no user is taken twice,
//! none is lost, whichever instances join at once. A script rather than `MULTI`/`WATCH`:
//! the choice of partner depends on what the queue holds (interests, cool-downs, liveness),
//! and a script reads and decides in one round trip with no retries under contention.
//!
//! Each local user keeps its state in this instance's [`lobby`](crate::lobby); the lobby
//! sees the shared queue through [`SharedQueue`], the same
//! [`Queue`](crate::matchmaker::Queue) interface as the in-process matchmaker. The engine's
//! tasks do the I/O and tell the lobby what happened ([`SharedEvent`]):
//!
//! - **ops**: runs the queue scripts one at a time, in the order the lobby asked;
//! - **publisher**: sends [`BusMessage`]s to the instance that holds the addressee's socket,
//!   batched into pipelines, in order;
//! - **subscriber**: one subscription per instance (its own channel), reconnecting after a
//!   Redis restart;
//! - **heartbeat**: every [`SharedConfig::beat`], renews this instance's liveness key (it
//!   lapses after [`SharedConfig::ttl`]), reaps the waiting users of instances whose key
//!   lapsed, and reads the global online count and the live instances; the lobby ends the
//!   rooms of its users whose partner's instance is gone.
//!
//! Reports go to Redis too ([`reports`]): one store, and every instance hears of each new
//! report, so bans hold on every instance and across restarts.
//!
//! Redis is never awaited by the lobby or a session: the lobby `try_send`s operations and
//! sessions `try_send` relays into bounded queues, and every Redis call has a timeout. While
//! Redis is unreachable, sessions stay connected and calls in progress go on (browser to
//! browser); `/healthz` says `redis: unreachable`; once it answers again, every local waiting
//! user is entered into the queue again and matching resumes.

pub mod bus;
pub mod reports;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use rand::{Rng, RngExt};
use redis::Script;
use redis::aio::ConnectionManager;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};

use crate::lobby::Lobby;
use crate::matchmaker::{Pairing, Policy, Queue, SessionId};
use crate::moderation::ClientKey;
use crate::protocol::RoomId;
use crate::room::{InstanceId, Partner, UserRef};
use crate::telemetry;
use bus::BusMessage;

/// How many queue operations may wait for Redis before the lobby's are dropped (and the
/// queue re-entered once Redis keeps up again).
const OPS_QUEUE: usize = 16_384;
/// How many messages for other instances may wait to be published before new ones are
/// dropped.
const BUS_QUEUE: usize = 65_536;
/// The most messages sent in one pipeline.
const BUS_BATCH: usize = 512;
/// The most queue operations sent before their replies are read.
const OPS_BATCH: usize = 64;

/// Where the shared queue is and how instances keep each other honest.
#[derive(Clone, Debug)]
pub struct SharedConfig {
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
pub enum SharedEvent {
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
    },
    /// Another instance's message about one of our users.
    Bus(BusMessage),
    /// A heartbeat: the online count of every live instance, and the instances that died
    /// in the last minute (their users' partners here are told `disconnected`).
    /// `forgotten` says this instance itself had been presumed dead (it could not reach
    /// Redis for longer than the ttl): the others have ended their users' rooms with ours.
    Pool {
        online: usize,
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

/// A queue operation for the ops task.
#[derive(Debug)]
enum Op {
    Join {
        user: SessionId,
        ticket: u64,
        tags: Vec<String>,
        open: bool,
        client: Option<ClientKey>,
    },
    Fallback {
        user: SessionId,
        ticket: u64,
    },
    Withdraw {
        user: SessionId,
        ticket: u64,
    },
    Parted {
        a: UserRef,
        b: UserRef,
    },
    Resume {
        user: SessionId,
        room: RoomId,
        client: Option<ClientKey>,
    },
}

/// The handle sessions and the lobby use to reach users on other instances.
#[derive(Clone, Debug)]
pub struct Bus {
    tx: mpsc::Sender<(InstanceId, BusMessage)>,
}

impl Bus {
    /// Queues `msg` for `instance` without waiting; drops it (counted) if the publisher is
    /// that far behind.
    pub fn publish(&self, instance: InstanceId, msg: BusMessage) {
        if self.tx.try_send((instance, msg)).is_err() {
            telemetry::metrics().bus_dropped.increment(1);
        }
    }
}

/// Whether Redis answers, for `/healthz` and the logs.
#[derive(Debug, Default)]
pub struct Health {
    reachable: AtomicBool,
}

impl Health {
    /// Whether the last Redis call succeeded.
    pub fn reachable(&self) -> bool {
        self.reachable.load(Ordering::Relaxed)
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

/// One local waiting user as the shared queue's local half knows it.
#[derive(Debug)]
struct Wait {
    /// Names this wait in the shared queue; a stale pairing (for an earlier wait) carries
    /// another ticket and is refused.
    ticket: u64,
    tags: Vec<String>,
}

/// The lobby's side of the shared queue: which local users wait (and under which ticket),
/// their fallback deadlines, and the operations sent to Redis.
#[derive(Debug)]
pub struct SharedQueue {
    /// This instance.
    pub me: InstanceId,
    policy: Policy,
    ops: mpsc::Sender<Op>,
    /// Local users in the shared queue.
    waiting: HashMap<SessionId, Wait>,
    /// Who each connected local user is for reports and bans, stored with its wait so a
    /// partner on another instance can report it.
    clients: HashMap<SessionId, ClientKey>,
    /// When each local waiter falls back to meeting anyone, earliest first.
    deadlines: VecDeque<(Instant, SessionId, u64)>,
    next_ticket: u64,
    /// Set when an operation could not be queued: the engine asks for a resync once Redis
    /// keeps up again.
    lost_ops: Arc<AtomicBool>,
    /// This instance's connected users, for the heartbeat.
    pub local_online: Arc<AtomicUsize>,
    /// Reaches users on other instances.
    pub bus: Bus,
    /// Whether Redis answers.
    pub health: Arc<Health>,
}

impl SharedQueue {
    fn send(&mut self, op: Op) {
        if self.ops.try_send(op).is_err() {
            self.lost_ops.store(true, Ordering::Relaxed);
        }
    }

    /// Takes `user` out of the local waiting set if it waits under `ticket`.
    pub fn claim(&mut self, user: SessionId, ticket: u64) -> bool {
        if self.waiting.get(&user).is_some_and(|w| w.ticket == ticket) {
            self.waiting.remove(&user);
            true
        } else {
            false
        }
    }

    /// Whether `user` waits under `ticket`.
    pub fn waits_with(&self, user: SessionId, ticket: u64) -> bool {
        self.waiting.get(&user).is_some_and(|w| w.ticket == ticket)
    }

    /// Enters `user` (waiting here) into the shared queue again, under a new ticket: after a
    /// partner fell through, or after Redis lost the queue.
    pub fn rejoin(&mut self, user: SessionId, now: Instant) {
        if let Some(wait) = self.waiting.remove(&user) {
            self.join(user, &wait.tags, now);
        }
    }

    /// Asks the shared resume table for `room` on behalf of `user` (back after a restart,
    /// or whose partner's instance is restarting).
    pub fn resume(&mut self, user: SessionId, room: RoomId) {
        let client = self.clients.get(&user).copied();
        self.send(Op::Resume { user, room, client });
    }

    /// Remembers who `user` is for reports and bans.
    pub fn register(&mut self, user: SessionId, client: Option<ClientKey>) {
        if let Some(client) = client {
            self.clients.insert(user, client);
        }
    }

    /// Every local waiting user.
    pub fn waiters(&self) -> Vec<SessionId> {
        self.waiting.keys().copied().collect()
    }

    /// The global name of a local user.
    pub fn user(&self, session: SessionId) -> UserRef {
        UserRef {
            instance: self.me,
            session,
        }
    }
}

impl Queue for SharedQueue {
    fn join(&mut self, id: SessionId, tags: &[String], now: Instant) -> Option<Pairing> {
        let mut tags = tags.to_vec();
        tags.sort();
        tags.dedup();
        tags.truncate(crate::protocol::MAX_INTERESTS);
        self.next_ticket += 1;
        let ticket = self.next_ticket;
        let open = tags.is_empty() || self.policy.fallback_after.is_zero();
        if !open {
            self.deadlines
                .push_back((now + self.policy.fallback_after, id, ticket));
        }
        self.waiting.insert(
            id,
            Wait {
                ticket,
                tags: tags.clone(),
            },
        );
        let client = self.clients.get(&id).copied();
        self.send(Op::Join {
            user: id,
            ticket,
            tags,
            open,
            client,
        });
        None
    }

    fn expire(&mut self, now: Instant) -> Vec<Pairing> {
        while let Some(&(at, user, ticket)) = self.deadlines.front() {
            if at > now {
                break;
            }
            self.deadlines.pop_front();
            if self.waits_with(user, ticket) {
                self.send(Op::Fallback { user, ticket });
            }
        }
        Vec::new()
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.front().map(|(at, _, _)| *at)
    }

    fn parted(&mut self, a: SessionId, b: Partner, _now: Instant) {
        if self.policy.cooldown.is_zero() {
            return;
        }
        let b = match b {
            Partner::Here(b) => self.user(b),
            Partner::There { user, .. } => user,
        };
        let a = self.user(a);
        self.send(Op::Parted { a, b });
    }

    fn forget(&mut self, id: SessionId) {
        self.remove(id);
        self.clients.remove(&id);
    }

    fn remove(&mut self, id: SessionId) -> bool {
        match self.waiting.remove(&id) {
            Some(wait) => {
                self.send(Op::Withdraw {
                    user: id,
                    ticket: wait.ticket,
                });
                true
            }
            None => false,
        }
    }

    fn is_waiting(&self, id: SessionId) -> bool {
        self.waiting.contains_key(&id)
    }

    fn len(&self) -> usize {
        self.waiting.len()
    }
}

/// The queue scripts, each with the common prelude.
struct Scripts {
    join: Script,
    fallback: Script,
    withdraw: Script,
    parted: Script,
    resume: Script,
    beat: Script,
}

impl Scripts {
    fn new() -> Scripts {
        let with_prelude = |body: &str| Script::new(&format!("{PRELUDE}\n{body}"));
        Scripts {
            join: with_prelude(include_str!("join.lua")),
            fallback: with_prelude(include_str!("fallback.lua")),
            withdraw: with_prelude(include_str!("withdraw.lua")),
            parted: with_prelude(include_str!("parted.lua")),
            resume: with_prelude(include_str!("resume.lua")),
            beat: with_prelude(include_str!("beat.lua")),
        }
    }
}

const PRELUDE: &str = include_str!("prelude.lua");

/// Everything the engine's tasks share.
struct Engine {
    config: SharedConfig,
    me: InstanceId,
    prefix: String,
    scripts: Scripts,
    conn: ConnectionManager,
    lobby: Lobby,
    health: Arc<Health>,
    lost_ops: Arc<AtomicBool>,
    local_online: Arc<AtomicUsize>,
    /// Whether our bus subscription is up. Queue operations wait for it: a user entered
    /// into the queue before we listen could be paired, and its `matched` published to
    /// nobody.
    subscribed: watch::Sender<bool>,
    /// Whether this instance has beaten at least once. Until then the others' scripts (and
    /// our own) skip our waiters as not alive, so a pair that joined in the first moments
    /// after start-up would wait side by side without ever being paired.
    beaten: watch::Sender<bool>,
}

/// What the engine's tasks take from [`queue`]: the receiving ends of the lobby's
/// operations and messages, and the state shared with the lobby's half.
pub struct Inbox {
    ops: mpsc::Receiver<Op>,
    bus: mpsc::Receiver<(InstanceId, BusMessage)>,
    me: InstanceId,
    health: Arc<Health>,
    lost_ops: Arc<AtomicBool>,
    local_online: Arc<AtomicUsize>,
}

/// Builds the lobby's side of the shared queue (a new instance id drawn from `rng`), and
/// the inbox [`start`] runs the engine on.
pub fn queue(config: &SharedConfig, rng: &mut impl Rng) -> (SharedQueue, Inbox) {
    let (ops, ops_rx) = mpsc::channel(OPS_QUEUE);
    let (bus_tx, bus_rx) = mpsc::channel(BUS_QUEUE);
    // Never SOLO: zero is how a process on its own names itself.
    let me = InstanceId(rng.random::<u64>() | 1);
    let queue = SharedQueue {
        me,
        policy: config.policy,
        ops,
        waiting: HashMap::new(),
        clients: HashMap::new(),
        deadlines: VecDeque::new(),
        next_ticket: 0,
        lost_ops: Arc::new(AtomicBool::new(false)),
        local_online: Arc::new(AtomicUsize::new(0)),
        bus: Bus { tx: bus_tx },
        health: Arc::new(Health::default()),
    };
    let inbox = Inbox {
        ops: ops_rx,
        bus: bus_rx,
        me,
        health: queue.health.clone(),
        lost_ops: queue.lost_ops.clone(),
        local_online: queue.local_online.clone(),
    };
    (queue, inbox)
}

/// Starts the engine's tasks on `inbox`, telling `lobby` (which holds the queue) what
/// happens. Fails only on a malformed URL; an unreachable Redis is retried for as long as
/// the server runs.
pub fn start(config: SharedConfig, inbox: Inbox, lobby: Lobby) -> Result<(), redis::RedisError> {
    let client = redis::Client::open(config.url.as_str())?;
    let manager = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(config.timeout))
        .set_response_timeout(Some(config.timeout))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_millis(500));
    let conn = ConnectionManager::new_lazy_with_config(client.clone(), manager)?;
    let engine = Arc::new(Engine {
        prefix: config.key_prefix(),
        me: inbox.me,
        config,
        scripts: Scripts::new(),
        conn,
        lobby,
        health: inbox.health,
        lost_ops: inbox.lost_ops,
        local_online: inbox.local_online,
        subscribed: watch::Sender::new(false),
        beaten: watch::Sender::new(false),
    });
    tracing::info!(instance = %engine.me, prefix = %engine.config.prefix, "shared queue on redis");
    tokio::spawn(engine.clone().run_ops(inbox.ops));
    tokio::spawn(engine.clone().run_publisher(inbox.bus));
    tokio::spawn(engine.clone().run_subscriber(client));
    tokio::spawn(engine.run_heartbeat());
    Ok(())
}

impl Engine {
    fn channel(&self, instance: InstanceId) -> String {
        format!("{}:bus:{instance}", self.prefix)
    }

    /// A script call with the arguments every script starts with: the key prefix, a random
    /// seed for its choices, and the user (or instance) it is about.
    fn call<'a>(&'a self, script: &'a Script, subject: String) -> redis::ScriptInvocation<'a> {
        let mut call = script.prepare_invoke();
        call.arg(&self.prefix)
            .arg(rand::random::<u32>() & 0x7fff_ffff)
            .arg(subject);
        call
    }

    /// The name of a local user in the shared queue.
    fn name(&self, session: SessionId) -> String {
        UserRef {
            instance: self.me,
            session,
        }
        .to_string()
    }

    /// Runs the queue scripts in the order the lobby asked for them: every operation waiting
    /// is sent at once, pipelined on the one connection (Redis runs them in that order), and
    /// the replies are handled in the same order.
    async fn run_ops(self: Arc<Self>, mut ops: mpsc::Receiver<Op>) {
        let mut subscribed = self.subscribed.subscribe();
        let mut beaten = self.beaten.subscribe();
        let mut batch = Vec::with_capacity(OPS_BATCH);
        while ops.recv_many(&mut batch, OPS_BATCH).await > 0 {
            let _ = subscribed.wait_for(|up| *up).await;
            let _ = beaten.wait_for(|beaten| *beaten).await;
            let now = crate::moderation::now_ms();
            // A `FuturesOrdered` polls each call first in the order pushed, so the commands
            // go out in order; the results come back in that order too.
            let mut calls: FuturesOrdered<_> = batch
                .drain(..)
                .map(|op| self.execute(op, now, self.conn.clone()))
                .collect();
            while let Some((what, result)) = calls.next().await {
                telemetry::metrics().redis_calls.increment(1);
                match result {
                    Ok(Some(event)) => self.lobby.shared(event).await,
                    Ok(None) => {}
                    Err(e) => {
                        // The op is lost; once Redis answers, the lobby enters its waiters
                        // again.
                        self.lost_ops.store(true, Ordering::Relaxed);
                        self.health.failed(what, &e);
                    }
                }
            }
        }
    }

    /// Runs one queue operation; what it was (for the logs) and what came of it.
    async fn execute(
        &self,
        op: Op,
        now: u64,
        mut conn: ConnectionManager,
    ) -> (&'static str, Result<Option<SharedEvent>, redis::RedisError>) {
        match op {
            Op::Join {
                user,
                ticket,
                tags,
                open,
                client,
            } => {
                let mut call = self.call(&self.scripts.join, self.name(user));
                call.arg(ticket)
                    .arg(now)
                    .arg(u8::from(open))
                    .arg(client.map_or_else(|| "-".to_string(), |c| c.to_string()));
                for tag in &tags {
                    call.arg(tag);
                }
                let reply = call.invoke_async::<Vec<String>>(&mut conn).await;
                ("join", reply.map(|r| self.pairing(user, ticket, r)))
            }
            Op::Fallback { user, ticket } => {
                let reply = self
                    .call(&self.scripts.fallback, self.name(user))
                    .arg(ticket)
                    .arg(now)
                    .arg(self.config.policy.fallback_after.as_millis() as u64)
                    .invoke_async::<Vec<String>>(&mut conn)
                    .await;
                ("fallback", reply.map(|r| self.pairing(user, ticket, r)))
            }
            Op::Withdraw { user, ticket } => {
                let reply = self
                    .call(&self.scripts.withdraw, self.name(user))
                    .arg(ticket)
                    .invoke_async::<i64>(&mut conn)
                    .await;
                ("withdraw", reply.map(|_| None))
            }
            Op::Parted { a, b } => {
                let cooldown = self.config.policy.cooldown.as_millis() as u64;
                let reply = self
                    .call(&self.scripts.parted, a.to_string())
                    .arg(b.to_string())
                    .arg(now + cooldown)
                    .arg(cooldown.max(1))
                    .invoke_async::<i64>(&mut conn)
                    .await;
                ("parted", reply.map(|_| None))
            }
            Op::Resume { user, room, client } => {
                let client = client.map_or_else(|| "-".to_string(), |c| c.to_string());
                let reply = self
                    .call(&self.scripts.resume, self.name(user))
                    .arg(room.to_string())
                    .arg(crate::lobby::RESUME_WAIT.as_millis() as u64)
                    .arg(client)
                    .invoke_async::<Vec<String>>(&mut conn)
                    .await;
                let event = reply.map(|r| {
                    let mut r = r.into_iter();
                    let other = r.next()?.parse().ok()?;
                    let other_client = r.next().and_then(|c| c.parse().ok());
                    Some(SharedEvent::Resumed {
                        user,
                        room,
                        other,
                        other_client,
                    })
                });
                ("resume", event)
            }
        }
    }

    /// Reads a join or fallback reply: empty when the user now waits, else the partner.
    fn pairing(&self, user: SessionId, ticket: u64, reply: Vec<String>) -> Option<SharedEvent> {
        let mut reply = reply.into_iter();
        let partner = reply.next()?;
        let partner_ticket = reply.next()?;
        let client = reply.next()?;
        let (Ok(partner), Ok(partner_ticket)) = (partner.parse(), partner_ticket.parse()) else {
            tracing::error!("the shared queue answered a pairing this instance cannot read");
            return None;
        };
        Some(SharedEvent::Paired {
            joiner: user,
            ticket,
            partner,
            partner_ticket,
            partner_client: client.parse().ok(),
            common: reply.collect(),
        })
    }

    async fn run_publisher(self: Arc<Self>, mut rx: mpsc::Receiver<(InstanceId, BusMessage)>) {
        let mut conn = self.conn.clone();
        let mut batch = Vec::with_capacity(BUS_BATCH);
        while rx.recv_many(&mut batch, BUS_BATCH).await > 0 {
            let mut pipe = redis::pipe();
            for (instance, msg) in batch.drain(..) {
                pipe.publish(self.channel(instance), msg.encode()).ignore();
            }
            let result = pipe.query_async::<()>(&mut conn).await;
            telemetry::metrics().redis_calls.increment(1);
            if result.is_err() {
                telemetry::metrics().bus_dropped.increment(1);
            }
            if let Err(e) = &result {
                self.health.failed("publish", e);
            }
        }
    }

    async fn run_subscriber(self: Arc<Self>, client: redis::Client) {
        let channel = self.channel(self.me);
        let reports_channel = reports::channel(&self.config);
        let mut backoff = Duration::from_millis(100);
        loop {
            let subscribed = async {
                let mut pubsub =
                    tokio::time::timeout(self.config.timeout, client.get_async_pubsub())
                        .await
                        .map_err(|_| {
                            redis::RedisError::from(std::io::Error::from(
                                std::io::ErrorKind::TimedOut,
                            ))
                        })??;
                pubsub.subscribe(&channel).await?;
                pubsub.subscribe(&reports_channel).await?;
                Ok::<_, redis::RedisError>(pubsub)
            }
            .await;
            match subscribed {
                Ok(pubsub) => {
                    backoff = Duration::from_millis(100);
                    tracing::debug!(%channel, "subscribed");
                    self.subscribed.send_replace(true);
                    let mut messages = pubsub.into_on_message();
                    while let Some(msg) = messages.next().await {
                        let Ok(line) = std::str::from_utf8(msg.get_payload_bytes()) else {
                            continue;
                        };
                        if msg.get_channel_name() == reports_channel {
                            if let Some(report) = reports::decode(self.me, line) {
                                self.lobby.shared(SharedEvent::Report(report)).await;
                            }
                            continue;
                        }
                        match BusMessage::decode(line) {
                            Some(msg) => self.lobby.shared(SharedEvent::Bus(msg)).await,
                            None => tracing::warn!(line, "unreadable message on the bus"),
                        }
                    }
                    self.subscribed.send_replace(false);
                    tracing::warn!(%channel, "subscription lost; reconnecting");
                }
                Err(e) => {
                    tracing::debug!(error = %e, "cannot subscribe yet");
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    async fn run_heartbeat(self: Arc<Self>) {
        let mut conn = self.conn.clone();
        let mut every = tokio::time::interval(self.config.beat);
        every.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut failing = false;
        let mut beaten = false;
        loop {
            every.tick().await;
            let reply = self
                .call(&self.scripts.beat, self.me.to_string())
                .arg(self.local_online.load(Ordering::Relaxed))
                .arg(self.config.ttl.as_millis() as u64)
                .arg(crate::moderation::now_ms())
                .invoke_async::<Vec<String>>(&mut conn)
                .await;
            telemetry::metrics().redis_calls.increment(1);
            let reply = match reply {
                Ok(reply) => reply,
                Err(e) => {
                    self.health.failed("heartbeat", &e);
                    failing = true;
                    continue;
                }
            };
            let mut reply = reply.into_iter();
            let forgotten = reply.next().as_deref() == Some("1");
            // Our key gone without our being reaped: Redis restarted, and lost the queue.
            let lapsed = reply.next().as_deref() == Some("0") && beaten;
            beaten = true;
            self.beaten.send_replace(true);
            let online = reply.next().and_then(|n| n.parse().ok()).unwrap_or(0);
            let dead = reply
                .filter_map(|i| u64::from_str_radix(&i, 16).ok().map(InstanceId))
                .collect();
            if forgotten {
                tracing::warn!(
                    "this instance was presumed dead by the others; its rooms with them have ended"
                );
            }
            self.lobby
                .shared(SharedEvent::Pool {
                    online,
                    dead,
                    forgotten,
                })
                .await;
            // Anything lost while Redis failed (or the queue itself, if Redis restarted
            // empty) comes back from the lobby's own view.
            if failing || forgotten || lapsed || self.lost_ops.swap(false, Ordering::Relaxed) {
                failing = false;
                self.lobby.shared(SharedEvent::Resync).await;
            }
            self.health.recovered();
        }
    }
}
