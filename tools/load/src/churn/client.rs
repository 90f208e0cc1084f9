//! One churn client: its cycle of join, match, signal and Next, and the errors it counts.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_tungstenite::tungstenite::Message;

use super::{Config, Shared};
use crate::net::{Incoming, Ws, out, solve};
use crate::stats::now_ns;
use strangers::pow::Challenge;

/// A relayed message a client sends.
#[derive(Clone, Copy, Debug)]
enum Out {
    Offer,
    Answer,
    Candidate(u8),
    Chat,
}

/// The room a client is in, and how far its exchange got.
struct Room {
    /// The room's id, sent with every relayed message.
    id: String,
    /// Whether this side sends the offer (else it answers it).
    offerer: bool,
    /// Relayed messages this side sent.
    sent: u16,
    /// Relayed messages this side received from its partner.
    received: u16,
}

/// Where a client is in its cycle.
enum State {
    Waiting,
    InRoom(Room),
}

/// One churn client.
pub struct Client {
    /// Its socket.
    ws: Ws,
    /// The latency histogram shard it records into.
    shard: usize,
    /// The counters every client updates.
    shared: Arc<Shared>,
    /// What to do per cycle.
    config: Arc<Config>,
    /// The pacer's permits, one per relayed message, when the run is paced.
    permits: Option<Arc<Semaphore>>,
    /// Turns `true` when the run is over.
    end: watch::Receiver<bool>,
    /// Where it is in its cycle.
    state: State,
    /// Relayed messages to send, in order.
    out: VecDeque<Out>,
    /// Last time the server told us something we were waiting for.
    last_progress: Instant,
    /// The challenge the next join or Next must solve (the server sends one after each).
    pub challenge: Option<Challenge>,
}

/// Waiting for one of the pacer's permits.
type Acquire = dyn std::future::Future<Output = Result<OwnedSemaphorePermit, tokio::sync::AcquireError>>
    + Send;

/// Why a client stopped early.
struct Dead;

impl Client {
    /// A client on a socket that has read its `welcome`, about to join.
    pub fn new(
        ws: Ws,
        shard: usize,
        shared: Arc<Shared>,
        config: Arc<Config>,
        permits: Option<Arc<Semaphore>>,
        end: watch::Receiver<bool>,
    ) -> Client {
        Client {
            ws,
            shard,
            shared,
            config,
            permits,
            end,
            state: State::Waiting,
            out: VecDeque::new(),
            last_progress: Instant::now(),
            challenge: None,
        }
    }

