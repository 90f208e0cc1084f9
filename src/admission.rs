//! Who may open a WebSocket: the origin allow-list, the server-wide connection cap and the
//! per-IP cap, checked before any session exists.
//!
//! A browser always sends `Origin` on a WebSocket upgrade, and a page on another site could
//! otherwise open sockets to us with the visitor's browser (cross-site WebSocket hijacking).
//! Clients that are not browsers send no `Origin`; they could forge one anyway, so the caps,
//! not the origin check, are what limit them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Which pages may open the WebSocket.
#[derive(Clone, Debug)]
pub enum OriginPolicy {
    /// Only pages served by this server: the `Origin` must name the request's `Host`.
    SameOrigin,
    /// These origins (`https://example.com`), exactly.
    List(Vec<String>),
    /// Any page (the operator asked for `*`).
    Any,
}

impl OriginPolicy {
    /// The policy for the configured allow-list (empty: same origin; containing `*`: any).
    pub fn from_list(origins: &[String]) -> OriginPolicy {
        if origins.is_empty() {
            OriginPolicy::SameOrigin
        } else if origins.iter().any(|o| o == "*") {
            OriginPolicy::Any
        } else {
            OriginPolicy::List(
                origins
                    .iter()
                    .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                    .collect(),
            )
        }
    }

    /// Whether a request with these headers may upgrade.
    pub fn allows(&self, origin: Option<&str>, host: Option<&str>) -> bool {
        let Some(origin) = origin else {
            return true; // not a browser
        };
        let origin = origin.to_ascii_lowercase();
        match self {
            OriginPolicy::Any => true,
            OriginPolicy::List(list) => list.contains(&origin),
            OriginPolicy::SameOrigin => {
                let Some(host) = host.map(str::to_ascii_lowercase) else {
                    return false;
                };
                origin
                    .strip_prefix("https://")
                    .or_else(|| origin.strip_prefix("http://"))
                    .is_some_and(|rest| rest == host)
            }
        }
    }
}

/// Why an upgrade was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A page of another site tried to connect (403).
    Origin,
    /// The server is at its connection cap (503).
    Full,
    /// This IP has too many connections open (429).
    TooManyFromIp,
}

/// Counts open connections per client IP.
#[derive(Debug)]
pub struct IpLimiter {
    /// The most connections one IP may hold.
    limit: u32,
    /// Open connections per IP; touched only on connect and disconnect, never per message.
    open: Mutex<HashMap<IpAddr, u32>>,
}

/// One connection's place in the [`IpLimiter`]; released on drop.
#[derive(Debug)]
pub struct IpPermit {
    limiter: Arc<IpLimiter>,
    ip: IpAddr,
}

impl IpLimiter {
    pub fn new(limit: u32) -> Arc<IpLimiter> {
        Arc::new(IpLimiter {
            limit,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// Takes a place for `ip`, if it has one left.
    pub fn acquire(self: &Arc<Self>, ip: IpAddr) -> Option<IpPermit> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= self.limit {
            return None;
        }
        *n += 1;
        Some(IpPermit {
            limiter: self.clone(),
            ip,
        })
    }

    /// Open connections from `ip`.
    pub fn open(&self, ip: IpAddr) -> u32 {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(&ip).copied().unwrap_or(0)
    }
}

impl Drop for IpPermit {
    fn drop(&mut self) {
        let mut open = self.limiter.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// The checks every upgrade passes.
#[derive(Clone, Debug)]
pub struct Admission {
    pub origins: OriginPolicy,
    /// One permit per open WebSocket: the server-wide cap.
    pub permits: Arc<Semaphore>,
    pub per_ip: Arc<IpLimiter>,
}

/// What an admitted connection holds until it ends.
#[derive(Debug)]
pub struct Ticket {
    _server: OwnedSemaphorePermit,
    _ip: Option<IpPermit>,
}

impl Admission {
    /// Admits a connection or says why not.
    pub fn admit(
        &self,
        origin: Option<&str>,
        host: Option<&str>,
        ip: Option<IpAddr>,
    ) -> Result<Ticket, Refusal> {
        if !self.origins.allows(origin, host) {
            return Err(Refusal::Origin);
        }
        let server = self
            .permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refusal::Full)?;
        let ip = match ip {
            Some(ip) => Some(self.per_ip.acquire(ip).ok_or(Refusal::TooManyFromIp)?),
            None => None,
        };
        Ok(Ticket {
            _server: server,
            _ip: ip,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_origin_means_the_host_header() {
        let p = OriginPolicy::from_list(&[]);
        assert!(p.allows(Some("http://127.0.0.1:8080"), Some("127.0.0.1:8080")));
        assert!(p.allows(Some("https://chat.example"), Some("chat.example")));
        assert!(!p.allows(Some("https://evil.example"), Some("chat.example")));
        assert!(!p.allows(Some("https://chat.example.evil"), Some("chat.example")));
        assert!(!p.allows(Some("null"), Some("chat.example")));
        assert!(
            p.allows(None, Some("chat.example")),
            "non-browser clients send none"
        );
    }

    #[test]
    fn lists_and_star() {
        let p = OriginPolicy::from_list(&["https://a.example/".into()]);
        assert!(p.allows(Some("https://A.example"), Some("b.example")));
        assert!(!p.allows(Some("https://b.example"), Some("b.example")));
        let any = OriginPolicy::from_list(&["*".into()]);
        assert!(any.allows(Some("https://whatever.example"), None));
    }

    #[test]
    fn per_ip_places_are_returned_on_drop() {
        let limiter = IpLimiter::new(2);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let a = limiter.acquire(ip).unwrap();
        let _b = limiter.acquire(ip).unwrap();
        assert!(limiter.acquire(ip).is_none());
        assert!(limiter.acquire("192.0.2.2".parse().unwrap()).is_some());
        drop(a);
        assert_eq!(limiter.open(ip), 1);
        assert!(limiter.acquire(ip).is_some());
    }
}
