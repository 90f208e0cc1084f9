//! One connected user: the task that owns one WebSocket.
//!
//! It reads the client's frames, checks them against the [protocol](crate::protocol), sends
//! queue commands to the [lobby](crate::lobby), relays signaling to the partner through its
//! half of the [room](crate::room), and writes whatever its bounded queue receives. It keeps a
//! local copy of its own state (idle, waiting, in a room) so relaying never asks the lobby.
//!
//! Writes to a client that stopped reading back up; after `write_timeout` the session gives
//! up and closes, and meanwhile its queue fills, so senders see it as full and the lobby drops
//! it. Memory per session is bounded either way.

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::OptionFuture;
use tokio::sync::{broadcast, watch};
use tokio::time::{Instant, Interval, MissedTickBehavior};

use crate::gate::{self, Gate, SharedDifficulty};
use crate::ice::IceConfig;
use crate::ids::SessionId;
use crate::ids::{ClientKey, now_ms};
use crate::limits::{Budget, Cost, Rates, Verdict};
use crate::lobby::{Lobby, Online, Registered};
use crate::mailbox::{self, TryRecvError};
use crate::matchmaker::Want;
use crate::presence::{Presence, Request, Status};
use crate::protocol::Ahead;
use crate::protocol::{
    self, Admit, ClientMessage, ErrorCode, LeftReason, MemberProof, Mode, ProtocolError, Relay,
    ServerMessage,
};
use crate::room::{Event, Matched, Peer, Relayed, Undeliverable};
use crate::telemetry::{self, CloseReason};
use crate::upgrade::Socket;
use crate::websocket::{self, Incoming, code};

/// Per-connection settings, shared by every session.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    /// Sent in `welcome` (with fresh TURN credentials) so the browser can build its
    /// `RTCPeerConnection`.
    pub ice: IceConfig,
    /// How often the server pings an otherwise quiet client; a client silent for two
    /// intervals is considered dead (half-open TCP is only found this way).
    pub ping_interval: Duration,
    /// How long one write may wait on a client that does not read before the session ends.
    pub write_timeout: Duration,
    /// Capacity of each session's outbound queue, in events.
    pub queue: usize,
    /// How fast one client may send.
    pub rates: Rates,
    /// How hard each connection's next join challenge is.
    pub difficulty: SharedDifficulty,
}

/// What a session needs from the server besides its socket.
pub(crate) struct Context {
    pub lobby: Lobby,
    pub settings: Arc<Settings>,
    /// Fires when the server begins to shut down.
    pub shutdown: broadcast::Receiver<()>,
    /// Who this client is for reports and bans (a salted hash of its IP), if known.
    pub client: Option<ClientKey>,
}

struct Session {
    id: SessionId,
    socket: Socket,
    lobby: Lobby,
    settings: Arc<Settings>,
    /// Idle, waiting or in a room, as far as this session knows.
    presence: Presence,
    /// What the latest join asked for (interests, pool, language), sent again on `next`
    /// from idle (in the pool `next` names, if it names one).
    want: Want,
    /// Whether the client said, in the join or next its wait began with, that it takes a
    /// stranger's early offer inside `matched`; if not, it gets the offer as a relayed
    /// `offer` right after `matched` (the flow without early offers).
    takes_ahead: bool,
    /// This client's rate limits.
    budget: Budget,
    /// Who the client is, for its join rate (and so its challenges' difficulty).
    client: Option<ClientKey>,
    /// The 18+ confirmation and the challenge each join and Next must pass.
    gate: Gate,
    /// Over its message budget, the client is not read until then: its frames wait in its
    /// own socket, and TCP flow control slows it down at no cost to us.
    paused_until: Option<Instant>,
    /// What the lobby and the partner send us. The session keeps no sender to it: once the
    /// lobby and the partner have dropped theirs, it ends and so does the session.
    rx: mailbox::Receiver<Event>,
    /// Fires when the server begins to shut down.
    shutdown: broadcast::Receiver<()>,
    /// The online count, as the lobby publishes it for this session's group.
    online_rx: watch::Receiver<Online>,
    /// When to ping a quiet client and check that it still answers.
    ping: Interval,
    /// When the client last sent a frame: silent for two ping intervals, it is gone.
    last_heard: Instant,
}