    /// Joins, then churns until the end of the run or until the socket fails.
    pub async fn run(&mut self) {
        let pow = solve(self.challenge.take()).await;
        if self.send_text(out::join(pow, "")).await.is_err() {
            return;
        }
        let mut permit: Option<Pin<Box<Acquire>>> = None;
        let watchdog = tokio::time::sleep(self.config.timeout);
        tokio::pin!(watchdog);
        loop {
            match &self.permits {
                // Unpaced: send whatever is queued now.
                None => {
                    while let Some(kind) = self.out.pop_front() {
                        if self.send_relay(kind).await.is_err() {
                            return;
                        }
                    }
                }
                // Paced: wait for a permit per message (while still reading).
                Some(permits) if permit.is_none() && !self.out.is_empty() => {
                    permit = Some(Box::pin(permits.clone().acquire_owned()));
                }
                Some(_) => {}
            }
            tokio::select! {
                biased;
                _ = self.end.changed() => {
                    self.check_stalled_at_end();
                    return;
                }
                frame = self.ws.next() => {
                    let text = match frame {
                        Some(Ok(Message::Text(t))) => t,
                        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                            self.died("closed_by_server");
                            return;
                        }
                        Some(Ok(_)) => continue,
                    };
                    self.shared.frames_received.inc();
                    if self.on_text(&text).await.is_err() {
                        return;
                    }
                }
                granted = async { permit.as_mut().expect("guarded").await }, if permit.is_some() => {
                    permit = None;
                    let Ok(granted) = granted else { return };
                    // With nothing left to send (the room ended), the permit goes back.
                    if let Some(kind) = self.out.pop_front() {
                        granted.forget();
                        if self.send_relay(kind).await.is_err() {
                            return;
                        }
                    }
                }
                _ = &mut watchdog => {
                    if self.on_watchdog().await.is_err() {
                        return;
                    }
                    let at = (self.last_progress + self.config.timeout)
                        .max(Instant::now() + Duration::from_millis(100));
                    watchdog.as_mut().reset(at.into());
                }
            }
        }
    }

    /// The watchdog fired: a client that has waited on the server for its whole timeout
    /// (with nothing of its own to send) counts a timeout and presses Next.
    async fn on_watchdog(&mut self) -> Result<(), Dead> {
        let idle = self.last_progress.elapsed();
        if idle < self.config.timeout || !self.out.is_empty() {
            return Ok(());
        }
        self.error(self.stuck("timeout", ""));
        self.last_progress = Instant::now();
        self.next().await
    }

    /// The error kind of a client stuck waiting: for a match, or for its partner (then where
    /// the exchange stopped tells which message went missing).
    fn stuck(&self, what: &str, suffix: &str) -> String {
        let per_side = self.config.per_side();
        match &self.state {
            State::Waiting => format!("{what}_waiting_for_match{suffix}"),
            State::InRoom(room) => format!(
                "{what}_waiting_for_partner{suffix} ({}, sent {}/{per_side}, got {}/{per_side})",
                if room.offerer { "offerer" } else { "answerer" },
                room.sent,
                room.received,
            ),
        }
    }

    /// Counts an error, unless the run is over (then the partner closing first, say, is
    /// expected).
    fn error(&self, kind: impl Into<String>) {
        if !*self.end.borrow() {
            self.shared.errors.add(kind);
        }
    }

    /// At the end of the run, a client that has waited on the server for more than half its
    /// timeout is stuck (its timeout would have fired had the run gone on): count it.
    fn check_stalled_at_end(&self) {
        if self.last_progress.elapsed() < self.config.timeout / 2 || !self.out.is_empty() {
            return;
        }
        self.shared.errors.add(self.stuck("stalled", "_at_end"));
    }

    fn died(&self, kind: &str) {
        self.error(kind);
    }

    async fn send_text(&mut self, text: String) -> Result<(), Dead> {
        match self.ws.send(Message::text(text)).await {
            Ok(()) => {
                self.shared.frames_sent.inc();
                Ok(())
            }
            Err(_) => {
                self.died("send_failed");
                Err(Dead)
            }
        }
    }

    /// Presses Next: back to waiting.
    async fn next(&mut self) -> Result<(), Dead> {
        self.state = State::Waiting;
        self.out.clear();
        let pow = solve(self.challenge.take()).await;
        self.send_text(out::next(pow)).await
    }

    async fn send_relay(&mut self, kind: Out) -> Result<(), Dead> {
        let State::InRoom(room) = &mut self.state else {
            return Ok(());
        };
        let ts = now_ns();
        let text = match kind {
            Out::Offer => out::sdp("offer", &room.id, ts, self.config.sdp_bytes),
            Out::Answer => out::sdp("answer", &room.id, ts, self.config.sdp_bytes),
            Out::Candidate(i) => out::candidate(&room.id, ts, i),
            Out::Chat => out::chat(&room.id, ts),
        };
        room.sent += 1;
        self.send_text(text).await?;
        self.shared.relay_sent.inc();
        self.after_progress().await
    }

    /// Queues this side's messages for the cycle, first `first` (offer or answer).
    fn queue_side(&mut self, first: Out) {
        let kinds = std::iter::once(first)
            .chain((0..self.config.candidates).map(Out::Candidate))
            .chain(std::iter::once(Out::Chat));
        self.out.extend(kinds);
    }

    /// After a send or a receipt: if the cycle is complete, count it and press Next.
    async fn after_progress(&mut self) -> Result<(), Dead> {
        let per_side = self.config.per_side();
        let State::InRoom(room) = &self.state else {
            return Ok(());
        };
        if room.sent < per_side || room.received < per_side {
            return Ok(());
        }
        self.shared.cycles.inc();
        if *self.end.borrow() {
            return Err(Dead);
        }
        self.next().await
    }

    /// Handles one text frame from the server.
    async fn on_text(&mut self, text: &str) -> Result<(), Dead> {
        let Some(msg) = Incoming::parse(text) else {
            self.error("bad_json_from_server");
            return Ok(());
        };
        match msg.ty.as_ref() {
            "waiting" | "online" | "welcome" | "typing" => Ok(()),
            "challenge" => {
                self.challenge = msg.challenge();
                Ok(())
            }
            "matched" => {
                self.on_matched(&msg);
                Ok(())
            }
            "offer" | "answer" | "candidate" | "chat" => self.on_relay(&msg).await,
            "left" => self.on_left(&msg).await,
            "error" => {
                self.error(format!(
                    "server_error_{}",
                    msg.code.as_deref().unwrap_or("unknown")
                ));
                Ok(())
            }
            "bye" => {
                self.died("server_restarting");
                Err(Dead)
            }
            other => {
                self.error(format!(
                    "unknown_message_{}",
                    other.chars().take(20).collect::<String>()
                ));
                Ok(())
            }
        }
    }

    /// `matched`: into the new room; the offerer queues its side of the exchange.
    fn on_matched(&mut self, msg: &Incoming<'_>) {
        self.last_progress = Instant::now();
        self.shared.matched.inc();
        if let State::InRoom(_) = self.state {
            self.error("matched_while_in_room");
        }
        let offerer = msg.role.as_deref() == Some("offerer");
        self.state = State::InRoom(Room {
            id: msg.room.as_deref().unwrap_or_default().to_string(),
            offerer,
            sent: 0,
            received: 0,
        });
        self.out.clear();
        if offerer {
            self.queue_side(Out::Offer);
        }
    }

    /// A relayed message from the partner: records its latency, counts it, and answers an
    /// offer.
    async fn on_relay(&mut self, msg: &Incoming<'_>) -> Result<(), Dead> {
        let now = now_ns();
        self.last_progress = Instant::now();
        self.shared.relay_received.inc();
        match msg.timestamp() {
            Some(ts) => self
                .shared
                .latency
                .record(self.shard, now.saturating_sub(ts)),
            None => self.error("relay_without_timestamp"),
        }
        let State::InRoom(room) = &mut self.state else {
            self.error("relay_while_waiting");
            return Ok(());
        };
        if msg.room.as_deref() != Some(room.id.as_str()) {
            self.error("relay_for_another_room");
            return Ok(());
        }
        room.received += 1;
        let answer = msg.ty == "offer" && !room.offerer;
        if answer {
            self.queue_side(Out::Answer);
        }
        self.after_progress().await
    }

    /// `left`: the partner ended our room before our exchange was complete; press Next.
    async fn on_left(&mut self, msg: &Incoming<'_>) -> Result<(), Dead> {
        if let State::InRoom(room) = &self.state
            && msg.room.as_deref() == Some(room.id.as_str())
        {
            self.error(format!(
                "partner_left_early_{}",
                msg.reason.as_deref().unwrap_or("unknown")
            ));
            self.last_progress = Instant::now();
            return self.next().await;
        }
        Ok(())
    }
}
