//! Wire protocol v1: the JSON messages on `/ws` and their validation.
//!
//! This module knows nothing about sockets, tasks or the server: it turns a text frame into a
//! checked [`ClientMessage`] (or a [`ProtocolError`] that says what is wrong with it) and a
//! [`ServerMessage`] into JSON. `docs/protocol.md` is the human-readable form of this file.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use crate::seeking::{Lang, Mode};

/// Largest message a client may send, in bytes: what the largest valid message needs, an
/// offer or answer with an SDP of [`MAX_SDP_BYTES`] (its JSON escapes and the envelope add
/// a few KiB), and no more, so a hostile client holds as little as the protocol allows.
pub const MAX_MESSAGE_BYTES: usize = 40 * 1024;

/// The most bytes all connections together may hold in unfinished messages (16 MiB, about
/// 400 messages of the largest size arriving at once); past it the connections holding the
/// most are not read until bytes are given back ([`websocket::budget`](crate::websocket::budget)).
pub const READ_BUDGET_BYTES: usize = 16 * 1024 * 1024;
/// Largest SDP body relayed, in bytes.
pub const MAX_SDP_BYTES: usize = 32 * 1024;
/// Largest ICE candidate line relayed, in bytes (real ones are ~100–200 bytes).
pub const MAX_CANDIDATE_BYTES: usize = 1024;
/// Longest chat line, in characters.
pub const MAX_CHAT_CHARS: usize = 2000;
/// Most interest tags a user may give.
pub const MAX_INTERESTS: usize = 8;
/// Longest interest tag, in characters.
pub const MAX_INTEREST_CHARS: usize = 32;

/// A room's id: 128 random bits, written on the wire as 32 lower-case hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct RoomId(pub u128);

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl FromStr for RoomId {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        if s.len() != 32 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(());
        }
        u128::from_str_radix(s, 16).map(RoomId).map_err(|_| ())
    }
}

/// A member's proof that it was in a room, given in `matched` and shown to `resume`: its
/// own 128-bit secret, and the hash of its partner's. The server keeps neither across a
/// restart; two users who ask for the same room are put back together only if each holds
/// the secret whose hash the other holds, so knowing (or guessing) a room id is not enough
/// to take a member's place. Written as 64 lower-case hex digits: the secret, then the hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct MemberProof {
    /// Known only to this member.
    pub secret: u128,
    /// The hash of the partner's secret.
    pub partner: u128,
}

impl MemberProof {
    /// The proofs of two members, from their secrets.
    pub fn pair(a: u128, b: u128) -> (MemberProof, MemberProof) {
        let proof = |secret, other| MemberProof {
            secret,
            partner: secret_hash(other),
        };
        (proof(a, b), proof(b, a))
    }

    /// The hash of this member's secret, as its partner holds it.
    pub fn me(&self) -> u128 {
        secret_hash(self.secret)
    }

    /// Whether `other` is this member's partner (each holds the hash of the other's secret).
    pub fn pairs_with(&self, other: &MemberProof) -> bool {
        self.partner == other.me() && other.partner == self.me()
    }
}

/// The first 128 bits of the SHA-1 of a secret's 16 bytes (SHA-1's preimage resistance is
/// what matters here, and it holds).
fn secret_hash(secret: u128) -> u128 {
    use sha1::Digest;
    let digest = sha1::Sha1::digest(secret.to_be_bytes());
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    u128::from_be_bytes(first)
}

impl fmt::Display for MemberProof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}{:032x}", self.secret, self.partner)
    }
}

impl Serialize for MemberProof {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl FromStr for MemberProof {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        if s.len() != 64 || !s.is_char_boundary(32) {
            return Err(());
        }
        let (secret, partner) = s.split_at(32);
        Ok(MemberProof {
            secret: RoomId::from_str(secret)?.0,
            partner: RoomId::from_str(partner)?.0,
        })
    }
}

impl Serialize for RoomId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Which side of the call a member plays. The offerer creates the first offer and is the
/// "impolite" peer of perfect negotiation; the answerer is the "polite" one.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Offerer,
    Answerer,
}

impl Role {
    /// The role of the other member of the room.
    pub fn other(self) -> Role {
        match self {
            Role::Offerer => Role::Answerer,
            Role::Answerer => Role::Offerer,
        }
    }
}

