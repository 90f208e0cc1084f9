//! Who may enter the queue: every `join` and `next` must carry the 18+ confirmation and the
//! solution of the connection's current [challenge](crate::pow), and is answered with the
//! next challenge, whatever else becomes of it.
//!
//! One [`Gate`] per connection holds the challenge it was given; the [`Difficulty`] every
//! connection shares says how hard the next one is. A `resume` passes no gate: it only gets
//! back a room whose pairing proof the client holds (it met that stranger through a join
//! that did pass), and it is charged to the join budget.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use crate::ids::ClientKey;
use crate::pow::{Challenge, Difficulty};
use crate::protocol::{Admit, ErrorCode, ProtocolError};

/// The refusal of a join without the 18+ confirmation. An old page (loaded before the
/// gate existed) shows it as it is, so it says what to do.
const ADULT_REQUIRED: &str = "confirm that you are 18 or older and agree to the rules \
     before you start (reload the page if it shows no such checkbox)";
/// The refusal of a join without a solution.
const POW_REQUIRED: &str = "join and next must carry the solution (`pow`) of the latest \
     challenge (reload the page if this keeps happening)";
/// The refusal of a join whose solution does not solve the current challenge.
const POW_INVALID: &str = "`pow` does not solve the latest challenge: each solution is good \
     for one join or next, on the connection that was given its challenge";

/// The difficulty every session consults, behind a lock taken once per join.
pub(crate) type SharedDifficulty = Arc<Mutex<Difficulty>>;

/// One connection's gate.
#[derive(Debug)]
pub(crate) struct Gate {
    /// The challenge the next `join` or `next` must solve; `None` when the proof of work
    /// is off, or between a join and the next issue.
    current: Option<Challenge>,
    /// Whether the proof of work is on (a join with no challenge to solve is then refused).
    on: bool,
}

impl Gate {
    /// The gate of a new connection from `client`, with its first challenge.
    pub(crate) fn new(
        difficulty: &SharedDifficulty,
        client: Option<ClientKey>,
        now: Instant,
    ) -> Gate {
        let mut gate = Gate {
            current: None,
            on: false,
        };
        gate.issue(difficulty, client, now);
        gate
    }

    /// The challenge to solve next, for `welcome` and the `challenge` message.
    pub(crate) fn challenge(&self) -> Option<Challenge> {
        self.current
    }

    /// A `join` or `next` carrying `admit` was read: spends the current challenge and
    /// says whether `admit` passes.
    pub(crate) fn judge(&mut self, admit: Admit) -> Result<(), ProtocolError> {
        let spent = self.current.take();
        let refuse = |code, message: &str| {
            Err(ProtocolError {
                code,
                message: message.into(),
            })
        };
        if !admit.adult {
            return refuse(ErrorCode::AdultRequired, ADULT_REQUIRED);
        }
        match (spent, admit.pow) {
            (None, _) if !self.on => Ok(()),
            (_, None) => refuse(ErrorCode::PowRequired, POW_REQUIRED),
            (Some(challenge), Some(nonce)) if challenge.solved_by(nonce) => Ok(()),
            (_, Some(_)) => refuse(ErrorCode::PowInvalid, POW_INVALID),
        }
    }

    /// A `join` or `next` that could not be read (`bad_message`) spends the current
    /// challenge all the same: every one the client sends does, so it always waits for the
    /// next.
    pub(crate) fn spend(&mut self) {
        self.current = None;
    }

    /// After a [`judge`](Self::judge): the next challenge, as hard as the policy says for
    /// `client` now (`None` when the proof of work is off).
    pub(crate) fn issue(
        &mut self,
        difficulty: &SharedDifficulty,
        client: Option<ClientKey>,
        now: Instant,
    ) -> Option<Challenge> {
        let difficulty = difficulty.lock().unwrap_or_else(PoisonError::into_inner);
        self.on = difficulty.enabled();
        self.current = self
            .on
            .then(|| Challenge::new(difficulty.bits(client, now)));
        self.current
    }
}

/// A join by `client` passed the gate: it counts towards the client's and the server's
/// join rates.
pub(crate) fn admitted(difficulty: &SharedDifficulty, client: Option<ClientKey>, now: Instant) {
    let mut difficulty = difficulty.lock().unwrap_or_else(PoisonError::into_inner);
    difficulty.record(client, now);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pow::PowPolicy;

    fn shared(bits: u8) -> SharedDifficulty {
        Arc::new(Mutex::new(Difficulty::new(
            PowPolicy::new(bits, 20),
            Instant::now(),
        )))
    }

    fn code(result: Result<(), ProtocolError>) -> Option<ErrorCode> {
        result.err().map(|e| e.code)
    }

    #[test]
    fn a_join_needs_the_confirmation_and_a_solution_of_the_current_challenge() {
        let difficulty = shared(8);
        let now = Instant::now();
        let mut gate = Gate::new(&difficulty, None, now);
        let first = gate
            .challenge()
            .expect("a challenge when the proof of work is on");
        assert_eq!(first.bits, 8);
        let nonce = first.solve().unwrap();
        let adult = |pow| Admit { adult: true, pow };
        let minor = Admit {
            adult: false,
            pow: Some(nonce),
        };
        assert_eq!(code(gate.judge(minor)), Some(ErrorCode::AdultRequired));
        // That attempt spent the challenge: its solution no longer passes.
        assert_eq!(
            code(gate.judge(adult(Some(nonce)))),
            Some(ErrorCode::PowInvalid)
        );

        let second = gate.issue(&difficulty, None, now).unwrap();
        assert_ne!(first.seed, second.seed, "every challenge is new");
        assert_eq!(code(gate.judge(adult(None))), Some(ErrorCode::PowRequired));

        let third = gate.issue(&difficulty, None, now).unwrap();
        let forged = (0..).find(|&n| !third.solved_by(n)).unwrap();
        assert_eq!(
            code(gate.judge(adult(Some(forged)))),
            Some(ErrorCode::PowInvalid)
        );

        let fourth = gate.issue(&difficulty, None, now).unwrap();
        let good = fourth.solve();
        assert_eq!(code(gate.judge(adult(good))), None);
        // A replay against the next challenge (one the old nonce does not happen to solve).
        let fifth = (1..)
            .map(|seed| Challenge { seed, bits: 8 })
            .find(|c| !c.solved_by(good.unwrap()))
            .unwrap();
        gate.current = Some(fifth);
        assert_eq!(code(gate.judge(adult(good))), Some(ErrorCode::PowInvalid));
    }

    #[test]
    fn with_the_proof_of_work_off_only_the_confirmation_counts() {
        let difficulty = shared(0);
        let now = Instant::now();
        let mut gate = Gate::new(&difficulty, None, now);
        assert_eq!(gate.challenge(), None);
        let admit = Admit {
            adult: true,
            pow: None,
        };
        assert_eq!(code(gate.judge(admit)), None);
        assert_eq!(gate.issue(&difficulty, None, now), None);
        let minor = Admit {
            adult: false,
            pow: None,
        };
        assert_eq!(code(gate.judge(minor)), Some(ErrorCode::AdultRequired));
    }
}