/// Events handled after the one that woke the session, before it writes: a partner's burst
/// (an offer, its candidates, a chat line) goes out in one `write`, not one per frame.
const BATCH: usize = 32;

/// The most bytes of relayed messages a session's queue holds (one message of any size is
/// always taken into an empty queue): a partner that does not read is dropped once this much
/// waits for it, and the sender is never slowed.
pub(crate) const QUEUE_BYTES: usize = 64 * 1024;

/// Runs the session until the client leaves, fails, or the server shuts down.
///
/// Not an `async fn`: the session is built here, and the future only borrows it. An
/// `async fn`'s future keeps its arguments twice (as passed, and moved into its body), and
/// this future is what every connected user costs for as long as it is connected.
pub(crate) fn run(socket: Socket, ctx: Context) -> impl Future<Output = CloseReason> + Send {
    let id = SessionId::next();
    let started = Instant::now();
    let (tx, rx) = mailbox::weighted(ctx.settings.queue, QUEUE_BYTES, Event::wire_bytes);
    let peer = Peer::new(id, tx);
    let client = ctx.client;
    let every = ctx.settings.ping_interval;
    let mut ping = tokio::time::interval_at(started + every, every);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut online_rx = ctx.lobby.online(id);
    online_rx.mark_unchanged();
    let mut session = Session {
        budget: Budget::new(ctx.settings.rates),
        gate: Gate::new(
            &ctx.settings.difficulty,
            ctx.client,
            std::time::Instant::now(),
        ),
        client: ctx.client,
        paused_until: None,
        id,
        socket,
        lobby: ctx.lobby,
        settings: ctx.settings,
        presence: Presence::default(),
        want: Want::default(),
        takes_ahead: false,
        rx,
        shutdown: ctx.shutdown,
        online_rx,
        ping,
        last_heard: started,
    };
    async move {
        let Some(registered) = session.lobby.register(peer, client).await else {
            return CloseReason::Shutdown;
        };
        // From here on the lobby knows us: whatever ends this task (a panic included), the
        // guard tells the lobby, so no ghost is left waiting or in a room.
        let mut leaving = Leaving {
            lobby: session.lobby.clone(),
            id,
            restarting: false,
            told: false,
        };
        tracing::debug!(session = id.0, "session start");
        let metrics = telemetry::metrics();
        metrics.sessions.increment(1.0);
        let reason = session.serve(registered).await;
        // Counted before the lobby hears of it, so whoever learns of the departure from the
        // lobby also sees it in the metrics.
        metrics.sessions.decrement(1.0);
        metrics.closed(reason);
        leaving.restarting = reason == CloseReason::Shutdown;
        leaving.tell().await;
        tracing::info!(
            session = id.0,
            duration_ms = started.elapsed().as_millis() as u64,
            reason = reason.as_str(),
            "session end"
        );
        reason
    }
}

/// Tells the lobby that a registered session is gone: awaited on the way out, or from
/// `drop` if the session never got there (it panicked, or its task was cancelled).
struct Leaving {
    /// Who to tell.
    lobby: Lobby,
    /// The session to forget.
    id: SessionId,
    /// Whether the session ended for a restart (a partner elsewhere expects it back).
    restarting: bool,
    /// Set once the lobby has been told, so `drop` does nothing.
    told: bool,
}

impl Leaving {
    async fn tell(&mut self) {
        self.lobby.gone(self.id, self.restarting).await;
        self.told = true;
    }
}

impl Drop for Leaving {
    fn drop(&mut self) {
        if !self.told {
            self.lobby.gone_soon(self.id, self.restarting);
        }
    }
}

/// The session's verdict on one step: keep going or close.
type Step = Result<(), CloseReason>;

