//! JWT signing keys: generation, sealing at rest, the JWK Set, and the JWS signatures that access
//! tokens (and later ID tokens) are made and checked with.
//!
//! # Layout
//! - [`SigningAlgorithm`]: EdDSA (Ed25519, the default), ES256 (P-256), RS256 (RSA 2048), HS256.
//! - [`SigningKeys`]: every stored key, loaded once into memory (public keys for verifying, the one
//!   active private key for signing), with the [`JwkSet`] published at `/.well-known/jwks.json`.
//! - [`thumbprint`]: RFC 7638 JWK thumbprints, which name every key (the JWT `kid`).
//!
//! # Rules
//! - Asymmetric private keys are generated here (aws-lc-rs only, never the `rsa` crate), sealed by the
//!   [`Keyring`] as PKCS#8 DER under a context naming the key, and stored only in that form. Only the
//!   active key is ever decrypted.
//! - The HS256 secret comes from configuration and lives only in memory: it is never stored, never
//!   published and never logged.
//! - A signature is checked with its key's algorithm only; the header's `alg` merely has to agree.
//! - Time comes from the [`Clock`] port.
//!
//! Signing goes straight to aws-lc-rs with key pairs parsed once: jsonwebtoken's `EncodingKey` would
//! re-parse (and, for RSA, re-validate) the private key on every token, and it wants RSA keys as
//! PKCS#1, which aws-lc-rs cannot export. Verifying uses jsonwebtoken's `DecodingKey`s, cached.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, PoisonError, RwLock};

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RSA_PKCS1_SHA256, RsaKeyPair,
};
use aws_lc_rs::{digest, hmac};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use secrecy::{ExposeSecret as _, SecretSlice};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use super::SigningKeyRecord;
use super::access::Rejection;
use crate::clock::Clock;
use crate::crypto::{CryptoError, DataClassification, EncryptionContext, Envelope, Keyring};
use crate::store::{SigningKeyStore, StoreError};
use crate::user::InvalidInput;

/// Shortest HS256 secret accepted, in bytes (RFC 7518 §3.2: at least the hash output size).
pub const HS256_MIN_SECRET_LEN: usize = 32;

/// The `purpose` of the encryption context private signing keys are sealed under.
pub const SIGNING_KEY_PURPOSE: &str = "jwt-signing-key";

/// RSA key size generated for RS256.
const RSA_KEY_SIZE: KeySize = KeySize::Rsa2048;

/// Longest JWS accepted by [`SigningKeys::verify_jws`]; anything longer is refused unread.
const MAX_JWS_LEN: usize = 8 * 1024;

/// Largest decoded JWS header accepted (ours are about 100 bytes); it is decoded on the stack.
const MAX_HEADER_LEN: usize = 512;

/// How many times [`SigningKeys`] re-reads the store after losing a race to create a key before it
/// gives up (each loss means another instance's key is there to be read).
const MAX_CREATE_ATTEMPTS: usize = 4;

/// A JWS signature algorithm Palisade signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[allow(clippy::upper_case_acronyms)] // the JOSE names, as configured and as written in tokens
pub enum SigningAlgorithm {
    /// Ed25519 (RFC 8037). The default: small, fast and deterministic.
    #[default]
    EdDSA,
    /// ECDSA over P-256 with SHA-256.
    ES256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, over a 2048-bit key.
    RS256,
    /// HMAC-SHA256 with a secret from configuration; nothing is published, so only Palisade itself
    /// can verify these tokens.
    HS256,
}

impl SigningAlgorithm {
    /// Every algorithm, in the order they are documented.
    pub const ALL: [Self; 4] = [Self::EdDSA, Self::ES256, Self::RS256, Self::HS256];

    /// The JOSE name (`EdDSA`, `ES256`, `RS256`, `HS256`), as stored and as written in `alg`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EdDSA => "EdDSA",
            Self::ES256 => "ES256",
            Self::RS256 => "RS256",
            Self::HS256 => "HS256",
        }
    }

    /// Parses the JOSE name, exactly as spelled (JOSE names are case-sensitive).
    pub fn parse(text: &str) -> Result<Self, InvalidInput> {
        Self::ALL
            .into_iter()
            .find(|alg| alg.as_str() == text)
            .ok_or(InvalidInput::new("jwt_algorithm", "one of EdDSA, ES256, RS256, HS256"))
    }

    /// Whether the key is a shared secret (HS256) rather than a key pair.
    pub fn is_symmetric(self) -> bool {
        self == Self::HS256
    }

    fn jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::EdDSA => jsonwebtoken::Algorithm::EdDSA,
            Self::ES256 => jsonwebtoken::Algorithm::ES256,
            Self::RS256 => jsonwebtoken::Algorithm::RS256,
            Self::HS256 => jsonwebtoken::Algorithm::HS256,
        }
    }
}

impl fmt::Display for SigningAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SigningAlgorithm {
    type Err = InvalidInput;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Why signing keys could not be loaded, made or used. Never carries key material.
#[derive(Debug, thiserror::Error)]
pub enum SigningKeyError {
    /// The store failed (unreachable: callers answer 503).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The keyring could not seal or open a private key (wrong master key, store unreachable).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// HS256 is configured without a usable secret.
    #[error("HS256 needs a secret of at least {HS256_MIN_SECRET_LEN} bytes (PALISADE_JWT_SECRET): {0}")]
    Hs256Secret(&'static str),
    /// A stored key cannot be used: its record disagrees with itself (a bug or tampering).
    #[error("stored signing key {kid:?} is unusable: {reason}")]
    Corrupt {
        /// The key's `kid` as stored.
        kid: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The crypto library failed (generating a key, signing, or serialising a token).
    #[error("{0} failed")]
    Failed(&'static str),
    /// Other instances kept winning the race to create a key, yet none could be read back.
    #[error("no {0} signing key could be created or read back")]
    NoActiveKey(SigningAlgorithm),
}

impl SigningKeyError {
    /// Whether the failure is a store being unreachable (retry later, answer 503).
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Store(e) => e.is_unavailable(),
            Self::Crypto(e) => e.is_unavailable(),
            _ => false,
        }
    }

    fn corrupt(kid: &str, reason: &'static str) -> Self {
        Self::Corrupt { kid: kid.to_owned(), reason }
    }
}

/// A public key as a JSON Web Key (RFC 7517), with `kid`, `alg` and `use` set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// Key type: `OKP`, `EC` or `RSA`.
    pub kty: String,
    /// Curve (`Ed25519`, `P-256`), for `OKP` and `EC` keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// Public point x (or the Ed25519 public key), base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// Public point y, base64url, for `EC` keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// RSA modulus, base64url big-endian without leading zeros.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// RSA public exponent, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    /// The RFC 7638 thumbprint of the key.
    pub kid: String,
    /// The one algorithm the key is used with.
    pub alg: String,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub key_use: String,
}

/// A JWK Set (RFC 7517 §5): the document served at `/.well-known/jwks.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwkSet {
    /// The keys.
    pub keys: Vec<Jwk>,
}

/// Public facts about the key that signs, for status displays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyInfo {
    /// Its `kid`.
    pub kid: String,
    /// Its algorithm.
    pub algorithm: SigningAlgorithm,
    /// Its stored version (`None` for HS256, which is never stored).
    pub version: Option<u32>,
}

/// The RFC 7638 thumbprint of a JWK given as its canonical JSON: base64url (no padding) of SHA-256.
///
/// The canonical JSON holds only the required members, in lexicographic order, with no whitespace:
/// `{"crv","kty","x"}` for OKP, `{"crv","kty","x","y"}` for EC, `{"e","kty","n"}` for RSA and
/// `{"k","kty"}` for oct.
pub fn thumbprint(canonical_json: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, canonical_json))
}

/// A public key, decoded and checked.
#[derive(Clone, PartialEq, Eq)]
enum PublicKey {
    Ed25519 { x: [u8; 32] },
    P256 { x: [u8; 32], y: [u8; 32] },
    Rsa { n: Vec<u8>, e: Vec<u8> },
}

impl PublicKey {
    fn algorithm(&self) -> SigningAlgorithm {
        match self {
            Self::Ed25519 { .. } => SigningAlgorithm::EdDSA,
            Self::P256 { .. } => SigningAlgorithm::ES256,
            Self::Rsa { .. } => SigningAlgorithm::RS256,
        }
    }

