//! The encryption service over HTTP (`/crypto/*`): parse, call one `CryptoService` method, shape
//! the answer. Plaintexts and keys never reach a log.

use axum::Json;
use axum::extract::State;
use palisade_core::crypto::service::{decode_base64, encode_base64};
use palisade_core::crypto::{Algorithm, DataClassification, EncryptionContext, SealOptions, SealedEnvelope};
use palisade_types::crypto::{
    CryptoContext, DataKeyRequest, DataKeyResponse, DecryptRequest, DecryptResponse, EncryptRequest, EnvelopeView,
    FieldsRequest, FieldsResponse, RewrapRequest,
};

use crate::app::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, Authenticated, Meta};

fn invalid(detail: impl Into<String>) -> ApiError {
    ApiError::unprocessable(detail)
}

fn classification(field: &str, text: &str) -> Result<DataClassification, ApiError> {
    DataClassification::parse(text).ok_or_else(|| {
        let names: Vec<&str> = DataClassification::ALL.iter().map(|c| c.as_str()).collect();
        invalid(format!("{field}: `{text}` is not a classification (one of {})", names.join(", ")))
    })
}

fn context(body: CryptoContext) -> Result<EncryptionContext, ApiError> {
    Ok(EncryptionContext {
        data_classification: classification("context.data_classification", &body.data_classification)?,
        purpose: body.purpose,
        user_id: body.user_id,
        field: body.field,
        compliance: body.compliance_requirements,
    })
}

/// Whether a request's `encoding` is base64 (`utf8` when absent).
fn is_base64(encoding: Option<&str>) -> Result<bool, ApiError> {
    match encoding.map(|e| e.trim().to_ascii_lowercase()) {
        None => Ok(false),
        Some(e) if e == "utf8" || e == "utf-8" => Ok(false),
        Some(e) if e == "base64" => Ok(true),
        Some(_) => Err(invalid("encoding: expected `utf8` or `base64`")),
    }
}

pub(crate) fn envelope_view(e: &SealedEnvelope) -> EnvelopeView {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    EnvelopeView {
        v: e.v,
        key_id: e.key_id.to_string(),
        key_version: e.key_version,
        algorithm: e.algorithm.as_str().to_owned(),
        classification: e.classification.as_str().to_owned(),
        compressed: e.compressed,
        owner_key: e.owner_key.map(|k| k.to_string()),
        nonce: URL_SAFE_NO_PAD.encode(&e.nonce),
        ciphertext: URL_SAFE_NO_PAD.encode(&e.ciphertext),
    }
}

fn envelope(view: EnvelopeView) -> Result<SealedEnvelope, ApiError> {
    let bytes = |field: &str, text: &str| decode_base64(field, text).map(|b| b.to_vec()).map_err(ApiError::from);
    Ok(SealedEnvelope {
        v: view.v,
        key_id: uuid::Uuid::try_parse(&view.key_id).map_err(|_| invalid("envelope.key_id: not a key id"))?,
        key_version: view.key_version,
        algorithm: Algorithm::parse(&view.algorithm)
            .ok_or_else(|| invalid("envelope.algorithm: expected AES-256-GCM or XCHACHA20-POLY1305"))?,
        classification: classification("envelope.classification", &view.classification)?,
        compressed: view.compressed,
        owner_key: view
            .owner_key
            .as_deref()
            .map(|k| uuid::Uuid::try_parse(k).map_err(|_| invalid("envelope.owner_key: not a key id")))
            .transpose()?,
        nonce: bytes("envelope.nonce", &view.nonce)?,
        ciphertext: bytes("envelope.ciphertext", &view.ciphertext)?,
    })
}

/// Encrypts a value under its classification's key, bound to its context.
///
/// **Permissions** - `crypto:encrypt`, or `crypto:encrypt:<class>` for the context's class
/// (bearer token or API key)
#[utoipa::path(post, path = "/crypto/encrypt", tag = "crypto", security(("bearer" = []), ("api_key" = [])), request_body = EncryptRequest, responses(
    (status = 200, body = EnvelopeView),
    (status = 403, description = "INSUFFICIENT_SCOPE", body = palisade_types::problem::Problem),
    (status = 422, description = "VALIDATION_ERROR: a bad context, encoding or size, or compression the class forbids", body = palisade_types::problem::Problem),
    (status = 503, description = "SERVICE_UNAVAILABLE: the key store, or the HSM the class needs", body = palisade_types::problem::Problem),
))]
pub(crate) async fn encrypt(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiJson(body): ApiJson<EncryptRequest>,
) -> Result<Json<EnvelopeView>, ApiError> {
    let context = context(body.context)?;
    let plaintext = if is_base64(body.encoding.as_deref())? {
        decode_base64("plaintext", &body.plaintext)?
    } else {
        zeroize::Zeroizing::new(body.plaintext.into_bytes())
    };
    let options = SealOptions { compress: body.compress };
    let sealed = state.palisade.crypto().encrypt(&principal, &plaintext, &context, options).await?;
    Ok(Json(envelope_view(&sealed)))
}