impl Session {
    async fn serve(&mut self, registered: Registered) -> CloseReason {
        {
            // Scoped: the list is sent once and must not stay in this future for the whole
            // session (every idle user holds it).
            let mut ice_servers = self.settings.ice.servers();
            if registered.banned {
                // It will meet nobody: no relay of ours for it to use.
                ice_servers.retain(|server| server.credential.is_none());
            }
            let welcome = ServerMessage::Welcome {
                online: registered.online.total,
                modes: registered.online.modes,
                ice_servers: &ice_servers,
                challenge: self.gate.challenge(),
            };
            self.send(&welcome.to_json());
        }
        if let Err(reason) = self.flush().await {
            return reason;
        }
        loop {
            let step = self.next_step().await;
            // Whatever else is already queued goes out in the same write.
            let step = step.and_then(|()| {
                for _ in 0..BATCH {
                    match self.rx.try_recv() {
                        Ok(event) => self.on_event(event)?,
                        // Empty, or closed: the next `recv` says which.
                        Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                    }
                }
                Ok(())
            });
            if let Err(reason) = step {
                if self.socket.is_closing() {
                    // Our close frame, or the answer to the client's: send it if we can.
                    let _ = self.flush().await;
                }
                return reason;
            }
            if let Err(reason) = self.flush().await {
                return reason;
            }
        }
    }

    /// Waits for the next thing to do (shutdown, an event, a frame, the end of a pause, the
    /// online count, a ping) and does it.
    async fn next_step(&mut self) -> Step {
        let every = self.settings.ping_interval;
        let paused_until = self.paused_until;
        // Biased, shutdown first: once the server says goodbye, a session must not pass on
        // anything the goodbye caused elsewhere (a partner whose session closed first would
        // otherwise be told `left`, and end a call that can resume).
        tokio::select! {
            biased;
            // The one handler that awaits (it may ask the lobby) is boxed: this loop's
            // future is what every idle session keeps, and it would otherwise be as large
            // as that handler's.
            _ = self.shutdown.recv() => self.goodbye(),
            event = self.rx.recv() => match event {
                Some(event) => self.on_event(event),
                None => {
                    // The lobby dropped us: our queue overflowed.
                    self.close(code::ERROR, "too slow");
                    Err(CloseReason::SlowConsumer)
                }
            },
            frame = self.socket.recv(), if paused_until.is_none() => {
                self.last_heard = Instant::now();
                Box::pin(self.on_frame(frame)).await
            }
            // Boxed, and only made while paused: a timer is large, and rarely needed.
            _ = OptionFuture::from(paused_until.map(|at| Box::pin(tokio::time::sleep_until(at)))),
                if paused_until.is_some() =>
            {
                self.paused_until = None;
                Ok(())
            }
            Ok(()) = self.online_rx.changed() => {
                let online = *self.online_rx.borrow_and_update();
                let message = ServerMessage::Online { count: online.total, modes: online.modes };
                self.send(&message.to_json());
                Ok(())
            }
            _ = self.ping.tick() => {
                if self.last_heard.elapsed() >= 2 * every {
                    Err(CloseReason::Timeout)
                } else {
                    self.socket.feed_ping();
                    Ok(())
                }
            }
        }
    }

    /// The server is shutting down: say so, and close with 1012 (the client reconnects).
    fn goodbye(&mut self) -> Step {
        self.send(&ServerMessage::Bye { reason: "restart" }.to_json());
        self.close(code::RESTART, "server restarting");
        Err(CloseReason::Shutdown)
    }

    async fn on_frame(&mut self, frame: Result<Incoming, websocket::Error>) -> Step {
        match frame {
            Ok(Incoming::Text(text)) => self.on_text(&text).await,
            Ok(Incoming::Binary) => {
                if self.charge(Cost::Message)? {
                    self.refuse(ProtocolError::binary());
                }
                Ok(())
            }
            // Control frames cost like any message: a ping flood is a flood.
            Ok(Incoming::Ping | Incoming::Pong) => self.charge(Cost::Message).map(|_| ()),
            // Our answering close frame is queued; `serve` sends it.
            Ok(Incoming::Close(_)) => Err(CloseReason::ClientClosed),
            Err(websocket::Error::TooLarge) => {
                self.refuse(ProtocolError::too_large());
                self.close(code::TOO_BIG, "message too large");
                Err(CloseReason::TooLarge)
            }
            Err(websocket::Error::Utf8) => {
                self.close(code::INVALID, "text frames must be UTF-8");
                Err(CloseReason::Error)
            }
            Err(websocket::Error::Policy(why)) => {
                self.close(code::POLICY, why);
                Err(CloseReason::Error)
            }
            Err(websocket::Error::Protocol(why)) => {
                tracing::debug!(session = self.id.0, why, "websocket protocol error");
                self.close(code::PROTOCOL, why);
                Err(CloseReason::Error)
            }
            Err(websocket::Error::Io(_)) => Err(CloseReason::ClientClosed),
        }
    }

