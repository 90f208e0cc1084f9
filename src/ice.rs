//! The ICE servers handed to each browser: STUN URLs, and TURN relays with short-lived
//! credentials.
//!
//! TURN credentials follow the TURN REST API scheme that coturn implements with
//! `use-auth-secret` / `static-auth-secret`: the username is `<expiry unix time>:<nonce>`
//! and the password is `base64(HMAC-SHA1(secret, username))`. coturn checks the HMAC with the
//! same shared secret and refuses the username once its time has passed, so a leaked
//! credential is useless after the TTL (10 minutes by default) and the secret itself never
//! leaves the server. The nonce is 64 random bits: the username tells nobody how many
//! connections the server has had, nor which session it belongs to.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use hmac::{KeyInit, Mac};

use crate::protocol::IceServer;

/// A TURN relay shared with coturn.
#[derive(Clone)]
pub struct Turn {
    /// `turn:` / `turns:` URLs of the relay.
    pub urls: Vec<String>,
    /// coturn's `static-auth-secret`. Never logged: `Debug` redacts it.
    pub secret: String,
    /// How long a credential stays valid.
    pub ttl: Duration,
}

impl fmt::Debug for Turn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Turn")
            .field("urls", &self.urls)
            .field("secret", &"<redacted>")
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl Turn {
    /// A username and password valid until `now + ttl`; `nonce` makes the username unique.
    pub fn credentials(&self, nonce: u64, now: SystemTime) -> (String, String) {
        let expiry = (now + self.ttl)
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let username = format!("{expiry}:{nonce:016x}");
        let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(self.secret.as_bytes())
            .expect("HMAC takes keys of any length");
        mac.update(username.as_bytes());
        let password =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        (username, password)
    }
}

/// Everything a browser needs for `RTCConfiguration.iceServers`.
#[derive(Clone, Debug, Default)]
pub struct IceConfig {
    /// `stun:` URLs; no credentials needed.
    pub stun: Vec<String>,
    /// The TURN relay, if one is configured.
    pub turn: Option<Turn>,
}

impl IceConfig {
    /// The list for one connection, with fresh TURN credentials of its own.
    pub fn servers(&self) -> Vec<IceServer> {
        let mut servers = Vec::with_capacity(2);
        if !self.stun.is_empty() {
            servers.push(IceServer {
                urls: self.stun.clone(),
                username: None,
                credential: None,
            });
        }
        if let Some(turn) = &self.turn {
            let (username, credential) = turn.credentials(rand::random(), SystemTime::now());
            servers.push(IceServer {
                urls: turn.urls.clone(),
                username: Some(username),
                credential: Some(credential),
            });
        }
        servers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Username and password as coturn computes them from the shared secret.
    #[test]
    fn credentials_match_the_rest_api_scheme() {
        let turn = Turn {
            urls: vec!["turn:127.0.0.1:3478".into()],
            secret: "north".into(),
            ttl: Duration::from_secs(86400),
        };
        let now = UNIX_EPOCH + Duration::from_secs(1_400_000_000);
        let (user, pass) = turn.credentials(0x2a, now);
        assert_eq!(user, "1400086400:000000000000002a");
        // HMAC-SHA1 over the username, base64: computed independently with
        // `printf %s 1400086400:000000000000002a | openssl dgst -sha1 -hmac north -binary | base64`.
        assert_eq!(pass, "4/CJ3Ud4ERgsOXxzxEpdROef73k=");
    }

    #[test]
    fn the_secret_is_never_printed() {
        let turn = Turn {
            urls: vec![],
            secret: "hunter2".into(),
            ttl: Duration::from_secs(1),
        };
        assert!(!format!("{turn:?}").contains("hunter2"));
    }

    #[test]
    fn each_connection_gets_its_own_username() {
        let ice = IceConfig {
            stun: vec!["stun:127.0.0.1:3478".into()],
            turn: Some(Turn {
                urls: vec!["turn:127.0.0.1:3478".into()],
                secret: "s".into(),
                ttl: Duration::from_secs(3600),
            }),
        };
        let a = ice.servers();
        let b = ice.servers();
        assert_eq!(a.len(), 2);
        assert_ne!(a[1].username, b[1].username);
        let (_, nonce) = a[1].username.as_deref().unwrap().split_once(':').unwrap();
        assert_eq!(nonce.len(), 16, "64 random bits, not a counter: {nonce}");
    }
}
