//! Real-time checks (the guide's `check_compliance`): may this action on this data go ahead under
//! these standards? The rules are few, explicit and documented (docs/compliance.md, "Real-time
//! checks"); each names the requirement it stands for. A refusal is audited with the rules broken and
//! a keyed hash of the data, never the data.
//!
//! The data is described by the caller in well-known members of `data` (others are ignored):
//! - `user_id`: the data subject (a Palisade user id);
//! - `purpose`: why the data is processed (for consent, the consent type it needs);
//! - `lawful_basis`: `consent` (the default when `purpose` is given) or another GDPR Art. 6 basis
//!   (`contract`, `legal_obligation`, `vital_interests`, `public_task`, `legitimate_interests`);
//! - `data_classification`: `PUBLIC` … `TOP_SECRET`, as for field encryption;
//! - `data_categories`: e.g. `["personal", "health", "payment_card"]`;
//! - `encrypted`: whether the data leaves encrypted.

use serde_json::{Map, Value, json};

use super::service::ComplianceService;
use super::{ComplianceError, Standard, invalid, may_read_all};
use crate::audit::{AuditEvent, AuditKind, Outcome, RequestMeta};
use crate::auth::{AuthError, Principal, SCOPE_USER};
use crate::crypto::DataClassification;
use crate::user::UserId;

/// The longest action name.
const MAX_ACTION: usize = 64;

/// Actions that make data leave Palisade's application (an export, a transfer, a disclosure).
const OUTBOUND: [&str; 5] = ["export", "transfer", "share", "disclose", "download"];
/// Actions that read or use data.
const USES: [&str; 8] = ["access", "read", "view", "process", "analyze", "profile", "marketing", "use"];
/// Actions that keep data.
const STORES: [&str; 3] = ["store", "write", "log"];

/// One rule, as documented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Its stable id.
    pub id: &'static str,
    /// The standard it belongs to.
    pub standard: Standard,
    /// The requirement it stands for.
    pub requirement: &'static str,
    /// What it demands, in a sentence.
    pub title: &'static str,
}

/// Every rule, in the order they are checked.
pub const RULES: [Rule; 5] = [
    Rule {
        id: "gdpr.consent_for_purpose",
        standard: Standard::Gdpr,
        requirement: "GDPR Art. 6(1)(a), Art. 7(1)",
        title: "personal data used for a purpose on the basis of consent needs the subject's live consent of that type",
    },
    Rule {
        id: "gdpr.restricted_data_leaves_encrypted",
        standard: Standard::Gdpr,
        requirement: "GDPR Art. 32(1)(a)",
        title: "RESTRICTED or TOP_SECRET data is exported, transferred or shared only encrypted",
    },
    Rule {
        id: "hipaa.health_access_has_a_purpose",
        standard: Standard::Hipaa,
        requirement: "HIPAA 45 CFR 164.312(b), 164.502(b)",
        title: "health data is accessed only for a stated purpose, which is audited",
    },
    Rule {
        id: "hipaa.health_data_leaves_encrypted",
        standard: Standard::Hipaa,
        requirement: "HIPAA 45 CFR 164.312(e)(1)",
        title: "health data is transmitted only encrypted",
    },
    Rule {
        id: "pci_dss.card_data_kept_encrypted",
        standard: Standard::PciDss,
        requirement: "PCI DSS v4.0 3.5.1, 4.2.1",
        title: "payment card data is stored or transmitted only encrypted",
    },
];

/// An action to check.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckRequest {
    /// What is about to happen (`export`, `access`, `process` …).
    pub action: String,
    /// What it happens to (see the module's documentation for the members read).
    pub data: Map<String, Value>,
    /// The standards to check against (none: every enabled one).
    pub standards: Vec<String>,
}

/// A rule the action breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The rule.
    pub rule: &'static str,
    /// Its standard.
    pub standard: Standard,
    /// The requirement.
    pub requirement: &'static str,
    /// What is wrong with this action, in words.
    pub message: String,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    /// Whether the action may go ahead (no rule broken).
    pub allowed: bool,
    /// The rules broken.
    pub violations: Vec<Violation>,
    /// The standards checked.
    pub standards: Vec<Standard>,
    /// The rules that applied to this action (broken or not).
    pub rules_applied: Vec<&'static str>,
    /// HMAC-SHA256 (hex) of the data as received, under a key of this deployment: what the audit
    /// record holds instead of the data.
    pub data_hash: String,
}