    /// Charges one message to the client's budget; `Err` ends the session, and a dropped
    /// message is reported as `Ok(false)` (reading then pauses as long as the budget says).
    fn charge(&mut self, cost: Cost) -> Result<bool, CloseReason> {
        match self.budget.charge(cost) {
            Verdict::Allow => Ok(true),
            Verdict::Drop { tell, pause } => {
                if !pause.is_zero() {
                    self.paused_until = Some(Instant::now() + pause);
                }
                if tell {
                    self.refuse(ProtocolError::rate_limited());
                }
                Ok(false)
            }
            Verdict::Close => {
                self.close(code::POLICY, "too many messages");
                Err(CloseReason::Flooding)
            }
        }
    }

    /// Charges a message to the budget, parses it and, for a `join`, `next` or `resume`,
    /// charges it to the join budget and passes it through the gate: `Ok(None)` when it goes
    /// no further (refused, or dropped over budget).
    fn read(&mut self, text: &str) -> Result<Option<ClientMessage>, CloseReason> {
        // Charged before parsing; and after a drop the socket is not read until the budget
        // has room again, so a flood costs us about two frames per refill, not one per frame.
        if !self.charge(Cost::Message)? {
            return Ok(None);
        }
        let msg = match ClientMessage::parse(text) {
            Ok(msg) => msg,
            Err(e) if e.code == ErrorCode::TooLarge => {
                self.refuse(e);
                self.close(code::TOO_BIG, "message too large");
                return Err(CloseReason::TooLarge);
            }
            Err(e) => {
                if protocol::names_entry(text) {
                    self.gate.spend();
                    self.issue_challenge();
                }
                self.refuse(e);
                return Ok(None);
            }
        };
        match &msg {
            ClientMessage::Join { admit, .. } | ClientMessage::Next { admit, .. }
                if !self.enter(*admit)? =>
            {
                return Ok(None);
            }
            // A resume asks for a partner as a join does, and is charged the same.
            ClientMessage::Resume { .. } if !self.charge(Cost::Join)? => return Ok(None),
            _ => {}
        }
        Ok(Some(msg))
    }

    /// A `join` asking for `want`: the request it makes, if any (none while talking to
    /// someone: `next` moves on; none while waiting, which stays in its pool).
    fn on_join(&mut self, want: Want, ahead: bool) -> Option<Request> {
        if self.presence.room().is_some() {
            return None;
        }
        let request = self.presence.join();
        if request.is_some() {
            // Kept only when it is acted on.
            self.takes_ahead = ahead;
            self.want = want;
        }
        request
    }

    /// A `next`, in `mode` if it names one: the request it makes, if any.
    fn on_next(&mut self, mode: Option<Mode>, ahead: bool) -> Option<Request> {
        let request = self.presence.skip();
        if request.is_some() {
            self.takes_ahead = ahead;
            if let Some(mode) = mode {
                self.want.mode = mode;
            }
        }
        request
    }

    /// An early offer: for the lobby while waiting in the video pool, for this wait.
    async fn on_early_offer(&mut self, sdp: String) {
        // A text user's pool (the one it waits in, or last asked for) has no calls.
        if self.want.mode == Mode::Text {
            self.refuse(ProtocolError::no_early_offer_in_text());
            return;
        }
        // Only while waiting, for this wait; otherwise dropped like a stale relay.
        if let Some(seq) = self.presence.wait() {
            self.lobby.early_offer(self.id, seq, sdp).await;
        }
    }

