//! Wire types of compliance (`/compliance/*`): the consent ledger, erasure requests.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /compliance/consents`: a consent the caller gives. `text` and `version` are required
/// (a missing one is a 422 naming it); `method` defaults to `web_form`. The address and user agent
/// are taken from the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentRequest {
    /// What for: 1 to 64 lowercase letters, digits, `_`, `-`, `.` or `:` (`data_processing`).
    #[serde(rename = "type", default)]
    pub consent_type: String,
    /// The exact text the user consented to (at most 64 KiB).
    #[serde(default)]
    pub text: String,
    /// Its version (1 to 64 characters). A version's text cannot change: a different text with
    /// the same version is a 409.
    #[serde(default)]
    pub version: String,
    /// How it was collected (`web_form`, `api`, `paper` …).
    #[serde(default)]
    pub method: Option<String>,
}

/// One entry of the consent ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConsentView {
    /// The entry's id.
    pub consent_id: String,
    /// What for.
    #[serde(rename = "type")]
    pub consent_type: String,
    /// Its number among the user's entries of this type.
    pub seq: i64,
    /// `given` or `withdrawn`.
    pub action: String,
    /// The text's version.
    pub version: String,
    /// SHA-256 (hex) of the type, version and text: the key of the text kept once.
    pub text_sha256: String,
    /// How it was collected.
    pub method: String,
    /// The address of the request.
    pub ip_address: Option<String>,
    /// The user agent of the request.
    pub user_agent: Option<String>,
    /// Why it was withdrawn.
    pub reason: Option<String>,
    /// When (RFC 3339).
    pub recorded_at: String,
    /// Until when a consent given holds (RFC 3339; none for a withdrawal).
    pub valid_until: Option<String>,
}

/// The state of one consent type: its newest entry and whether it holds now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConsentStateView {
    /// `given` (and valid now), `expired` or `withdrawn`.
    pub status: String,
    /// The newest entry.
    pub latest: ConsentView,
}

/// `GET /compliance/consents`: a user's consents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConsentList {
    /// Whose.
    pub user_id: String,
    /// Per type, its state.
    pub consents: Vec<ConsentStateView>,
    /// Every entry, by type then number.
    pub history: Vec<ConsentView>,
}

/// `DELETE /compliance/consents/{type}`: what withdrawing did (the guide's answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WithdrawalView {
    /// Always `true` (a consent not given is a 404).
    pub withdrawn: bool,
    /// Whether the erasure of the user's data is scheduled (this type's withdrawal requires it).
    pub data_deletion_scheduled: bool,
    /// When that erasure is due (RFC 3339).
    pub deletion_date: Option<String>,
    /// The erasure request (cancel it with `DELETE /compliance/erasure/{id}` until then).
    pub erasure_request_id: Option<String>,
}

/// `POST /compliance/erasure`: whose data to erase (the caller's when absent).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErasureBody {
    /// Another user's id (needs `admin` or `compliance:admin`).
    #[serde(default)]
    pub user_id: Option<String>,
}

/// What an erasure has done so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErasureCountsView {
    /// Audit records about the user that were examined.
    pub audit_records: u64,
    /// Of those, how many were redacted (the rest were sealed before redaction existed).
    pub audit_redacted: u64,
    /// Whether the account's rows were deleted.
    pub account_deleted: bool,
    /// How many of the user's data keys were destroyed (crypto-shredding).
    pub keys_destroyed: u64,
}

/// An erasure request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErasureView {
    /// Its id.
    pub request_id: String,
    /// Whose data (absent once completed: the request forgets them).
    pub user_id: Option<String>,
    /// Who asked (absent once forgotten: the user themselves once erased).
    pub requested_by: Option<String>,
    /// `user_request`, `consent_withdrawn` or `administrator`.
    pub reason: String,
    /// `scheduled` (cancellable), `running`, `completed`, `cancelled` or `refused`.
    pub state: String,
    /// The next step: `sessions`, `audit`, `account`, `keys` or `done`.
    pub step: String,
    /// What was done.
    pub counts: ErasureCountsView,
    /// When it was asked for (RFC 3339).
    pub requested_at: String,
    /// When it is carried out (RFC 3339).
    pub deletion_date: String,
    /// When it ended (RFC 3339).
    pub finished_at: Option<String>,
    /// How it ended, in words (the reason of a refusal).
    pub outcome: Option<String>,
}

/// `GET /compliance/erasure`: erasure requests, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErasureList {
    /// The requests.
    pub requests: Vec<ErasureView>,
}

/// `POST /compliance/check`: an action about to happen and the data it happens to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    /// What is about to happen: `access`, `read`, `process`, `export`, `transfer`, `share`,
    /// `store` … (the rules say which they apply to).
    #[serde(default)]
    pub action: String,
    /// The data, described by the members the rules read: `user_id`, `purpose`, `lawful_basis`,
    /// `data_classification`, `data_categories`, `encrypted` (docs/compliance.md). It is never
    /// stored: the audit record holds a keyed hash of it.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub data: serde_json::Map<String, serde_json::Value>,
    /// `GDPR`, `HIPAA`, `PCI_DSS`, `SOX`, `ISO27001`; every enabled one when empty.
    #[serde(default)]
    pub standards: Vec<String>,
}

/// A rule the action breaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ViolationView {
    /// The rule's id (`gdpr.consent_for_purpose` …).
    pub rule: String,
    /// Its standard.
    pub standard: String,
    /// The requirement it stands for.
    pub requirement: String,
    /// What is wrong with this action.
    pub message: String,
}

/// The answer of `POST /compliance/check`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CheckResult {
    /// Whether the action may go ahead.
    pub allowed: bool,
    /// The rules broken (empty when allowed).
    pub violations: Vec<ViolationView>,
    /// `Action blocked due to compliance violations` when refused.
    pub message: Option<String>,
    /// The standards checked.
    pub standards: Vec<String>,
    /// The rules that applied to this action, broken or not.
    pub rules_applied: Vec<String>,
    /// The keyed hash of the data the audit record holds (HMAC-SHA256, hex).
    pub data_hash: String,
}

/// Rows of each kind past their retention (a preview) or removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RetentionKindView {
    /// `audit`, `login_history`, `incidents` or `alert_deliveries`.
    pub kind: String,
    /// How long the policy keeps it, in days.
    pub retention_days: i64,
    /// Rows older than this (RFC 3339) are removed (audit records: archived).
    pub cutoff: String,
    /// How many rows are past the cutoff (preview) or went (applied).
    pub rows: u64,
}

/// `GET` (a preview) and `POST /compliance/retention` (applied now).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RetentionView {
    /// When it ran (RFC 3339).
    pub at: String,
    /// Whether nothing was removed.
    pub dry_run: bool,
    /// Per kind.
    pub kinds: Vec<RetentionKindView>,
    /// The audit chain's newest checkpoint (the last archived `seq`), if a prefix was archived.
    pub audit_checkpoint: Option<i64>,
}
