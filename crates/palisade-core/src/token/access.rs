//! Access tokens: issuing and verifying the short-lived JWTs that authenticate API calls.
//!
//! A token is a JWS signed by the active key of [`SigningKeys`], with the protected header
//! `{"typ": "at+jwt", "alg", "kid"}` and the claims `iss, sub, aud, exp, iat, nbf, jti, sid, scope`, and
//! `amr` (RFC 8176) for tokens of a login session.
//!
//! `typ` is `at+jwt` (RFC 9068 §2.1) rather than `JWT`: ID tokens and other JWTs will be signed by the
//! same keys, and an explicit type keeps any of them from being accepted as an access token (RFC 8725
//! §3.11). Verification insists on it.
//!
//! This module never reads the system clock (the [`Clock`] port decides `iat`, `exp` and whether a
//! token has expired) and never says *why* a token was refused beyond expired-or-invalid: the detail
//! ([`Rejection`]) is for logs and the audit chain only.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use super::SessionId;
use super::keys::{SigningKeyError, SigningKeys};
use crate::clock::Clock;

/// The `typ` header of access tokens (RFC 9068).
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// Default access-token lifetime.
pub const DEFAULT_ACCESS_TTL: Duration = Duration::minutes(15);

/// Default tolerance for clock skew between the issuer and a verifier, applied to `exp`, `nbf`, `iat`.
pub const DEFAULT_LEEWAY: Duration = Duration::seconds(30);

/// How access tokens are issued and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessTokenSettings {
    /// The `iss` written and required: the public issuer URL (`PALISADE_ISSUER`).
    pub issuer: String,
    /// The `aud` written and required (one string; a token with an array `aud` is refused).
    pub audience: String,
    /// Lifetime of a token (default 15 minutes); keep it positive.
    pub ttl: Duration,
    /// Clock-skew tolerance on `exp`, `nbf` and `iat` (default 30 seconds); negative counts as zero.
    pub leeway: Duration,
}

impl AccessTokenSettings {
    /// Settings with the default lifetime and leeway.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self { issuer: issuer.into(), audience: audience.into(), ttl: DEFAULT_ACCESS_TTL, leeway: DEFAULT_LEEWAY }
    }
}

/// A token just issued.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The JWT (a bearer credential: never log it).
    pub token: String,
    /// Its `jti`.
    pub jti: uuid::Uuid,
    /// Its `exp`.
    pub expires_at: OffsetDateTime,
    /// Seconds from issue to `exp` (the OAuth2 `expires_in`).
    pub expires_in: u64,
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token", &"<hidden>")
            .field("jti", &self.jti)
            .field("expires_at", &self.expires_at)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// The claims of a verified access token. `iss` and `aud` are not repeated: they were checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessClaims {
    /// `sub`: the user id for tokens issued at login (a client id, for client-credentials tokens).
    pub sub: String,
    /// `sid`: the session the token belongs to (`None` for a client-credentials token, which
    /// belongs to no user and no session).
    pub sid: Option<SessionId>,
    /// `client_id` (RFC 9068): the OAuth client the token was issued to, when one was.
    pub client_id: Option<String>,
    /// `jti`: the token's unique id.
    pub jti: uuid::Uuid,
    /// `scope`: space-separated scope tokens.
    pub scope: String,
    /// `iat`.
    pub issued_at: OffsetDateTime,
    /// `exp`.
    pub expires_at: OffsetDateTime,
    /// `amr` (RFC 8176): how the user authenticated; empty when the token has none.
    pub amr: Vec<String>,
}

impl AccessClaims {
    /// The scope tokens.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split(' ').filter(|s| !s.is_empty())
    }

    /// Whether the token carries `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().any(|s| s == scope)
    }
}

/// Why a token was refused: the only distinction callers may show is expired or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Genuine and otherwise valid, but past `exp` (plus leeway): `TOKEN_EXPIRED`.
    #[error("token expired")]
    Expired,
    /// Anything else: `INVALID_TOKEN`. The [`Rejection`] is for logs, never for the client.
    #[error("invalid token")]
    Invalid(Rejection),
}

