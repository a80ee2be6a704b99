//! Argon2id over PHC strings: hash, verify, needs-rehash. Synchronous and CPU-bound (one derivation
//! is ~7–9 ms at the default parameters in a release build): async code calls it through
//! [`PasswordService`](super::PasswordService), never directly.

use std::fmt;
use std::sync::{Mutex, PoisonError};

use argon2_rust::{Algorithm, Argon2, Hasher, Version};
use secrecy::SecretString;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::params::TAG_LEN;
use super::{Argon2Params, MAX_PASSWORD_BYTES, normalize};

/// Salt length in bytes (RFC 9106 §3.1 recommends 16), drawn from the OS CSPRNG for every hash.
const SALT_LEN: usize = 16;

/// The longest PHC string looked at. Ours are 97 bytes; anything beyond this is refused before the
/// decoder sizes buffers from it.
const MAX_PHC_LEN: usize = 512;

/// Tag lengths accepted from a stored hash (ours are [`TAG_LEN`]).
const TAG_LEN_RANGE: std::ops::RangeInclusive<usize> = 16..=64;

/// Why hashing or verifying a password failed. No variant carries the password or anything
/// derived from it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordHashError {
    /// A configured cost is below the OWASP minimum.
    #[error("argon2 {name} = {value} is below the OWASP minimum of {minimum}")]
    WeakParams {
        /// Which parameter (`memory_kib`, `iterations` or `parallelism`).
        name: &'static str,
        /// The configured value.
        value: u32,
        /// The floor.
        minimum: u32,
    },
    /// Argon2 refuses the configured parameters (too many lanes for the memory, too large …).
    #[error("invalid argon2 parameters: {0}")]
    InvalidParams(String),
    /// The password is longer than anything the policy could have accepted.
    #[error("the password is longer than {MAX_PASSWORD_BYTES} bytes")]
    PasswordTooLong,
    /// The stored hash is not an argon2id PHC string.
    #[error("the stored password hash is not an argon2id PHC string")]
    MalformedHash,
    /// The stored hash asks for more work than this service will do for one login.
    #[error(
        "the stored password hash asks for more than this service will spend on it (m={memory_kib} KiB, t={iterations}, p={parallelism})"
    )]
    HashTooCostly {
        /// `m` in the stored string.
        memory_kib: u32,
        /// `t` in the stored string.
        iterations: u32,
        /// `p` in the stored string.
        parallelism: u32,
    },
    /// The operating system's random generator failed.
    #[error("the system random generator failed")]
    Random,
    /// Argon2 itself failed (most likely it could not allocate its memory).
    #[error("argon2 failed: {0}")]
    Argon2(argon2_rust::Error),
    /// The blocking task did not complete (runtime shutting down).
    #[error("the password hashing task did not complete")]
    Unavailable,
}

/// A stored hash, decoded and checked against the verification ceiling.
struct StoredHash {
    argon2: Argon2,
    params: Argon2Params,
    salt: Vec<u8>,
    tag: Vec<u8>,
}

impl StoredHash {
    fn parse(phc: &str, ceiling: Argon2Params) -> Result<Self, PasswordHashError> {
        if phc.len() > MAX_PHC_LEN {
            return Err(PasswordHashError::MalformedHash);
        }
        let decoded =
            argon2_rust::decode_string(phc, Algorithm::Argon2id).map_err(|_| PasswordHashError::MalformedHash)?;
        let params = Argon2Params {
            memory_kib: decoded.params.memory_kib(),
            iterations: decoded.params.passes(),
            parallelism: decoded.params.lanes(),
        };
        if params.max(ceiling) != ceiling {
            return Err(PasswordHashError::HashTooCostly {
                memory_kib: params.memory_kib,
                iterations: params.iterations,
                parallelism: params.parallelism,
            });
        }
        if !TAG_LEN_RANGE.contains(&decoded.hash.len()) {
            return Err(PasswordHashError::MalformedHash);
        }
        // One thread per derivation whatever the lanes: the service's permits count cores.
        let argon2_params =
            decoded.params.to_builder().threads(1).build().map_err(|_| PasswordHashError::MalformedHash)?;
        Ok(Self {
            argon2: Argon2::new(Algorithm::Argon2id, decoded.version, argon2_params),
            params,
            salt: decoded.salt,
            tag: decoded.hash,
        })
    }
}

