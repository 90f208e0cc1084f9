//! Reading a client's text frame: the raw shapes serde reads, and the checks that turn one
//! into a [`ClientMessage`] or a [`ProtocolError`] saying what is wrong with it.

use serde::Deserialize;

use super::{
    Admit, Candidate, ClientMessage, Lang, MAX_CANDIDATE_BYTES, MAX_CHAT_CHARS, MAX_INTEREST_CHARS,
    MAX_INTERESTS, MAX_MESSAGE_BYTES, MAX_SDP_BYTES, Mode, ProtocolError, Relay, ReportReason,
    RoomId,
};

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
        #[serde(default)]
        adult: Option<bool>,
        #[serde(default)]
        pow: Option<u32>,
    },
    Next {
        #[serde(default)]
        mode: Option<String>,
        #[serde(default)]
        ahead: Option<bool>,
        #[serde(default)]
        adult: Option<bool>,
        #[serde(default)]
        pow: Option<u32>,
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
                adult,
                pow,
            } => ClientMessage::Join {
                interests: normalize_interests(interests.unwrap_or_default())?,
                mode: parse_mode(mode.as_deref())?.unwrap_or_default(),
                lang: parse_lang(lang.as_deref())?,
                ahead: ahead.unwrap_or(false),
                admit: Admit::from_wire(adult, pow),
            },
            Wire::Next {
                mode,
                ahead,
                adult,
                pow,
            } => ClientMessage::Next {
                mode: parse_mode(mode.as_deref())?,
                ahead: ahead.unwrap_or(false),
                admit: Admit::from_wire(adult, pow),
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
            Wire::Candidate { room, candidate } => ClientMessage::Relay(Relay::Candidate {
                room: parse_room(&room)?,
                candidate: check_candidate(candidate)?,
            }),
            Wire::Chat { room, text } => ClientMessage::Relay(Relay::Chat {
                room: parse_room(&room)?,
                text: check_chat(text)?,
            }),
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

impl Admit {
    /// What a message's `adult` and `pow` say: only `true` is a confirmation.
    fn from_wire(adult: Option<bool>, pow: Option<u32>) -> Admit {
        Admit {
            adult: adult == Some(true),
            pow,
        }
    }
}

/// A candidate (or the end of candidates, `None`) within its size limit.
fn check_candidate(candidate: Option<Candidate>) -> Result<Option<Candidate>, ProtocolError> {
    if let Some(c) = &candidate {
        let extra = c.sdp_mid.as_deref().map_or(0, str::len)
            + c.username_fragment.as_deref().map_or(0, str::len);
        if c.candidate.len() + extra > MAX_CANDIDATE_BYTES {
            return Err(ProtocolError::bad(format!(
                "candidate longer than {MAX_CANDIDATE_BYTES} bytes"
            )));
        }
    }
    Ok(candidate)
}

/// A chat line: 1–[`MAX_CHAT_CHARS`] characters, not blank, and one line.
fn check_chat(text: String) -> Result<String, ProtocolError> {
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
    Ok(text)
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

/// Whether a frame that [`ClientMessage::parse`] refused still names a `join` or `next` (by
/// its `type`): the [gate](crate::gate) spends its challenge on it as on any other.
pub fn names_entry(text: &str) -> bool {
    #[derive(Deserialize)]
    struct Kind {
        #[serde(rename = "type")]
        ty: String,
    }
    serde_json::from_str::<Kind>(text).is_ok_and(|k| matches!(k.ty.as_str(), "join" | "next"))
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
