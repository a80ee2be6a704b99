//! Public keys: the JWK Set that verifies every access token still alive.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::app::AppState;
use crate::error::ApiError;

/// The JWK Set of every key that can still verify a live token (HS256 keys are never published).
///
/// **Permissions** - none
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "keys", responses((status = 200, description = "RFC 7517 JWK Set", body = Object)))]
pub(crate) async fn jwks(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let set = state.palisade.signing_keys().jwks();
    Ok(([(header::CACHE_CONTROL, "public, max-age=60")], Json(set)))
}

/// Every signing and data key with its state, and each data-key family's minimum decryption
/// version; never key material.
///
/// **Permissions** - `admin`
#[utoipa::path(get, path = "/admin/keys", tag = "admin", security(("bearer" = []), ("api_key" = [])), responses(
    (status = 200, body = palisade_types::crypto::KeyList),
    (status = 403, description = "INSUFFICIENT_SCOPE", body = palisade_types::problem::Problem),
))]
pub(crate) async fn list(
    State(state): State<AppState>,
    crate::extract::Authenticated(principal): crate::extract::Authenticated,
) -> Result<Json<palisade_types::crypto::KeyList>, ApiError> {
    use palisade_core::crypto::{Algorithm, KeyPurpose};
    use palisade_types::crypto::{KeyList, KeyView};
    principal.require_scope(palisade_core::auth::SCOPE_ADMIN)?;
    let rfc = |at: time::OffsetDateTime| at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    let mut keys: Vec<KeyView> = state
        .palisade
        .signing_keys()
        .status()
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .into_iter()
        .map(|k| KeyView {
            family: "signing".into(),
            id: k.kid,
            version: k.version,
            state: k.state.into(),
            algorithm: k.algorithm,
            provider: None,
            created_at: rfc(k.created_at),
        })
        .collect();
    let keyring = state.palisade.keyring();
    let mut min_decryption_versions = std::collections::BTreeMap::new();
    for key in keyring.status().await? {
        let min = match min_decryption_versions.get(key.purpose.name().as_ref()) {
            Some(min) => *min,
            None => {
                let min = keyring.min_decryption_version(key.purpose).await?;
                min_decryption_versions.insert(key.purpose.name().into_owned(), min);
                min
            }
        };
        let algorithm = match key.purpose {
            KeyPurpose::Audit => "HS256",
            KeyPurpose::Data | KeyPurpose::Owner(_) => "AES-256-GCM",
            KeyPurpose::Class(class) => match state.palisade.crypto().policies().of(class).algorithm {
                Algorithm::Aes256Gcm => "AES-256-GCM",
                Algorithm::XChaCha20Poly1305 => "XCHACHA20-POLY1305",
            },
        };
        let state = if key.active {
            "active"
        } else if key.version < min {
            "retired"
        } else {
            "decrypting"
        };
        keys.push(KeyView {
            family: key.purpose.name().into_owned(),
            id: key.id.to_string(),
            version: key.version,
            state: state.into(),
            algorithm: algorithm.into(),
            provider: Some(key.provider),
            created_at: rfc(key.created_at),
        });
    }
    Ok(Json(KeyList { keys, min_decryption_versions }))
}

/// Rotates a key now: the JWT signing key, Palisade's own data or audit key, or one
/// classification's data key. Older versions keep verifying or decrypting. Audited.
///
/// **Permissions** - `admin`
#[utoipa::path(post, path = "/admin/keys/rotate", tag = "admin", security(("bearer" = []), ("api_key" = [])), request_body = palisade_types::crypto::KeyRotateRequest, responses(
    (status = 200, body = palisade_types::crypto::KeyRotated),
    (status = 403, description = "INSUFFICIENT_SCOPE", body = palisade_types::problem::Problem),
    (status = 422, description = "VALIDATION_ERROR: an unknown key or class", body = palisade_types::problem::Problem),
))]
pub(crate) async fn rotate(
    State(state): State<AppState>,
    crate::extract::Meta(meta): crate::extract::Meta,
    crate::extract::Authenticated(principal): crate::extract::Authenticated,
    crate::extract::ApiJson(body): crate::extract::ApiJson<palisade_types::crypto::KeyRotateRequest>,
) -> Result<Json<palisade_types::crypto::KeyRotated>, ApiError> {
    use palisade_core::audit::{AuditEvent, AuditKind, Outcome};
    use palisade_core::crypto::{DataClassification, KeyPurpose};
    principal.require_scope(palisade_core::auth::SCOPE_ADMIN)?;
    let class = body
        .class
        .as_deref()
        .map(|c| {
            DataClassification::parse(c)
                .ok_or_else(|| ApiError::unprocessable(format!("class: `{c}` is not a classification")))
        })
        .transpose()?;
    let purpose = match (body.key.trim().to_ascii_lowercase().as_str(), class) {
        ("signing", None) => None,
        ("data", None) => Some(KeyPurpose::Data),
        ("data", Some(class)) => Some(KeyPurpose::Class(class)),
        ("audit", None) => Some(KeyPurpose::Audit),
        ("signing" | "audit", Some(_)) => {
            return Err(ApiError::unprocessable("class: goes with `key: data` only"));
        }
        (other, _) => return Err(ApiError::unprocessable(format!("key: `{other}` is not signing, data or audit"))),
    };
    let reencrypt = match (purpose, body.reencrypt) {
        (Some(KeyPurpose::Data), reencrypt) => reencrypt.unwrap_or(true),
        (_, Some(true)) => {
            return Err(ApiError::unprocessable(
                "reencrypt: only Palisade's own data key (`key: data` without `class`) re-encrypts here; \
                 a classification's envelopes are held by applications, which move them with POST /crypto/rewrap",
            ));
        }
        (_, _) => false,
    };
    let rotated = match purpose {
        None => {
            let key =
                state.palisade.signing_keys().rotate().await.map_err(|e| ApiError::unprocessable(e.to_string()))?;
            palisade_types::crypto::KeyRotated {
                family: "signing".into(),
                version: key.version.unwrap_or(0),
                id: Some(key.kid),
                reencryption: None,
            }
        }
        Some(KeyPurpose::Data) if reencrypt => {
            let (version, job) = state.palisade.reencryptor().rotate().await?;
            crate::app::spawn_reencryption(state.palisade.clone());
            palisade_types::crypto::KeyRotated {
                family: KeyPurpose::Data.name().into_owned(),
                version,
                id: None,
                reencryption: Some(job_view(&job)),
            }
        }
        Some(purpose) => {
            let version = state.palisade.keyring().rotate(purpose).await?;
            palisade_types::crypto::KeyRotated {
                family: purpose.name().into_owned(),
                version,
                id: None,
                reencryption: None,
            }
        }
    };
    let event = AuditEvent::new(AuditKind::KeyRotated, Outcome::Success)
        .actor(principal.actor())
        .request(meta)
        .detail("key", rotated.family.clone())
        .detail("new", rotated.version);
    state.palisade.audit().append(event).await?;
    Ok(Json(rotated))
}

