//! Hide my IP, checked from the stranger's side: every candidate of the hider's that the
//! stranger's page ever learned (signaled, in an SDP, or known to its ICE agent) must be an
//! address of the lab's relay, and so must the related address a candidate line carries.

use std::fmt::Write as _;

use serde_json::Value;

use super::pages::parse_candidate;
use super::services::RELAY_PORTS;
use super::topology::PUBLIC_HOST;

/// Whether `address:port` is one of coturn's relay endpoints.
pub fn is_relay_address(address: &str, port: u16) -> bool {
    address == PUBLIC_HOST && (RELAY_PORTS.0..=RELAY_PORTS.1).contains(&port)
}

/// From what a page learned ([`super::pages::learned_candidates`]): how many candidates of
/// the stranger it holds, and a line for each one that is not the relay's.
pub fn non_relay_candidates(learned: &Value) -> (usize, String) {
    let mut leaks = String::new();
    let mut count = 0;
    for key in ["signaled", "sdp", "added", "applied"] {
        for line in learned[key].as_array().into_iter().flatten() {
            let line = line.as_str().unwrap_or_default();
            count += 1;
            match parse_candidate(line) {
                Some((typ, address, port))
                    if typ == "relay"
                        && is_relay_address(&address, port)
                        && related_is_hidden(line) => {}
                _ => {
                    let _ = writeln!(leaks, "  {key}: {line}");
                }
            }
        }
    }
    for c in learned["seen"].as_array().into_iter().flatten() {
        count += 1;
        let port = c["port"].as_u64().unwrap_or(0) as u16;
        let address = c["address"].as_str().unwrap_or_default();
        // A peer-reflexive candidate is where the hider's checks came from: its relay.
        // Chromium does not show a page the address of one, only its port; the homes' own
        // ports are kept below the relay range, so the port alone says it is the relay.
        let ok = match c["type"].as_str() {
            Some("relay") => is_relay_address(address, port),
            Some("prflx") if address.is_empty() => (RELAY_PORTS.0..=RELAY_PORTS.1).contains(&port),
            Some("prflx") => is_relay_address(address, port),
            _ => false,
        };
        if !ok {
            let _ = writeln!(leaks, "  the ICE agent knows {c}");
        }
    }
    (count, leaks)
}

/// Whether a candidate line's related address (`raddr`, where a relay candidate may name
/// the public address the relay saw the browser at) is absent, blanked (`0.0.0.0`) or the
/// relay's own.
pub fn related_is_hidden(line: &str) -> bool {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let related = |key: &str| {
        fields
            .iter()
            .position(|f| *f == key)
            .and_then(|i| fields.get(i + 1))
            .copied()
    };
    match (related("raddr"), related("rport")) {
        (None, _) | (Some("0.0.0.0"), _) => true,
        (Some(address), port) => {
            is_relay_address(address, port.and_then(|p| p.parse().ok()).unwrap_or(0))
        }
    }
}

/// Whether any signaled candidate line is of type `typ`.
pub fn signaled_any_of_type(learned: &Value, typ: &str) -> bool {
    learned["signaled"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .any(|l| parse_candidate(l).is_some_and(|(t, ..)| t == typ))
}
