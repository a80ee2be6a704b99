//! The consent ledger (GDPR Art. 7(1): the controller must be able to show that the person
//! consented). Who consented to what, when and how: each entry names the user, the consent type,
//! the version and the hash of the text they saw, the collection method, and the address and user
//! agent of the request. The text of each version is stored once, by its hash.
//!
//! The ledger is append-only: giving and withdrawing are both entries, numbered per user and type;
//! the newest entry is the state. Entries leave only with their user (erasure) or by retention.

use serde_json::json;
use time::OffsetDateTime;

use super::service::ComplianceService;
use super::{ComplianceError, invalid};
use crate::audit::{AuditEvent, AuditKind, Outcome, RequestMeta};
use crate::auth::{Principal, SCOPE_USER};
use crate::user::UserId;

/// The longest consent text accepted, in bytes.
pub const MAX_TEXT: usize = 64 * 1024;
/// The longest type, version or method name.
const MAX_NAME: usize = 64;
/// How many times an append retries after another writer took the next number.
const MAX_APPEND_ATTEMPTS: u32 = 8;

/// What a consent is for (`data_processing`, `marketing` …): 1 to 64 lowercase ASCII letters,
/// digits, `_`, `-`, `.` or `:`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConsentType(String);

impl ConsentType {
    /// Parses a type name.
    pub fn parse(name: &str) -> Result<Self, ComplianceError> {
        if name.is_empty() || name.len() > MAX_NAME {
            return Err(invalid("type", format!("must be 1 to {MAX_NAME} characters")));
        }
        if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.:".contains(&b)) {
            return Err(invalid("type", "may hold only lowercase letters, digits, '_', '-', '.' and ':'"));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether an entry gives or withdraws consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentAction {
    /// Consent was given.
    Given,
    /// Consent was withdrawn.
    Withdrawn,
}

impl ConsentAction {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Given => "given",
            Self::Withdrawn => "withdrawn",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "given" => Some(Self::Given),
            "withdrawn" => Some(Self::Withdrawn),
            _ => None,
        }
    }
}

/// One entry of the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    /// Its id.
    pub id: uuid::Uuid,
    /// Whose consent.
    pub user_id: UserId,
    /// What for.
    pub consent_type: String,
    /// Its number among the user's entries of this type, from 1.
    pub seq: i64,
    /// Given or withdrawn.
    pub action: ConsentAction,
    /// The version of the text.
    pub version: String,
    /// SHA-256 of the text (see [`text_hash`]).
    pub text_hash: Vec<u8>,
    /// How it was collected (`web_form`, `api` …).
    pub method: String,
    /// The address the request came from.
    pub ip: Option<String>,
    /// The user agent of the request.
    pub user_agent: Option<String>,
    /// Why it was withdrawn (withdrawals only).
    pub reason: Option<String>,
    /// When.
    pub at: OffsetDateTime,
    /// Until when a consent given holds (`None` for a withdrawal).
    pub valid_until: Option<OffsetDateTime>,
}

impl Consent {
    /// Whether this entry is a consent given and still valid at `now`.
    pub fn is_live(&self, now: OffsetDateTime) -> bool {
        self.action == ConsentAction::Given && self.valid_until.is_some_and(|until| until > now)
    }

    /// The text's hash in hexadecimal (as the API and exports show it).
    pub fn text_sha256(&self) -> String {
        data_encoding::HEXLOWER.encode(&self.text_hash)
    }
}

/// A version's full text, kept once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentText {
    /// SHA-256 of the type, version and text ([`text_hash`]).
    pub hash: Vec<u8>,
    /// The consent type.
    pub consent_type: String,
    /// The version.
    pub version: String,
    /// The text.
    pub text: String,
    /// When it was first recorded.
    pub recorded_at: OffsetDateTime,
}

/// What [`crate::store::ConsentStore::put_consent_text`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentTextPut {
    /// The text is stored (now or before).
    Stored,
    /// Another text is stored for that type and version.
    VersionTaken,
}

