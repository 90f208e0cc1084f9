//! The lobby: every connected user's state and every pairing decision, as a sans-IO
//! [`Core`] run by a thin tokio shell.
//!
//! - [`core`]: the state machine (inputs, outputs, the next deadline); no clock, no tokio;
//! - [`users`]: the registry of users and where each is;
//! - [`rooms`], [`resume`], [`remote`], [`reports`], [`ahead`]: the core's concerns, one
//!   file each;
//! - [`backend`]: where users wait (this process's matchmaker or the shared queue);
//! - this file, the shell: the task that owns the mailbox, the timer and the online count,
//!   feeds the core the time, and carries out what it decides.
//!
//! Sessions talk to the shell through a cloneable [`Lobby`] handle over a bounded channel
//! and await those sends; the shell answers with `try_send` into the sessions' own bounded
//! queues and never waits on a session, so there is no cycle of awaited sends. A session
//! whose queue is full is dropped from the lobby (its partner is told `disconnected`), and
//! the session ends once its queue runs dry. The shared queue's engine sends its events on
//! a channel of its own, and the shell passes the core's operations back with `try_send`.

mod ahead;
mod backend;
pub(crate) mod core;
mod remote;
mod reports;
mod resume;
mod rooms;
mod users;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, MissedTickBehavior};

use crate::ids::{ClientKey, SessionId, now_ms};
use crate::matchmaker::Want;
use crate::moderation::ReportLog;
use crate::protocol::{MemberProof, Mode, ReportReason, RoomId};
use crate::room::Peer;
use crate::shared::{Health, Link};
use crate::telemetry;
pub(crate) use core::{Core, Input, Online, Output, Stats, Time};

/// How many commands may queue up for the shell before senders wait.
const MAILBOX: usize = 4096;
/// How often the online count is published to sessions (the protocol promises at most one
/// `online` message per second).
///
/// Sessions are split into [`ONLINE_SHARDS`] groups, each told in its own slice of the
/// second: telling every session at the same instant would wake tens of thousands of tasks
/// and write as many frames in one burst, holding up everyone's relays for a moment.
const ONLINE_EVERY: Duration = Duration::from_secs(1);
/// How many groups of sessions hear of the online count in turn.
const ONLINE_SHARDS: usize = 16;

/// The time now, as the core takes it.
pub(crate) fn now() -> Time {
    Time {
        at: Instant::now().into_std(),
        unix_ms: now_ms(),
    }
}

/// What a new session learns when it registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Registered {
    /// The online count, the new user included.
    pub online: Online,
    /// Whether the user is banned now (it gets no TURN credentials: it will meet nobody).
    pub banned: bool,
}

/// A cloneable handle to the lobby.
#[derive(Clone, Debug)]
pub(crate) struct Lobby {
    /// The shell's mailbox; closed once the shell's task has ended (it only ends early by
    /// panicking), which is how `/healthz` tells a dead lobby.
    tx: mpsc::Sender<Command>,
    /// The online count, published to each group of sessions at most once per
    /// [`ONLINE_EVERY`]; one more at the end (index [`ONLINE_SHARDS`]) has the newest count
    /// of any group, for the landing page and `/healthz`.
    online: Arc<[watch::Receiver<Online>]>,
    /// With a shared queue: whether its engine still runs.
    engine: Option<Arc<Health>>,
}

#[derive(Debug)]
enum Command {
    /// For the core, as is.
    Input(Input),
    /// A new session: the reply is what its `welcome` needs.
    Register {
        peer: Peer,
        client: Option<ClientKey>,
        reply: oneshot::Sender<Registered>,
    },
    Stats {
        reply: oneshot::Sender<Stats>,
    },
}

impl Lobby {
    /// Runs `core` in a task of its own until every handle is dropped. Reports go to
    /// `log`; with a shared queue, `link` reaches its engine.
    pub(crate) fn start(core: Core, log: Option<ReportLog>, link: Option<Link>) -> Lobby {
        let (tx, rx) = mpsc::channel(MAILBOX);
        let (online_tx, online): (Vec<_>, Vec<_>) = (0..=ONLINE_SHARDS)
            .map(|_| watch::channel(Online::default()))
            .unzip();
        let engine = link.as_ref().map(|link| link.health.clone());
        let shell = Shell {
            core,
            rx,
            link,
            log,
            online_tx,
        };
        let task = tokio::spawn(shell.run());
        tokio::spawn(async move {
            if let Err(e) = task.await
                && e.is_panic()
            {
                tracing::error!(error = %e, "the lobby task panicked: this instance matches nobody");
            }
        });
        Lobby {
            tx,
            online: online.into(),
            engine,
        }
    }