/// What the rules read about the action, parsed from the request.
#[derive(Debug, Clone, Default, PartialEq)]
struct Facts {
    action: String,
    user: Option<UserId>,
    purpose: Option<String>,
    consent_basis: bool,
    classification: Option<DataClassification>,
    categories: Vec<String>,
    encrypted: bool,
}

fn text<'a>(data: &'a Map<String, Value>, key: &'static str) -> Result<Option<&'a str>, ComplianceError> {
    match data.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim())),
        Some(_) => Err(invalid("data", format!("{key} must be a non-empty string"))),
    }
}

impl Facts {
    fn parse(action: &str, data: &Map<String, Value>) -> Result<Self, ComplianceError> {
        let action = action.trim().to_ascii_lowercase();
        if action.is_empty() || action.len() > MAX_ACTION {
            return Err(invalid("action", format!("is required, 1 to {MAX_ACTION} characters")));
        }
        let user = text(data, "user_id")?
            .map(|id| UserId::parse(id).map_err(|_| invalid("data", format!("user_id `{id}` is not a user id"))))
            .transpose()?;
        let purpose = text(data, "purpose")?.map(str::to_owned);
        let basis = text(data, "lawful_basis")?.unwrap_or("consent");
        const BASES: [&str; 6] =
            ["consent", "contract", "legal_obligation", "vital_interests", "public_task", "legitimate_interests"];
        if !BASES.contains(&basis) {
            return Err(invalid("data", format!("lawful_basis `{basis}` is not one of {}", BASES.join(", "))));
        }
        let classification = text(data, "data_classification")?
            .map(|c| {
                DataClassification::parse(c)
                    .ok_or_else(|| invalid("data", format!("data_classification `{c}` is not a classification")))
            })
            .transpose()?;
        let categories = match data.get("data_categories") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(|s| s.trim().to_ascii_lowercase())
                        .ok_or_else(|| invalid("data", "data_categories must be an array of strings"))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(invalid("data", "data_categories must be an array of strings")),
        };
        let encrypted = match data.get("encrypted") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(invalid("data", "encrypted must be true or false")),
        };
        Ok(Self { action, user, purpose, consent_basis: basis == "consent", classification, categories, encrypted })
    }

    fn outbound(&self) -> bool {
        OUTBOUND.contains(&self.action.as_str())
    }

    fn has_category(&self, names: &[&str]) -> bool {
        self.categories.iter().any(|c| names.contains(&c.as_str()))
    }

    fn health(&self) -> bool {
        self.has_category(&["health", "phi", "medical"])
    }
}

/// Applies the rules of `standards` to `facts`; `live_consent` says whether the subject holds a live
/// consent of the purpose's type (asked only when that rule applies). Pure: the table tests drive it.
fn evaluate(facts: &Facts, standards: &[Standard], live_consent: Option<bool>) -> (Vec<&'static str>, Vec<Violation>) {
    let mut applied = Vec::new();
    let mut violations = Vec::new();
    for rule in RULES.iter().filter(|r| standards.contains(&r.standard)) {
        let broken: Option<String> = match rule.id {
            "gdpr.consent_for_purpose" => {
                let applies = facts.consent_basis
                    && facts.purpose.is_some()
                    && (USES.contains(&facts.action.as_str())
                        || facts.outbound()
                        || STORES.contains(&facts.action.as_str()));
                if !applies {
                    continue;
                }
                match (facts.user, live_consent) {
                    (None, _) => Some("no user_id names the data subject, so their consent cannot be checked".into()),
                    (Some(_), Some(true)) => None,
                    (Some(user), _) => Some(format!(
                        "user {user} holds no live consent of type `{}`",
                        facts.purpose.as_deref().unwrap_or_default()
                    )),
                }
            }
            "gdpr.restricted_data_leaves_encrypted" => {
                let restricted = matches!(
                    facts.classification,
                    Some(DataClassification::Restricted | DataClassification::TopSecret)
                );
                if !(restricted && facts.outbound()) {
                    continue;
                }
                (!facts.encrypted).then(|| {
                    format!(
                        "{} data would leave unencrypted by `{}`",
                        facts.classification.map_or("RESTRICTED", |c| c.as_str()),
                        facts.action
                    )
                })
            }
            "hipaa.health_access_has_a_purpose" => {
                if !(facts.health() && (USES.contains(&facts.action.as_str()) || facts.outbound())) {
                    continue;
                }
                facts.purpose.is_none().then(|| "health data would be accessed without a stated purpose".to_owned())
            }
            "hipaa.health_data_leaves_encrypted" => {
                if !(facts.health() && facts.outbound()) {
                    continue;
                }
                (!facts.encrypted).then(|| format!("health data would leave unencrypted by `{}`", facts.action))
            }
            "pci_dss.card_data_kept_encrypted" => {
                let applies = facts.has_category(&["payment_card", "pan", "cardholder"])
                    && (facts.outbound() || STORES.contains(&facts.action.as_str()));
                if !applies {
                    continue;
                }
                (!facts.encrypted)
                    .then(|| format!("payment card data would be kept or sent unencrypted by `{}`", facts.action))
            }
            _ => continue,
        };
        applied.push(rule.id);
        if let Some(message) = broken {
            violations.push(Violation {
                rule: rule.id,
                standard: rule.standard,
                requirement: rule.requirement,
                message,
            });
        }
    }
    (applied, violations)
}