/// Argon2id password hashing to and from PHC strings (`$argon2id$v=19$m=19456,t=2,p=1$salt$tag`).
///
/// - [`hash`](Self::hash) draws a 16-byte salt from the OS CSPRNG (aws-lc-rs) and returns the PHC
///   string to store.
/// - [`verify`](Self::verify) re-derives with the stored parameters and salt and compares the tags
///   with [`subtle::ConstantTimeEq`]; hashes made with older (weaker or stronger) parameters still
///   verify, up to a ceiling that keeps a corrupted row from costing gigabytes.
/// - [`needs_rehash`](Self::needs_rehash) says when a stored hash was made with other parameters, so
///   a successful login can upgrade it.
///
/// Argon2 memory is reused: up to `pool_capacity` arenas (default: the number of cores) are kept,
/// wiped, between derivations, which saves the mapping and page faults of a fresh 19 MiB each time.
///
/// Every method blocks for a full argon2 derivation. Call them from blocking threads only.
pub struct PasswordHasher {
    params: Argon2Params,
    argon2: Argon2,
    /// Hash ceiling for verification: [`Argon2Params::VERIFY_CEILING`] or the configured
    /// parameters, whichever is higher in each number.
    ceiling: Argon2Params,
    /// Argon2 arenas between uses. `std::sync::Mutex`: held only to push or pop, never across an
    /// `.await` or a derivation.
    pool: Mutex<Vec<Hasher>>,
    pool_capacity: usize,
}

