//! The right of access and to portability (GDPR Art. 15 and 20): everything Palisade holds on a
//! user, as one JSON document, produced piece by piece so that a history of any length is sent in
//! bounded memory.
//!
//! The document: `format`, `generated_at`, `user` (the profile), `sessions`, `devices`,
//! `mfa_factors` and `passkeys` (never a secret: no TOTP seed, no key material), `api_keys` (no
//! secret hash), `consents` (the ledger) with `consent_texts` (each text they saw), `erasure_requests`,
//! `login_history`, `alert_preferences`, `oauth_authorizations` (the applications they consented to;
//! `sessions` name the OAuth client holding each one that a client holds), then `audit_events` — every audit record whose actor or
//! subject is the user, oldest first, read a page at a time — and `audit_events_count`.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Value, json};

use super::ComplianceError;
use super::rfc3339;
use super::service::ComplianceService;
use crate::audit::{AuditEvent, AuditKind, AuditRecord, Outcome, RequestMeta};
use crate::auth::Principal;
use crate::store::DurableStore;
use crate::user::UserId;

/// Audit records read per page (and sent per chunk).
const PAGE: u32 = 500;

fn at(value: Option<time::OffsetDateTime>) -> Value {
    value.map_or(Value::Null, |v| Value::String(rfc3339(v)))
}

fn hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(bytes)
}

/// One audit record as the export shows it.
fn audit_event(record: &AuditRecord) -> Value {
    json!({
        "seq": record.seq,
        "id": record.id.to_string(),
        "at": rfc3339(record.at),
        "kind": record.kind,
        "outcome": record.outcome,
        "actor": record.actor,
        "subject": record.subject,
        "ip_address": record.ip,
        "user_agent": record.user_agent,
        "request_id": record.request_id,
        "details": serde_json::from_str::<Value>(&record.details).unwrap_or(Value::Null),
    })
}

/// An export being written: the opening part, then the audit events page by page, then the end.
pub struct Export {
    store: Arc<dyn DurableStore>,
    who: Vec<String>,
    opening: Option<String>,
    cursor: i64,
    count: u64,
    finished: bool,
}

impl std::fmt::Debug for Export {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Export").field("cursor", &self.cursor).field("count", &self.count).finish_non_exhaustive()
    }
}

impl Export {
    /// The next piece of the document, or `None` once it is complete. A store failure midway
    /// ends the stream with the error (the document is then incomplete, never silently short).
    pub async fn next_chunk(&mut self) -> Option<Result<String, ComplianceError>> {
        if let Some(opening) = self.opening.take() {
            return Some(Ok(opening));
        }
        if self.finished {
            return None;
        }
        let page = match self.store.audit_records_about(&self.who, self.cursor, PAGE).await {
            Ok(page) => page,
            Err(e) => {
                self.finished = true;
                return Some(Err(e.into()));
            }
        };
        let Some(last) = page.last() else {
            self.finished = true;
            return Some(Ok(format!("],\"audit_events_count\":{}}}", self.count)));
        };
        self.cursor = last.seq;
        let mut chunk = String::with_capacity(page.len() * 400);
        for record in &page {
            if self.count > 0 {
                chunk.push(',');
            }
            chunk.push_str(&audit_event(record).to_string());
            self.count += 1;
        }
        Some(Ok(chunk))
    }
}