    async fn on_text(&mut self, text: &str) -> Step {
        let Some(msg) = self.read(text)? else {
            return Ok(());
        };
        let mut shown = None;
        let mut next_mode = None;
        let request = match msg {
            ClientMessage::Join {
                interests,
                mode,
                lang,
                ahead,
                ..
            } => {
                // From a resume this is a `next`, in the pool asked for now.
                next_mode = Some(mode);
                let tags = interests;
                self.on_join(Want { mode, lang, tags }, ahead)
            }
            ClientMessage::Next { mode, ahead, .. } => {
                next_mode = mode;
                self.on_next(mode, ahead)
            }
            ClientMessage::Leave => self.presence.leave(),
            ClientMessage::Relay(relay) => return self.relay(relay).await,
            ClientMessage::Resume { room, proof, mode } => {
                shown = Some(proof);
                next_mode = Some(mode);
                self.presence.resume(room)
            }
            ClientMessage::Ping => {
                self.send(&ServerMessage::Pong.to_json());
                return Ok(());
            }
            ClientMessage::EarlyOffer { sdp } => {
                self.on_early_offer(sdp).await;
                return Ok(());
            }
            ClientMessage::Report { room, reason } => {
                if let Some(Request::Report { seq }) = self.presence.report(room) {
                    self.lobby.report(self.id, seq, reason).await;
                }
                return Ok(());
            }
        };
        self.forward(request, shown, next_mode).await
    }

    /// Hands what a message asked of the lobby to it: a proof shown by a `resume`, and the
    /// pool a `next` or `resume` names.
    async fn forward(
        &mut self,
        request: Option<Request>,
        shown: Option<MemberProof>,
        next_mode: Option<Mode>,
    ) -> Step {
        match request {
            Some(Request::Join { seq }) => {
                let want = self.want.clone();
                self.lobby.join(self.id, seq, want).await
            }
            Some(Request::Next { seq }) => self.lobby.next(self.id, seq, next_mode).await,
            Some(Request::Leave { seq }) => self.lobby.leave(self.id, seq).await,
            Some(Request::Resume { seq }) => {
                if let (Status::Resuming(room), Some(proof)) = (self.presence.status(), shown) {
                    let room = *room;
                    let mode = next_mode.unwrap_or_default();
                    self.lobby.resume(self.id, seq, room, proof, mode).await;
                }
            }
            Some(Request::Report { .. }) | None => {}
        }
        if let Status::Waiting = self.presence.status() {
            self.send(&ServerMessage::Waiting.to_json());
        }
        Ok(())
    }

    /// A `join` or `next` was read: it spends the connection's challenge and is answered
    /// with the next one, then it is charged to the join budget and must pass the
    /// [gate](crate::gate). `Ok(true)`: it goes on to the lobby.
    fn enter(&mut self, admit: Admit) -> Result<bool, CloseReason> {
        let verdict = self.gate.judge(admit);
        let allowed = self.charge(Cost::Join)?;
        let now = std::time::Instant::now();
        let difficulty = &self.settings.difficulty;
        if allowed && verdict.is_ok() {
            gate::admitted(difficulty, self.client, now);
        }
        self.issue_challenge();
        match verdict {
            Err(e) if allowed => {
                self.refuse(e);
                Ok(false)
            }
            _ => Ok(allowed),
        }
    }

    /// Sends the challenge the next `join` or `next` must solve, once the last was spent.
    fn issue_challenge(&mut self) {
        let now = std::time::Instant::now();
        if let Some(challenge) = self.gate.issue(&self.settings.difficulty, self.client, now) {
            self.send(&ServerMessage::Challenge { challenge }.to_json());
        }
    }

    async fn relay(&mut self, relay: Relay) -> Step {
        let Some(room) = self.presence.room() else {
            return Ok(()); // not in a room: dropped like a stale message
        };
        match room.relay(&relay) {
            Relayed::Sent => telemetry::metrics().relayed(relay.kind()),
            Relayed::Undeliverable(Undeliverable::Full) => {
                // The partner is not reading; the lobby drops it and tells us `left`.
                let partner = room.partner.id;
                self.lobby.gone(partner, false).await;
            }
            Relayed::NotInThisMode => self.refuse(ProtocolError::not_in_text_room(relay.kind())),
            Relayed::WrongRoom | Relayed::Undeliverable(Undeliverable::Closed) => {}
        }
        Ok(())
    }