/// The hash a text is stored by: SHA-256 over the type, the version and the text, each
/// length-prefixed, so a text is never mistaken for another type's or version's.
pub fn text_hash(consent_type: &str, version: &str, text: &str) -> Vec<u8> {
    let mut input = b"palisade consent v1".to_vec();
    for part in [consent_type, version, text] {
        input.extend_from_slice(&(part.len() as u64).to_be_bytes());
        input.extend_from_slice(part.as_bytes());
    }
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &input).as_ref().to_vec()
}

/// A consent as the user gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRequest {
    /// What for.
    pub consent_type: String,
    /// The text the user saw.
    pub text: String,
    /// Its version.
    pub version: String,
    /// How it was collected (default `web_form`).
    pub method: Option<String>,
}

/// What withdrawing a consent did (the guide's answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Withdrawal {
    /// Always `true`: a consent that was not given is `NotFound`.
    pub withdrawn: bool,
    /// Whether the withdrawal schedules (or found scheduled) the erasure of the user's data.
    pub data_deletion_scheduled: bool,
    /// When that erasure is due.
    pub deletion_date: Option<OffsetDateTime>,
    /// The erasure request, when one is scheduled.
    pub erasure_request_id: Option<uuid::Uuid>,
}

/// The state of one consent type for a user: its newest entry, read at `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentState {
    /// The newest entry.
    pub latest: Consent,
    /// `given` (and valid), `expired` or `withdrawn`.
    pub status: &'static str,
}

/// A user's consents: the state of each type and the whole ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentOverview {
    /// Whose.
    pub user_id: UserId,
    /// Per type, its state.
    pub current: Vec<ConsentState>,
    /// Every entry, by type then number.
    pub history: Vec<Consent>,
}

fn method_of(method: Option<&str>) -> Result<String, ComplianceError> {
    let method = method.unwrap_or("web_form");
    if method.is_empty()
        || method.len() > MAX_NAME
        || !method.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
    {
        return Err(invalid("method", format!("must be 1 to {MAX_NAME} letters, digits, '_', '-' or '.'")));
    }
    Ok(method.to_owned())
}

impl ComplianceService {
    /// Records the caller's consent (`user` scope), with the request's address and user agent:
    /// its text is stored once by hash, and an entry appended to the ledger, valid for the type's
    /// configured period. Audited as `compliance.consent_given`.
    pub async fn record_consent(
        &self,
        principal: &Principal,
        request: ConsentRequest,
        meta: &RequestMeta,
    ) -> Result<Consent, ComplianceError> {
        principal.require_scope(SCOPE_USER)?;
        let consent_type = ConsentType::parse(&request.consent_type)?;
        if request.text.trim().is_empty() {
            return Err(invalid("text", "is required: the exact text the user consented to"));
        }
        if request.text.len() > MAX_TEXT {
            return Err(invalid("text", format!("is {} bytes; at most {MAX_TEXT} are accepted", request.text.len())));
        }
        let version = request.version.trim();
        if version.is_empty() || version.len() > MAX_NAME {
            return Err(invalid("version", format!("is required, 1 to {MAX_NAME} characters")));
        }
        let method = method_of(request.method.as_deref())?;
        let now = self.clock.now();
        let hash = text_hash(consent_type.as_str(), version, &request.text);
        let text = ConsentText {
            hash: hash.clone(),
            consent_type: consent_type.as_str().to_owned(),
            version: version.to_owned(),
            text: request.text,
            recorded_at: now,
        };
        if self.store.put_consent_text(&text).await? == crate::compliance::consent::ConsentTextPut::VersionTaken {
            return Err(ComplianceError::Conflict(format!(
                "version {version:?} of consent type {:?} was recorded with a different text; \
                 give the changed text a new version",
                consent_type.as_str()
            )));
        }
        let valid_until = now + self.settings.validity_of(consent_type.as_str());
        let entry = self
            .append(principal.user_id, &consent_type, |seq| Consent {
                id: uuid::Uuid::now_v7(),
                user_id: principal.user_id,
                consent_type: consent_type.as_str().to_owned(),
                seq,
                action: ConsentAction::Given,
                version: version.to_owned(),
                text_hash: hash.clone(),
                method: method.clone(),
                ip: meta.ip.clone(),
                user_agent: meta.user_agent.clone(),
                reason: None,
                at: now,
                valid_until: Some(valid_until),
            })
            .await?;
        self.audit
            .append(
                AuditEvent::new(AuditKind::ConsentGiven, Outcome::Success)
                    .actor(principal.actor())
                    .subject(principal.user_id.to_string())
                    .request(meta.clone())
                    .details(super::facts(json!({
                        "consent_type": entry.consent_type,
                        "version": entry.version,
                        "text_sha256": entry.text_sha256(),
                        "method": entry.method,
                        "valid_until": crate::compliance::rfc3339(valid_until),
                    }))),
            )
            .await?;
        Ok(entry)
    }