    /// The RFC 7638 canonical JSON. Every value is base64url, so nothing needs escaping.
    fn canonical_json(&self) -> String {
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        match self {
            Self::Ed25519 { x } => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, b64(x)),
            Self::P256 { x, y } => format!(r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#, b64(x), b64(y)),
            Self::Rsa { n, e } => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, b64(e), b64(n)),
        }
    }

    fn thumbprint(&self) -> String {
        thumbprint(self.canonical_json().as_bytes())
    }

    fn to_jwk(&self, kid: &str) -> Jwk {
        let b64 = |bytes: &[u8]| Some(URL_SAFE_NO_PAD.encode(bytes));
        let mut jwk = Jwk {
            kty: String::new(),
            crv: None,
            x: None,
            y: None,
            n: None,
            e: None,
            kid: kid.to_owned(),
            alg: self.algorithm().as_str().to_owned(),
            key_use: "sig".to_owned(),
        };
        match self {
            Self::Ed25519 { x } => {
                jwk.kty = "OKP".into();
                jwk.crv = Some("Ed25519".into());
                jwk.x = b64(x);
            }
            Self::P256 { x, y } => {
                jwk.kty = "EC".into();
                jwk.crv = Some("P-256".into());
                jwk.x = b64(x);
                jwk.y = b64(y);
            }
            Self::Rsa { n, e } => {
                jwk.kty = "RSA".into();
                jwk.n = b64(n);
                jwk.e = b64(e);
            }
        }
        jwk
    }

    /// Reads the key members of `jwk` strictly: the right members for its type and nothing else,
    /// canonical base64url, exact lengths, RSA moduli of 2048 to 8192 bits without leading zeros.
    fn from_jwk(jwk: &Jwk) -> Result<Self, &'static str> {
        fn decode(field: Option<&String>) -> Result<Vec<u8>, &'static str> {
            let text = field.ok_or("a key member is missing")?;
            URL_SAFE_NO_PAD.decode(text).map_err(|_| "a key member is not base64url")
        }
        fn coordinate(field: Option<&String>) -> Result<[u8; 32], &'static str> {
            decode(field)?.try_into().map_err(|_| "a key member has the wrong length")
        }
        fn unsigned(bytes: &[u8], min: usize, max: usize) -> Result<(), &'static str> {
            match bytes.first() {
                Some(0) | None => Err("an RSA member is empty or has a leading zero"),
                Some(_) if bytes.len() < min || bytes.len() > max => Err("an RSA member has an unsupported size"),
                Some(_) => Ok(()),
            }
        }
        match (jwk.kty.as_str(), jwk.crv.as_deref()) {
            ("OKP", Some("Ed25519")) if jwk.y.is_none() && jwk.n.is_none() && jwk.e.is_none() => {
                Ok(Self::Ed25519 { x: coordinate(jwk.x.as_ref())? })
            }
            ("EC", Some("P-256")) if jwk.n.is_none() && jwk.e.is_none() => {
                Ok(Self::P256 { x: coordinate(jwk.x.as_ref())?, y: coordinate(jwk.y.as_ref())? })
            }
            ("RSA", None) if jwk.x.is_none() && jwk.y.is_none() => {
                let (n, e) = (decode(jwk.n.as_ref())?, decode(jwk.e.as_ref())?);
                unsigned(&n, 256, 1024)?;
                unsigned(&e, 1, 8)?;
                Ok(Self::Rsa { n, e })
            }
            _ => Err("unsupported key type or curve, or stray members"),
        }
    }

    fn decoding_key(&self) -> Result<DecodingKey, &'static str> {
        let bad = |_| "the key is not accepted by the JWT library";
        match self {
            Self::Ed25519 { x } => DecodingKey::from_ed_components(&URL_SAFE_NO_PAD.encode(x)).map_err(bad),
            Self::P256 { x, y } => {
                DecodingKey::from_ec_components(&URL_SAFE_NO_PAD.encode(x), &URL_SAFE_NO_PAD.encode(y)).map_err(bad)
            }
            Self::Rsa { n, e } => Ok(DecodingKey::from_rsa_raw_components(n, e)),
        }
    }
}

/// The RFC 7638 thumbprint of an HS256 secret's `oct` JWK. The canonical JSON holds the secret, so
/// it is built in place in a buffer that is wiped when dropped.
fn oct_thumbprint(secret: &[u8]) -> String {
    let k = Zeroizing::new(URL_SAFE_NO_PAD.encode(secret));
    let mut json = Zeroizing::new(String::with_capacity(k.len() + 24));
    json.push_str(r#"{"k":""#);
    json.push_str(&k);
    json.push_str(r#"","kty":"oct"}"#);
    thumbprint(json.as_bytes())
}

/// A private key parsed once, ready to sign.
enum Signer {
    Ed25519(Ed25519KeyPair),
    P256(EcdsaKeyPair),
    Rsa(RsaKeyPair),
    Hmac(Box<hmac::Key>),
}

impl Signer {
    /// Parses a PKCS#8 private key of `algorithm`, and returns its public half too.
    fn from_pkcs8(algorithm: SigningAlgorithm, pkcs8: &[u8]) -> Result<(Self, PublicKey), &'static str> {
        const REJECTED: &str = "the private key does not parse as PKCS#8 of its algorithm";
        match algorithm {
            SigningAlgorithm::EdDSA => {
                let pair = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|_| REJECTED)?;
                let x = pair.public_key().as_ref().try_into().map_err(|_| REJECTED)?;
                Ok((Self::Ed25519(pair), PublicKey::Ed25519 { x }))
            }
            SigningAlgorithm::ES256 => {
                let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8).map_err(|_| REJECTED)?;
                // Uncompressed SEC 1 point: 0x04 || x || y.
                let point = pair.public_key().as_ref();
                let (Some(4), Some(x), Some(y)) = (point.first(), point.get(1..33), point.get(33..65)) else {
                    return Err(REJECTED);
                };
                let public =
                    PublicKey::P256 { x: x.try_into().map_err(|_| REJECTED)?, y: y.try_into().map_err(|_| REJECTED)? };
                Ok((Self::P256(pair), public))
            }
            SigningAlgorithm::RS256 => {
                let pair = RsaKeyPair::from_pkcs8(pkcs8).map_err(|_| REJECTED)?;
                if pair.public_modulus_len() < 256 {
                    return Err("the RSA key is shorter than 2048 bits");
                }
                let public = pair.public_key();
                let n = public.modulus().big_endian_without_leading_zero().to_vec();
                let e = public.exponent().big_endian_without_leading_zero().to_vec();
                Ok((Self::Rsa(pair), PublicKey::Rsa { n, e }))
            }
            SigningAlgorithm::HS256 => Err("HS256 has no private key"),
        }
    }

    /// Generates a key pair of `algorithm` and returns it as PKCS#8 DER (wiped when dropped).
    fn generate_pkcs8(algorithm: SigningAlgorithm) -> Result<Zeroizing<Vec<u8>>, SigningKeyError> {
        let failed = |_| SigningKeyError::Failed("signing key generation");
        let der = match algorithm {
            SigningAlgorithm::EdDSA => {
                Ed25519KeyPair::generate().and_then(|k| k.to_pkcs8()).map_err(failed)?.as_ref().to_vec()
            }
            SigningAlgorithm::ES256 => EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                .and_then(|k| k.to_pkcs8v1())
                .map_err(failed)?
                .as_ref()
                .to_vec(),
            SigningAlgorithm::RS256 => {
                RsaKeyPair::generate(RSA_KEY_SIZE).and_then(|k| k.as_der()).map_err(failed)?.as_ref().to_vec()
            }
            SigningAlgorithm::HS256 => return Err(SigningKeyError::Failed("generating an HS256 key")),
        };
        Ok(Zeroizing::new(der))
    }

    /// Signs `message` and appends the base64url signature to `out`.
    fn sign_into(&self, message: &[u8], out: &mut String) -> Result<(), SigningKeyError> {
        let failed = |_| SigningKeyError::Failed("signing");
        match self {
            Self::Ed25519(pair) => URL_SAFE_NO_PAD.encode_string(pair.sign(message), out),
            Self::P256(pair) => {
                URL_SAFE_NO_PAD.encode_string(pair.sign(&SystemRandom::new(), message).map_err(failed)?, out)
            }
            Self::Rsa(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut signature).map_err(failed)?;
                URL_SAFE_NO_PAD.encode_string(signature, out);
            }
            Self::Hmac(key) => URL_SAFE_NO_PAD.encode_string(hmac::sign(key, message), out),
        }
        Ok(())
    }
}