/// Decrypts an envelope given the context it was encrypted with. Decryptions of RESTRICTED and
/// TOP_SECRET data are audited (caller, class, purpose), refused ones too.
///
/// **Permissions** - `crypto:decrypt`, or `crypto:decrypt:<class>` for the envelope's class
#[utoipa::path(post, path = "/crypto/decrypt", tag = "crypto", security(("bearer" = []), ("api_key" = [])), request_body = DecryptRequest, responses(
    (status = 200, body = DecryptResponse),
    (status = 403, description = "INSUFFICIENT_SCOPE", body = palisade_types::problem::Problem),
    (status = 422, description = "DECRYPTION_FAILED: altered, another context, or an unknown key; VALIDATION_ERROR: a malformed envelope, or UTF-8 asked of binary data", body = palisade_types::problem::Problem),
))]
pub(crate) async fn decrypt(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Authenticated(principal): Authenticated,
    ApiJson(body): ApiJson<DecryptRequest>,
) -> Result<Json<DecryptResponse>, ApiError> {
    let base64 = is_base64(body.encoding.as_deref())?;
    let context = context(body.context)?;
    let sealed = envelope(body.envelope)?;
    let plaintext = state.palisade.crypto().decrypt(&principal, &sealed, &context, &meta).await?;
    let (plaintext, encoding) = if base64 {
        (encode_base64(&plaintext), "base64")
    } else {
        let text = std::str::from_utf8(&plaintext)
            .map_err(|_| invalid("the data is not UTF-8 text: ask for `\"encoding\": \"base64\"`"))?;
        (text.to_owned(), "utf8")
    };
    Ok(Json(DecryptResponse { plaintext, encoding: encoding.to_owned() }))
}

/// Encrypts the named fields of a record, each under its own classification and bound to its name;
/// the other fields are returned as they are.
///
/// **Permissions** - the encrypt scope of every classification named
#[utoipa::path(post, path = "/crypto/fields", tag = "crypto", security(("bearer" = []), ("api_key" = [])), request_body = FieldsRequest, responses(
    (status = 200, body = FieldsResponse),
    (status = 403, description = "INSUFFICIENT_SCOPE", body = palisade_types::problem::Problem),
    (status = 422, description = "VALIDATION_ERROR", body = palisade_types::problem::Problem),
))]
pub(crate) async fn fields(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiJson(body): ApiJson<FieldsRequest>,
) -> Result<Json<FieldsResponse>, ApiError> {
    let classes = body
        .classifications
        .iter()
        .map(|(field, class)| Ok((field.clone(), classification(&format!("classifications.{field}"), class)?)))
        .collect::<Result<Vec<_>, ApiError>>()?;
    let base = EncryptionContext {
        data_classification: DataClassification::Internal,
        purpose: body.purpose,
        user_id: body.user_id,
        field: None,
        compliance: Vec::new(),
    };
    let (record, encrypted_fields) =
        state.palisade.crypto().encrypt_fields(&principal, body.record, &classes, &base).await?;
    Ok(Json(FieldsResponse { record, encrypted_fields }))
}

/// Re-encrypts an envelope under the newest key version of its classification; the plaintext never
/// leaves the service. An envelope already current comes back unchanged.
///
/// **Permissions** - the encrypt scope of the envelope's classification
#[utoipa::path(post, path = "/crypto/rewrap", tag = "crypto", security(("bearer" = []), ("api_key" = [])), request_body = RewrapRequest, responses(
    (status = 200, body = EnvelopeView),
    (status = 403, description = "INSUFFICIENT_SCOPE", body = palisade_types::problem::Problem),
    (status = 422, description = "DECRYPTION_FAILED or VALIDATION_ERROR", body = palisade_types::problem::Problem),
))]
pub(crate) async fn rewrap(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiJson(body): ApiJson<RewrapRequest>,
) -> Result<Json<EnvelopeView>, ApiError> {
    let context = context(body.context)?;
    let sealed = envelope(body.envelope)?;
    let rewrapped = state.palisade.crypto().rewrap(&principal, &sealed, &context).await?;
    Ok(Json(envelope_view(&rewrapped)))
}

/// A fresh 256-bit data key for client-side encryption of bulk data, with the same key sealed under
/// the classification's key (store that one; `POST /crypto/decrypt` gives the key back).
///
/// **Permissions** - the encrypt scope of the context's classification
#[utoipa::path(post, path = "/crypto/datakey", tag = "crypto", security(("bearer" = []), ("api_key" = [])), request_body = DataKeyRequest, responses(
    (status = 200, body = DataKeyResponse),
    (status = 403, description = "INSUFFICIENT_SCOPE", body = palisade_types::problem::Problem),
    (status = 422, description = "VALIDATION_ERROR", body = palisade_types::problem::Problem),
))]
pub(crate) async fn datakey(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiJson(body): ApiJson<DataKeyRequest>,
) -> Result<Json<DataKeyResponse>, ApiError> {
    let context = context(body.context)?;
    let key = state.palisade.crypto().data_key(&principal, &context, body.include_plaintext).await?;
    Ok(Json(DataKeyResponse {
        plaintext_key: key.plaintext.as_deref().map(|k| encode_base64(k)),
        sealed_key: envelope_view(&key.sealed),
    }))
}
