//! Early offers ("offer ahead"): a waiting user's ready offer, kept for its wait only, and
//! who offers in a room because of it.
//!
//! A waiting user may hand the server the offer of the call to come before there is a
//! stranger. It is bound to that wait: the core takes it only while the user waits under
//! the request it came with (its `seq`), and drops it the moment the user stops waiting
//! ([`Users::set_status`](super::users::Users::set_status)); with the shared queue, it is
//! stored with the wait's ticket in Redis and goes with it. When the wait ends in a pairing,
//! the member whose offer is used is the offerer and the other one, the answerer, gets the
//! offer in its `matched`; the offer reaches no one else.

use crate::ids::SessionId;
use crate::protocol::Ahead;
use crate::protocol::{Mode, Role};

use super::backend::Backend;
use super::core::Core;
use super::users::Status;

/// The early offers of a new pairing's two members, as taken from where they waited.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Offers {
    /// The early offer of the member whose arrival (or fallback) made the pair.
    pub joiner: Option<String>,
    /// The early offer of the member who was waiting.
    pub waiter: Option<String>,
}

/// How a room opens for its two members: the joiner's role, and what each is told of an
/// early offer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Opening {
    pub joiner_role: Role,
    pub joiner: Ahead,
    pub waiter: Ahead,
}

impl Offers {
    /// Who offers: the waiter if it has an early offer (it waited longest), else the joiner
    /// if it has one, else the role the queue drew (`drawn`, the joiner's). The unused
    /// offer, if both had one, is dropped: its owner, the answerer, rolls it back when the
    /// stranger's offer arrives (perfect negotiation).
    pub(crate) fn opening(self, drawn: Role) -> Opening {
        match self {
            Offers {
                waiter: Some(sdp), ..
            } => Opening {
                joiner_role: Role::Answerer,
                joiner: Ahead::Offer(sdp),
                waiter: Ahead::Sent,
            },
            Offers {
                joiner: Some(sdp),
                waiter: None,
            } => Opening {
                joiner_role: Role::Offerer,
                joiner: Ahead::Sent,
                waiter: Ahead::Offer(sdp),
            },
            Offers {
                joiner: None,
                waiter: None,
            } => Opening {
                joiner_role: drawn,
                joiner: Ahead::None,
                waiter: Ahead::None,
            },
        }
    }
}

impl Core {
    /// `id` sent an early offer during the wait its request `seq` began: kept for that
    /// wait, if it still is the one and is in the video pool; dropped otherwise (the user
    /// was paired, left or asked again meanwhile; a text wait has no call to offer).
    pub(super) fn early_offer(&mut self, id: SessionId, seq: u64, sdp: String) {
        let current = self
            .users
            .get(id)
            .is_some_and(|u| u.seq == seq && u.want.mode == Mode::Video);
        if !current || self.users.status(id) != Some(Status::Waiting) {
            return;
        }
        match &mut self.backend {
            Backend::Local(_) => self.users.set_offer(id, sdp),
            Backend::Shared { queue, .. } => queue.offer(id, sdp),
        }
    }

    /// The early offers two local members waited with (the in-process queue's), taken out.
    pub(super) fn take_offers(&mut self, joiner: SessionId, waiter: SessionId) -> Offers {
        Offers {
            joiner: self.users.take_offer(joiner),
            waiter: self.users.take_offer(waiter),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_member_whose_offer_is_used_offers() {
        let both = Offers {
            joiner: Some("j".into()),
            waiter: Some("w".into()),
        };
        assert_eq!(
            both.opening(Role::Offerer),
            Opening {
                joiner_role: Role::Answerer,
                joiner: Ahead::Offer("w".into()),
                waiter: Ahead::Sent,
            },
            "the waiter's offer wins; the joiner's is dropped"
        );
        let joiner = Offers {
            joiner: Some("j".into()),
            waiter: None,
        };
        assert_eq!(
            joiner.opening(Role::Answerer),
            Opening {
                joiner_role: Role::Offerer,
                joiner: Ahead::Sent,
                waiter: Ahead::Offer("j".into()),
            }
        );
        for drawn in [Role::Offerer, Role::Answerer] {
            let none = Offers::default().opening(drawn);
            assert_eq!(none.joiner_role, drawn, "without offers the draw stands");
            assert_eq!((none.joiner, none.waiter), (Ahead::None, Ahead::None));
        }
    }
}