/// The key that signs.
struct ActiveKey {
    kid: String,
    algorithm: SigningAlgorithm,
    version: Option<u32>,
    signer: Signer,
}

/// A key that verifies: its algorithm is the only one its signatures are checked with.
struct VerifyingKey {
    algorithm: SigningAlgorithm,
    key: DecodingKey,
}

/// The HS256 key made from configuration: never stored.
struct Hs256Key {
    active: Arc<ActiveKey>,
    verifying: Arc<VerifyingKey>,
}

/// One consistent view of the keys, swapped whole on refresh.
struct KeySet {
    active: Arc<ActiveKey>,
    verifying: HashMap<String, Arc<VerifyingKey>>,
    jwks: JwkSet,
}

/// The JWS protected header as written.
#[derive(Serialize)]
struct HeaderOut<'a> {
    typ: &'a str,
    alg: &'a str,
    kid: &'a str,
}

/// The JWS protected header as read: exactly these members. Anything else (`jku`, `jwk`, `x5u`,
/// `crit` …) is refused rather than ignored, since Palisade never writes it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderIn<'a> {
    #[serde(borrow)]
    typ: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    alg: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    kid: std::borrow::Cow<'a, str>,
}

/// Palisade's JWT signing keys: the active one of the configured algorithm, and every stored key
/// for verifying and for the JWK Set.
///
/// Decoded keys are kept in memory; [`SigningKeys::refresh`] re-reads the store. `std::sync::RwLock`
/// because it is never held across an `.await` (a refresh builds the new set first, then swaps it in).
pub struct SigningKeys {
    loader: Loader,
    current: RwLock<Arc<KeySet>>,
}

/// What (re)loading the keys needs.
struct Loader {
    store: Arc<dyn SigningKeyStore>,
    keyring: Arc<Keyring>,
    clock: Arc<dyn Clock>,
    algorithm: SigningAlgorithm,
    hs256: Option<Hs256Key>,
    /// How long after signing a token may still be accepted: the longest lifetime of the tokens
    /// these keys sign, plus the verifiers' leeway. Keys that stopped signing longer ago than this
    /// (and [`PRUNE_MARGIN`]) are left out of the set and the JWK Set.
    token_life: Duration,
}

impl fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = self.snapshot();
        f.debug_struct("SigningKeys")
            .field("algorithm", &self.loader.algorithm)
            .field("active_kid", &set.active.kid)
            .field("verifying", &set.verifying.len())
            .finish_non_exhaustive()
    }
}

impl SigningKeys {
    /// Loads the stored keys and makes sure one of `algorithm` can sign.
    ///
    /// For EdDSA, ES256 and RS256: when no unretired key of `algorithm` is stored, one is generated
    /// (version = the highest of that algorithm + 1), sealed with `keyring` and inserted; when another
    /// instance inserted that version first, its key is read back and used instead, so instances
    /// starting together agree on one key.
    ///
    /// For HS256, `hs256_secret` (at least [`HS256_MIN_SECRET_LEN`] bytes) is the key, held only in
    /// memory; otherwise it is ignored. Stored asymmetric keys keep verifying either way.
    ///
    /// `token_life` is how long after signing a token may still be accepted: the longest lifetime of
    /// any token these keys sign plus the verifiers' leeway. A key that stopped signing longer ago
    /// than that (see [`SigningKeys::needed`]) is no longer loaded nor published.
    pub async fn load_or_create(
        store: Arc<dyn SigningKeyStore>,
        keyring: Arc<Keyring>,
        clock: Arc<dyn Clock>,
        algorithm: SigningAlgorithm,
        hs256_secret: Option<SecretSlice<u8>>,
        token_life: Duration,
    ) -> Result<Self, SigningKeyError> {
        // Name the crypto backend explicitly, so that a second jsonwebtoken backend turned on by some
        // other crate's features cannot make the choice ambiguous (jsonwebtoken panics then). An error
        // means a provider was installed already, which is then used.
        let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
        let hs256 = match (algorithm, hs256_secret) {
            (SigningAlgorithm::HS256, Some(secret)) => Some(Loader::hs256_key(&secret)?),
            (SigningAlgorithm::HS256, None) => return Err(SigningKeyError::Hs256Secret("none is configured")),
            (_, Some(_)) => {
                tracing::warn!(%algorithm, "a JWT secret is configured but the algorithm is not HS256: ignoring it");
                None
            }
            (_, None) => None,
        };
        let loader = Loader { store, keyring, clock, algorithm, hs256, token_life };
        let set = loader.load(None).await?;
        let this = Self { loader, current: RwLock::new(Arc::new(set)) };
        let active = this.signing_key();
        tracing::info!(kid = %active.kid, algorithm = %active.algorithm, version = ?active.version, "JWT signing key loaded");
        Ok(this)
    }

    /// Re-reads the store: keys added or retired by other instances (rotation) are picked up, and a
    /// new key is made if the active one was retired. Tokens keep verifying throughout.
    pub async fn refresh(&self) -> Result<(), SigningKeyError> {
        let previous = self.snapshot();
        let set = self.loader.load(Some(&previous)).await?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(set);
        Ok(())
    }

    /// The configured algorithm.
    pub fn algorithm(&self) -> SigningAlgorithm {
        self.loader.algorithm
    }

    /// The key that signs: the highest unretired version of the configured algorithm (or the HS256
    /// secret's key).
    pub fn signing_key(&self) -> SigningKeyInfo {
        let set = self.snapshot();
        SigningKeyInfo { kid: set.active.kid.clone(), algorithm: set.active.algorithm, version: set.active.version }
    }

    /// Makes a new key of the configured algorithm. It is published at once and signs after
    /// [`ACTIVATION_DELAY`], on every instance; the previous key keeps verifying the tokens it signed.
    /// Returns the new key. HS256 keys come from configuration: change the secret there instead.
    pub async fn rotate(&self) -> Result<SigningKeyInfo, SigningKeyError> {
        if self.loader.hs256.is_some() {
            return Err(SigningKeyError::Hs256Secret("HS256 is rotated by changing PALISADE_JWT_SECRET"));
        }
        for _ in 0..MAX_CREATE_ATTEMPTS {
            let records = self.loader.store.signing_keys().await?;
            let version = records
                .iter()
                .filter(|r| r.algorithm == self.loader.algorithm.as_str())
                .map(|r| r.version)
                .max()
                .unwrap_or(0)
                .saturating_add(1);
            if let Some(kid) = self.loader.create(version).await? {
                self.refresh().await?;
                return Ok(SigningKeyInfo { kid, algorithm: self.loader.algorithm, version: Some(version) });
            }
        }
        Err(SigningKeyError::NoActiveKey(self.loader.algorithm))
    }

    /// Rotates when the newest key of the configured algorithm is at least `period` old (a schedule).
    /// Of several instances doing this at once, one makes the key and the others see it: it is made
    /// at most once per due date. Returns the new key when this call made it.
    pub async fn rotate_if_older_than(&self, period: Duration) -> Result<Option<SigningKeyInfo>, SigningKeyError> {
        if self.loader.hs256.is_some() {
            return Ok(None);
        }
        let records = self.loader.store.signing_keys().await?;
        let Some(newest) =
            records.iter().filter(|r| r.algorithm == self.loader.algorithm.as_str()).max_by_key(|r| r.version)
        else {
            return Ok(None);
        };
        if newest.created_at.checked_add(period).is_none_or(|due| due > self.loader.clock.now()) {
            return Ok(None);
        }
        let version = newest.version.saturating_add(1);
        let made = self.loader.create(version).await?;
        self.refresh().await?;
        Ok(made.map(|kid| SigningKeyInfo { kid, algorithm: self.loader.algorithm, version: Some(version) }))
    }

