//! The shared queue's I/O: the tasks that run the lobby's queue operations on Redis, publish
//! messages to other instances, hold this instance's subscription, and beat.
//!
//! - **ops**: runs the queue scripts in the order the lobby asked, pipelined;
//! - **publisher**: sends [`BusMessage`]s to the instance that holds the addressee's socket,
//!   batched into pipelines, in order;
//! - **subscriber**: one subscription per instance (its own channel), reconnecting after a
//!   Redis restart;
//! - **heartbeat**: every [`SharedConfig::beat`], renews this instance's liveness key (it
//!   lapses after [`SharedConfig::ttl`]), reaps the waiting users of instances whose key
//!   lapsed, and reads the global online count and the live instances.
//!
//! Each task tells the lobby what happened through one bounded channel, and marks the
//! engine dead in [`Health`] if it ever ends (it only could by panicking), so `/healthz`
//! fails instead of hiding an instance that can no longer match anyone.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use redis::Script;
use redis::aio::ConnectionManager;
use tokio::sync::{mpsc, watch};
use tokio::time::MissedTickBehavior;

use super::bus::BusMessage;
use super::{Health, Inbox, Op, SharedConfig, SharedEvent, reports};
use crate::ids::ClientKey;
use crate::ids::{InstanceId, SessionId, UserRef};
use crate::protocol::{Mode, ModeCounts, RoomId};
use crate::telemetry;

/// One user's entry in the resume table, as [`Op::Resume`] gave it.
struct Entry {
    user: SessionId,
    room: RoomId,
    client: Option<ClientKey>,
    /// The hash of the user's secret.
    me: u128,
    /// The hash of its partner's secret.
    partner: u128,
}

/// The most messages sent in one pipeline.
const BUS_BATCH: usize = 512;
/// The most queue operations sent before their replies are read.
const OPS_BATCH: usize = 64;

/// The queue scripts, each with the common prelude.
struct Scripts {
    join: Script,
    fallback: Script,
    withdraw: Script,
    offer: Script,
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
            offer: with_prelude(include_str!("offer.lua")),
            parted: with_prelude(include_str!("parted.lua")),
            resume: with_prelude(include_str!("resume.lua")),
            beat: with_prelude(include_str!("beat.lua")),
        }
    }
}

const PRELUDE: &str = include_str!("prelude.lua");

/// Everything the engine's tasks share.
struct Engine {
    /// Timeouts, the ttl and the policy the scripts apply.
    config: SharedConfig,
    /// This instance: the name of its channel and the prefix of its users' names.
    me: InstanceId,
    /// The hash-tagged key prefix, computed once.
    prefix: String,
    /// The queue scripts, loaded by hash.
    scripts: Scripts,
    /// The one multiplexed connection the ops, the publisher and the heartbeat share.
    conn: ConnectionManager,
    /// Where the engine's news for the lobby goes (bounded; the engine awaits room in it).
    events: mpsc::Sender<SharedEvent>,
    /// Whether Redis answers (shared with the lobby's shell, for `/healthz`).
    health: Arc<Health>,
    /// Set by the shell when it could not queue an op: the next beat asks for a resync.
    lost_ops: Arc<AtomicBool>,
    /// This instance's connected users, as the shell last stored it, for the heartbeat.
    local_online: Arc<AtomicUsize>,
    /// Of those, how many are in each mode.
    local_modes: Arc<[AtomicUsize; 2]>,
    /// Whether our bus subscription is up. Queue operations wait for it: a user entered
    /// into the queue before we listen could be paired, and its `matched` published to
    /// nobody.
    subscribed: watch::Sender<bool>,
    /// Whether this instance has beaten at least once. Until then the others' scripts (and
    /// our own) skip our waiters as not alive, so a pair that joined in the first moments
    /// after start-up would wait side by side without ever being paired.
    beaten: watch::Sender<bool>,
}

/// Starts the engine's tasks on `inbox`; what happens reaches the lobby through the
/// inbox's event channel. Fails only on a malformed URL; an unreachable Redis is retried
/// for as long as the server runs.
pub(crate) fn start(config: SharedConfig, inbox: Inbox) -> Result<(), redis::RedisError> {
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
        events: inbox.events,
        health: inbox.health,
        lost_ops: inbox.lost_ops,
        local_online: inbox.local_online,
        local_modes: inbox.local_modes,
        subscribed: watch::Sender::new(false),
        beaten: watch::Sender::new(false),
    });
    tracing::info!(instance = %engine.me, prefix = %engine.config.prefix, "shared queue on redis");
    let health = &engine.health;
    tokio::spawn(watched(health.clone(), engine.clone().run_ops(inbox.ops)));
    tokio::spawn(watched(
        health.clone(),
        engine.clone().run_publisher(inbox.bus),
    ));
    tokio::spawn(watched(
        health.clone(),
        engine.clone().run_subscriber(client),
    ));
    tokio::spawn(watched(health.clone(), engine.clone().run_heartbeat()));
    Ok(())
}

/// Runs one of the engine's tasks; if it ever ends (a panic: the loops do not return), the
/// engine is marked dead, and `/healthz` says so.
async fn watched(health: Arc<Health>, task: impl Future<Output = ()>) {
    struct Mark(Arc<Health>);
    impl Drop for Mark {
        fn drop(&mut self) {
            self.0.died.store(true, Ordering::Relaxed);
            tracing::error!(
                "a task of the shared queue's engine ended; this instance matches nobody"
            );
        }
    }
    let _mark = Mark(health);
    task.await;
}