    /// Withdraws the caller's consent of `consent_type`: a withdrawal entry is appended and, when
    /// the type is one whose withdrawal requires it, the erasure of the caller's data is
    /// scheduled after the deletion delay (or the one already scheduled is reported) — except for
    /// the last administrator, whose withdrawal stands without an erasure. `NotFound` when the
    /// caller's newest entry of that type is not a consent given. Audited as
    /// `compliance.consent_withdrawn`.
    pub async fn withdraw_consent(
        &self,
        principal: &Principal,
        consent_type: &str,
        meta: &RequestMeta,
    ) -> Result<Withdrawal, ComplianceError> {
        principal.require_scope(SCOPE_USER)?;
        let consent_type = ConsentType::parse(consent_type)?;
        let now = self.clock.now();
        let mut withdrawn = None;
        for _ in 0..MAX_APPEND_ATTEMPTS {
            let latest = self.store.latest_consent(principal.user_id, consent_type.as_str()).await?;
            let Some(given) = latest.filter(|c| c.action == ConsentAction::Given) else {
                return Err(ComplianceError::NotFound("no consent of this type is given"));
            };
            let entry = Consent {
                id: uuid::Uuid::now_v7(),
                seq: given.seq + 1,
                action: ConsentAction::Withdrawn,
                method: given.method.clone(),
                ip: meta.ip.clone(),
                user_agent: meta.user_agent.clone(),
                reason: Some("user_request".to_owned()),
                at: now,
                valid_until: None,
                ..given
            };
            if self.store.try_append_consent(&entry).await? {
                withdrawn = Some(entry);
                break;
            }
        }
        let Some(entry) = withdrawn else {
            return Err(ComplianceError::Conflict("the consent changed concurrently; try again".into()));
        };
        let requires_erasure = self.settings.erasure_on_withdrawal.iter().any(|t| t == consent_type.as_str());
        // The last administrator's data is not erased (no one would be left to administer): the
        // withdrawal stands, the erasure is not scheduled, and the record says why.
        let last_admin = requires_erasure && self.is_last_admin(principal.user_id).await?;
        let erasure = if requires_erasure && !last_admin {
            Some(
                self.schedule_erasure_for(
                    principal.user_id,
                    principal,
                    crate::compliance::erasure::ErasureReason::ConsentWithdrawn,
                    meta,
                )
                .await?,
            )
        } else {
            None
        };
        self.audit
            .append(
                AuditEvent::new(AuditKind::ConsentWithdrawn, Outcome::Success)
                    .actor(principal.actor())
                    .subject(principal.user_id.to_string())
                    .request(meta.clone())
                    .details(super::facts(json!({
                        "consent_type": entry.consent_type,
                        "version": entry.version,
                        "erasure_request": erasure.as_ref().map(|r| r.id.to_string()),
                        "erasure_not_scheduled": last_admin.then_some("the last administrator"),
                    }))),
            )
            .await?;
        Ok(Withdrawal {
            withdrawn: true,
            data_deletion_scheduled: erasure.is_some(),
            deletion_date: erasure.as_ref().map(|r| r.due_at),
            erasure_request_id: erasure.map(|r| r.id),
        })
    }