impl ComplianceService {
    /// Starts the export of `user`'s data (the caller's own; anyone's with `admin`,
    /// `compliance:read` or `compliance:admin`). Everything but the audit events is read now; the
    /// events are read as the export is written. Audited as `compliance.data_exported`.
    pub async fn export(
        &self,
        principal: &Principal,
        user: Option<UserId>,
        meta: &RequestMeta,
    ) -> Result<Export, ComplianceError> {
        let user = self.subject_for_reading(principal, user)?;
        let account = self.store.user_by_id(user).await?.ok_or(ComplianceError::NotFound("no such user"))?;
        let now = self.clock.now();

        let sessions: Vec<Value> = self
            .auth
            .sessions_of(user)
            .await?
            .into_iter()
            .map(|s| {
                json!({
                    "session_id": s.id.to_string(),
                    "created_at": rfc3339(s.created_at),
                    "last_seen_at": rfc3339(s.last_seen_at),
                    "expires_at": rfc3339(s.expires_at),
                    "ip_address": s.ip,
                    "user_agent": s.user_agent,
                    "device": s.device.map(|d| json!({
                        "name": d.name, "type": d.device_type, "os": d.os, "browser": d.browser,
                    })),
                    "amr": s.amr,
                    "oauth_client_id": s.oauth.as_ref().map(|g| g.client_id.clone()),
                    "oauth_scope": s.oauth.as_ref().map(|g| g.scopes.join(" ")),
                })
            })
            .collect();
        let authorizations: Vec<Value> = self
            .store
            .oauth_consents(user)
            .await?
            .into_iter()
            .map(
                |c| json!({"client_id": c.client_id, "scope": c.scopes.join(" "), "granted_at": rfc3339(c.granted_at)}),
            )
            .collect();
        let devices: Vec<Value> = self
            .store
            .devices(user)
            .await?
            .into_iter()
            .map(|d| {
                json!({
                    "device_id": d.id.to_string(),
                    "name": d.name,
                    "type": d.device_type,
                    "os": d.os,
                    "browser": d.browser,
                    "first_seen_at": rfc3339(d.first_seen_at),
                    "last_seen_at": rfc3339(d.last_seen_at),
                    "last_ip": d.last_ip,
                    "last_country": d.last_country,
                    "last_city": d.last_city,
                    "trust_level": d.trust_level.as_str(),
                    "approved": d.approved,
                })
            })
            .collect();
        let factors: Vec<Value> = self
            .store
            .factors(user)
            .await?
            .into_iter()
            .map(|f| {
                json!({
                    "id": f.id.to_string(),
                    "kind": f.kind.as_str(),
                    "created_at": rfc3339(f.created_at),
                    "confirmed_at": at(f.confirmed_at),
                })
            })
            .collect();
        let backup_codes_unused = self.store.unused_backup_codes(user).await?.len();
        let passkeys: Vec<Value> = self
            .store
            .passkeys(user)
            .await?
            .into_iter()
            .map(|p| {
                json!({
                    "credential_id": hex(&p.credential_id),
                    "name": p.name,
                    "created_at": rfc3339(p.created_at),
                    "last_used_at": at(p.last_used_at),
                })
            })
            .collect();
        let api_keys: Vec<Value> = self
            .store
            .api_keys(Some(user), None, 10_000)
            .await?
            .into_iter()
            .map(|k| {
                json!({
                    "api_key_id": k.id.to_string(),
                    "name": k.name,
                    "scopes": k.scopes,
                    "ip_whitelist": k.ip_allow,
                    "created_at": rfc3339(k.created_at),
                    "expires_at": at(k.expires_at),
                    "last_used_at": at(k.last_used_at),
                    "revoked_at": at(k.revoked_at),
                })
            })
            .collect();
        let ledger = self.store.consent_ledger(user).await?;
        let mut texts = serde_json::Map::new();
        for hash in ledger.iter().map(|c| c.text_hash.clone()).collect::<BTreeSet<_>>() {
            if let Some(text) = self.store.consent_text(&hash).await? {
                texts.insert(
                    hex(&hash),
                    json!({ "consent_type": text.consent_type, "version": text.version, "text": text.text }),
                );
            }
        }
        let consents: Vec<Value> = ledger
            .iter()
            .map(|c| {
                json!({
                    "consent_type": c.consent_type,
                    "seq": c.seq,
                    "action": c.action.as_str(),
                    "version": c.version,
                    "text_sha256": hex(&c.text_hash),
                    "method": c.method,
                    "ip_address": c.ip,
                    "user_agent": c.user_agent,
                    "reason": c.reason,
                    "at": rfc3339(c.at),
                    "valid_until": at(c.valid_until),
                })
            })
            .collect();
        let erasures: Vec<Value> =
            self.store.erasure_requests(Some(user), 200).await?.iter().map(super::ErasureRequest::to_json).collect();
        let logins: Vec<Value> = self
            .store
            .risk_records(user, 1000)
            .await?
            .into_iter()
            .map(|r| {
                json!({
                    "at": rfc3339(r.at),
                    "ip_address": r.ip,
                    "country": r.country,
                    "city": r.city,
                    "risk_score": r.assessment.score,
                    "decision": r.assessment.decision.as_str(),
                    "result": r.result.as_str(),
                })
            })
            .collect();
        let alerts = self.store.alert_preferences(user).await?.map(|p| {
            json!({
                "email": p.email,
                "sms": p.sms,
                "push": p.push,
                "severity_threshold": p.severity_threshold.as_str(),
                "alert_types": p.alert_types.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
            })
        });
        let head = json!({
            "format": "palisade-export/1",
            "generated_at": rfc3339(now),
            "user": {
                "user_id": account.id.to_string(),
                "username": account.username.to_string(),
                "email": account.email.as_ref().map(ToString::to_string),
                "created_at": rfc3339(account.created_at),
                "password_changed_at": rfc3339(account.password_changed_at),
                "locked": account.locked,
                "admin": account.admin,
            },
            "sessions": sessions,
            "devices": devices,
            "mfa_factors": factors,
            "backup_codes_unused": backup_codes_unused,
            "passkeys": passkeys,
            "api_keys": api_keys,
            "consents": consents,
            "consent_texts": texts,
            "erasure_requests": erasures,
            "login_history": logins,
            "alert_preferences": alerts,
            "oauth_authorizations": authorizations,
        });
        // The head's closing brace gives way to the audit events, written after it.
        let mut opening = head.to_string();
        opening.pop();
        opening.push_str(",\"audit_events\":[");

        self.audit
            .append(
                AuditEvent::new(AuditKind::DataExported, Outcome::Success)
                    .actor(principal.actor())
                    .subject(user.to_string())
                    .request(meta.clone()),
            )
            .await?;
        Ok(Export {
            store: self.store.clone(),
            who: vec![user.to_string(), account.username.to_string()],
            opening: Some(opening),
            cursor: 0,
            count: 0,
            finished: false,
        })
    }
}
