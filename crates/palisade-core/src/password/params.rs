//! Argon2id cost parameters, and the floor below which they are refused.

use argon2_rust::Params;
use argon2_rust::params::{Memory, TagLen};

use super::PasswordHashError;

/// Length of every tag this module derives, in bytes (the RFC 9106 and OWASP recommendation).
pub(crate) const TAG_LEN: usize = 32;

/// Argon2id cost parameters.
///
/// The default is the OWASP Password Storage Cheat Sheet minimum for argon2id: 19 MiB of memory,
/// 2 iterations, 1 lane. A [`PasswordHasher`](super::PasswordHasher) refuses anything weaker in
/// any one of the three numbers (OWASP's equivalent trade-offs, such as 46 MiB with one iteration,
/// are refused too: one floor per number is simpler to audit than a table of equivalences).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Argon2Params {
    /// Memory per hash, in KiB (argon2 `m`).
    pub memory_kib: u32,
    /// Passes over the memory (argon2 `t`).
    pub iterations: u32,
    /// Lanes (argon2 `p`). Lanes change the hash, not the number of threads: each derivation runs
    /// on one thread, so the service's concurrency limit counts cores.
    pub parallelism: u32,
}

impl Argon2Params {
    /// The OWASP minimum for argon2id: m=19456 KiB, t=2, p=1.
    pub const OWASP_MINIMUM: Self = Self { memory_kib: 19_456, iterations: 2, parallelism: 1 };

    /// The most a stored hash may cost to be verified at all, unless the configured parameters are
    /// higher still: 256 MiB, 16 iterations, 16 lanes. A PHC string is data read back from the
    /// store; one with `m=4294967295` must be refused before anything is allocated for it.
    pub(crate) const VERIFY_CEILING: Self = Self { memory_kib: 262_144, iterations: 16, parallelism: 16 };

    /// Checks the parameters against [`Self::OWASP_MINIMUM`] and argon2's own limits.
    ///
    /// # Errors
    /// [`PasswordHashError::WeakParams`] naming the first number below the floor, or
    /// [`PasswordHashError::InvalidParams`] when argon2 refuses the combination (e.g. too many lanes).
    pub fn validate(&self) -> Result<(), PasswordHashError> {
        let floor = Self::OWASP_MINIMUM;
        for (name, value, minimum) in [
            ("memory_kib", self.memory_kib, floor.memory_kib),
            ("iterations", self.iterations, floor.iterations),
            ("parallelism", self.parallelism, floor.parallelism),
        ] {
            if value < minimum {
                return Err(PasswordHashError::WeakParams { name, value, minimum });
            }
        }
        self.to_argon2().map(|_| ())
    }

    /// The componentwise maximum of two parameter sets.
    pub(crate) fn max(self, other: Self) -> Self {
        Self {
            memory_kib: self.memory_kib.max(other.memory_kib),
            iterations: self.iterations.max(other.iterations),
            parallelism: self.parallelism.max(other.parallelism),
        }
    }

    /// The argon2-rust parameters: these costs, a 32-byte tag, and one thread whatever the lanes.
    pub(crate) fn to_argon2(self) -> Result<Params, PasswordHashError> {
        Params::builder()
            .memory(Memory::kib(u64::from(self.memory_kib)))
            .passes(self.iterations)
            .lanes(self.parallelism)
            .threads(1)
            .tag_len(TagLen::bytes(TAG_LEN as u64))
            .build()
            .map_err(|e| PasswordHashError::InvalidParams(e.to_string()))
    }
}

impl Default for Argon2Params {
    fn default() -> Self {
        Self::OWASP_MINIMUM
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_the_owasp_minimum() {
        let p = Argon2Params::default();
        assert_eq!((p.memory_kib, p.iterations, p.parallelism), (19_456, 2, 1));
        assert!(p.validate().is_ok());
    }

    #[test]
    fn weaker_parameters_are_refused_by_name() {
        let base = Argon2Params::default();
        for (weak, field) in [
            (Argon2Params { memory_kib: 19_455, ..base }, "memory_kib"),
            (Argon2Params { iterations: 1, ..base }, "iterations"),
            (Argon2Params { parallelism: 0, ..base }, "parallelism"),
        ] {
            match weak.validate() {
                Err(PasswordHashError::WeakParams { name, .. }) => assert_eq!(name, field),
                other => panic!("{field}: expected WeakParams, got {other:?}"),
            }
        }
    }

    #[test]
    fn stronger_parameters_are_accepted_and_argon2_limits_still_apply() {
        let strong = Argon2Params { memory_kib: 65_536, iterations: 3, parallelism: 4 };
        assert!(strong.validate().is_ok());
        let p = strong.to_argon2().unwrap();
        assert_eq!((p.memory_kib(), p.passes(), p.lanes(), p.threads()), (65_536, 3, 4, 1));
        // Argon2 needs at least 8 blocks per lane: 19456 KiB cannot hold 4096 lanes.
        let absurd = Argon2Params { parallelism: 4096, ..Argon2Params::default() };
        assert!(matches!(absurd.validate(), Err(PasswordHashError::InvalidParams(_))));
    }
}