    /// A user's consents: the caller's own, or anyone's for a caller with `admin`,
    /// `compliance:read` or `compliance:admin`.
    pub async fn consents(
        &self,
        principal: &Principal,
        user: Option<UserId>,
    ) -> Result<ConsentOverview, ComplianceError> {
        let user = self.subject_for_reading(principal, user)?;
        let history = self.store.consent_ledger(user).await?;
        let now = self.clock.now();
        let mut current: Vec<ConsentState> = Vec::new();
        for entry in &history {
            let status = match entry.action {
                ConsentAction::Withdrawn => "withdrawn",
                ConsentAction::Given if entry.is_live(now) => "given",
                ConsentAction::Given => "expired",
            };
            match current.last_mut() {
                Some(last) if last.latest.consent_type == entry.consent_type => {
                    *last = ConsentState { latest: entry.clone(), status };
                }
                _ => current.push(ConsentState { latest: entry.clone(), status }),
            }
        }
        Ok(ConsentOverview { user_id: user, current, history })
    }

    /// The text a consent entry refers to.
    pub async fn consent_text(&self, principal: &Principal, hash: &[u8]) -> Result<ConsentText, ComplianceError> {
        principal.require_scope(SCOPE_USER)?;
        self.store.consent_text(hash).await?.ok_or(ComplianceError::NotFound("no consent text has this hash"))
    }

    /// Whether `user` holds a live consent of `consent_type` now.
    pub async fn has_live_consent(&self, user: UserId, consent_type: &str) -> Result<bool, ComplianceError> {
        let now = self.clock.now();
        Ok(self.store.latest_consent(user, consent_type).await?.is_some_and(|c| c.is_live(now)))
    }

    /// Appends the entry `make(seq)` with the next number of `user`'s `consent_type`, retrying when
    /// another writer took it.
    async fn append(
        &self,
        user: UserId,
        consent_type: &ConsentType,
        make: impl Fn(i64) -> Consent,
    ) -> Result<Consent, ComplianceError> {
        for _ in 0..MAX_APPEND_ATTEMPTS {
            let next = self.store.latest_consent(user, consent_type.as_str()).await?.map_or(1, |c| c.seq + 1);
            let entry = make(next);
            if self.store.try_append_consent(&entry).await? {
                return Ok(entry);
            }
        }
        Err(ComplianceError::Conflict("the consent changed concurrently; try again".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_lowercase_names() {
        assert!(ConsentType::parse("data_processing").is_ok());
        assert!(ConsentType::parse("marketing.email:v2").is_ok());
        for bad in ["", "Marketing", "has space", "é", &"a".repeat(65)] {
            assert!(ConsentType::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_text_hash_binds_type_and_version() {
        let a = text_hash("marketing", "1", "I agree");
        assert_eq!(a.len(), 32);
        assert_eq!(a, text_hash("marketing", "1", "I agree"));
        assert_ne!(a, text_hash("marketing", "2", "I agree"));
        assert_ne!(a, text_hash("analytics", "1", "I agree"));
        // Length prefixes: moving bytes between fields changes the hash.
        assert_ne!(text_hash("ab", "c", "d"), text_hash("a", "bc", "d"));
    }

    #[test]
    fn a_consent_is_live_until_its_end_and_a_withdrawal_never() {
        let at = OffsetDateTime::UNIX_EPOCH;
        let given = Consent {
            id: uuid::Uuid::nil(),
            user_id: UserId::from_uuid(uuid::Uuid::nil()),
            consent_type: "marketing".into(),
            seq: 1,
            action: ConsentAction::Given,
            version: "1".into(),
            text_hash: vec![0; 32],
            method: "web_form".into(),
            ip: None,
            user_agent: None,
            reason: None,
            at,
            valid_until: Some(at + time::Duration::days(1)),
        };
        assert!(given.is_live(at));
        assert!(!given.is_live(at + time::Duration::days(1)));
        let withdrawn = Consent { action: ConsentAction::Withdrawn, valid_until: None, ..given };
        assert!(!withdrawn.is_live(at));
    }

    #[test]
    fn methods_default_to_web_form_and_are_names() {
        assert_eq!(method_of(None).unwrap(), "web_form");
        assert_eq!(method_of(Some("api")).unwrap(), "api");
        assert!(method_of(Some("")).is_err());
        assert!(method_of(Some("a b")).is_err());
    }
}