/// Why a room ended, as told to the member who did not end it.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LeftReason {
    /// The partner pressed Next.
    Skipped,
    /// The partner pressed Stop.
    Left,
    /// The partner's connection went away (tab closed, network lost, stopped answering).
    Disconnected,
}

/// The machine-readable part of an `error` message.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Unparsable, unknown or invalid message; the connection stays open.
    BadMessage,
    /// Over the size limit; the connection is closed with 1009.
    TooLarge,
    /// Too many messages; the message was dropped.
    RateLimited,
    /// Reported by several users: no matching for a while.
    Banned,
}

impl ErrorCode {
    /// The code as it appears on the wire (also the metrics label).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadMessage => "bad_message",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Banned => "banned",
        }
    }
}

/// A refused client message: the code and an English sentence for the `error` reply.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ProtocolError {
    pub code: ErrorCode,
    pub message: String,
}

impl ProtocolError {
    fn bad(message: impl Into<String>) -> Self {
        ProtocolError {
            code: ErrorCode::BadMessage,
            message: message.into(),
        }
    }

    /// The refusal of a frame over [`MAX_MESSAGE_BYTES`].
    pub fn too_large() -> Self {
        ProtocolError {
            code: ErrorCode::TooLarge,
            message: format!("message larger than {MAX_MESSAGE_BYTES} bytes"),
        }
    }

    /// The refusal of a message over the client's rate limit.
    pub fn rate_limited() -> Self {
        ProtocolError {
            code: ErrorCode::RateLimited,
            message: "too many messages; slow down (this one was dropped)".into(),
        }
    }

    /// The refusal of a call's signaling (`kind`) in a text room: nothing is delivered.
    pub fn not_in_text_room(kind: &str) -> Self {
        Self::bad(format!(
            "`{kind}` is not relayed in a text chat: a text room carries only `chat` and `typing`"
        ))
    }

    /// The refusal of an early offer from a user whose pool is the text chat's: a text room
    /// has no call to offer.
    pub fn no_early_offer_in_text() -> Self {
        Self::bad("`early_offer` is for video chats: a text chat has no call to offer")
    }

    /// The refusal of a binary frame.
    pub fn binary() -> Self {
        Self::bad("binary frames are not accepted; send JSON text")
    }
}

/// A trickled ICE candidate, in the shape of `RTCIceCandidate.toJSON()`.
#[derive(Clone, PartialEq, Eq, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    pub candidate: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_mid: Option<String>,
    #[serde(
        default,
        rename = "sdpMLineIndex",
        skip_serializing_if = "Option::is_none"
    )]
    pub sdp_m_line_index: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_fragment: Option<String>,
}

/// A message that is forwarded, unchanged in meaning, to the sender's partner.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Relay {
    Offer {
        room: RoomId,
        sdp: String,
    },
    Answer {
        room: RoomId,
        sdp: String,
    },
    Candidate {
        room: RoomId,
        candidate: Option<Candidate>,
    },
    Chat {
        room: RoomId,
        text: String,
    },
    Typing {
        room: RoomId,
        active: bool,
    },
    /// The sender's camera (`video`) and microphone (`audio`) are on or off.
    Media {
        room: RoomId,
        video: bool,
        audio: bool,
    },
}

impl Relay {
    /// The room this message is addressed to.
    pub fn room(&self) -> RoomId {
        match self {
            Relay::Offer { room, .. }
            | Relay::Answer { room, .. }
            | Relay::Candidate { room, .. }
            | Relay::Chat { room, .. }
            | Relay::Typing { room, .. }
            | Relay::Media { room, .. } => *room,
        }
    }

    /// The `type` on the wire (also the metrics label).
    pub fn kind(&self) -> &'static str {
        match self {
            Relay::Offer { .. } => "offer",
            Relay::Answer { .. } => "answer",
            Relay::Candidate { .. } => "candidate",
            Relay::Chat { .. } => "chat",
            Relay::Typing { .. } => "typing",
            Relay::Media { .. } => "media",
        }
    }

    /// The JSON text sent to the partner.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("relay messages always serialize")
    }
}