    /// Every stored key with what it does now.
    pub async fn status(&self) -> Result<Vec<SigningKeyStatus>, SigningKeyError> {
        let records = self.loader.store.signing_keys().await?;
        let now = self.loader.clock.now();
        let signing = signing_record(&records, self.loader.algorithm, now).map(|r| r.kid.clone());
        Ok(records
            .iter()
            .map(|r| {
                let state = if !Self::needed(r, &records, now, self.loader.token_life) {
                    "expired"
                } else if r.retired_at.is_some_and(|at| at <= now) {
                    "retired"
                } else if Some(&r.kid) == signing.as_ref() {
                    "signing"
                } else if signing
                    .as_ref()
                    .is_some_and(|kid| records.iter().any(|s| &s.kid == kid && s.version < r.version))
                {
                    "published"
                } else {
                    "verifying"
                };
                SigningKeyStatus {
                    kid: r.kid.clone(),
                    algorithm: r.algorithm.clone(),
                    version: r.version,
                    created_at: r.created_at,
                    state,
                }
            })
            .collect())
    }

    /// The JWK Set of the stored public keys that can still verify a token ([`SigningKeys::needed`]).
    /// The HS256 key is never in it.
    pub fn jwks(&self) -> JwkSet {
        self.snapshot().jwks.clone()
    }

