//! Who may connect and who may open a WebSocket: the server-wide connection cap and the
//! per-network cap (checked when a connection is accepted, before any request is read), the
//! origin allow-list (checked at the upgrade), and who a client is.
//!
//! A client is its IPv4 address, or its IPv6 /64: one home or phone gets a whole /64 and
//! can pick any address in it, so counting IPv6 addresses one by one would cap nobody.
//! A browser always sends `Origin` on a WebSocket upgrade, and a page on another site could
//! otherwise open sockets to us with the visitor's browser (cross-site WebSocket hijacking).
//! Clients that are not browsers send no `Origin`; they could forge one anyway, so the caps,
//! not the origin check, are what limit them.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The network a client address stands for: an IPv4 address as itself (an IPv4-mapped IPv6
/// address too), an IPv6 address as its /64. The per-IP cap, bans and reporter identity all
/// count clients by this.
pub fn client_network(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(bits))
            }
        },
    }
}

/// The client address in the value of a proxy's header: the right-most entry of a list
/// (`X-Forwarded-For: <what the client wrote>, <what the proxy appended>`), so a client cannot
/// choose it by sending the header itself. `None` if that entry is not an address.
pub fn ip_from_header(value: &str) -> Option<IpAddr> {
    let last = value.rsplit(',').next()?.trim();
    last.parse().ok()
}

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

/// Why a connection or an upgrade was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A page of another site tried to connect (403).
    Origin,
    /// The server is at its connection cap (503).
    Full,
    /// This IP has too many connections open (429).
    TooManyFromIp,
    /// `--client-ip-header` is set and the request has no usable client address (400).
    NoClientIp,
}

/// Counts open connections per client network ([`client_network`]).
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

    /// Takes a place for `ip`'s network, if it has one left.
    pub fn acquire(self: &Arc<Self>, ip: IpAddr) -> Option<IpPermit> {
        let ip = client_network(ip);
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

    /// Open connections from `ip`'s network.
    pub fn open(&self, ip: IpAddr) -> u32 {
        let ip = client_network(ip);
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

/// The checks every connection and every upgrade passes.
#[derive(Clone, Debug)]
pub struct Admission {
    /// Which pages may open the WebSocket.
    pub origins: OriginPolicy,
    /// One permit per open connection, upgraded or not: the server-wide cap.
    pub permits: Arc<Semaphore>,
    /// Open connections per client network.
    pub per_ip: Arc<IpLimiter>,
}

/// What an admitted connection holds until it ends: its place in the server-wide cap and,
/// once the client is known, in its network's.
#[derive(Debug)]
pub struct Ticket {
    /// The place in the server-wide cap.
    _server: OwnedSemaphorePermit,
    /// The place in the client network's cap; `None` until the client is known (behind a
    /// proxy, only the request says who it is).
    ip: Option<IpPermit>,
}

impl Admission {
    /// Admits a newly accepted connection from `peer` (`None` when the TCP peer is a proxy,
    /// not the client), or says why not.
    pub fn connect(&self, peer: Option<IpAddr>) -> Result<Ticket, Refusal> {
        let server = self
            .permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refusal::Full)?;
        let ip = match peer {
            Some(ip) => Some(self.per_ip.acquire(ip).ok_or(Refusal::TooManyFromIp)?),
            None => None,
        };
        Ok(Ticket {
            _server: server,
            ip,
        })
    }

    /// Admits a WebSocket upgrade on a connection holding `ticket` (`None` if it has none,
    /// then a place in the server-wide cap is taken now) from client `ip`, or says why not.
    /// `ticket` is left as it was on refusal.
    pub fn upgrade(
        &self,
        ticket: Option<Ticket>,
        origin: Option<&str>,
        host: Option<&str>,
        ip: Option<IpAddr>,
    ) -> Result<Ticket, (Refusal, Option<Ticket>)> {
        if !self.origins.allows(origin, host) {
            return Err((Refusal::Origin, ticket));
        }
        let mut ticket = match ticket {
            Some(ticket) => ticket,
            None => self.connect(None).map_err(|r| (r, None))?,
        };
        if ticket.ip.is_none()
            && let Some(ip) = ip
        {
            match self.per_ip.acquire(ip) {
                Some(permit) => ticket.ip = Some(permit),
                None => return Err((Refusal::TooManyFromIp, Some(ticket))),
            }
        }
        Ok(ticket)
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
    fn ipv6_clients_are_their_64_and_ipv4_their_address() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            client_network(ip("2001:db8:1:2:aaaa::1")),
            ip("2001:db8:1:2::")
        );
        assert_eq!(
            client_network(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")),
            ip("2001:db8:1:2::")
        );
        assert_ne!(client_network(ip("2001:db8:1:3::1")), ip("2001:db8:1:2::"));
        assert_eq!(client_network(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(client_network(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        let limiter = IpLimiter::new(1);
        let _held = limiter.acquire(ip("2001:db8::1")).unwrap();
        assert!(limiter.acquire(ip("2001:db8::2")).is_none(), "same /64");
        assert!(limiter.acquire(ip("2001:db8:0:1::1")).is_some(), "next /64");
    }

    #[test]
    fn the_proxy_appended_address_is_the_client() {
        assert_eq!(
            ip_from_header("6.6.6.6, 203.0.113.9"),
            Some("203.0.113.9".parse().unwrap())
        );
        assert_eq!(
            ip_from_header(" 2001:db8::1 "),
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(ip_from_header("203.0.113.9, garbage"), None);
        assert_eq!(ip_from_header(""), None);
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