impl Engine {
    /// Tells the lobby; waits while its channel is full (the lobby never waits on us).
    async fn tell(&self, event: SharedEvent) {
        let _ = self.events.send(event).await;
    }

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
            let now = crate::ids::now_ms();
            // A `FuturesOrdered` polls each call first in the order pushed, so the commands
            // go out in order; the results come back in that order too.
            let mut calls: FuturesOrdered<_> = batch
                .drain(..)
                .map(|op| self.execute(op, now, self.conn.clone()))
                .collect();
            while let Some((what, result)) = calls.next().await {
                telemetry::metrics().redis_calls.increment(1);
                match result {
                    Ok(Some(event)) => self.tell(event).await,
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
                want,
                open,
                client,
            } => {
                let mut call = self.call(&self.scripts.join, self.name(user));
                call.arg(ticket)
                    .arg(now)
                    .arg(u8::from(open))
                    .arg(client.map_or_else(|| "-".to_string(), |c| c.to_string()))
                    .arg(want.mode.as_str())
                    .arg(want.lang.as_ref().map_or("-", |l| l.as_str()));
                for tag in &want.tags {
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
                let mut call = self.call(&self.scripts.withdraw, self.name(user));
                call.arg(ticket);
                ("withdraw", done(call, conn).await)
            }
            Op::Offer { user, ticket, sdp } => {
                let mut call = self.call(&self.scripts.offer, self.name(user));
                call.arg(ticket).arg(sdp);
                ("offer", done(call, conn).await)
            }
            Op::Parted { a, b } => {
                let cooldown = self.config.policy.cooldown.as_millis() as u64;
                let mut call = self.call(&self.scripts.parted, a.to_string());
                call.arg(b.to_string())
                    .arg(now + cooldown)
                    .arg(cooldown.max(1));
                ("parted", done(call, conn).await)
            }
            Op::Resume {
                user,
                room,
                client,
                me,
                partner,
                wait,
            } => {
                let entry = Entry {
                    user,
                    room,
                    client,
                    me,
                    partner,
                };
                ("resume", self.resume(entry, wait, conn).await)
            }
        }
    }

    /// Asks the resume table for `room` on behalf of `user`: the other member, if it is
    /// back already.
    async fn resume(
        &self,
        entry: Entry,
        wait: Duration,
        mut conn: ConnectionManager,
    ) -> Result<Option<SharedEvent>, redis::RedisError> {
        let Entry {
            user,
            room,
            client,
            me,
            partner,
        } = entry;
        let client = client.map_or_else(|| "-".to_string(), |c| c.to_string());
        let reply = self
            .call(&self.scripts.resume, self.name(user))
            .arg(room.to_string())
            .arg(wait.as_millis() as u64)
            .arg(client)
            .arg(format!("{me:032x}"))
            .arg(format!("{partner:032x}"))
            .invoke_async::<Vec<String>>(&mut conn)
            .await;
        reply.map(|r| {
            let mut r = r.into_iter();
            let other = r.next()?.parse().ok()?;
            let other_client = r.next().and_then(|c| c.parse().ok());
            Some(SharedEvent::Resumed {
                user,
                room,
                other,
                other_client,
            })
        })
    }

    /// Reads a join or fallback reply: empty when the user now waits, else the partner
    /// (with both early offers, empty for none).
    fn pairing(&self, user: SessionId, ticket: u64, reply: Vec<String>) -> Option<SharedEvent> {
        let mut reply = reply.into_iter();
        let partner = reply.next()?;
        let partner_ticket = reply.next()?;
        let client = reply.next()?;
        let same_lang = reply.next()? == "1";
        let offer = |sdp: String| Some(sdp).filter(|sdp| !sdp.is_empty());
        let partner_offer = offer(reply.next()?);
        let own_offer = offer(reply.next()?);
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
            same_lang,
            partner_offer,
            offer: own_offer,
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
                                self.tell(SharedEvent::Report(report)).await;
                            }
                            continue;
                        }
                        match BusMessage::decode(line) {
                            Some(msg) => self.tell(SharedEvent::Bus(msg)).await,
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
                .arg(crate::ids::now_ms())
                .arg(self.local_modes[Mode::Video.index()].load(Ordering::Relaxed))
                .arg(self.local_modes[Mode::Text.index()].load(Ordering::Relaxed))
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
            let mut count = || reply.next().and_then(|n| n.parse().ok()).unwrap_or(0);
            let online = count();
            let modes = ModeCounts([count(), count()]);
            let dead = reply
                .filter_map(|i| u64::from_str_radix(&i, 16).ok().map(InstanceId))
                .collect();
            if forgotten {
                tracing::warn!(
                    "this instance was presumed dead by the others; its rooms with them have ended"
                );
            }
            self.tell(SharedEvent::Pool {
                online,
                modes,
                dead,
                forgotten,
            })
            .await;
            // Anything lost while Redis failed (or the queue itself, if Redis restarted
            // empty) comes back from the lobby's own view.
            if failing || forgotten || lapsed || self.lost_ops.swap(false, Ordering::Relaxed) {
                failing = false;
                self.tell(SharedEvent::Resync).await;
            }
            self.health.recovered();
        }
    }
}

/// Runs a script whose reply says nothing but that it ran (a count or a flag).
async fn done(
    call: redis::ScriptInvocation<'_>,
    mut conn: ConnectionManager,
) -> Result<Option<SharedEvent>, redis::RedisError> {
    call.invoke_async::<i64>(&mut conn).await.map(|_| None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A task of the engine that ends (its loops never return, so it panicked) marks the
    /// engine dead, and `/healthz` fails.
    #[tokio::test]
    async fn an_engine_task_that_ends_marks_the_engine_dead() {
        let health = Arc::new(Health::default());
        assert!(health.alive());
        let task = tokio::spawn(watched(health.clone(), async { panic!("a bug") }));
        assert!(task.await.unwrap_err().is_panic());
        assert!(!health.alive());
    }
}
