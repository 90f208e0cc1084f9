//! What a user looks for besides interests, as the wire names it: the [`Mode`] (a video call
//! or a text chat), whose pools never mix, and the [`Lang`] it prefers its stranger to speak.
//! Parsing is strict (the protocol refuses anything else with a reason); `protocol`
//! re-exports both.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// Which kind of chat a user looks for: a video call (with text chat beside it) or text
/// alone. Users of one mode only ever meet users of the same mode.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Camera and microphone, WebRTC between the browsers, and chat: what a `join` without
    /// a mode asks for.
    #[default]
    Video,
    /// Chat and typing only: the room relays nothing else.
    Text,
}

impl Mode {
    /// Both modes, in the order the online counts and pools list them.
    pub const ALL: [Mode; 2] = [Mode::Video, Mode::Text];

    /// The mode's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Video => "video",
            Mode::Text => "text",
        }
    }

    /// Where this mode sits in [`ALL`](Self::ALL).
    pub fn index(self) -> usize {
        self as usize
    }
}

impl FromStr for Mode {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "video" => Ok(Mode::Video),
            "text" => Ok(Mode::Text),
            _ => Err(()),
        }
    }
}

/// A user's language, as the BCP 47 primary language subtag its browser gives (`de` of
/// `de-AT`): two or three ASCII letters, lower-cased. Matching prefers a stranger with the
/// same language; the stranger only ever learns whether the two share it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct Lang([u8; 3]);

impl Lang {
    /// The subtag as text.
    pub fn as_str(&self) -> &str {
        let len = if self.0[2] == 0 { 2 } else { 3 };
        std::str::from_utf8(&self.0[..len]).expect("ASCII letters")
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Lang {
    type Err = ();

    /// Two or three ASCII letters, in any case; anything else (a region, a script, a
    /// private-use or "i-" tag, digits) is refused.
    fn from_str(s: &str) -> Result<Self, ()> {
        if !(2..=3).contains(&s.len()) || !s.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(());
        }
        let mut code = [0u8; 3];
        for (slot, b) in code.iter_mut().zip(s.bytes()) {
            *slot = b.to_ascii_lowercase();
        }
        Ok(Lang(code))
    }
}

/// How many users are looking for, or are in, a chat of each mode: what the online count
/// says beside its total. On the wire, `{"video": 10, "text": 2}`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct ModeCounts(pub [usize; 2]);

impl ModeCounts {
    /// The count for `mode`.
    pub fn get(&self, mode: Mode) -> usize {
        self.0[mode.index()]
    }

    /// `self + plus - minus`, per mode, never below zero: a pool's count corrected for
    /// this instance's own change since the pool was counted.
    pub fn corrected(self, plus: ModeCounts, minus: ModeCounts) -> ModeCounts {
        ModeCounts(std::array::from_fn(|i| {
            (self.0[i] + plus.0[i]).saturating_sub(minus.0[i])
        }))
    }
}

impl Serialize for ModeCounts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(Mode::ALL.len()))?;
        for mode in Mode::ALL {
            map.serialize_entry(mode.as_str(), &self.get(mode))?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Languages are compared by their primary subtag, whatever the case; the text form
    /// is the lower-cased code.
    #[test]
    fn languages_are_two_or_three_letters_in_any_case() {
        let de: Lang = "De".parse().unwrap();
        assert_eq!(de, "de".parse().unwrap());
        assert_eq!(de.to_string(), "de");
        assert_eq!("FIL".parse::<Lang>().unwrap().as_str(), "fil");
        for bad in ["", "d", "deu1", "de-", "dé", "12", "de_AT"] {
            assert!(bad.parse::<Lang>().is_err(), "{bad:?}");
        }
    }

    /// The counts per mode go out by name, and a correction never goes below zero.
    #[test]
    fn mode_counts_are_named_on_the_wire_and_corrected_without_underflow() {
        let counts = ModeCounts([10, 2]);
        assert_eq!(
            serde_json::to_string(&counts).unwrap(),
            r#"{"video":10,"text":2}"#
        );
        let corrected = counts.corrected(ModeCounts([1, 0]), ModeCounts([0, 5]));
        assert_eq!(corrected, ModeCounts([11, 0]));
        assert_eq!(corrected.get(Mode::Video), 11);
    }
}