/// The detail behind [`TokenError::Invalid`], for logs and audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Not three base64url parts, oversized, bad JSON, a header member we never write, or a claim
    /// missing or of the wrong type.
    Malformed,
    /// The `kid` names no key this instance knows.
    UnknownKey,
    /// The header's `alg` is not its key's algorithm (`none`, HS/RS confusion …).
    AlgorithmMismatch,
    /// The header's `typ` is not `at+jwt`.
    WrongType,
    /// The signature does not verify.
    BadSignature,
    /// `iss` is not this issuer.
    WrongIssuer,
    /// `aud` is not this audience.
    WrongAudience,
    /// `nbf` or `iat` is in the future (beyond the leeway).
    NotYetValid,
}

impl Rejection {
    /// A stable name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::UnknownKey => "unknown_key",
            Self::AlgorithmMismatch => "algorithm_mismatch",
            Self::WrongType => "wrong_type",
            Self::BadSignature => "bad_signature",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::NotYetValid => "not_yet_valid",
        }
    }
}

/// Why a token could not be issued.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// The subject is empty.
    #[error("the subject is empty")]
    EmptySubject,
    /// A scope is empty or holds a character RFC 6749 §3.3 does not allow (a space would forge a
    /// second scope).
    #[error("a scope is not an RFC 6749 scope token")]
    InvalidScope,
    /// The time is out of range (a broken clock or setting).
    #[error("the expiry time is out of range")]
    TimeOutOfRange,
    /// Signing failed.
    #[error(transparent)]
    Signing(#[from] SigningKeyError),
}

/// The claims as written.
#[derive(Serialize)]
struct ClaimsOut<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
    iat: i64,
    nbf: i64,
    jti: uuid::Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<SessionId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<&'a str>,
    scope: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    amr: &'a [String],
}

/// The claims as read, borrowing from the decoded payload: every one is required; others are
/// ignored (a later version may add some).
#[derive(Deserialize)]
struct ClaimsIn<'a> {
    #[serde(borrow)]
    iss: Cow<'a, str>,
    #[serde(borrow)]
    sub: Cow<'a, str>,
    #[serde(borrow)]
    aud: Cow<'a, str>,
    exp: i64,
    iat: i64,
    nbf: i64,
    jti: uuid::Uuid,
    #[serde(default)]
    sid: Option<SessionId>,
    #[serde(default, borrow)]
    client_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    scope: Cow<'a, str>,
    #[serde(default)]
    amr: Vec<String>,
}

/// Issues and verifies access tokens.
pub struct AccessTokens {
    keys: Arc<SigningKeys>,
    clock: Arc<dyn Clock>,
    settings: AccessTokenSettings,
    ttl_secs: i64,
    leeway_secs: i64,
}

impl fmt::Debug for AccessTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessTokens").field("settings", &self.settings).field("keys", &self.keys).finish()
    }
}

impl AccessTokens {
    /// Access tokens signed by `keys`, timed by `clock`.
    pub fn new(keys: Arc<SigningKeys>, clock: Arc<dyn Clock>, settings: AccessTokenSettings) -> Self {
        let ttl_secs = settings.ttl.whole_seconds();
        let leeway_secs = settings.leeway.whole_seconds().max(0);
        Self { keys, clock, settings, ttl_secs, leeway_secs }
    }

    /// The settings.
    pub fn settings(&self) -> &AccessTokenSettings {
        &self.settings
    }

    /// The signing keys.
    pub fn keys(&self) -> &Arc<SigningKeys> {
        &self.keys
    }

    /// Issues a token for `subject` in `session` with `scopes`, valid from now for the configured TTL.
    pub fn issue(&self, subject: &str, session: SessionId, scopes: &[String]) -> Result<IssuedToken, IssueError> {
        self.issue_with_amr(subject, session, scopes, &[])
    }

    /// Like [`Self::issue`], with the `amr` claim (RFC 8176) when `amr` is not empty.
    pub fn issue_with_amr(
        &self,
        subject: &str,
        session: SessionId,
        scopes: &[String],
        amr: &[String],
    ) -> Result<IssuedToken, IssueError> {
        self.sign(subject, Some(session), None, scopes, amr)
    }

    /// Issues a token to an OAuth client for itself (the client-credentials grant, RFC 9068): `sub`
    /// and `client_id` are the client, and there is no session.
    pub fn issue_for_client(&self, client_id: &str, scopes: &[String]) -> Result<IssuedToken, IssueError> {
        self.sign(client_id, None, Some(client_id), scopes, &[])
    }