    /// When `record` stopped signing, if it has: when it was retired, or when a later version of its
    /// algorithm began to sign ([`ACTIVATION_DELAY`] after it was made; a successor retired before
    /// then never signed). `None` while it may still sign.
    pub fn stopped_signing(record: &SigningKeyRecord, all: &[SigningKeyRecord]) -> Option<OffsetDateTime> {
        let superseded = all
            .iter()
            .filter(|r| r.algorithm == record.algorithm && r.version > record.version)
            .filter_map(|r| {
                let signs_from = r.created_at.checked_add(ACTIVATION_DELAY)?;
                r.retired_at.is_none_or(|at| at > signs_from).then_some(signs_from)
            })
            .min();
        match (record.retired_at, superseded) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether `record` may still have signed a token that verifies at `now`, and so must stay in the
    /// key set and the JWK Set; `all` are the stored keys (its successors among them).
    ///
    /// A key that may still sign always is. One that stopped signing at `t` ([`Self::stopped_signing`])
    /// signed its last token by `t` plus the time instances take to see the change (they re-read
    /// the keys every [`REFRESH_INTERVAL`]); that token is accepted for at most `token_life` (its
    /// lifetime and the leeway). [`PRUNE_MARGIN`] covers both the lag and an instance that failed to
    /// refresh for a while: the key is needed while `now < t + token_life + PRUNE_MARGIN`.
    pub fn needed(
        record: &SigningKeyRecord,
        all: &[SigningKeyRecord],
        now: OffsetDateTime,
        token_life: Duration,
    ) -> bool {
        match Self::stopped_signing(record, all) {
            None => true,
            Some(stopped) => match stopped.checked_add(token_life).and_then(|t| t.checked_add(PRUNE_MARGIN)) {
                Some(until) => now < until,
                None => true,
            },
        }
    }

    /// Signs a JWS in compact form: a protected header `{"typ", "alg", "kid"}` with the active key's
    /// algorithm and kid, and `claims` as the payload.
    pub(crate) fn sign_jws<T: Serialize>(&self, typ: &str, claims: &T) -> Result<String, SigningKeyError> {
        self.sign_jws_with(typ, |_| claims)
    }

    /// Like [`Self::sign_jws`], with claims that depend on the signing algorithm (an ID token's
    /// `at_hash` and `c_hash` use its hash function): `make` is given the algorithm of the key that
    /// signs.
    pub(crate) fn sign_jws_with<T: Serialize>(
        &self,
        typ: &str,
        make: impl FnOnce(SigningAlgorithm) -> T,
    ) -> Result<String, SigningKeyError> {
        let set = self.snapshot();
        let active = &set.active;
        let claims = make(active.algorithm);
        let claims = &claims;
        let header = HeaderOut { typ, alg: active.algorithm.as_str(), kid: &active.kid };
        let json = |e: serde_json::Error| {
            tracing::error!(error = %e, "serialising a JWS part");
            SigningKeyError::Failed("serialising a JWS")
        };
        let header = serde_json::to_vec(&header).map_err(json)?;
        let payload = serde_json::to_vec(claims).map_err(json)?;
        let mut out = String::with_capacity((header.len() + payload.len()) * 4 / 3 + 360);
        URL_SAFE_NO_PAD.encode_string(header, &mut out);
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(payload, &mut out);
        let mut signature = String::with_capacity(344);
        active.signer.sign_into(out.as_bytes(), &mut signature)?;
        out.push('.');
        out.push_str(&signature);
        Ok(out)
    }

    /// Checks a compact JWS and returns its decoded payload (not yet parsed).
    ///
    /// The header must be exactly `{"typ", "alg", "kid"}`; `kid` must name a known key; `alg` must be
    /// that key's algorithm (so `none`, or HS256 over a public key, never gets as far as a signature
    /// check); `typ` must be `typ` (or `application/` + `typ`, case-insensitively, RFC 7515 §4.1.9).
    /// Only then is the signature checked, with the key's algorithm, and the payload decoded.
    pub(crate) fn verify_jws(&self, token: &str, typ: &str) -> Result<Vec<u8>, Rejection> {
        if token.len() > MAX_JWS_LEN {
            return Err(Rejection::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Rejection::Malformed);
        };
        let signing_input = token.get(..header.len() + 1 + payload.len()).ok_or(Rejection::Malformed)?;

        let mut header_json = [0u8; MAX_HEADER_LEN];
        let len = URL_SAFE_NO_PAD.decode_slice(header, &mut header_json).map_err(|_| Rejection::Malformed)?;
        let header_json = header_json.get(..len).ok_or(Rejection::Malformed)?;
        let header: HeaderIn<'_> = serde_json::from_slice(header_json).map_err(|_| Rejection::Malformed)?;

        let set = self.snapshot();
        let key = set.verifying.get(header.kid.as_ref()).ok_or(Rejection::UnknownKey)?;
        if header.alg != key.algorithm.as_str() {
            return Err(Rejection::AlgorithmMismatch);
        }
        if !typ_matches(&header.typ, typ) {
            return Err(Rejection::WrongType);
        }
        match jsonwebtoken::crypto::verify(signature, signing_input.as_bytes(), &key.key, key.algorithm.jwt()) {
            Ok(true) => {}
            Ok(false) | Err(_) => return Err(Rejection::BadSignature),
        }
        URL_SAFE_NO_PAD.decode(payload).map_err(|_| Rejection::Malformed)
    }

    /// Signs and verifies a probe with the active key, through the same code as tokens (for
    /// `palisade diagnose` and readiness).
    pub fn self_test(&self) -> Result<(), SigningKeyError> {
        const TYP: &str = "palisade-self-test";
        let jws = self.sign_jws(TYP, &serde_json::json!({ "probe": true }))?;
        self.verify_jws(&jws, TYP).map(drop).map_err(|_| SigningKeyError::Failed("verifying the self-test signature"))
    }

    fn snapshot(&self) -> Arc<KeySet> {
        self.current.read().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl Loader {
    fn hs256_key(secret: &SecretSlice<u8>) -> Result<Hs256Key, SigningKeyError> {
        let secret = secret.expose_secret();
        if secret.len() < HS256_MIN_SECRET_LEN {
            return Err(SigningKeyError::Hs256Secret("it is too short"));
        }
        let kid = oct_thumbprint(secret);
        Ok(Hs256Key {
            active: Arc::new(ActiveKey {
                kid,
                algorithm: SigningAlgorithm::HS256,
                version: None,
                signer: Signer::Hmac(Box::new(hmac::Key::new(hmac::HMAC_SHA256, secret))),
            }),
            verifying: Arc::new(VerifyingKey {
                algorithm: SigningAlgorithm::HS256,
                key: DecodingKey::from_secret(secret),
            }),
        })
    }

    /// Reads the store into a new key set, creating the active key if there is none. Keys already
    /// decoded in `previous` are reused rather than decoded (or decrypted) again.
    async fn load(&self, previous: Option<&KeySet>) -> Result<KeySet, SigningKeyError> {
        for _ in 0..MAX_CREATE_ATTEMPTS {
            let records = self.store.signing_keys().await?;
            let now = self.clock.now();
            let active = match &self.hs256 {
                Some(hs256) => Some(hs256.active.clone()),
                None => match signing_record(&records, self.algorithm, now) {
                    Some(record) => Some(self.open_active(record, previous).await?),
                    None => None,
                },
            };
            let Some(active) = active else {
                let version = records
                    .iter()
                    .filter(|r| r.algorithm == self.algorithm.as_str())
                    .map(|r| r.version)
                    .max()
                    .unwrap_or(0)
                    .saturating_add(1);
                // Whether this instance's key or another's won, the next read finds the winner.
                self.create(version).await?;
                continue;
            };
            return self.key_set(&records, active, previous);
        }
        Err(SigningKeyError::NoActiveKey(self.algorithm))
    }

    /// Builds the set from the stored records, checking each: a known algorithm, a JWK that parses
    /// strictly, names its algorithm and hashes to the record's `kid`.
    fn key_set(
        &self,
        records: &[SigningKeyRecord],
        active: Arc<ActiveKey>,
        previous: Option<&KeySet>,
    ) -> Result<KeySet, SigningKeyError> {
        let mut verifying = HashMap::with_capacity(records.len() + 1);
        let mut jwks = JwkSet { keys: Vec::with_capacity(records.len()) };
        let now = self.clock.now();
        for record in records {
            let kid = record.kid.as_str();
            if kid != active.kid && !SigningKeys::needed(record, records, now, self.token_life) {
                // Every token it signed has expired: it verifies nothing and is published no more.
                continue;
            }
            let corrupt = |reason| SigningKeyError::corrupt(kid, reason);
            let algorithm = SigningAlgorithm::parse(&record.algorithm).map_err(|_| corrupt("unknown algorithm"))?;
            if algorithm.is_symmetric() {
                return Err(corrupt("HS256 keys are never stored"));
            }
            let jwk_text = record.public_jwk.as_deref().ok_or_else(|| corrupt("no public key"))?;
            let jwk: Jwk = serde_json::from_str(jwk_text).map_err(|_| corrupt("the public key is not a JWK"))?;
            let public = PublicKey::from_jwk(&jwk).map_err(corrupt)?;
            if public.algorithm() != algorithm || jwk.alg != algorithm.as_str() {
                return Err(corrupt("the public key is not of the record's algorithm"));
            }
            if jwk.kid != record.kid || public.thumbprint() != record.kid {
                return Err(corrupt("the kid is not the public key's thumbprint"));
            }
            let key = match previous.and_then(|p| p.verifying.get(kid)) {
                Some(known) if known.algorithm == algorithm => known.clone(),
                _ => Arc::new(VerifyingKey { algorithm, key: public.decoding_key().map_err(corrupt)? }),
            };
            if verifying.insert(record.kid.clone(), key).is_some() {
                return Err(corrupt("two stored keys share this kid"));
            }
            jwks.keys.push(public.to_jwk(kid));
        }
        if let Some(hs256) = &self.hs256 {
            verifying.insert(hs256.active.kid.clone(), hs256.verifying.clone());
        }
        if !verifying.contains_key(&active.kid) {
            return Err(SigningKeyError::corrupt(&active.kid, "the active key is not among the stored keys"));
        }
        Ok(KeySet { active, verifying, jwks })
    }

    /// Decrypts the active record's private key, unless `previous` has it already.
    async fn open_active(
        &self,
        record: &SigningKeyRecord,
        previous: Option<&KeySet>,
    ) -> Result<Arc<ActiveKey>, SigningKeyError> {
        if let Some(previous) = previous
            && previous.active.kid == record.kid
            && previous.active.version == Some(record.version)
        {
            return Ok(previous.active.clone());
        }
        let corrupt = |reason| SigningKeyError::corrupt(&record.kid, reason);
        let envelope =
            Envelope::parse_compact(&record.private_key).map_err(|_| corrupt("the private key is not an envelope"))?;
        let pkcs8 = self.keyring.decrypt(&envelope, &sealing_context(&record.kid)).await?;
        let (signer, public) = Signer::from_pkcs8(self.algorithm, &pkcs8).map_err(corrupt)?;
        if public.thumbprint() != record.kid {
            return Err(corrupt("the private key does not match the kid"));
        }
        Ok(Arc::new(ActiveKey {
            kid: record.kid.clone(),
            algorithm: self.algorithm,
            version: Some(record.version),
            signer,
        }))
    }

    /// Generates, seals and inserts `version` of the configured algorithm. `false` when another
    /// instance stored that version first.
    /// Generates, seals and stores `version`; the new kid, or `None` when another instance stored that
    /// version first.
    async fn create(&self, version: u32) -> Result<Option<String>, SigningKeyError> {
        let pkcs8 = Signer::generate_pkcs8(self.algorithm)?;
        let (_, public) = Signer::from_pkcs8(self.algorithm, &pkcs8).map_err(SigningKeyError::Failed)?;
        let kid = public.thumbprint();
        let envelope = self.keyring.encrypt(&pkcs8, &sealing_context(&kid)).await?;
        let public_jwk =
            serde_json::to_string(&public.to_jwk(&kid)).map_err(|_| SigningKeyError::Failed("serialising a JWK"))?;
        let record = SigningKeyRecord {
            kid,
            algorithm: self.algorithm.as_str().to_owned(),
            version,
            private_key: envelope.to_compact(),
            public_jwk: Some(public_jwk),
            created_at: self.clock.now(),
            retired_at: None,
        };
        let inserted = self.store.insert_signing_key(&record).await?;
        if inserted {
            tracing::info!(kid = %record.kid, algorithm = %self.algorithm, version, "created JWT signing key");
            Ok(Some(record.kid))
        } else {
            tracing::info!(algorithm = %self.algorithm, version, "another instance created this signing key version first");
            Ok(None)
        }
    }
}

/// The record that signs at `now`: the highest version of `algorithm`, not retired by then, that has
/// been published for [`ACTIVATION_DELAY`]; when none has yet (the first minutes after the first start,
/// or after every older key was retired), the oldest version not retired — the one already in use.
fn signing_record(
    records: &[SigningKeyRecord],
    algorithm: SigningAlgorithm,
    now: OffsetDateTime,
) -> Option<&SigningKeyRecord> {
    let usable =
        || records.iter().filter(|r| r.algorithm == algorithm.as_str() && r.retired_at.is_none_or(|at| now < at));
    usable()
        .filter(|r| r.created_at.checked_add(ACTIVATION_DELAY).is_some_and(|mature| mature <= now))
        .max_by_key(|r| r.version)
        .or_else(|| usable().min_by_key(|r| r.version))
}

/// How long a new key is published in the JWK Set before it signs. Every instance re-reads the keys
/// at least every [`REFRESH_INTERVAL`], so by the time any instance signs with a new key, every
/// instance (and every client refreshing its JWKS cache at that pace) already knows it.
pub const ACTIVATION_DELAY: Duration = Duration::minutes(2);

/// How often a server re-reads the signing keys (rotations made elsewhere are picked up).
pub const REFRESH_INTERVAL: Duration = Duration::seconds(30);

/// How long past the expiry of the last token a key may have signed it is still kept: the
/// instances' refresh lag, with room for an instance that could not refresh for a while.
pub const PRUNE_MARGIN: Duration = Duration::minutes(10);

/// One stored signing key and what it does now, for `palisade keys status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyStatus {
    /// The key's id.
    pub kid: String,
    /// Its algorithm.
    pub algorithm: String,
    /// Its version.
    pub version: u32,
    /// When it was made.
    pub created_at: OffsetDateTime,
    /// `signing`, `published` (waiting for [`ACTIVATION_DELAY`] to pass), `verifying` (an older key
    /// kept for the tokens it signed), `retired`, or `expired` (every token it signed has expired: it
    /// is neither loaded nor published; the record stays, sealed, in the store).
    pub state: &'static str,
}

/// The context a private signing key is sealed under: restricted, its purpose, and its `kid` as the
/// field, so a sealed key cannot be passed off as another's.
pub(crate) fn sealing_context(kid: &str) -> EncryptionContext {
    EncryptionContext {
        data_classification: DataClassification::Restricted,
        purpose: SIGNING_KEY_PURPOSE.to_owned(),
        user_id: None,
        field: Some(kid.to_owned()),
        compliance: Vec::new(),
    }
}

/// `typ` equals `expected`, or `application/` + `expected`, ignoring ASCII case.
fn typ_matches(typ: &str, expected: &str) -> bool {
    const PREFIX: &str = "application/";
    let bare = match typ.get(..PREFIX.len()) {
        Some(prefix) if prefix.eq_ignore_ascii_case(PREFIX) => typ.get(PREFIX.len()..).unwrap_or_default(),
        _ => typ,
    };
    bare.eq_ignore_ascii_case(expected)
}

/// In-memory signing-key store and a keyring over it, for this module's and `access`'s tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;

    use super::*;
    use crate::clock::ManualClock;
    use crate::crypto::{LocalKeyProvider, MasterKey};
    use crate::testing::MemoryStore;

    /// Signing keys in memory. With a gate, the first `gated` reads wait for one another, so that
    /// instances loading together all see the store as it was before any of them wrote.
    #[derive(Default)]
    pub(crate) struct MemorySigningKeys {
        pub(crate) keys: Mutex<Vec<SigningKeyRecord>>,
        /// How many inserts were attempted.
        pub(crate) inserts: AtomicUsize,
        gate: Option<(tokio::sync::Barrier, AtomicUsize, usize)>,
    }

    impl MemorySigningKeys {
        pub(crate) fn gated(readers: usize) -> Self {
            Self { gate: Some((tokio::sync::Barrier::new(readers), AtomicUsize::new(0), readers)), ..Self::default() }
        }

        pub(crate) fn records(&self) -> Vec<SigningKeyRecord> {
            self.keys.lock().unwrap().clone()
        }
    }

    #[async_trait]
    impl SigningKeyStore for MemorySigningKeys {
        async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<bool, StoreError> {
            self.inserts.fetch_add(1, Ordering::SeqCst);
            let mut keys = self.keys.lock().unwrap();
            if keys.iter().any(|k| k.algorithm == key.algorithm && k.version == key.version) {
                return Ok(false);
            }
            if keys.iter().any(|k| k.kid == key.kid) {
                return Err(StoreError::Other("duplicate kid".into()));
            }
            keys.push(key.clone());
            Ok(true)
        }

        async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
            let snapshot = self.records();
            if let Some((barrier, reads, readers)) = &self.gate
                && reads.fetch_add(1, Ordering::SeqCst) < *readers
            {
                barrier.wait().await;
            }
            Ok(snapshot)
        }

        async fn retire_signing_key(&self, kid: &str, at: OffsetDateTime) -> Result<bool, StoreError> {
            let mut keys = self.keys.lock().unwrap();
            Ok(keys.iter_mut().find(|k| k.kid == kid).map(|k| k.retired_at = Some(at)).is_some())
        }
    }