impl ComplianceService {
    /// Checks `request` against the rules of its standards (every enabled one when none is named).
    /// A caller checks actions on their own data with the `user` scope; on anyone's (or nobody's)
    /// with `admin`, `compliance:read` or `compliance:admin`. Audited as `compliance.check`: a
    /// refusal as a failure with the rules broken; always with a keyed hash of the data, never the
    /// data (and, for health data, the stated purpose: the audited purpose HIPAA asks for).
    pub async fn check(
        &self,
        principal: &Principal,
        request: CheckRequest,
        meta: &RequestMeta,
    ) -> Result<CheckOutcome, ComplianceError> {
        let facts = Facts::parse(&request.action, &request.data)?;
        match facts.user {
            Some(user) if user == principal.user_id && principal.has_scope(SCOPE_USER) => {}
            _ if may_read_all(principal) => {}
            _ => return Err(AuthError::InsufficientScope(super::SCOPE_READ).into()),
        }
        let standards = if request.standards.is_empty() {
            self.settings.standards.clone()
        } else {
            let mut standards = Vec::new();
            for name in &request.standards {
                let standard = Standard::parse(name).ok_or_else(|| {
                    invalid("standards", format!("`{name}` is not GDPR, HIPAA, PCI_DSS, SOX or ISO27001"))
                })?;
                if !self.settings.standards.contains(&standard) {
                    return Err(invalid("standards", format!("{standard} is not enabled on this deployment")));
                }
                if !standards.contains(&standard) {
                    standards.push(standard);
                }
            }
            standards
        };
        let needs_consent = standards.contains(&Standard::Gdpr) && facts.consent_basis && facts.purpose.is_some();
        let live_consent = match (needs_consent, facts.user, facts.purpose.as_deref()) {
            (true, Some(user), Some(purpose)) => Some(self.has_live_consent(user, purpose).await?),
            _ => None,
        };
        let (rules_applied, violations) = evaluate(&facts, &standards, live_consent);
        let data_hash = self.data_hash(&Value::Object(request.data));
        let allowed = violations.is_empty();
        let outcome = if allowed { Outcome::Success } else { Outcome::Failure };
        let mut event = AuditEvent::new(AuditKind::ComplianceChecked, outcome)
            .actor(principal.actor())
            .request(meta.clone())
            .details(super::facts(json!({
                "action": facts.action,
                "allowed": allowed,
                "standards": standards.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
                "violations": violations.iter().map(|v| v.rule).collect::<Vec<_>>(),
                "data_hash": data_hash,
                "purpose": facts.health().then_some(facts.purpose.clone()).flatten(),
            })));
        if let Some(user) = facts.user {
            event = event.subject(user.to_string());
        }
        self.audit.append(event).await?;
        Ok(CheckOutcome { allowed, violations, standards, rules_applied, data_hash })
    }

    /// HMAC-SHA256 of the data's JSON text under this deployment's key for it.
    fn data_hash(&self, data: &Value) -> String {
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, self.data_hash_key.as_ref());
        data_encoding::HEXLOWER.encode(aws_lc_rs::hmac::sign(&key, data.to_string().as_bytes()).as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(action: &str, data: Value) -> Facts {
        let Value::Object(data) = data else { panic!("an object") };
        Facts::parse(action, &data).unwrap()
    }

    const ALL: [Standard; 3] = [Standard::Gdpr, Standard::Hipaa, Standard::PciDss];
    const USER: &str = "0190a000-0000-7000-8000-000000000001";

    fn broken(f: &Facts, standards: &[Standard], consent: Option<bool>) -> Vec<&'static str> {
        evaluate(f, standards, consent).1.iter().map(|v| v.rule).collect()
    }