    /// Issues a token to an OAuth client for a user (the authorization-code and refresh grants):
    /// `sub` is the user, `sid` the session the client holds, `client_id` the client.
    pub fn issue_for_grant(
        &self,
        subject: &str,
        session: SessionId,
        client_id: &str,
        scopes: &[String],
        amr: &[String],
    ) -> Result<IssuedToken, IssueError> {
        self.sign(subject, Some(session), Some(client_id), scopes, amr)
    }

    fn sign(
        &self,
        subject: &str,
        session: Option<SessionId>,
        client_id: Option<&str>,
        scopes: &[String],
        amr: &[String],
    ) -> Result<IssuedToken, IssueError> {
        if subject.is_empty() {
            return Err(IssueError::EmptySubject);
        }
        let mut scope = String::with_capacity(scopes.iter().map(|s| s.len() + 1).sum());
        for s in scopes {
            if !is_scope_token(s) {
                return Err(IssueError::InvalidScope);
            }
            if !scope.is_empty() {
                scope.push(' ');
            }
            scope.push_str(s);
        }
        let now = self.clock.now().unix_timestamp();
        let exp = now.checked_add(self.ttl_secs).ok_or(IssueError::TimeOutOfRange)?;
        let expires_at = OffsetDateTime::from_unix_timestamp(exp).map_err(|_| IssueError::TimeOutOfRange)?;
        let jti = uuid::Uuid::new_v4();
        let claims = ClaimsOut {
            iss: &self.settings.issuer,
            sub: subject,
            aud: &self.settings.audience,
            exp,
            iat: now,
            nbf: now,
            jti,
            sid: session,
            client_id,
            scope: &scope,
            amr,
        };
        let token = self.keys.sign_jws(ACCESS_TOKEN_TYPE, &claims)?;
        Ok(IssuedToken { token, jti, expires_at, expires_in: u64::try_from(self.ttl_secs).unwrap_or(0) })
    }