/// A checked message from a client.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum ClientMessage {
    /// Enter the queue with these (normalised) interests, in `mode`, preferring strangers
    /// who speak `lang`. `ahead`: the client takes a stranger's early offer inside
    /// `matched`; without it, one is sent to it as an ordinary `offer` after `matched`.
    Join {
        interests: Vec<String>,
        mode: Mode,
        lang: Option<Lang>,
        ahead: bool,
    },
    /// End the room if any and queue again, in `mode` if given (else the mode of the last
    /// join); `ahead` as for `Join`.
    Next { mode: Option<Mode>, ahead: bool },
    /// Leave the room or the queue, stay connected.
    Leave,
    /// Forward to the partner.
    Relay(Relay),
    /// Report the partner in `room` and end the room.
    Report { room: RoomId, reason: ReportReason },
    /// Back after the server restarted mid-call, or on a new connection after its own was
    /// lost: rejoin `room` with the same stranger, proving membership with what `matched`
    /// gave.
    /// `mode` is the room's (a video call, unless the client says text).
    Resume {
        room: RoomId,
        proof: MemberProof,
        mode: Mode,
    },
    /// A heartbeat the page can see: answered with `pong`, so a dead socket is noticed in
    /// seconds rather than when TCP gives up.
    Ping,
    /// While waiting: the offer of the call to come ("offer ahead"), handed to whichever
    /// stranger this wait is paired with, in its `matched`.
    EarlyOffer { sdp: String },
}

/// Why a user reported the stranger.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportReason {
    Nudity,
    Harassment,
    /// Spam or a bot.
    Spam,
    /// Looks under 18.
    #[serde(rename = "under_18")]
    Under18,
    Other,
}

/// The raw shape serde reads; [`ClientMessage::parse`] checks it and turns it into the real one.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Wire {
    Join {
        #[serde(default)]
        interests: Option<Vec<String>>,
        #[serde(default)]
        mode: Option<String>,
        #[serde(default)]
        lang: Option<String>,
        #[serde(default)]
        ahead: Option<bool>,
    },
    Next {
        #[serde(default)]
        mode: Option<String>,
        #[serde(default)]
        ahead: Option<bool>,
    },
    Leave {},
    Offer {
        room: String,
        sdp: String,
    },
    Answer {
        room: String,
        sdp: String,
    },
    Candidate {
        room: String,
        candidate: Option<Candidate>,
    },
    Chat {
        room: String,
        text: String,
    },
    Typing {
        room: String,
        active: bool,
    },
    Media {
        room: String,
        video: bool,
        audio: bool,
    },
    Report {
        room: String,
        reason: ReportReason,
    },
    Resume {
        room: String,
        #[serde(default)]
        proof: Option<String>,
        #[serde(default)]
        mode: Option<String>,
    },
    Ping {},
    EarlyOffer {
        sdp: String,
    },
}

const KNOWN_TYPES: [&str; 13] = [
    "join",
    "next",
    "leave",
    "offer",
    "answer",
    "candidate",
    "chat",
    "typing",
    "media",
    "report",
    "resume",
    "ping",
    "early_offer",
];