    /// Sends `cmd` at once if the mailbox has room (nearly always) and returns a future that
    /// waits only when it had none: the command is on its way when this returns, not when
    /// the future is first polled (every caller awaits it at once).
    ///
    /// Not an `async fn` on purpose. The awaiting send holds the command twice beside the
    /// semaphore's waiter, about 600 bytes, and an `async fn` would also keep its argument:
    /// that much would be part of every future that asks the lobby something, and so of every
    /// session's task. Boxed, the slow path's state exists only while it waits.
    fn send(&self, cmd: Command) -> impl Future<Output = ()> + Send + '_ {
        // Fails only when the shell has stopped: shutting down, or dead (see `alive`).
        let full = match self.tx.try_send(cmd) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => None,
            Err(mpsc::error::TrySendError::Full(cmd)) => Some(Box::pin(self.tx.send(cmd))),
        };
        async move {
            if let Some(send) = full {
                let _ = send.await;
            }
        }
    }

    fn input(&self, input: Input) -> impl Future<Output = ()> + Send + '_ {
        self.send(Command::Input(input))
    }

    /// Whether the lobby (and, with a shared queue, its engine) still runs.
    pub(crate) fn alive(&self) -> bool {
        !self.tx.is_closed() && self.engine.as_ref().is_none_or(|health| health.alive())
    }

    /// Adds a connected user (idle), known for reports and bans by `client`.
    pub(crate) async fn register(
        &self,
        peer: Peer,
        client: Option<ClientKey>,
    ) -> Option<Registered> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Register {
            peer,
            client,
            reply,
        })
        .await;
        rx.await.ok()
    }

    /// The user is back after a restart and asks for `room` (a room of `mode`) again,
    /// showing `proof`.
    pub(crate) async fn resume(
        &self,
        id: SessionId,
        seq: u64,
        room: RoomId,
        proof: MemberProof,
        mode: Mode,
    ) {
        let input = Input::Resume {
            id,
            seq,
            room,
            proof,
            mode,
        };
        self.input(input).await
    }

    /// The user reports its partner: the room ends and the report is stored.
    pub(crate) async fn report(&self, id: SessionId, seq: u64, reason: ReportReason) {
        self.input(Input::Report { id, seq, reason }).await
    }

    /// The user wants a partner (it was idle), as `want` says.
    pub(crate) async fn join(&self, id: SessionId, seq: u64, want: Want) {
        self.input(Input::Join { id, seq, want }).await
    }

    /// The user ends its room, if any, and wants a new partner (in `mode`, if given).
    pub(crate) async fn next(&self, id: SessionId, seq: u64, mode: Option<Mode>) {
        self.input(Input::Next { id, seq, mode }).await
    }

    /// The user, waiting since its request `seq`, hands over the offer of the call to come.
    pub(crate) async fn early_offer(&self, id: SessionId, seq: u64, sdp: String) {
        self.input(Input::EarlyOffer { id, seq, sdp }).await
    }

    /// The user leaves its room or the queue and stays connected.
    pub(crate) async fn leave(&self, id: SessionId, seq: u64) {
        self.input(Input::Leave { id, seq }).await
    }

    /// The user is gone (socket closed) or must be dropped (cannot keep up). `restarting`:
    /// its session ended because this server is restarting; the user will likely come back
    /// (here or to another instance) and ask for its room.
    pub(crate) async fn gone(&self, id: SessionId, restarting: bool) {
        self.input(Input::Gone { id, restarting }).await
    }

    /// The same as [`gone`](Self::gone), for a place that cannot wait (a drop guard): sent
    /// at once if the mailbox has room, else by a task of its own.
    pub(crate) fn gone_soon(&self, id: SessionId, restarting: bool) {
        let cmd = Command::Input(Input::Gone { id, restarting });
        if let Err(mpsc::error::TrySendError::Full(cmd)) = self.tx.try_send(cmd)
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let tx = self.tx.clone();
            runtime.spawn(async move {
                let _ = tx.send(cmd).await;
            });
        }
    }

    /// A snapshot of the counts (zeros if the lobby has stopped).
    pub(crate) async fn stats(&self) -> Stats {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Stats { reply }).await;
        rx.await.unwrap_or_default()
    }

    /// The online count as last published to any group of sessions (so never older than
    /// what a session has been told).
    pub(crate) fn online_count(&self) -> Online {
        *self.online[ONLINE_SHARDS].borrow()
    }

    /// A receiver of the online count for session `id`, updated at most once a second.
    pub(crate) fn online(&self, id: SessionId) -> watch::Receiver<Online> {
        self.online[id.0 as usize % ONLINE_SHARDS].clone()
    }
}