    /// Verifies a token: header, key and algorithm, signature (see `SigningKeys::verify_jws`), then
    /// the claims — all present, `iss` and `aud` ours, `nbf` and `iat` not in the future and `exp` not
    /// past, each with the leeway, against the injected clock. [`TokenError::Expired`] is only ever
    /// said of a token that is genuine and otherwise valid.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let payload = self.keys.verify_jws(token, ACCESS_TOKEN_TYPE).map_err(TokenError::Invalid)?;
        let claims: ClaimsIn<'_> =
            serde_json::from_slice(&payload).map_err(|_| TokenError::Invalid(Rejection::Malformed))?;
        // A token is a session's (`sid`) or a client's (`client_id`); one with neither was not ours.
        if claims.sid.is_none() && claims.client_id.is_none() {
            return Err(TokenError::Invalid(Rejection::Malformed));
        }
        if claims.iss != self.settings.issuer {
            return Err(TokenError::Invalid(Rejection::WrongIssuer));
        }
        if claims.aud != self.settings.audience {
            return Err(TokenError::Invalid(Rejection::WrongAudience));
        }
        let now = self.clock.now().unix_timestamp();
        let latest_start = now.saturating_add(self.leeway_secs);
        if claims.nbf > latest_start || claims.iat > latest_start {
            return Err(TokenError::Invalid(Rejection::NotYetValid));
        }
        if now >= claims.exp.saturating_add(self.leeway_secs) {
            return Err(TokenError::Expired);
        }
        let time = |t| OffsetDateTime::from_unix_timestamp(t).map_err(|_| TokenError::Invalid(Rejection::Malformed));
        Ok(AccessClaims {
            issued_at: time(claims.iat)?,
            expires_at: time(claims.exp)?,
            sub: claims.sub.into_owned(),
            sid: claims.sid,
            client_id: claims.client_id.map(Cow::into_owned),
            jti: claims.jti,
            scope: claims.scope.into_owned(),
            amr: claims.amr,
        })
    }
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
fn is_scope_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;
    use crate::clock::ManualClock;
    use crate::token::keys::SigningAlgorithm;
    use crate::token::keys::fixtures::Fixture;

    const ISSUER: &str = "https://id.example.test";
    const AUDIENCE: &str = "https://api.example.test";
    const ASYMMETRIC: [SigningAlgorithm; 3] =
        [SigningAlgorithm::EdDSA, SigningAlgorithm::ES256, SigningAlgorithm::RS256];

    fn tokens(f: &Fixture) -> AccessTokens {
        AccessTokens::new(f.keys.clone(), f.clock.clone(), AccessTokenSettings::new(ISSUER, AUDIENCE))
    }

    fn scopes() -> Vec<String> {
        vec!["user".into(), "profile:read".into()]
    }

    fn issue(tokens: &AccessTokens) -> IssuedToken {
        tokens.issue("0195d2f0-6a8e-7a4c-9d1e-2f3a4b5c6d7e", SessionId::generate(), &scopes()).unwrap()
    }

    fn part(token: &str, i: usize) -> serde_json::Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').nth(i).unwrap()).unwrap()).unwrap()
    }

    fn b64json(value: &serde_json::Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
    }

    fn invalid(reason: Rejection) -> Result<AccessClaims, TokenError> {
        Err(TokenError::Invalid(reason))
    }

    #[tokio::test]
    async fn issue_then_verify_round_trips_for_every_algorithm() {
        for algorithm in SigningAlgorithm::ALL {
            let f = Fixture::new(algorithm).await;
            let tokens = tokens(&f);
            let session = SessionId::generate();
            let issued = tokens.issue("user-1", session, &scopes()).unwrap();
            assert_eq!(issued.expires_in, 900);
            assert_eq!(issued.expires_at, f.clock.now() + Duration::minutes(15));
            assert!(!format!("{issued:?}").contains(&issued.token));

            let header = part(&issued.token, 0);
            assert_eq!(
                header,
                serde_json::json!({"typ": "at+jwt", "alg": algorithm.as_str(), "kid": f.keys.signing_key().kid})
            );
            let claims = part(&issued.token, 1);
            let now = f.clock.now().unix_timestamp();
            assert_eq!(
                claims,
                serde_json::json!({
                    "iss": ISSUER, "sub": "user-1", "aud": AUDIENCE, "exp": now + 900, "iat": now, "nbf": now,
                    "jti": issued.jti.to_string(), "sid": session.to_string(), "scope": "user profile:read",
                })
            );

            let verified = tokens.verify(&issued.token).unwrap();
            assert_eq!(
                verified,
                AccessClaims {
                    sub: "user-1".into(),
                    sid: Some(session),
                    client_id: None,
                    jti: issued.jti,
                    scope: "user profile:read".into(),
                    issued_at: f.clock.now(),
                    expires_at: issued.expires_at,
                    amr: Vec::new(),
                },
                "{algorithm}"
            );
            assert!(verified.has_scope("profile:read") && !verified.has_scope("admin"));
            assert_eq!(verified.scopes().collect::<Vec<_>>(), ["user", "profile:read"]);
        }
    }

    #[tokio::test]
    async fn the_amr_claim_is_written_and_read_back() {
        let f = Fixture::new(SigningAlgorithm::EdDSA).await;
        let tokens = tokens(&f);
        let amr = vec!["pwd".to_owned(), "otp".to_owned(), "mfa".to_owned()];
        let issued = tokens.issue_with_amr("user-1", SessionId::generate(), &["user".to_owned()], &amr).unwrap();
        let payload = issued.token.split('.').nth(1).unwrap();
        let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
        assert_eq!(tokens.verify(&issued.token).unwrap().amr, amr);
    }

    #[tokio::test]
    async fn a_client_token_names_the_client_and_no_session() {
        let f = Fixture::new(SigningAlgorithm::EdDSA).await;
        let tokens = tokens(&f);
        let issued = tokens.issue_for_client("client-7", &["orders:read".to_owned()]).unwrap();
        let payload = issued.token.split('.').nth(1).unwrap();
        let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        assert_eq!((claims["sub"].as_str(), claims["client_id"].as_str()), (Some("client-7"), Some("client-7")));
        assert!(claims.get("sid").is_none() && claims.get("amr").is_none(), "{claims}");
        let verified = tokens.verify(&issued.token).unwrap();
        assert_eq!((verified.sid, verified.client_id.as_deref()), (None, Some("client-7")));
        assert_eq!(verified.scope, "orders:read");
        // A user's token has a session and no client.
        let user = issue(&tokens);
        let verified = tokens.verify(&user.token).unwrap();
        assert!(verified.sid.is_some() && verified.client_id.is_none());
    }

    #[tokio::test]
    async fn every_token_has_its_own_jti() {
        let f = Fixture::new(SigningAlgorithm::EdDSA).await;
        let tokens = tokens(&f);
        assert_ne!(issue(&tokens).jti, issue(&tokens).jti);
    }

    #[tokio::test]
    async fn expiry_is_judged_by_the_injected_clock_with_leeway() {
        let f = Fixture::new(SigningAlgorithm::EdDSA).await;
        let tokens = tokens(&f);
        let issued = issue(&tokens);
        f.clock.advance(Duration::minutes(15) + Duration::seconds(29));
        assert!(tokens.verify(&issued.token).is_ok(), "within the leeway");
        f.clock.advance(Duration::seconds(1));
        assert_eq!(tokens.verify(&issued.token), Err(TokenError::Expired));
        assert_eq!(TokenError::Expired.to_string(), "token expired");

        // With no leeway the token ends exactly at exp.
        let strict = AccessTokens::new(
            f.keys.clone(),
            f.clock.clone(),
            AccessTokenSettings { leeway: Duration::ZERO, ..AccessTokenSettings::new(ISSUER, AUDIENCE) },
        );
        let issued = issue(&strict);
        f.clock.advance(Duration::minutes(15) - Duration::seconds(1));
        assert!(strict.verify(&issued.token).is_ok());
        f.clock.advance(Duration::seconds(1));
        assert_eq!(strict.verify(&issued.token), Err(TokenError::Expired));
    }

    #[tokio::test]
    async fn a_token_from_the_future_is_refused() {
        let f = Fixture::new(SigningAlgorithm::EdDSA).await;
        // Same keys, a clock one minute ahead: its tokens' nbf/iat are in this clock's future.
        let ahead = Arc::new(ManualClock::new(f.clock.now() + Duration::minutes(1)));
        let future = AccessTokens::new(f.keys.clone(), ahead, AccessTokenSettings::new(ISSUER, AUDIENCE));
        let issued = issue(&future);
        assert_eq!(tokens(&f).verify(&issued.token), invalid(Rejection::NotYetValid));
        f.clock.advance(Duration::seconds(30));
        assert!(tokens(&f).verify(&issued.token).is_ok(), "within the leeway");

        // nbf alone in the future.
        let mut claims = part(&issue(&tokens(&f)).token, 1);
        claims["nbf"] = (f.clock.now().unix_timestamp() + 31).into();
        let token = f.keys.sign_jws(ACCESS_TOKEN_TYPE, &claims).unwrap();
        assert_eq!(tokens(&f).verify(&token), invalid(Rejection::NotYetValid));
    }

    #[tokio::test]
    async fn another_issuer_or_audience_is_refused() {
        let f = Fixture::new(SigningAlgorithm::EdDSA).await;
        let issued = issue(&tokens(&f));
        let other = |settings| AccessTokens::new(f.keys.clone(), f.clock.clone(), settings);
        assert_eq!(
            other(AccessTokenSettings::new("https://evil.test", AUDIENCE)).verify(&issued.token),
            invalid(Rejection::WrongIssuer)
        );
        assert_eq!(
            other(AccessTokenSettings::new(ISSUER, "https://other-api.test")).verify(&issued.token),
            invalid(Rejection::WrongAudience)
        );
        // An array audience, even one holding ours, is not what we issue.
        let mut claims = part(&issued.token, 1);
        claims["aud"] = serde_json::json!([AUDIENCE]);
        let token = f.keys.sign_jws(ACCESS_TOKEN_TYPE, &claims).unwrap();
        assert_eq!(tokens(&f).verify(&token), invalid(Rejection::Malformed));
    }

    #[tokio::test]
    async fn a_missing_or_mistyped_claim_is_refused() {
        let f = Fixture::new(SigningAlgorithm::EdDSA).await;
        let claims = part(&issue(&tokens(&f)).token, 1);
        for name in ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "sid", "scope"] {
            let mut without = claims.clone();
            without.as_object_mut().unwrap().remove(name);
            let token = f.keys.sign_jws(ACCESS_TOKEN_TYPE, &without).unwrap();
            assert_eq!(tokens(&f).verify(&token), invalid(Rejection::Malformed), "{name}");
        }
        for (name, value) in
            [("exp", serde_json::json!("soon")), ("exp", serde_json::json!(1e12)), ("sid", serde_json::json!("x"))]
        {
            let mut wrong = claims.clone();
            wrong[name] = value;
            let token = f.keys.sign_jws(ACCESS_TOKEN_TYPE, &wrong).unwrap();
            assert_eq!(tokens(&f).verify(&token), invalid(Rejection::Malformed), "{name}");
        }
    }

    #[tokio::test]
    async fn tampering_is_detected() {
        for algorithm in SigningAlgorithm::ALL {
            let f = Fixture::new(algorithm).await;
            let tokens = tokens(&f);
            let token = issue(&tokens).token;
            let [header, payload, signature] = token.split('.').collect::<Vec<_>>().try_into().unwrap();

            let mut claims = part(&token, 1);
            claims["scope"] = "admin".into();
            let forged = format!("{header}.{}.{signature}", b64json(&claims));
            assert_eq!(tokens.verify(&forged), invalid(Rejection::BadSignature), "{algorithm} payload");

            let mut sig = URL_SAFE_NO_PAD.decode(signature).unwrap();
            sig[5] ^= 1;
            let forged = format!("{header}.{payload}.{}", URL_SAFE_NO_PAD.encode(&sig));
            assert_eq!(tokens.verify(&forged), invalid(Rejection::BadSignature), "{algorithm} signature");

            let forged = format!("{header}.{payload}.");
            assert_eq!(tokens.verify(&forged), invalid(Rejection::BadSignature), "{algorithm} no signature");

            for malformed in [
                String::new(),
                format!("{header}.{payload}"),
                format!("{token}.x"),
                format!("{header}.{payload}.{signature}="),
                format!("{header}.{payload}!.{signature}"),
                format!("{header}x.{payload}.{signature}"),
                format!("{}.{payload}.{signature}", "A".repeat(8000)),
            ] {
                assert!(matches!(
                    tokens.verify(&malformed),
                    Err(TokenError::Invalid(Rejection::Malformed | Rejection::BadSignature))
                ));
            }
        }
    }

    #[tokio::test]
    async fn alg_none_is_refused() {
        let f = Fixture::new(SigningAlgorithm::EdDSA).await;
        let tokens = tokens(&f);
        let token = issue(&tokens).token;
        let payload = token.split('.').nth(1).unwrap();
        let kid = f.keys.signing_key().kid;
        for alg in ["none", "None", "NONE"] {
            let header = b64json(&serde_json::json!({"typ": "at+jwt", "alg": alg, "kid": kid}));
            for signature in ["", "AAAA"] {
                let forged = format!("{header}.{payload}.{signature}");
                assert_eq!(tokens.verify(&forged), invalid(Rejection::AlgorithmMismatch), "{alg}");
            }
        }
        // Without a kid the header is not one we write.
        let header = b64json(&serde_json::json!({"typ": "at+jwt", "alg": "none"}));
        assert_eq!(tokens.verify(&format!("{header}.{payload}.")), invalid(Rejection::Malformed));
    }

    #[tokio::test]
    async fn hs256_over_a_public_key_is_refused() {
        use aws_lc_rs::hmac;
        for algorithm in ASYMMETRIC {
            let f = Fixture::new(algorithm).await;
            let tokens = tokens(&f);
            let token = issue(&tokens).token;
            let payload = token.split('.').nth(1).unwrap();
            let jwk = f.keys.jwks().keys.pop().unwrap();
            let public_bytes =
                |m: &Option<String>| m.as_ref().map(|v| URL_SAFE_NO_PAD.decode(v).unwrap()).unwrap_or_default();
            // Whatever an attacker might take for "the public key" as an HMAC secret.
            let candidates = [
                serde_json::to_vec(&jwk).unwrap(),
                public_bytes(&jwk.x),
                [vec![4], public_bytes(&jwk.x), public_bytes(&jwk.y)].concat(),
                public_bytes(&jwk.n),
            ];
            for secret in candidates {
                let header = b64json(&serde_json::json!({"typ": "at+jwt", "alg": "HS256", "kid": jwk.kid}));
                let input = format!("{header}.{payload}");
                let mac = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &secret), input.as_bytes());
                let forged = format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac));
                assert_eq!(tokens.verify(&forged), invalid(Rejection::AlgorithmMismatch), "{algorithm}");
            }
            // Nor may one asymmetric algorithm stand in for another on this key.
            for other in ASYMMETRIC.into_iter().filter(|a| *a != algorithm) {
                let header = b64json(&serde_json::json!({"typ": "at+jwt", "alg": other.as_str(), "kid": jwk.kid}));
                let forged = format!("{header}.{payload}.{}", token.split('.').nth(2).unwrap());
                assert_eq!(tokens.verify(&forged), invalid(Rejection::AlgorithmMismatch));
            }
        }
    }

    #[tokio::test]
    async fn an_unknown_kid_is_refused() {
        let f = Fixture::new(SigningAlgorithm::EdDSA).await;
        let elsewhere = Fixture::new(SigningAlgorithm::EdDSA).await;
        let token = issue(&tokens(&elsewhere)).token;
        assert_eq!(tokens(&f).verify(&token), invalid(Rejection::UnknownKey));

        let [_, payload, signature] = token.split('.').collect::<Vec<_>>().try_into().unwrap();
        let header = b64json(&serde_json::json!({"typ": "at+jwt", "alg": "EdDSA", "kid": "no-such-key"}));
        assert_eq!(tokens(&f).verify(&format!("{header}.{payload}.{signature}")), invalid(Rejection::UnknownKey));
    }

    #[tokio::test]
    async fn only_access_token_headers_are_accepted() {
        let f = Fixture::new(SigningAlgorithm::EdDSA).await;
        let tokens = tokens(&f);
        let claims = part(&issue(&tokens).token, 1);
        // Another JWT type signed by the same key (an ID token, say) is not an access token.
        for typ in ["JWT", "id_token+jwt", "at+jwt2"] {
            let token = f.keys.sign_jws(typ, &claims).unwrap();
            assert_eq!(tokens.verify(&token), invalid(Rejection::WrongType), "{typ}");
        }
        let token = f.keys.sign_jws("application/AT+JWT", &claims).unwrap();
        assert!(tokens.verify(&token).is_ok());

        // A header member we never write (jku here) is refused, not ignored.
        let kid = f.keys.signing_key().kid;
        let header =
            b64json(&serde_json::json!({"typ": "at+jwt", "alg": "EdDSA", "kid": kid, "jku": "https://evil.test/jwks"}));
        let token = issue(&tokens).token;
        let [_, payload, signature] = token.split('.').collect::<Vec<_>>().try_into().unwrap();
        assert_eq!(tokens.verify(&format!("{header}.{payload}.{signature}")), invalid(Rejection::Malformed));
    }

    #[tokio::test]
    async fn a_token_signed_before_rotation_still_verifies() {
        let f = Fixture::new(SigningAlgorithm::ES256).await;
        let tokens = tokens(&f);
        let before = issue(&tokens);
        let old_kid = f.keys.signing_key().kid;
        use crate::store::SigningKeyStore as _;
        f.store.retire_signing_key(&old_kid, f.clock.now()).await.unwrap();
        f.keys.refresh().await.unwrap();
        let after = issue(&tokens);
        assert_ne!(part(&after.token, 0)["kid"], part(&before.token, 0)["kid"]);
        assert!(tokens.verify(&before.token).is_ok());
        assert!(tokens.verify(&after.token).is_ok());
    }

    #[tokio::test]
    async fn scopes_must_be_rfc6749_scope_tokens() {
        let f = Fixture::new(SigningAlgorithm::EdDSA).await;
        let tokens = tokens(&f);
        for bad in ["", "user admin", "a\"b", "a\\b", "é", "tab\t"] {
            let result = tokens.issue("u", SessionId::generate(), &[bad.to_owned()]);
            assert!(matches!(result, Err(IssueError::InvalidScope)), "{bad:?}");
        }
        assert!(matches!(tokens.issue("", SessionId::generate(), &[]), Err(IssueError::EmptySubject)));
        let none = tokens.issue("u", SessionId::generate(), &[]).unwrap();
        assert_eq!(tokens.verify(&none.token).unwrap().scopes().count(), 0);
    }
}