    pub(crate) fn keyring(clock: Arc<dyn Clock>) -> Arc<Keyring> {
        let provider = Arc::new(LocalKeyProvider::new(&MasterKey::from_bytes([7; 32])).unwrap());
        Arc::new(Keyring::new(provider, Arc::new(MemoryStore::default()), clock))
    }

    pub(crate) fn secret() -> SecretSlice<u8> {
        SecretSlice::from(b"an HS256 test secret of 32 bytes+".to_vec())
    }

    /// The token life the fixtures' keys are loaded with: 15 minutes and 30 s of leeway.
    pub(crate) const TOKEN_LIFE: Duration = Duration::seconds(15 * 60 + 30);

    /// A store, a keyring, a manual clock and signing keys of `algorithm` over them.
    pub(crate) struct Fixture {
        pub(crate) store: Arc<MemorySigningKeys>,
        pub(crate) keyring: Arc<Keyring>,
        pub(crate) clock: Arc<ManualClock>,
        pub(crate) keys: Arc<SigningKeys>,
    }

    impl Fixture {
        pub(crate) async fn new(algorithm: SigningAlgorithm) -> Self {
            let clock = Arc::new(ManualClock::fixed());
            let store = Arc::new(MemorySigningKeys::default());
            let keyring = keyring(clock.clone());
            let keys = Arc::new(Self::open(&store, &keyring, &clock, algorithm).await.unwrap());
            Self { store, keyring, clock, keys }
        }