/// The data key's rotation schedule and the background re-encryption of Palisade's own sealed data:
/// progress, rows still to visit and the estimated completion.
///
/// **Permissions** - `admin`
#[utoipa::path(get, path = "/admin/keys/rotation", tag = "admin", security(("bearer" = []), ("api_key" = [])), responses(
    (status = 200, body = palisade_types::crypto::KeyRotationStatus),
    (status = 403, description = "INSUFFICIENT_SCOPE", body = palisade_types::problem::Problem),
))]
pub(crate) async fn rotation(
    State(state): State<AppState>,
    crate::extract::Authenticated(principal): crate::extract::Authenticated,
) -> Result<Json<palisade_types::crypto::KeyRotationStatus>, ApiError> {
    principal.require_scope(palisade_core::auth::SCOPE_ADMIN)?;
    let status = state.palisade.reencryptor().status(state.palisade.data_key_rotation_period()).await?;
    let job = status.job.as_ref();
    Ok(Json(palisade_types::crypto::KeyRotationStatus {
        last_rotation: status.last_rotation.map(rfc3339),
        next_rotation: status.next_rotation.map(rfc3339),
        active_version: status.active_version,
        reencryption_progress: job.map_or(1.0, |job| job.progress()),
        pending_tasks: job.map_or(0, |job| job.pending()),
        estimated_completion: job.and_then(|job| job.estimated_completion()).map(rfc3339),
        job: job.map(job_view),
    }))
}

fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// A job as the API shows it.
pub(crate) fn job_view(
    job: &palisade_core::crypto::reencrypt::ReencryptionJob,
) -> palisade_types::crypto::ReencryptionStatus {
    palisade_types::crypto::ReencryptionStatus {
        id: job.id.to_string(),
        state: job.state.as_str().into(),
        target_version: job.target_version,
        phase: job.phase.as_str().into(),
        total: job.total,
        scanned: job.scanned,
        rewritten: job.rewritten,
        rows_per_second: job.rows_per_second(),
        started_at: rfc3339(job.started_at),
        updated_at: rfc3339(job.updated_at),
        finished_at: job.finished_at.map(rfc3339),
        error: job.error.clone(),
    }
}

/// Retires a data-key family's versions below `min_decryption_version` (their envelopes are then
/// refused with `KEY_VERSION_RETIRED`), or lowers it to bring them back. Audited.
///
/// **Permissions** - `admin`
#[utoipa::path(patch, path = "/admin/keys/{family}", tag = "admin", security(("bearer" = []), ("api_key" = [])), params(("family" = String, Path, description = "a classification's family, e.g. class:restricted")), request_body = palisade_types::crypto::KeyFamilyUpdate, responses(
    (status = 204),
    (status = 403, description = "INSUFFICIENT_SCOPE", body = palisade_types::problem::Problem),
    (status = 404, description = "NOT_FOUND: not a classification's family", body = palisade_types::problem::Problem),
    (status = 422, description = "VALIDATION_ERROR: not from 1 to the active version", body = palisade_types::problem::Problem),
))]
pub(crate) async fn update_family(
    State(state): State<AppState>,
    crate::extract::Meta(meta): crate::extract::Meta,
    crate::extract::Authenticated(principal): crate::extract::Authenticated,
    axum::extract::Path(family): axum::extract::Path<String>,
    crate::extract::ApiJson(body): crate::extract::ApiJson<palisade_types::crypto::KeyFamilyUpdate>,
) -> Result<axum::http::StatusCode, ApiError> {
    use palisade_core::audit::{AuditEvent, AuditKind, Outcome};
    use palisade_core::crypto::KeyPurpose;
    principal.require_scope(palisade_core::auth::SCOPE_ADMIN)?;
    // Palisade's own families hold secrets it must keep reading (TOTP secrets, signing keys) until
    // a re-encryption moves them: only the encryption service's families can be retired.
    let purpose = match KeyPurpose::parse(&family) {
        Some(purpose @ KeyPurpose::Class(_)) => purpose,
        _ => return Err(ApiError::NotFound),
    };
    state.palisade.keyring().set_min_decryption_version(purpose, body.min_decryption_version).await?;
    let event = AuditEvent::new(AuditKind::KeyRetired, Outcome::Success)
        .actor(principal.actor())
        .request(meta)
        .detail("key", purpose.name().into_owned())
        .detail("min_decryption_version", body.min_decryption_version);
    state.palisade.audit().append(event).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}
