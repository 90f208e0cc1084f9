//! **strangers**: meet a random stranger in a one-to-one WebRTC video call, press Next for
//! someone new.
//!
//! The crate, by what each module owns:
//!
//! - [`ids`]: names of sessions, instances, users anywhere in the pool and clients (for
//!   reports and bans), and the wall clock.
//! - [`protocol`]: the JSON messages on the WebSocket and their validation (no I/O).
//! - [`seeking`]: what a user looks for besides interests: the mode (video or text) and its
//!   language, as the wire names them.
//! - [`matchmaker`]: the waiting queue, one pool per mode (video, text), and the pairing policy
//!   (interests, language, fallback, cool-down); no I/O, seedable RNG.
//! - [`lobby`]: every user's state and every pairing decision: a sans-IO core (no clock, no
//!   tokio) and the thin task that feeds it time and carries out its decisions.
//! - [`shared`]: the queue many instances share through Redis, and their messages to each
//!   other (`--redis-url`).
//! - [`moderation`]: reports, the append-only report store and temporary bans.
//! - [`room`]: rooms and the relay rule: a message reaches only the sender's current partner.
//! - [`limits`]: per-session message budgets (rate limits) and the flood verdict.
//! - [`pow`]: the proof of work a join pays: challenges, their check, a solver, and how hard
//!   each one is (a policy with no clock of its own).
//! - [`gate`]: what a `join` or `next` must carry to enter the queue (the 18+ confirmation
//!   and the solution of the connection's challenge), one gate per connection.
//! - [`mailbox`]: a session's bounded queue of events, which costs nothing while empty.
//! - [`presence`]: a session's own view of idle/waiting/in-a-room, kept in step with the lobby.
//! - [`session`]: one WebSocket connection, from welcome to close.
//! - [`upgrade`]: the WebSocket handshake, completed by hand over hyper's upgrade.
//! - [`websocket`]: the WebSocket framing, holding no buffer while a connection is idle.
//! - [`admission`]: who may open a WebSocket: origin allow-list, connection and per-IP caps.
//! - [`http`]: the HTTP/1.1 server loop: connection admission and the limits of a
//!   connection until it upgrades (header and idle timeouts, header bytes).
//! - [`routes`]: the HTTP surface (pages, assets, `/ws`, `/healthz`) and error responses.
//! - [`pages`]: the askama templates and the compiled-in static assets.
//! - [`i18n`]: the languages of the pages, which one a request gets, and their message
//!   catalogs (`i18n/*.json`).
//! - [`ice`]: STUN/TURN servers for browsers, with short-lived TURN credentials.
//! - [`telemetry`]: Prometheus metrics and the `/metrics` text.
//! - [`config`]: command-line flags and environment variables.
//! - [`server`]: wiring, listening and graceful shutdown.
//!
//! The binary (`src/main.rs`) parses the configuration, binds, and calls [`server::run`].
//! What other crates see (`pub`) is what the binary, the tests, the benchmarks and the load
//! generator (`tools/load/`) use; everything else is the crate's own, so rustc reports what
//! nothing calls.

#![forbid(unsafe_code)]
#![warn(unreachable_pub)]

pub(crate) mod admission;
pub mod config;
pub(crate) mod gate;
pub(crate) mod http;
pub(crate) mod i18n;
pub(crate) mod ice;
pub mod ids;
pub mod limits;
pub(crate) mod lobby;
pub(crate) mod mailbox;
pub mod matchmaker;
pub(crate) mod moderation;
pub(crate) mod pages;
pub mod pow;
pub(crate) mod presence;
pub mod protocol;
pub(crate) mod room;
pub(crate) mod routes;
pub mod seeking;
pub mod server;
pub(crate) mod session;
pub(crate) mod shared;
pub(crate) mod telemetry;
pub(crate) mod upgrade;
pub mod websocket;