/// Completes at `deadline`, or never.
async fn until(deadline: Option<std::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

/// The shell's task: the core and the I/O it needs.
struct Shell {
    /// The state machine.
    core: Core,
    /// Sessions' commands.
    rx: mpsc::Receiver<Command>,
    /// With a shared queue: the engine's events in, the core's ops and messages out.
    link: Option<Link>,
    /// Where reports are stored.
    log: Option<ReportLog>,
    /// Publishes the online count to each group of sessions, and (last) the newest to
    /// the pages.
    online_tx: Vec<watch::Sender<Online>>,
}

impl Shell {
    async fn run(mut self) {
        let slice = ONLINE_EVERY / ONLINE_SHARDS as u32;
        let mut publish = tokio::time::interval_at(Instant::now() + slice, slice);
        publish.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut shard = 0;
        loop {
            let deadline = self.core.poll_timeout();
            let input = tokio::select! {
                cmd = self.rx.recv() => match cmd {
                    Some(Command::Input(input)) => input,
                    Some(Command::Register { peer, client, reply }) => {
                        let id = peer.id;
                        self.step(Input::Register { peer, client });
                        let registered = Registered {
                            online: self.core.online(),
                            banned: self.core.is_banned(id),
                        };
                        let _ = reply.send(registered);
                        continue;
                    }
                    Some(Command::Stats { reply }) => {
                        let mut stats = self.core.stats();
                        stats.redis = self.link.as_ref().map(|link| link.health.reachable());
                        let _ = reply.send(stats);
                        continue;
                    }
                    None => break,
                },
                Some(event) = recv(&mut self.link) => Input::Shared(event),
                _ = until(deadline) => Input::Timeout,
                _ = publish.tick() => {
                    let online = self.core.online();
                    shard = (shard + 1) % ONLINE_SHARDS;
                    for tx in [&self.online_tx[ONLINE_SHARDS], &self.online_tx[shard]] {
                        tx.send_if_modified(|n| std::mem::replace(n, online) != online);
                    }
                    continue;
                }
            };
            self.step(input);
        }
    }

    /// Hands `input` to the core, then carries out everything it decided (a delivery that
    /// fails is one more input).
    fn step(&mut self, input: Input) {
        let now = now();
        self.core.handle(now, input);
        while let Some(output) = self.core.poll_output() {
            match output {
                Output::Deliver { to, event } => {
                    if to.send(event).is_err() {
                        // Full or closed: it cannot keep up or is already gone; drop it.
                        self.core.handle(now, Input::Undeliverable(to.id));
                    }
                }
                Output::Publish { instance, msg } => {
                    if let Some(link) = &self.link {
                        link.bus.publish(instance, msg);
                    }
                }
                Output::Queue(op) => {
                    if let Some(link) = &self.link {
                        link.send(op);
                    }
                }
                Output::Store(report) => {
                    if let Some(log) = &self.log {
                        log.append(report);
                    }
                }
            }
        }
        let stats = self.core.stats();
        let metrics = telemetry::metrics();
        metrics.waiting.set(stats.waiting as f64);
        metrics.rooms.set(stats.rooms as f64);
        if let Some(link) = &self.link {
            use std::sync::atomic::Ordering::Relaxed;
            let ours = self.core.local_online();
            link.local_online.store(ours.total, Relaxed);
            for mode in Mode::ALL {
                link.local_modes[mode.index()].store(ours.modes.get(mode), Relaxed);
            }
        }
    }
}

/// The engine's next event, or never without a shared queue.
async fn recv(link: &mut Option<Link>) -> Option<crate::shared::SharedEvent> {
    match link {
        Some(link) => link.events.recv().await,
        None => std::future::pending().await,
    }
}