    #[test]
    fn consent_is_needed_for_a_purpose_on_the_basis_of_consent() {
        let f = facts("process", json!({"user_id": USER, "purpose": "marketing"}));
        assert_eq!(broken(&f, &ALL, Some(false)), vec!["gdpr.consent_for_purpose"]);
        assert!(broken(&f, &ALL, Some(true)).is_empty());
        // Another lawful basis needs no consent.
        let f = facts("process", json!({"user_id": USER, "purpose": "billing", "lawful_basis": "contract"}));
        assert!(broken(&f, &ALL, None).is_empty());
        // Without a subject, consent cannot be shown.
        let f = facts("process", json!({"purpose": "marketing"}));
        assert_eq!(broken(&f, &ALL, None), vec!["gdpr.consent_for_purpose"]);
        // Not checked when GDPR is not asked for.
        let f = facts("process", json!({"user_id": USER, "purpose": "marketing"}));
        assert!(broken(&f, &[Standard::Hipaa], Some(false)).is_empty());
    }

    #[test]
    fn restricted_data_leaves_only_encrypted() {
        for class in ["RESTRICTED", "TOP_SECRET"] {
            let f = facts("export", json!({"data_classification": class}));
            assert_eq!(broken(&f, &ALL, None), vec!["gdpr.restricted_data_leaves_encrypted"], "{class}");
            let f = facts("export", json!({"data_classification": class, "encrypted": true}));
            assert!(broken(&f, &ALL, None).is_empty());
        }
        // Confidential data, or restricted data read in place, is not this rule's business.
        assert!(broken(&facts("export", json!({"data_classification": "CONFIDENTIAL"})), &ALL, None).is_empty());
        assert!(broken(&facts("read", json!({"data_classification": "RESTRICTED"})), &ALL, None).is_empty());
    }

    #[test]
    fn health_data_needs_a_purpose_and_leaves_encrypted() {
        let f = facts("access", json!({"data_categories": ["health"]}));
        assert_eq!(broken(&f, &ALL, None), vec!["hipaa.health_access_has_a_purpose"]);
        let f = facts(
            "access",
            json!({"data_categories": ["health"], "purpose": "treatment", "lawful_basis": "vital_interests"}),
        );
        assert!(broken(&f, &ALL, None).is_empty());
        let f =
            facts("transfer", json!({"data_categories": ["PHI"], "purpose": "treatment", "lawful_basis": "contract"}));
        assert_eq!(broken(&f, &ALL, None), vec!["hipaa.health_data_leaves_encrypted"]);
        assert!(broken(&f, &[Standard::Gdpr], None).is_empty(), "HIPAA rules only under HIPAA");
    }

    #[test]
    fn card_data_is_kept_and_sent_encrypted() {
        let f = facts("store", json!({"data_categories": ["payment_card"]}));
        assert_eq!(broken(&f, &ALL, None), vec!["pci_dss.card_data_kept_encrypted"]);
        let f = facts("store", json!({"data_categories": ["payment_card"], "encrypted": true}));
        assert!(broken(&f, &ALL, None).is_empty());
        assert!(
            broken(&facts("store", json!({"data_categories": ["payment_card"]})), &[Standard::Gdpr], None).is_empty()
        );
    }

    #[test]
    fn rules_that_do_not_apply_are_not_reported_as_applied() {
        let (applied, violations) = evaluate(&facts("login", json!({})), &ALL, None);
        assert!(applied.is_empty() && violations.is_empty());
        let (applied, _) =
            evaluate(&facts("export", json!({"data_classification": "RESTRICTED", "encrypted": true})), &ALL, None);
        assert_eq!(applied, vec!["gdpr.restricted_data_leaves_encrypted"]);
    }

    #[test]
    fn malformed_members_are_named() {
        let parse = |action: &str, data: Value| {
            let Value::Object(data) = data else { panic!() };
            Facts::parse(action, &data).unwrap_err().to_string()
        };
        assert!(parse("", json!({})).contains("action"));
        assert!(parse("x", json!({"user_id": "nope"})).contains("user_id"));
        assert!(parse("x", json!({"lawful_basis": "whim"})).contains("lawful_basis"));
        assert!(parse("x", json!({"data_classification": "SECRETISH"})).contains("data_classification"));
        assert!(parse("x", json!({"data_categories": "health"})).contains("data_categories"));
        assert!(parse("x", json!({"encrypted": "yes"})).contains("encrypted"));
        assert!(parse("x", json!({"purpose": 3})).contains("purpose"));
    }
}