impl ClientMessage {
    /// Parses and validates one text frame.
    pub fn parse(text: &str) -> Result<ClientMessage, ProtocolError> {
        if text.len() > MAX_MESSAGE_BYTES {
            return Err(ProtocolError::too_large());
        }
        let wire: Wire = serde_json::from_str(text).map_err(|e| describe_json_error(text, e))?;
        Ok(match wire {
            Wire::Join {
                interests,
                mode,
                lang,
                ahead,
            } => ClientMessage::Join {
                interests: normalize_interests(interests.unwrap_or_default())?,
                mode: parse_mode(mode.as_deref())?.unwrap_or_default(),
                lang: parse_lang(lang.as_deref())?,
                ahead: ahead.unwrap_or(false),
            },
            Wire::Next { mode, ahead } => ClientMessage::Next {
                mode: parse_mode(mode.as_deref())?,
                ahead: ahead.unwrap_or(false),
            },
            Wire::Leave {} => ClientMessage::Leave,
            Wire::Offer { room, sdp } => ClientMessage::Relay(Relay::Offer {
                room: parse_room(&room)?,
                sdp: check_sdp(sdp)?,
            }),
            Wire::Answer { room, sdp } => ClientMessage::Relay(Relay::Answer {
                room: parse_room(&room)?,
                sdp: check_sdp(sdp)?,
            }),
            Wire::Candidate { room, candidate } => {
                if let Some(c) = &candidate {
                    let extra = c.sdp_mid.as_deref().map_or(0, str::len)
                        + c.username_fragment.as_deref().map_or(0, str::len);
                    if c.candidate.len() + extra > MAX_CANDIDATE_BYTES {
                        return Err(ProtocolError::bad(format!(
                            "candidate longer than {MAX_CANDIDATE_BYTES} bytes"
                        )));
                    }
                }
                ClientMessage::Relay(Relay::Candidate {
                    room: parse_room(&room)?,
                    candidate,
                })
            }
            Wire::Chat { room, text } => {
                let chars = text.chars().count();
                if chars == 0 || chars > MAX_CHAT_CHARS || text.trim().is_empty() {
                    return Err(ProtocolError::bad(format!(
                        "chat text must be 1–{MAX_CHAT_CHARS} characters and not blank"
                    )));
                }
                if text.chars().any(rearranges_lines) {
                    return Err(ProtocolError::bad(
                        "chat text is one line: no line breaks, control or direction-override characters",
                    ));
                }
                ClientMessage::Relay(Relay::Chat {
                    room: parse_room(&room)?,
                    text,
                })
            }
            Wire::Typing { room, active } => ClientMessage::Relay(Relay::Typing {
                room: parse_room(&room)?,
                active,
            }),
            Wire::Media { room, video, audio } => ClientMessage::Relay(Relay::Media {
                room: parse_room(&room)?,
                video,
                audio,
            }),
            Wire::Report { room, reason } => ClientMessage::Report {
                room: parse_room(&room)?,
                reason,
            },
            Wire::Resume { room, proof, mode } => ClientMessage::Resume {
                mode: parse_mode(mode.as_deref())?.unwrap_or_default(),
                room: parse_room(&room)?,
                proof: proof
                    .as_deref()
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(|| {
                        ProtocolError::bad(
                            "resume needs the proof its `matched` gave (64 hex characters)",
                        )
                    })?,
            },
            Wire::Ping {} => ClientMessage::Ping,
            Wire::EarlyOffer { sdp } => ClientMessage::EarlyOffer {
                sdp: check_sdp(sdp)?,
            },
        })
    }
}

