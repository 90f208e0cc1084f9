//! The proof of work a client pays for each `join` and `next`: the challenges, their
//! check, a solver (for the load generator and the benchmarks) and, in [`policy`], how hard
//! each challenge is.
//!
//! A plain SHA-256 hashcash. A challenge is 128 random bits (its `seed`) and a difficulty
//! in `bits`; its solution is a 32-bit `nonce` such that
//! `SHA-256(seed as 16 bytes, big-endian ‖ nonce as 4 bytes, big-endian)` starts with at
//! least `bits` zero bits. Finding one takes 2^bits hashes on average; checking it takes
//! one. The server holds one challenge per connection, and every `join` or `next` it reads
//! spends it, whatever the outcome, and is answered with the next one: a solution counts
//! once (a replay meets a newer seed), on the connection that was given the seed (seeds are
//! random and never shared), with no store of used solutions, so the same holds with the
//! queue shared through Redis. `docs/security.md` says why this and not ALTCHA.

pub(crate) mod policy;

use sha2::{Digest, Sha256};

pub(crate) use policy::{Difficulty, PowPolicy};

/// The hardest challenge the server may set: the solver searches 2^32 nonces, and the
/// chance that none of them solves a challenge of 2^26 is e^-64.
pub const MAX_BITS: u8 = 26;

/// One challenge: what the client must solve before its next `join` or `next`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Challenge {
    /// Random, so a solution cannot be computed before the challenge is given, nor used on
    /// another connection.
    pub seed: u128,
    /// How many leading zero bits the hash must have.
    pub bits: u8,
}

impl Challenge {
    /// A fresh challenge of `bits` (at most [`MAX_BITS`]).
    pub(crate) fn new(bits: u8) -> Challenge {
        Challenge {
            seed: rand::random(),
            bits: bits.min(MAX_BITS),
        }
    }

    /// Whether `nonce` solves this challenge: one hash.
    pub fn solved_by(&self, nonce: u32) -> bool {
        leading_zero_bits(&hash(self.seed, nonce)) >= u32::from(self.bits)
    }

    /// The first nonce that solves the challenge, counting from zero (what the browser's
    /// worker and the load generator do). `None` only if none of the 2^32 does.
    pub fn solve(&self) -> Option<u32> {
        (0..=u32::MAX).find(|&nonce| self.solved_by(nonce))
    }

    /// The seed as it is written on the wire: 32 lower-case hex digits.
    pub fn seed_hex(&self) -> String {
        format!("{:032x}", self.seed)
    }

    /// Reads a challenge as the server writes it (`seed` in hex, `bits`).
    pub fn from_wire(seed: &str, bits: u64) -> Option<Challenge> {
        if seed.len() != 32 || !seed.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        Some(Challenge {
            seed: u128::from_str_radix(seed, 16).ok()?,
            bits: u8::try_from(bits).ok()?,
        })
    }
}

/// SHA-256 of the seed's 16 bytes and the nonce's 4, both big-endian.
fn hash(seed: u128, nonce: u32) -> [u8; 32] {
    let mut input = [0u8; 20];
    input[..16].copy_from_slice(&seed.to_be_bytes());
    input[16..].copy_from_slice(&nonce.to_be_bytes());
    Sha256::digest(input).into()
}

fn leading_zero_bits(digest: &[u8; 32]) -> u32 {
    let mut zeros = 0;
    for byte in digest {
        zeros += byte.leading_zeros();
        if *byte != 0 {
            break;
        }
    }
    zeros
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hash is SHA-256 of the 20 bytes, as the browser's worker computes it: the vector
    /// is checked against `printf '\x00…\x01\x00\x00\x00\x02' | sha256sum`, and the same
    /// one is in tests/js/pow.test.mjs.
    #[test]
    fn the_hash_is_sha256_of_seed_and_nonce() {
        let digest = hash(1, 2);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "941041afcec675aa551ed828e484e7c16d1d93757c816b17986763b4952e718c"
        );
    }

    #[test]
    fn a_solution_has_the_leading_zero_bits_and_others_do_not() {
        let challenge = Challenge { seed: 7, bits: 12 };
        let nonce = challenge.solve().expect("2^12 is easily found");
        assert!(challenge.solved_by(nonce));
        assert!(leading_zero_bits(&hash(7, nonce)) >= 12);
        // Every nonce before the first solution fails: the search found the first.
        assert!((0..nonce).all(|n| !challenge.solved_by(n)));
        let other = Challenge {
            seed: 8,
            ..challenge
        };
        let forged = (0..).find(|&n| !other.solved_by(n)).unwrap();
        assert!(!other.solved_by(forged));
        assert!(
            Challenge { seed: 7, bits: 0 }.solved_by(12345),
            "0 bits: anything"
        );
    }

    #[test]
    fn challenges_read_back_what_they_write() {
        let challenge = Challenge::new(40);
        assert_eq!(challenge.bits, MAX_BITS, "capped");
        let back = Challenge::from_wire(&challenge.seed_hex(), challenge.bits.into());
        assert_eq!(back, Some(challenge));
        assert_eq!(Challenge::from_wire("xyz", 3), None);
        assert_ne!(
            Challenge::new(8).seed,
            Challenge::new(8).seed,
            "random seeds"
        );
    }

    #[test]
    fn leading_zero_bits_count_across_bytes() {
        let mut digest = [0u8; 32];
        digest[2] = 0b0001_0000;
        assert_eq!(leading_zero_bits(&digest), 19);
        assert_eq!(leading_zero_bits(&[0; 32]), 256);
    }
}