    fn on_event(&mut self, event: Event) -> Step {
        match event {
            Event::Matched(m) => {
                // None: overtaken by a newer request; the lobby undoes it.
                if let Some(m) = self.presence.matched(m) {
                    self.on_matched(&m);
                }
                Ok(())
            }
            Event::Rerouted { room, partner } => {
                // The stranger is back on a new connection: say so, so a negotiation lost
                // on the way to its old one can be made again.
                if self.presence.in_room(room) {
                    self.send(&ServerMessage::Resumed { room }.to_json());
                }
                self.presence.rerouted(room, *partner);
                Ok(())
            }
            Event::Left { room, reason } => {
                if self.presence.left(room) {
                    self.send(&ServerMessage::Left { room, reason }.to_json());
                }
                Ok(())
            }
            Event::Relay { room, text } => {
                if self.presence.in_room(room) {
                    self.send(&text);
                } else {
                    self.presence.early(room, *text);
                }
                Ok(())
            }
            Event::Unresumed { seq, room } => {
                if self.presence.unresumed(seq) {
                    let reason = LeftReason::Disconnected;
                    self.send(&ServerMessage::Left { room, reason }.to_json());
                }
                Ok(())
            }
            Event::Refused { seq, until_ms } => {
                if !self.presence.refused(seq) {
                    return Ok(());
                }
                let seconds = until_ms.saturating_sub(now_ms()).div_ceil(1000);
                telemetry::metrics().error(ErrorCode::Banned);
                let message = format!(
                    "other users reported you; you can be matched again in {} minutes",
                    seconds.div_ceil(60)
                );
                let msg = ServerMessage::Error {
                    code: ErrorCode::Banned,
                    message: &message,
                    retry_after: Some(seconds),
                };
                self.send(&msg.to_json());
                Ok(())
            }
        }
    }

    /// Tells the client of its new room (or its room back), then what the stranger sent
    /// for it before this (kept while waiting). A stranger's early offer goes inside
    /// `matched` to a client that takes it there, and otherwise right after it as the
    /// ordinary `offer` the client expects from an offerer.
    fn on_matched(&mut self, m: &Matched) {
        let ice_servers = self.settings.ice.servers();
        let (inside, relayed) = match &m.ahead {
            Ahead::Offer(sdp) if self.takes_ahead => (Some(sdp.as_str()), None),
            Ahead::Offer(sdp) => {
                let room = m.room;
                let sdp = sdp.clone();
                (None, Some(Relay::Offer { room, sdp }.to_json()))
            }
            Ahead::None | Ahead::Sent => (None, None),
        };
        let msg = match (m.role, m.proof) {
            (Some(role), Some(proof)) => ServerMessage::Matched {
                room: m.room,
                role,
                mode: m.mode,
                common: &m.common,
                same_lang: m.same_lang,
                proof,
                ice_servers: &ice_servers,
                offer: inside,
                offered: m.ahead == Ahead::Sent,
            },
            _ => ServerMessage::Resumed { room: m.room },
        };
        self.send(&msg.to_json());
        if let Some(offer) = relayed {
            self.send(&offer);
        }
        for text in self.presence.take_early(m.room) {
            self.send(&text);
        }
    }

    /// Tells the client why its message was refused.
    fn refuse(&mut self, e: ProtocolError) {
        telemetry::metrics().error(e.code);
        let msg = ServerMessage::Error {
            code: e.code,
            message: &e.message,
            retry_after: None,
        };
        self.send(&msg.to_json());
    }

    /// Queues a text frame; the loop in [`serve`](Self::serve) writes it.
    fn send(&mut self, text: &str) {
        self.socket.feed_text(text);
    }

    /// Queues a close frame; nothing is sent after it, and the session ends.
    fn close(&mut self, code: u16, reason: &'static str) {
        self.socket.feed_close(code, reason);
    }

    /// Writes what is queued. A client that has not taken it within `write_timeout` is too
    /// slow, and the session ends.
    async fn flush(&mut self) -> Step {
        if !self.socket.has_unwritten() {
            return Ok(());
        }
        // Nearly always the kernel takes it at once, and no timer is needed.
        match self.socket.flush().now_or_never() {
            Some(Ok(())) => Ok(()),
            Some(Err(_)) => Err(CloseReason::ClientClosed),
            None => Box::pin(self.flush_slowly()).await,
        }
    }

    async fn flush_slowly(&mut self) -> Step {
        match tokio::time::timeout(self.settings.write_timeout, self.socket.flush()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(CloseReason::ClientClosed),
            Err(_) => Err(CloseReason::SlowConsumer),
        }
    }
}
