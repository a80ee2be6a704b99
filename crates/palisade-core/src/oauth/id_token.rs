//! ID tokens (OpenID Connect Core §2): who the user is, for the client that asked, signed with the
//! same keys as access tokens (published at `/.well-known/jwks.json`).
//!
//! `at_hash` and `c_hash` (§3.1.3.6, §3.3.2.11) are the left half of the hash of the access token or
//! code, with the hash function of the signing algorithm: SHA-256 for ES256, RS256 and HS256,
//! SHA-512 for EdDSA over Ed25519 (as the OpenID Foundation's errata and node-oidc-provider do).

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use crate::token::keys::{SigningAlgorithm, SigningKeys};

/// The `typ` of ID tokens (plain JWTs, as relying parties expect).
const ID_TOKEN_TYPE: &str = "JWT";

/// The `acr` of a login that passed a second factor.
pub const ACR_MFA: &str = "urn:palisade:acr:mfa";
/// The `acr` of a login by password alone.
pub const ACR_PASSWORD: &str = "urn:palisade:acr:pwd";

/// The `acr` for a login's `amr`.
pub fn acr_of(amr: &[String]) -> &'static str {
    if amr.iter().any(|a| a == "mfa") { ACR_MFA } else { ACR_PASSWORD }
}

/// What goes into one ID token.
#[derive(Debug)]
pub struct IdTokenFacts<'a> {
    /// The issuer.
    pub issuer: &'a str,
    /// The user (`sub`).
    pub subject: &'a str,
    /// The client (`aud` and `azp`).
    pub client_id: &'a str,
    /// Now (Unix seconds).
    pub issued_at: i64,
    /// Lifetime in seconds.
    pub lifetime: i64,
    /// When the user authenticated (Unix seconds).
    pub auth_time: i64,
    /// The `nonce` of the authorization request.
    pub nonce: Option<&'a str>,
    /// How the user authenticated.
    pub amr: &'a [String],
    /// The browser session (`sid`), for logout.
    pub sid: Option<String>,
    /// The access token issued with it (for `at_hash`).
    pub access_token: Option<&'a str>,
    /// The code it was issued for (for `c_hash`), in the hybrid flows (not used by the code flow's
    /// token response, where it is optional).
    pub code: Option<&'a str>,
    /// Claims about the user the scopes allow (`preferred_username`, `email` …).
    pub user_claims: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize)]
struct IdTokenClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    azp: &'a str,
    exp: i64,
    iat: i64,
    auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    acr: &'static str,
    amr: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    at_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    c_hash: Option<String>,
    #[serde(flatten)]
    user: &'a serde_json::Map<String, serde_json::Value>,
}

/// The left half of the hash of `value` for `algorithm`, base64url without padding.
pub fn half_hash(algorithm: SigningAlgorithm, value: &str) -> String {
    let function = match algorithm {
        SigningAlgorithm::EdDSA => &digest::SHA512,
        SigningAlgorithm::ES256 | SigningAlgorithm::RS256 | SigningAlgorithm::HS256 => &digest::SHA256,
    };
    let hash = digest::digest(function, value.as_bytes());
    let bytes = hash.as_ref();
    URL_SAFE_NO_PAD.encode(bytes.get(..bytes.len() / 2).unwrap_or_default())
}

/// Signs an ID token.
pub fn sign(keys: &SigningKeys, facts: &IdTokenFacts<'_>) -> Result<String, crate::token::keys::SigningKeyError> {
    keys.sign_jws_with(ID_TOKEN_TYPE, |algorithm| IdTokenClaims {
        iss: facts.issuer,
        sub: facts.subject,
        aud: facts.client_id,
        azp: facts.client_id,
        exp: facts.issued_at.saturating_add(facts.lifetime),
        iat: facts.issued_at,
        auth_time: facts.auth_time,
        nonce: facts.nonce,
        acr: acr_of(facts.amr),
        amr: facts.amr,
        sid: facts.sid.clone(),
        at_hash: facts.access_token.map(|t| half_hash(algorithm, t)),
        c_hash: facts.code.map(|c| half_hash(algorithm, c)),
        user: &facts.user_claims,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// OpenID Connect Core's own example (§A.3): the access token
    /// `jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y` signed with RS256 has `at_hash`
    /// `77QmUPtjPfzWtF2AnpK9RQ`.
    #[test]
    fn at_hash_matches_the_specification_example() {
        assert_eq!(
            half_hash(SigningAlgorithm::RS256, "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }

    /// EdDSA (Ed25519) hashes with SHA-512: the value FusionAuth's JWT library tests for this input.
    #[test]
    fn eddsa_uses_the_left_half_of_sha512() {
        assert_eq!(
            half_hash(SigningAlgorithm::EdDSA, "dNZX1hEZ9wBCzNL40Upu646bdzQA"),
            "8xltSlOGYrWy8W9yNvRlEth1i_bXW-JROWPLvCv5zog"
        );
        assert_eq!(half_hash(SigningAlgorithm::ES256, "token").len(), 22);
    }

    #[test]
    fn acr_follows_the_second_factor() {
        assert_eq!(acr_of(&["pwd".into(), "otp".into(), "mfa".into()]), ACR_MFA);
        assert_eq!(acr_of(&["pwd".into()]), ACR_PASSWORD);
    }
}