        pub(crate) async fn open(
            store: &Arc<MemorySigningKeys>,
            keyring: &Arc<Keyring>,
            clock: &Arc<ManualClock>,
            algorithm: SigningAlgorithm,
        ) -> Result<SigningKeys, SigningKeyError> {
            let secret = algorithm.is_symmetric().then(secret);
            SigningKeys::load_or_create(store.clone(), keyring.clone(), clock.clone(), algorithm, secret, TOKEN_LIFE)
                .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    const RFC7638_N: &str = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";

    fn jwk(kty: &str) -> Jwk {
        Jwk {
            kty: kty.into(),
            crv: None,
            x: None,
            y: None,
            n: None,
            e: None,
            kid: String::new(),
            alg: String::new(),
            key_use: "sig".into(),
        }
    }

    #[test]
    fn rfc7638_rsa_example_thumbprint() {
        // RFC 7638 §3.1 (the key of RFC 7517 Appendix A.1).
        let key =
            PublicKey::from_jwk(&Jwk { n: Some(RFC7638_N.into()), e: Some("AQAB".into()), ..jwk("RSA") }).unwrap();
        assert_eq!(key.thumbprint(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
        assert_eq!(
            key.canonical_json(),
            format!(r#"{{"e":"AQAB","kty":"RSA","n":"{RFC7638_N}"}}"#),
            "members in lexicographic order, no whitespace"
        );
    }

    #[test]
    fn rfc8037_ed25519_example_thumbprint() {
        // RFC 8037 Appendix A.3.
        let key = PublicKey::from_jwk(&Jwk {
            crv: Some("Ed25519".into()),
            x: Some("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo".into()),
            ..jwk("OKP")
        })
        .unwrap();
        assert_eq!(key.thumbprint(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    }

    #[test]
    fn jwk_parsing_is_strict() {
        let x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
        let okp = Jwk { crv: Some("Ed25519".into()), x: Some(x.into()), ..jwk("OKP") };
        assert!(PublicKey::from_jwk(&okp).is_ok());
        for bad in [
            Jwk { x: Some(format!("{x}=")), ..okp.clone() },
            Jwk { x: Some("AAAA".into()), ..okp.clone() },
            Jwk { crv: Some("Ed448".into()), ..okp.clone() },
            Jwk { y: Some(x.into()), ..okp.clone() },
            Jwk { kty: "EC".into(), ..okp.clone() },
            Jwk { n: Some(format!("AA{RFC7638_N}")), e: Some("AQAB".into()), ..jwk("RSA") },
            Jwk { n: Some(RFC7638_N.get(..300).unwrap().into()), e: Some("AQAB".into()), ..jwk("RSA") },
            Jwk { n: Some(RFC7638_N.into()), ..jwk("RSA") },
        ] {
            assert!(PublicKey::from_jwk(&bad).is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn thumbprints_agree_with_jsonwebtoken_for_generated_keys() {
        for algorithm in [SigningAlgorithm::EdDSA, SigningAlgorithm::ES256, SigningAlgorithm::RS256] {
            let f = Fixture::new(algorithm).await;
            let jwks = serde_json::to_string(&f.keys.jwks()).unwrap();
            let theirs: jsonwebtoken::jwk::JwkSet = serde_json::from_str(&jwks).unwrap();
            let [key] = theirs.keys.as_slice() else { panic!("one key expected") };
            let kid = f.keys.signing_key().kid;
            assert_eq!(key.thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256).unwrap(), kid, "{algorithm}");
            assert_eq!(key.common.key_id.as_deref(), Some(kid.as_str()));
        }
        let secret = secret();
        let theirs = jsonwebtoken::jwk::Jwk {
            common: Default::default(),
            algorithm: jsonwebtoken::jwk::AlgorithmParameters::OctetKey(jsonwebtoken::jwk::OctetKeyParameters {
                key_type: Default::default(),
                value: URL_SAFE_NO_PAD.encode(secret.expose_secret()),
            }),
        };
        assert_eq!(
            oct_thumbprint(secret.expose_secret()),
            theirs.thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256).unwrap()
        );
    }

    #[test]
    fn algorithm_names_round_trip_and_are_case_sensitive() {
        for algorithm in SigningAlgorithm::ALL {
            assert_eq!(algorithm.as_str().parse::<SigningAlgorithm>().unwrap(), algorithm);
        }
        assert_eq!(SigningAlgorithm::default(), SigningAlgorithm::EdDSA);
        for bad in ["eddsa", "none", "HS512", "", "ES256 "] {
            assert!(SigningAlgorithm::parse(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn first_load_creates_one_sealed_key_per_algorithm() {
        for algorithm in [SigningAlgorithm::EdDSA, SigningAlgorithm::ES256, SigningAlgorithm::RS256] {
            let f = Fixture::new(algorithm).await;
            let [record] = f.store.records().try_into().unwrap();
            let info = f.keys.signing_key();
            assert_eq!(
                (record.kid.as_str(), record.algorithm.as_str(), record.version),
                (info.kid.as_str(), algorithm.as_str(), 1)
            );
            assert_eq!(info.version, Some(1));
            assert!(record.retired_at.is_none());

            // The public half is a JWK naming itself.
            let jwk: Jwk = serde_json::from_str(record.public_jwk.as_deref().unwrap()).unwrap();
            assert_eq!(
                (jwk.kid.as_str(), jwk.alg.as_str(), jwk.key_use.as_str()),
                (record.kid.as_str(), algorithm.as_str(), "sig")
            );

            // The private half at rest is an envelope, not the PKCS#8 DER.
            let envelope = Envelope::parse_compact(&record.private_key).unwrap();
            let pkcs8 = f.keyring.decrypt(&envelope, &sealing_context(&record.kid)).await.unwrap();
            let (_, public) = Signer::from_pkcs8(algorithm, &pkcs8).unwrap();
            assert_eq!(public.thumbprint(), record.kid);
            assert!(!envelope.data.windows(16).any(|w| pkcs8.windows(16).any(|p| p == w)), "plaintext in the envelope");
            assert!(!record.private_key.contains(&URL_SAFE_NO_PAD.encode(pkcs8.get(..24).unwrap())));
            // Sealed to this key: any other context refuses it.
            let mut other = sealing_context(&record.kid);
            other.field = Some("another-kid".into());
            assert!(f.keyring.decrypt(&envelope, &other).await.is_err());
            f.keys.self_test().unwrap();
        }
    }

    #[tokio::test]
    async fn a_second_instance_loads_the_stored_key() {
        let f = Fixture::new(SigningAlgorithm::EdDSA).await;
        let again = Fixture::open(&f.store, &f.keyring, &f.clock, SigningAlgorithm::EdDSA).await.unwrap();
        assert_eq!(again.signing_key(), f.keys.signing_key());
        assert_eq!(f.store.records().len(), 1);
        // It verifies what the first signs.
        let jws = f.keys.sign_jws("x", &serde_json::json!({"a": 1})).unwrap();
        assert_eq!(again.verify_jws(&jws, "x").unwrap(), br#"{"a":1}"#);
    }

    #[tokio::test]
    async fn instances_racing_on_an_empty_store_agree_on_one_key() {
        for algorithm in [SigningAlgorithm::EdDSA, SigningAlgorithm::ES256] {
            let clock = Arc::new(crate::clock::ManualClock::fixed());
            let store = Arc::new(MemorySigningKeys::gated(3));
            let keyring = keyring(clock.clone());
            let (a, b, c) = tokio::join!(
                Fixture::open(&store, &keyring, &clock, algorithm),
                Fixture::open(&store, &keyring, &clock, algorithm),
                Fixture::open(&store, &keyring, &clock, algorithm),
            );
            let (a, b, c) = (a.unwrap().signing_key(), b.unwrap().signing_key(), c.unwrap().signing_key());
            assert_eq!(a, b);
            assert_eq!(b, c);
            let [record] = store.records().try_into().unwrap();
            assert_eq!((record.kid, record.version), (a.kid, 1));
            // All three really raced: each made a key and tried to insert it; two lost.
            assert_eq!(store.inserts.load(std::sync::atomic::Ordering::SeqCst), 3);
        }
    }

    #[tokio::test]
    async fn hs256_lives_only_in_memory() {
        let f = Fixture::new(SigningAlgorithm::HS256).await;
        assert!(f.store.records().is_empty(), "an HS256 key was stored");
        let info = f.keys.signing_key();
        assert_eq!(info.kid, oct_thumbprint(secret().expose_secret()));
        assert_eq!((info.algorithm, info.version), (SigningAlgorithm::HS256, None));
        assert!(f.keys.jwks().keys.is_empty());
        f.keys.self_test().unwrap();
        assert!(!format!("{:?}", f.keys).contains("test secret"));

        let (store, keyring, clock) = (f.store.clone(), f.keyring.clone(), f.clock.clone());
        let open = |secret: Option<SecretSlice<u8>>| {
            SigningKeys::load_or_create(
                store.clone(),
                keyring.clone(),
                clock.clone(),
                SigningAlgorithm::HS256,
                secret,
                TOKEN_LIFE,
            )
        };
        assert!(matches!(open(None).await, Err(SigningKeyError::Hs256Secret(_))));
        let short = SecretSlice::from(vec![1u8; HS256_MIN_SECRET_LEN - 1]);
        let err = open(Some(short)).await.unwrap_err();
        assert!(matches!(err, SigningKeyError::Hs256Secret(_)));
    }

    #[tokio::test]
    async fn stored_keys_keep_verifying_under_hs256_and_the_jwks_lists_every_stored_key() {
        let f = Fixture::new(SigningAlgorithm::EdDSA).await;
        let es = Fixture::open(&f.store, &f.keyring, &f.clock, SigningAlgorithm::ES256).await.unwrap();
        let hs = Fixture::open(&f.store, &f.keyring, &f.clock, SigningAlgorithm::HS256).await.unwrap();
        let eddsa_kid = f.keys.signing_key().kid;
        let es_kid = es.signing_key().kid;
        let jwks = hs.jwks();
        let mut kids: Vec<_> = jwks.keys.iter().map(|k| (k.kid.as_str(), k.alg.as_str(), k.key_use.as_str())).collect();
        kids.sort_unstable();
        let mut expected = vec![(eddsa_kid.as_str(), "EdDSA", "sig"), (es_kid.as_str(), "ES256", "sig")];
        expected.sort_unstable();
        assert_eq!(kids, expected);
        let json = serde_json::to_value(&jwks).unwrap();
        assert!(json["keys"].as_array().unwrap().iter().all(|k| k.get("d").is_none() && k.get("k").is_none()));

        let jws = f.keys.sign_jws("x", &1).unwrap();
        assert!(hs.verify_jws(&jws, "x").is_ok());
    }

    #[tokio::test]
    async fn retiring_the_active_key_makes_a_new_version_and_keeps_the_old_verifying() {
        let f = Fixture::new(SigningAlgorithm::EdDSA).await;
        let old = f.keys.signing_key();
        let signed_before = f.keys.sign_jws("x", &1).unwrap();
        assert!(f.store.retire_signing_key(&old.kid, f.clock.now()).await.unwrap());
        f.keys.refresh().await.unwrap();
        let new = f.keys.signing_key();
        assert_ne!(new.kid, old.kid);
        assert_eq!(new.version, Some(2));
        assert!(f.keys.verify_jws(&signed_before, "x").is_ok());
        assert_eq!(f.keys.jwks().keys.len(), 2);
        // A refresh with nothing new changes nothing.
        f.keys.refresh().await.unwrap();
        assert_eq!(f.keys.signing_key(), new);
        assert_eq!(f.store.records().len(), 2);
    }

    #[tokio::test]
    async fn a_record_whose_kid_is_not_its_thumbprint_is_refused() {
        let f = Fixture::new(SigningAlgorithm::EdDSA).await;
        let other = Fixture::new(SigningAlgorithm::EdDSA).await;
        // Swap in another key's public JWK under this record's kid.
        {
            let mut keys = f.store.keys.lock().unwrap();
            let record = keys.first_mut().unwrap();
            let mut jwk: Jwk = serde_json::from_str(other.store.records()[0].public_jwk.as_deref().unwrap()).unwrap();
            jwk.kid = record.kid.clone();
            record.public_jwk = Some(serde_json::to_string(&jwk).unwrap());
        }
        let err = f.keys.refresh().await.unwrap_err();
        assert!(matches!(err, SigningKeyError::Corrupt { .. }), "{err}");
    }

    #[test]
    fn a_key_is_needed_until_the_last_token_it_signed_has_expired() {
        let t0 = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let record = |version: u32, created_at: OffsetDateTime, retired_at: Option<OffsetDateTime>| SigningKeyRecord {
            kid: format!("k{version}"),
            algorithm: "EdDSA".into(),
            version,
            private_key: String::new(),
            public_jwk: None,
            created_at,
            retired_at,
        };
        let first = record(1, t0, None);
        // Alone and never retired: needed forever.
        assert!(SigningKeys::needed(&first, std::slice::from_ref(&first), t0 + Duration::days(3650), TOKEN_LIFE));
        // A successor made at t1 signs from t1 + ACTIVATION_DELAY; the first key is needed until
        // that, plus the token life, plus the margin.
        let t1 = t0 + Duration::days(90);
        let all = [first.clone(), record(2, t1, None)];
        let until = t1 + ACTIVATION_DELAY + TOKEN_LIFE + PRUNE_MARGIN;
        assert_eq!(SigningKeys::stopped_signing(&first, &all), Some(t1 + ACTIVATION_DELAY));
        assert!(SigningKeys::needed(&first, &all, until - Duration::seconds(1), TOKEN_LIFE));
        assert!(!SigningKeys::needed(&first, &all, until, TOKEN_LIFE));
        assert!(SigningKeys::needed(&all[1], &all, until + Duration::days(3650), TOKEN_LIFE));
        // A successor retired before it signed does not end the first key's signing.
        let stillborn = [first.clone(), record(2, t1, Some(t1 + Duration::seconds(5)))];
        assert_eq!(SigningKeys::stopped_signing(&first, &stillborn), None);
        // Another algorithm's keys are no successors.
        let mut es = record(7, t1, None);
        es.algorithm = "ES256".into();
        assert_eq!(SigningKeys::stopped_signing(&first, &[first.clone(), es]), None);
        // A retired key stopped at its retirement.
        let retired = record(1, t0, Some(t1));
        assert!(SigningKeys::needed(&retired, std::slice::from_ref(&retired), t1 + TOKEN_LIFE, TOKEN_LIFE));
        assert!(!SigningKeys::needed(
            &retired,
            std::slice::from_ref(&retired),
            t1 + TOKEN_LIFE + PRUNE_MARGIN,
            TOKEN_LIFE
        ));
    }

    #[tokio::test]
    async fn rotated_keys_leave_the_jwks_once_every_token_they_signed_has_expired() {
        let f = Fixture::new(SigningAlgorithm::EdDSA).await;
        let old = f.keys.signing_key();
        let new = f.keys.rotate().await.unwrap();
        let kids = |keys: &SigningKeys| keys.jwks().keys.iter().map(|k| k.kid.clone()).collect::<Vec<_>>();
        assert_eq!(kids(&f.keys).len(), 2, "a new key is published before it signs");
        // The new key signs from ACTIVATION_DELAY on; a token the old key signed just before lives
        // out its life.
        f.clock.advance(ACTIVATION_DELAY - Duration::seconds(1));
        f.keys.refresh().await.unwrap();
        let last_old = f.keys.sign_jws("x", &1).unwrap();
        assert!(last_old.contains('.'));
        assert_eq!(f.keys.signing_key().kid, old.kid);
        f.clock.advance(Duration::seconds(1));
        f.keys.refresh().await.unwrap();
        assert_eq!(f.keys.signing_key().kid, new.kid);
        f.clock.advance(TOKEN_LIFE + PRUNE_MARGIN - Duration::seconds(1));
        f.keys.refresh().await.unwrap();
        assert!(kids(&f.keys).contains(&old.kid), "still needed a second before");
        assert!(f.keys.verify_jws(&last_old, "x").is_ok());
        f.clock.advance(Duration::seconds(1));
        f.keys.refresh().await.unwrap();
        assert_eq!(kids(&f.keys), vec![new.kid.clone()], "pruned from the JWK Set");
        assert!(f.keys.verify_jws(&last_old, "x").is_err(), "and from the verifying keys");
        let states: Vec<_> = f.keys.status().await.unwrap().into_iter().map(|s| (s.kid, s.state)).collect();
        assert!(states.contains(&(old.kid.clone(), "expired")), "{states:?}");
        // A fresh instance loading the same store agrees.
        let other = Fixture::open(&f.store, &f.keyring, &f.clock, SigningAlgorithm::EdDSA).await.unwrap();
        assert_eq!(kids(&other), vec![new.kid]);
    }

    #[test]
    fn typ_comparison_follows_rfc7515() {
        assert!(typ_matches("at+jwt", "at+jwt"));
        assert!(typ_matches("AT+JWT", "at+jwt"));
        assert!(typ_matches("application/at+jwt", "at+jwt"));
        assert!(!typ_matches("JWT", "at+jwt"));
        assert!(!typ_matches("application/", "at+jwt"));
        assert!(!typ_matches("", "at+jwt"));
    }
}

#[cfg(test)]
mod rotation_tests {
    use super::fixtures::*;
    use super::*;
    use crate::token::SessionId;
    use crate::token::access::{AccessTokenSettings, AccessTokens};

    /// Two instances over one store: a rotation on one is published at once on both (after their
    /// refresh), signs only after the activation delay, and tokens of either key verify on both.
    #[tokio::test]
    async fn tokens_verify_across_a_rotation_on_two_instances() {
        let f = Fixture::new(SigningAlgorithm::EdDSA).await;
        let other = Arc::new(Fixture::open(&f.store, &f.keyring, &f.clock, SigningAlgorithm::EdDSA).await.unwrap());
        let settings = AccessTokenSettings::new("https://id.example", "palisade");
        let clock: Arc<dyn crate::clock::Clock> = f.clock.clone();
        let a = AccessTokens::new(f.keys.clone(), clock.clone(), settings.clone());
        let b = AccessTokens::new(other.clone(), clock, settings);
        let old = f.keys.signing_key();
        assert_eq!(other.signing_key(), old, "both instances start on one key");
        f.clock.advance(Duration::minutes(10));
        let before = a.issue("user-1", SessionId::generate(), &["user".to_owned()]).unwrap();

        let new = f.keys.rotate().await.unwrap();
        assert_ne!(new.kid, old.kid);
        other.refresh().await.unwrap();
        for keys in [&f.keys, &other] {
            assert_eq!(keys.signing_key().kid, old.kid, "the new key is not signing yet");
            assert!(keys.jwks().keys.iter().any(|k| k.kid == new.kid), "but it is published");
        }
        let status = f.keys.status().await.unwrap();
        assert_eq!(status.iter().find(|s| s.kid == new.kid).unwrap().state, "published");
        assert_eq!(status.iter().find(|s| s.kid == old.kid).unwrap().state, "signing");

        f.clock.advance(ACTIVATION_DELAY);
        f.keys.refresh().await.unwrap();
        other.refresh().await.unwrap();
        for keys in [&f.keys, &other] {
            assert_eq!(keys.signing_key().kid, new.kid, "the new key signs after the delay, everywhere");
        }
        let after = b.issue("user-1", SessionId::generate(), &["user".to_owned()]).unwrap();
        for tokens in [&a, &b] {
            assert!(tokens.verify(&before.token).is_ok(), "a token of the old key still verifies");
            assert!(tokens.verify(&after.token).is_ok(), "a token of the new key verifies on both");
        }
        let status = f.keys.status().await.unwrap();
        assert_eq!(status.iter().find(|s| s.kid == old.kid).unwrap().state, "verifying");
    }

    /// A schedule rotates once per due date, even with two instances asking at once.
    #[tokio::test]
    async fn scheduled_rotation_happens_once_when_due() {
        let f = Fixture::new(SigningAlgorithm::EdDSA).await;
        let other = Fixture::open(&f.store, &f.keyring, &f.clock, SigningAlgorithm::EdDSA).await.unwrap();
        assert!(f.keys.rotate_if_older_than(Duration::days(30)).await.unwrap().is_none(), "not due yet");
        f.clock.advance(Duration::days(30));
        let (a, b) = tokio::join!(
            f.keys.rotate_if_older_than(Duration::days(30)),
            other.rotate_if_older_than(Duration::days(30))
        );
        let made = [a.unwrap(), b.unwrap()].into_iter().flatten().count();
        assert_eq!(made, 1, "exactly one instance makes the key");
        assert_eq!(f.store.records().len(), 2);
        assert!(f.keys.rotate_if_older_than(Duration::days(30)).await.unwrap().is_none(), "the new key is not due");
    }
}