/// Whether `c` could make a chat line look like more than one line, or reorder what shows:
/// line breaks and other control characters, and the Unicode direction overrides and
/// isolates. A stranger's "hi⏎You: …" must not render as a line of your own.
fn rearranges_lines(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

fn parse_room(room: &str) -> Result<RoomId, ProtocolError> {
    room.parse()
        .map_err(|()| ProtocolError::bad("room must be 32 lower-case hex characters"))
}

fn parse_mode(mode: Option<&str>) -> Result<Option<Mode>, ProtocolError> {
    mode.map(|m| {
        m.parse()
            .map_err(|()| ProtocolError::bad(r#"mode must be "video" or "text""#))
    })
    .transpose()
}

fn parse_lang(lang: Option<&str>) -> Result<Option<Lang>, ProtocolError> {
    lang.map(|l| {
        l.parse().map_err(|()| {
            ProtocolError::bad(
                r#"lang must be a language's 2–3 letter code (a BCP 47 primary subtag, such as "de")"#,
            )
        })
    })
    .transpose()
}

fn check_sdp(sdp: String) -> Result<String, ProtocolError> {
    if sdp.is_empty() || sdp.len() > MAX_SDP_BYTES {
        return Err(ProtocolError::bad(format!(
            "sdp must be 1–{MAX_SDP_BYTES} bytes"
        )));
    }
    Ok(sdp)
}

/// Trims, lower-cases and de-duplicates interest tags, refusing empty, long or too many tags.
pub fn normalize_interests(raw: Vec<String>) -> Result<Vec<String>, ProtocolError> {
    if raw.len() > MAX_INTERESTS {
        return Err(ProtocolError::bad(format!(
            "at most {MAX_INTERESTS} interests"
        )));
    }
    let mut tags: Vec<String> = Vec::with_capacity(raw.len());
    for tag in raw {
        let tag = tag.trim().to_lowercase();
        let chars = tag.chars().count();
        if chars == 0 || chars > MAX_INTEREST_CHARS {
            return Err(ProtocolError::bad(format!(
                "each interest must be 1–{MAX_INTEREST_CHARS} characters"
            )));
        }
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    Ok(tags)
}

/// Turns serde's error into a sentence a client developer can act on.
fn describe_json_error(text: &str, err: serde_json::Error) -> ProtocolError {
    // serde's message for an unknown tag lists our variants in Rust spelling; say it plainly.
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
        match value.get("type") {
            None if value.is_object() => return ProtocolError::bad("missing field `type`"),
            None => return ProtocolError::bad("message must be a JSON object"),
            Some(serde_json::Value::String(t)) if !KNOWN_TYPES.contains(&t.as_str()) => {
                let shown: String = t.chars().take(32).collect();
                return ProtocolError::bad(format!("unknown message type `{shown}`"));
            }
            Some(serde_json::Value::String(_)) => {}
            Some(_) => return ProtocolError::bad("`type` must be a string"),
        }
    }
    if err.is_syntax() || err.is_eof() {
        return ProtocolError::bad(format!("invalid JSON: {err}"));
    }
    ProtocolError::bad(format!("invalid message: {err}"))
}

/// A message from the server to one client.
#[derive(Clone, PartialEq, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage<'a> {
    Welcome {
        online: usize,
        #[serde(rename = "iceServers")]
        ice_servers: &'a [IceServer],
    },
    Waiting,
    Matched {
        room: RoomId,
        role: Role,
        /// The pool both members were in: what the room relays.
        mode: Mode,
        common: &'a [String],
        /// Whether the two gave the same language (never which one the stranger gave).
        same_lang: bool,
        /// What this member shows to `resume` the room after a restart.
        proof: MemberProof,
        /// Fresh STUN/TURN servers for this call's peer connection (TURN credentials are
        /// short-lived; the ones in `welcome` may have run out by now).
        #[serde(rename = "iceServers")]
        ice_servers: &'a [IceServer],
        /// For the answerer: the offerer's early offer, to apply as if it had come in an
        /// `offer` message for this room.
        #[serde(skip_serializing_if = "Option::is_none")]
        offer: Option<&'a str>,
        /// For the offerer: its early offer went to the stranger in the stranger's
        /// `matched`; it must not be sent again.
        #[serde(skip_serializing_if = "is_false")]
        offered: bool,
    },
    /// Both members came back after a restart: the room works again.
    Resumed {
        room: RoomId,
    },
    Left {
        room: RoomId,
        reason: LeftReason,
    },
    Online {
        count: usize,
    },
    Error {
        code: ErrorCode,
        message: &'a str,
        /// Seconds until the refusal ends (for `banned`).
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after: Option<u64>,
    },
    Bye {
        reason: &'a str,
    },
    /// The answer to a client's `ping`.
    Pong,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl ServerMessage<'_> {
    /// The JSON text of this message.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server messages always serialize")
    }
}

/// One entry of `RTCConfiguration.iceServers`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOM: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn parses_every_client_message() {
        assert_eq!(
            ClientMessage::parse(r#"{"type":"ping"}"#),
            Ok(ClientMessage::Ping)
        );
        assert_eq!(ServerMessage::Pong.to_json(), r#"{"type":"pong"}"#);
        assert_eq!(
            ClientMessage::parse(r#"{"type":"join","interests":[" Music ","chess","music"]}"#),
            Ok(ClientMessage::Join {
                interests: vec!["music".into(), "chess".into()],
                mode: Mode::Video,
                lang: None,
                ahead: false,
            })
        );
        assert_eq!(
            ClientMessage::parse(r#"{"type":"join"}"#),
            Ok(ClientMessage::Join {
                interests: vec![],
                mode: Mode::Video,
                lang: None,
                ahead: false,
            })
        );
        assert_eq!(
            ClientMessage::parse(r#"{"type":"join","mode":"text","lang":"DE"}"#),
            Ok(ClientMessage::Join {
                interests: vec![],
                mode: Mode::Text,
                lang: Some("de".parse().unwrap()),
                ahead: false,
            })
        );
        assert_eq!(
            ClientMessage::parse(r#"{"type":"next"}"#),
            Ok(ClientMessage::Next {
                mode: None,
                ahead: false
            })
        );
        assert_eq!(
            ClientMessage::parse(r#"{"type":"next","mode":"text"}"#),
            Ok(ClientMessage::Next {
                mode: Some(Mode::Text),
                ahead: false
            })
        );
        assert_eq!(
            ClientMessage::parse(r#"{"type":"leave"}"#),
            Ok(ClientMessage::Leave)
        );
        let offer = format!(r#"{{"type":"offer","room":"{ROOM}","sdp":"v=0"}}"#);
        assert!(matches!(
            ClientMessage::parse(&offer),
            Ok(ClientMessage::Relay(Relay::Offer { .. }))
        ));
        let cand = format!(
            r#"{{"type":"candidate","room":"{ROOM}","candidate":{{"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0}}}}"#
        );
        let ClientMessage::Relay(relay) = ClientMessage::parse(&cand).unwrap() else {
            panic!("candidate is a relay message")
        };
        // Relayed unchanged in meaning: the JSON the partner gets has the same fields.
        let back: serde_json::Value = serde_json::from_str(&relay.to_json()).unwrap();
        let sent: serde_json::Value = serde_json::from_str(&cand).unwrap();
        assert_eq!(back, sent);
        let end = format!(r#"{{"type":"candidate","room":"{ROOM}","candidate":null}}"#);
        assert!(ClientMessage::parse(&end).is_ok());
    }

    #[test]
    fn refuses_bad_input_with_a_reason() {
        let cases = [
            ("not json", "invalid JSON"),
            ("[1,2]", "JSON object"),
            (r#"{"kind":"join"}"#, "missing field `type`"),
            (r#"{"type":"dance"}"#, "unknown message type `dance`"),
            (r#"{"type":7}"#, "`type` must be a string"),
            (r#"{"type":"chat","room":"x","text":"hi"}"#, "room must be"),
            (
                r#"{"type":"typing","room":"0123456789abcdef0123456789abcdef","active":"yes"}"#,
                "invalid message",
            ),
            (
                r#"{"type":"join","interests":["a","b","c","d","e","f","g","h","i"]}"#,
                "at most 8",
            ),
            (r#"{"type":"join","interests":["   "]}"#, "1–32"),
            (
                r#"{"type":"join","mode":"audio"}"#,
                r#"mode must be "video" or "text""#,
            ),
            (
                r#"{"type":"next","mode":"TEXT"}"#,
                r#"mode must be "video" or "text""#,
            ),
            (r#"{"type":"join","mode":7}"#, "invalid message"),
            (r#"{"type":"join","lang":"de-AT"}"#, "lang must be"),
            (r#"{"type":"join","lang":"x"}"#, "lang must be"),
            (r#"{"type":"join","lang":"germ"}"#, "lang must be"),
            (r#"{"type":"join","lang":"d1"}"#, "lang must be"),
            (r#"{"type":"join","lang":""}"#, "lang must be"),
        ];
        for (input, expected) in cases {
            let err = ClientMessage::parse(input).unwrap_err();
            assert_eq!(err.code, ErrorCode::BadMessage, "{input}");
            assert!(
                err.message.contains(expected),
                "{input}: {:?} should mention {expected:?}",
                err.message
            );
        }
    }

    #[test]
    fn chat_length_is_counted_in_characters() {
        let ok = format!(
            r#"{{"type":"chat","room":"{ROOM}","text":"{}"}}"#,
            "é".repeat(MAX_CHAT_CHARS)
        );
        assert!(ClientMessage::parse(&ok).is_ok());
        let long = format!(
            r#"{{"type":"chat","room":"{ROOM}","text":"{}"}}"#,
            "a".repeat(MAX_CHAT_CHARS + 1)
        );
        assert!(ClientMessage::parse(&long).is_err());
        let blank = format!(r#"{{"type":"chat","room":"{ROOM}","text":"   "}}"#);
        assert!(ClientMessage::parse(&blank).is_err());
    }

    /// A chat line cannot pass for two: a line break (or any control character, or a
    /// direction override) followed by "You:" would render as a line of the reader's own.
    #[test]
    fn chat_text_cannot_imitate_the_pages_labels() {
        for text in [
            r"hi\nYou: I am 12",
            r"a\rb",
            r"tab\there",
            "\u{2028}You: x",
            "\u{202e}:uoY",
        ] {
            let msg = format!(r#"{{"type":"chat","room":"{ROOM}","text":"{text}"}}"#);
            let err = ClientMessage::parse(&msg).expect_err(text);
            assert_eq!(err.code, ErrorCode::BadMessage, "{text}");
            assert!(err.message.contains("one line"), "{}", err.message);
        }
        let fine = format!(r#"{{"type":"chat","room":"{ROOM}","text":"You: and me, ☕ çà"}}"#);
        assert!(
            ClientMessage::parse(&fine).is_ok(),
            "labels themselves are just words"
        );
    }

    /// A join or next says whether the client takes early offers in `matched`; a client
    /// that says nothing does not.
    #[test]
    fn join_and_next_say_whether_the_client_takes_early_offers() {
        assert!(matches!(
            ClientMessage::parse(r#"{"type":"join","ahead":true}"#),
            Ok(ClientMessage::Join { ahead: true, .. })
        ));
        assert!(matches!(
            ClientMessage::parse(r#"{"type":"next","ahead":true}"#),
            Ok(ClientMessage::Next { ahead: true, .. })
        ));
        assert!(matches!(
            ClientMessage::parse(r#"{"type":"next","ahead":false}"#),
            Ok(ClientMessage::Next { ahead: false, .. })
        ));
        for bad in [
            r#"{"type":"join","ahead":1}"#,
            r#"{"type":"next","ahead":"yes"}"#,
        ] {
            assert_eq!(
                ClientMessage::parse(bad).unwrap_err().code,
                ErrorCode::BadMessage,
                "{bad}"
            );
        }
    }

    /// An early offer is checked like any offer: an SDP of 1–32 KiB, nothing else.
    #[test]
    fn early_offers_are_checked_like_offers() {
        assert_eq!(
            ClientMessage::parse(r#"{"type":"early_offer","sdp":"v=0"}"#),
            Ok(ClientMessage::EarlyOffer { sdp: "v=0".into() })
        );
        let long = format!(
            r#"{{"type":"early_offer","sdp":"{}"}}"#,
            "a".repeat(MAX_SDP_BYTES + 1)
        );
        for bad in [
            r#"{"type":"early_offer","sdp":""}"#,
            r#"{"type":"early_offer"}"#,
            r#"{"type":"early_offer","sdp":7}"#,
            long.as_str(),
        ] {
            let err = ClientMessage::parse(bad).unwrap_err();
            assert_eq!(err.code, ErrorCode::BadMessage, "{bad:.60}");
        }
    }

    #[test]
    fn oversize_text_is_too_large() {
        let big = format!(
            r#"{{"type":"join","pad":"{}"}}"#,
            "x".repeat(MAX_MESSAGE_BYTES)
        );
        assert_eq!(
            ClientMessage::parse(&big).unwrap_err().code,
            ErrorCode::TooLarge
        );
    }

    #[test]
    fn room_ids_round_trip_and_reject_other_spellings() {
        let id = RoomId(0xdead_beef);
        assert_eq!(id.to_string().parse::<RoomId>(), Ok(id));
        assert!(
            "DEADBEEF000000000000000000000000"
                .parse::<RoomId>()
                .is_err()
        );
        assert!("+eadbeef00000000000000000000000".parse::<RoomId>().is_err());
        assert!("".parse::<RoomId>().is_err());
    }

    /// Two members' proofs pair with each other and with nobody else: not with a proof
    /// made up around the same partner hash, nor with one of another room's pair.
    #[test]
    fn member_proofs_pair_only_the_two_members() {
        let (a, b) = MemberProof::pair(11, 22);
        assert!(a.pairs_with(&b) && b.pairs_with(&a));
        assert!(!a.pairs_with(&a), "a member is not its own partner");
        let forged = MemberProof {
            secret: 99,
            partner: a.me(),
        };
        assert!(
            !forged.pairs_with(&a),
            "knowing a's hash is not knowing b's secret"
        );
        let (c, _) = MemberProof::pair(33, 44);
        assert!(!c.pairs_with(&b));
        assert_eq!(a.to_string().parse(), Ok(a));
        assert!("00".repeat(31).parse::<MemberProof>().is_err());
        let resume = format!(r#"{{"type":"resume","room":"{}"}}"#, "a".repeat(32));
        assert_eq!(
            ClientMessage::parse(&resume).unwrap_err().code,
            ErrorCode::BadMessage
        );
    }

    #[test]
    fn server_messages_have_the_documented_shape() {
        let room = RoomId(1);
        assert_eq!(
            ServerMessage::Matched {
                room,
                role: Role::Offerer,
                mode: Mode::Text,
                common: &["chess".to_string()],
                same_lang: true,
                proof: MemberProof {
                    secret: 2,
                    partner: 3
                },
                ice_servers: &[],
                offer: None,
                offered: false,
            }
            .to_json(),
            r#"{"type":"matched","room":"00000000000000000000000000000001","role":"offerer","mode":"text","common":["chess"],"same_lang":true,"proof":"0000000000000000000000000000000200000000000000000000000000000003","iceServers":[]}"#
        );
        let proof = MemberProof {
            secret: 2,
            partner: 3,
        };
        let answerer = ServerMessage::Matched {
            room,
            role: Role::Answerer,
            mode: Mode::Video,
            common: &[],
            same_lang: false,
            proof,
            ice_servers: &[],
            offer: Some("v=0\r\n"),
            offered: false,
        };
        assert!(answerer.to_json().ends_with(r#""offer":"v=0\r\n"}"#));
        let offerer = ServerMessage::Matched {
            room,
            role: Role::Offerer,
            mode: Mode::Video,
            common: &[],
            same_lang: false,
            proof,
            ice_servers: &[],
            offer: None,
            offered: true,
        };
        assert!(offerer.to_json().ends_with(r#""offered":true}"#));
        assert_eq!(
            ServerMessage::Left {
                room,
                reason: LeftReason::Disconnected
            }
            .to_json(),
            r#"{"type":"left","room":"00000000000000000000000000000001","reason":"disconnected"}"#
        );
        assert_eq!(ServerMessage::Waiting.to_json(), r#"{"type":"waiting"}"#);
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        fn json_value() -> impl Strategy<Value = serde_json::Value> {
            let leaf = prop_oneof![
                Just(serde_json::Value::Null),
                any::<bool>().prop_map(serde_json::Value::from),
                any::<i64>().prop_map(serde_json::Value::from),
                ".{0,40}".prop_map(serde_json::Value::from),
                Just(serde_json::Value::from(ROOM)),
                prop_oneof![
                    Just("join"),
                    Just("next"),
                    Just("offer"),
                    Just("candidate"),
                    Just("chat"),
                    Just("typing")
                ]
                .prop_map(serde_json::Value::from),
            ];
            leaf.prop_recursive(4, 32, 6, |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..6)
                        .prop_map(serde_json::Value::from),
                    proptest::collection::btree_map(
                        prop_oneof![
                            Just("type".to_string()),
                            Just("room".to_string()),
                            Just("sdp".to_string()),
                            Just("text".to_string()),
                            Just("candidate".to_string()),
                            Just("active".to_string()),
                            Just("interests".to_string()),
                            "[a-z]{1,8}"
                        ],
                        inner,
                        0..6,
                    )
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
                ]
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(3000))]

            /// Arbitrary text never panics the parser; a refusal always says why.
            #[test]
            fn any_text_is_parsed_or_refused(text in ".{0,300}") {
                if let Err(e) = ClientMessage::parse(&text) {
                    prop_assert!(!e.message.is_empty());
                }
            }

            /// Arbitrary JSON shaped like our messages: parsed or refused, and whatever is
            /// accepted for relay serializes back to JSON that parses to the same message.
            #[test]
            fn message_shaped_json_round_trips(value in json_value()) {
                match ClientMessage::parse(&value.to_string()) {
                    Ok(ClientMessage::Relay(relay)) => {
                        prop_assert_eq!(
                            ClientMessage::parse(&relay.to_json()),
                            Ok(ClientMessage::Relay(relay))
                        );
                    }
                    Ok(_) => {}
                    Err(e) => prop_assert_eq!(e.code, ErrorCode::BadMessage),
                }
            }
        }
    }
}
