//! Names of things every layer talks about: a session, an instance, a user anywhere in the
//! pool. Plain values with no behaviour beyond their text forms, so any module can use them
//! without depending on the module that gives them meaning.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

/// Identifies one WebSocket connection for as long as the process runs.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct SessionId(pub u64);

impl SessionId {
    /// A process-wide unique id for a new connection.
    pub fn next() -> SessionId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        SessionId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// One server process among those sharing a queue (see [`shared`](crate::shared)); a
/// process on its own is [`InstanceId::SOLO`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct InstanceId(pub u64);

impl InstanceId {
    /// The id of a process that shares its queue with nobody.
    pub const SOLO: InstanceId = InstanceId(0);
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// A user anywhere in the pool: the instance holding its socket, and its session there.
/// Written `<instance as 16 hex digits>.<session>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct UserRef {
    pub instance: InstanceId,
    pub session: SessionId,
}

impl fmt::Display for UserRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.instance, self.session.0)
    }
}

impl FromStr for UserRef {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const BAD: &str = "a user is <16 hex digits>.<number>";
        let (instance, session) = s.split_once('.').ok_or(BAD)?;
        if instance.len() != 16 {
            return Err(BAD);
        }
        Ok(UserRef {
            instance: InstanceId(u64::from_str_radix(instance, 16).map_err(|_| BAD)?),
            session: SessionId(session.parse().map_err(|_| BAD)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_ref_reads_back_what_it_writes() {
        let user = UserRef {
            instance: InstanceId(0xdead_beef),
            session: SessionId(42),
        };
        assert_eq!(user.to_string(), "00000000deadbeef.42");
        assert_eq!(user.to_string().parse(), Ok(user));
        assert!("deadbeef.42".parse::<UserRef>().is_err(), "16 digits");
        assert!("00000000deadbeef".parse::<UserRef>().is_err(), "a session");
        assert!("00000000deadbeef.x".parse::<UserRef>().is_err());
    }
}