impl PasswordHasher {
    /// A hasher with these parameters.
    ///
    /// # Errors
    /// [`PasswordHashError::WeakParams`] if any parameter is below [`Argon2Params::OWASP_MINIMUM`];
    /// [`PasswordHashError::InvalidParams`] if argon2 refuses them.
    pub fn new(params: Argon2Params) -> Result<Self, PasswordHashError> {
        params.validate()?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.to_argon2()?);
        Ok(Self {
            params,
            argon2,
            ceiling: Argon2Params::VERIFY_CEILING.max(params),
            pool: Mutex::new(Vec::new()),
            pool_capacity: std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
        })
    }

    /// Keeps at most `capacity` argon2 arenas for reuse; `0` allocates and frees one per derivation.
    #[must_use]
    pub fn with_pool_capacity(mut self, capacity: usize) -> Self {
        self.set_pool_capacity(capacity);
        self
    }

    pub(crate) fn set_pool_capacity(&mut self, capacity: usize) {
        self.pool_capacity = capacity;
        let pool = self.pool.get_mut().unwrap_or_else(PoisonError::into_inner);
        pool.truncate(capacity);
    }

    /// The configured parameters.
    pub fn params(&self) -> Argon2Params {
        self.params
    }

    /// Hashes a password (NFKC-normalised first) with a fresh random salt; returns the PHC string.
    ///
    /// # Errors
    /// [`PasswordHashError::PasswordTooLong`] past 4096 bytes, [`PasswordHashError::Random`] if the
    /// OS random generator fails, [`PasswordHashError::Argon2`] if argon2 cannot allocate.
    pub fn hash(&self, password: &SecretString) -> Result<String, PasswordHashError> {
        let normal = normalize(password).ok_or(PasswordHashError::PasswordTooLong)?;
        self.hash_bytes(normal.as_bytes())
    }

    /// Hashes raw bytes (already normalised, or random for the dummy hash).
    pub(crate) fn hash_bytes(&self, password: &[u8]) -> Result<String, PasswordHashError> {
        let mut salt = [0u8; SALT_LEN];
        aws_lc_rs::rand::fill(&mut salt).map_err(|_| PasswordHashError::Random)?;
        let mut tag = Zeroizing::new([0u8; TAG_LEN]);
        self.derive(self.argon2, password, &salt, tag.as_mut())?;
        argon2_rust::encode_string_alloc(Algorithm::Argon2id, Version::V0x13, self.argon2.params(), &salt, tag.as_ref())
            .map_err(PasswordHashError::Argon2)
    }

    /// Whether `password` is the one `phc` was made from.
    ///
    /// A password longer than 4096 bytes is never a match (and is refused at once, before any
    /// derivation: it is not the stored password, whoever the user is).
    ///
    /// # Errors
    /// [`PasswordHashError::MalformedHash`] when `phc` is not an argon2id PHC string,
    /// [`PasswordHashError::HashTooCostly`] when its parameters exceed the verification ceiling,
    /// [`PasswordHashError::Argon2`] if argon2 cannot allocate. A wrong password is `Ok(false)`.
    pub fn verify(&self, password: &SecretString, phc: &str) -> Result<bool, PasswordHashError> {
        let stored = StoredHash::parse(phc, self.ceiling)?;
        let Some(normal) = normalize(password) else {
            return Ok(false);
        };
        let mut derived = Zeroizing::new(vec![0u8; stored.tag.len()]);
        self.derive(stored.argon2, normal.as_bytes(), &stored.salt, derived.as_mut_slice())?;
        Ok(bool::from(derived.as_slice().ct_eq(stored.tag.as_slice())))
    }

    /// Whether a stored hash should be replaced by a fresh one with the configured parameters: it
    /// was made with other parameters, another argon2 version, a shorter salt or tag, or it cannot
    /// be read at all.
    pub fn needs_rehash(&self, phc: &str) -> bool {
        match StoredHash::parse(phc, self.ceiling) {
            Ok(stored) => {
                stored.params != self.params
                    || stored.argon2.version() != Version::V0x13
                    || stored.salt.len() < SALT_LEN
                    || stored.tag.len() != TAG_LEN
            }
            Err(_) => true,
        }
    }

    /// Derives a tag into `out`, on a pooled arena when one is free.
    fn derive(&self, argon2: Argon2, password: &[u8], salt: &[u8], out: &mut [u8]) -> Result<(), PasswordHashError> {
        let mut hasher = self.take_hasher(argon2);
        let result = hasher.hash_into(password, salt, out).map_err(PasswordHashError::Argon2);
        // An arena grown for a costlier stored hash is not kept: it would pin that memory forever.
        if argon2.params().memory_kib() <= self.argon2.params().memory_kib() {
            self.give_back(hasher);
        }
        result
    }

    fn take_hasher(&self, argon2: Argon2) -> Hasher {
        let pooled = self.pool.lock().unwrap_or_else(PoisonError::into_inner).pop();
        match pooled {
            Some(mut hasher) => {
                hasher.set_argon2(argon2);
                hasher
            }
            None => argon2.hasher(),
        }
    }

    fn give_back(&self, hasher: Hasher) {
        let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        if pool.len() < self.pool_capacity {
            pool.push(hasher);
        }
        // Otherwise `hasher` drops here and its (already wiped) arena is freed.
    }

    /// Frees every pooled arena (they are made again on demand). Used after start-up work, so an idle
    /// server does not hold argon2 memory it is not using.
    pub(crate) fn release_arenas(&self) {
        self.pool.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }

    #[cfg(test)]
    pub(crate) fn pooled(&self) -> usize {
        self.pool.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

impl fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("params", &self.params)
            .field("pool_capacity", &self.pool_capacity)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2_rust::Params;
    use argon2_rust::params::{Memory, TagLen};

    fn secret(s: &str) -> SecretString {
        SecretString::from(s)
    }

    fn default_hasher() -> PasswordHasher {
        PasswordHasher::new(Argon2Params::default()).unwrap()
    }

    /// RFC 9106 §5.3 (argon2id, version 0x13): m=32 KiB, t=3, p=4, 32-byte tag, password = 32 × 0x01,
    /// salt = 16 × 0x02, secret K = 8 × 0x03, associated data X = 12 × 0x04.
    /// <https://www.rfc-editor.org/rfc/rfc9106#section-5.3>
    const RFC9106_ARGON2ID_TAG: [u8; 32] = [
        0x0d, 0x64, 0x0d, 0xf5, 0x8d, 0x78, 0x76, 0x6c, 0x08, 0xc0, 0x37, 0xa3, 0x4a, 0x8b, 0x53, 0xc9, 0xd0, 0x1e,
        0xf0, 0x45, 0x2d, 0x75, 0xb6, 0x5e, 0xb5, 0x25, 0x20, 0xe9, 0x6b, 0x01, 0xe6, 0x59,
    ];

    #[test]
    fn engine_matches_rfc9106_argon2id_vector() {
        let params =
            Params::builder().memory(Memory::kib(32)).passes(3).lanes(4).tag_len(TagLen::bytes(32)).build().unwrap();
        let one_shot = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut tag = [0u8; 32];
        one_shot.hash_into_with_ad(&[0x01; 32], &[0x02; 16], &[0x03; 8], &[0x04; 12], &mut tag).unwrap();
        assert_eq!(tag, RFC9106_ARGON2ID_TAG);

        // The shape production uses: a reused arena and one thread for all four lanes.
        let single_thread =
            Argon2::new(Algorithm::Argon2id, Version::V0x13, params.to_builder().threads(1).build().unwrap());
        let mut reused = single_thread.hasher();
        for _ in 0..2 {
            let mut again = [0u8; 32];
            reused.hash_into_with_ad(&[0x01; 32], &[0x02; 16], &[0x03; 8], &[0x04; 12], &mut again).unwrap();
            assert_eq!(again, RFC9106_ARGON2ID_TAG);
        }
    }

    /// PHC strings from the reference implementation's own tests (phc-winner-argon2 `src/test.c`,
    /// argon2id, version 0x13, password "password", salt "somesalt"): they carry no secret or
    /// associated data, so they run through this module's own decode → derive → compare path.
    /// <https://github.com/P-H-C/phc-winner-argon2/blob/master/src/test.c>
    const REFERENCE_M256_T2_P1: &str =
        "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4";
    const REFERENCE_M256_T2_P2: &str =
        "$argon2id$v=19$m=256,t=2,p=2$c29tZXNhbHQ$bQk8UB/VmZZF4Oo79iDXuL5/0ttZwg2f/5U52iv1cDc";

    #[test]
    fn verifies_reference_implementation_vectors() {
        let hasher = default_hasher();
        for phc in [REFERENCE_M256_T2_P1, REFERENCE_M256_T2_P2] {
            assert_eq!(hasher.verify(&secret("password"), phc), Ok(true), "{phc}");
            assert_eq!(hasher.verify(&secret("passwore"), phc), Ok(false), "{phc}");
            // Weaker than configured, and an 8-byte salt: upgrade on the next login.
            assert!(hasher.needs_rehash(phc));
        }
    }

    #[test]
    fn hash_produces_a_phc_string_with_the_configured_parameters() {
        let hasher = default_hasher();
        let phc = hasher.hash(&secret("correct horse battery staple")).unwrap();
        let rest = phc.strip_prefix("$argon2id$v=19$m=19456,t=2,p=1$").unwrap();
        let (salt, tag) = rest.split_once('$').unwrap();
        // Unpadded base64: 16 bytes are 22 characters, 32 bytes are 43.
        assert_eq!((salt.len(), tag.len()), (22, 43), "{phc}");
        let decoded = argon2_rust::decode_string(&phc, Algorithm::Argon2id).unwrap();
        assert_eq!((decoded.salt.len(), decoded.hash.len()), (SALT_LEN, TAG_LEN));
        // A fresh salt every time.
        let again = hasher.hash(&secret("correct horse battery staple")).unwrap();
        assert_ne!(phc, again);
    }

    #[test]
    fn round_trip_and_wrong_password() {
        let hasher = default_hasher();
        let phc = hasher.hash(&secret("correct horse battery staple")).unwrap();
        assert_eq!(hasher.verify(&secret("correct horse battery staple"), &phc), Ok(true));
        assert_eq!(hasher.verify(&secret("correct horse battery stapl"), &phc), Ok(false));
        assert_eq!(hasher.verify(&secret("Correct horse battery staple"), &phc), Ok(false));
        assert_eq!(hasher.verify(&secret(""), &phc), Ok(false));
        assert!(!hasher.needs_rehash(&phc));
    }

    #[test]
    fn unicode_forms_of_one_password_verify_alike() {
        let hasher = default_hasher();
        let phc = hasher.hash(&secret("mot de passe \u{e9}t\u{e9}")).unwrap();
        assert_eq!(hasher.verify(&secret("mot de passe e\u{301}te\u{301}"), &phc), Ok(true));
    }

    #[test]
    fn tampered_phc_is_refused() {
        let hasher = default_hasher();
        let phc = hasher.hash(&secret("correct horse battery staple")).unwrap();
        let good = secret("correct horse battery staple");
        let (head, tag) = phc.rsplit_once('$').unwrap();
        let (front, salt) = head.rsplit_once('$').unwrap();

        let flip = |s: &str, at: usize| -> String {
            let mut bytes = s.as_bytes().to_vec();
            bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
            String::from_utf8(bytes).unwrap()
        };
        // A changed tag byte, salt byte or cost no longer matches.
        for tampered in [
            format!("{head}${}", flip(tag, 10)),
            format!("{front}${}${tag}", flip(salt, 5)),
            phc.replace("t=2", "t=3"),
            phc.replace("m=19456", "m=19457"),
            phc.replace("$v=19$", "$v=16$"),
        ] {
            assert_eq!(hasher.verify(&good, &tampered), Ok(false), "{tampered}");
        }
        // Broken structure, another algorithm, or an absurd cost is an error, never a match.
        for broken in [
            format!("{head}$"),
            head.to_owned(),
            phc.replace("argon2id", "argon2i"),
            phc.replace("argon2id", "argon2d"),
            format!("{phc}$"),
            String::new(),
            "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW".to_owned(),
        ] {
            assert_eq!(hasher.verify(&good, &broken), Err(PasswordHashError::MalformedHash), "{broken}");
        }
        let huge = phc.replace("m=19456", "m=4294967295");
        assert!(matches!(hasher.verify(&good, &huge), Err(PasswordHashError::HashTooCostly { .. })));
        let padded = format!("{front}${}${tag}", "A".repeat(600));
        assert_eq!(hasher.verify(&good, &padded), Err(PasswordHashError::MalformedHash));
    }

    #[test]
    fn needs_rehash_when_parameters_differ() {
        let current = default_hasher();
        let stronger = PasswordHasher::new(Argon2Params { memory_kib: 24_576, ..Argon2Params::default() }).unwrap();
        let old = current.hash(&secret("correct horse battery staple")).unwrap();
        assert!(!current.needs_rehash(&old));
        assert!(stronger.needs_rehash(&old));
        // The upgraded hasher still verifies the old hash, then its own fresh one needs nothing.
        assert_eq!(stronger.verify(&secret("correct horse battery staple"), &old), Ok(true));
        let new = stronger.hash(&secret("correct horse battery staple")).unwrap();
        assert!(new.contains("$m=24576,t=2,p=1$"));
        assert!(!stronger.needs_rehash(&new));
        // A stronger stored hash than configured differs too (configuration was lowered).
        assert!(current.needs_rehash(&new));
        assert!(current.needs_rehash(&old.replace("$v=19$", "$v=16$")));
        assert!(current.needs_rehash("not a hash"));
    }

    #[test]
    fn oversized_passwords_are_refused_without_deriving() {
        let hasher = default_hasher();
        let long = secret(&"a".repeat(MAX_PASSWORD_BYTES + 1));
        assert_eq!(hasher.hash(&long), Err(PasswordHashError::PasswordTooLong));
        assert_eq!(hasher.verify(&long, REFERENCE_M256_T2_P1), Ok(false));
    }

    #[test]
    fn arenas_are_pooled_up_to_capacity() {
        let hasher = default_hasher().with_pool_capacity(1);
        assert_eq!(hasher.pooled(), 0);
        let phc = hasher.hash(&secret("correct horse battery staple")).unwrap();
        assert_eq!(hasher.pooled(), 1);
        assert_eq!(hasher.verify(&secret("correct horse battery staple"), &phc), Ok(true));
        assert_eq!(hasher.pooled(), 1);

        let one_shot = default_hasher().with_pool_capacity(0);
        assert_eq!(one_shot.verify(&secret("correct horse battery staple"), &phc), Ok(true));
        assert_eq!(one_shot.pooled(), 0);

        // An arena grown for a costlier stored hash is not kept.
        let costly = PasswordHasher::new(Argon2Params { memory_kib: 32_768, ..Argon2Params::default() }).unwrap();
        let costly_phc = costly.hash(&secret("correct horse battery staple")).unwrap();
        let pooled = default_hasher().with_pool_capacity(1);
        assert_eq!(pooled.verify(&secret("correct horse battery staple"), &costly_phc), Ok(true));
        assert_eq!(pooled.pooled(), 0);
    }

    #[test]
    fn debug_shows_parameters_only() {
        let text = format!("{:?}", default_hasher());
        assert!(text.contains("memory_kib: 19456"), "{text}");
    }
}
