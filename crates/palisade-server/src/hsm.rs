//! The PKCS#11 key provider: the master key is a non-extractable AES-256 key inside a token
//! (a hardware HSM, or SoftHSM2 in tests) that wraps and unwraps data keys; its value never
//! enters this process.
//!
//! # Layout
//! - [`HsmSettings`]: module path, slot, PIN (a [`SecretString`], never printed) and key label,
//!   from the configuration.
//! - [`Pkcs11KeyProvider`]: implements [`KeyProvider`]. Wrapping is `CKM_AES_GCM` with a 96-bit IV
//!   drawn from the token's generator, a 128-bit tag and the data key's id bound as additional
//!   authenticated data (the same AAD as `LocalKeyProvider`), stored as `IV || ciphertext || tag`.
//! - [`Pkcs11KeyProvider::init`] (`palisade hsm init`) makes the key object when it is absent;
//!   [`Pkcs11KeyProvider::report`] (`palisade hsm status`) and [`Pkcs11KeyProvider::health`]
//!   (readiness) check it.
//!
//! Every PKCS#11 call blocks, so every one runs on `spawn_blocking`. One logged-in session is kept
//! behind a `std::sync::Mutex` (never held across an `.await`: it is taken inside the blocking
//! closure only). A call that fails because the session, the token or the module went away closes
//! everything, opens it again (module, slot, login, key) and is retried once, so a token that comes
//! back is used again without a restart; while it stays away, calls fail with [`HsmError::Unavailable`].
//!
//! This module must never log or format the PIN, nor return a data key's material in an error.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, AttributeInfo, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use palisade_core::crypto::{AeadError, DataKeyMaterial, KeyProvider};
use secrecy::SecretString;

/// The label of the master key object Palisade makes and looks for.
pub const MASTER_KEY_LABEL: &str = "palisade-master";

/// Bytes of the AES-GCM IV.
const IV_BYTES: usize = 12;
/// Bits of the AES-GCM tag.
const TAG_BITS: u64 = 128;

/// Which slot holds the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HsmSlot {
    /// A whole number: the slot with this id, or else the N-th slot (from 0) holding an
    /// initialised token (the guide's `HSM_SLOT=0`).
    Number(u64),
    /// Anything else: the token's label.
    TokenLabel(String),
}

impl HsmSlot {
    /// Parses `hsm_slot`: a whole number, or a token label of 1–32 bytes.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("is empty".to_owned());
        }
        if text.bytes().all(|b| b.is_ascii_digit()) {
            return text.parse().map(Self::Number).map_err(|_| "is too large for a slot id".to_owned());
        }
        if text.len() > 32 {
            return Err(format!("is {} bytes long; a PKCS#11 token label has at most 32", text.len()));
        }
        if text.chars().any(char::is_control) {
            return Err("contains a control character".to_owned());
        }
        Ok(Self::TokenLabel(text.to_owned()))
    }
}

impl std::fmt::Display for HsmSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Number(n) => write!(f, "{n}"),
            Self::TokenLabel(label) => write!(f, "token `{label}`"),
        }
    }
}

/// How to reach the master key.
#[derive(Clone)]
pub struct HsmSettings {
    /// The PKCS#11 library (`hsm_module`), e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: PathBuf,
    /// The slot (`hsm_slot`); `None`: the first slot holding an initialised token.
    pub slot: Option<HsmSlot>,
    /// The user PIN (`hsm_pin`).
    pub pin: SecretString,
    /// The master key object's label.
    pub key_label: String,
}

impl std::fmt::Debug for HsmSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HsmSettings")
            .field("module", &self.module)
            .field("slot", &self.slot)
            .field("pin", &"***")
            .field("key_label", &self.key_label)
            .finish()
    }
}

impl HsmSettings {
    /// The HSM settings of `config`, or `None` when no HSM is configured.
    pub fn from_config(config: &crate::config::Config) -> Option<Self> {
        let module = config.hsm_module.clone()?;
        let pin = config.hsm_pin.clone()?;
        Some(Self { module, slot: config.hsm_slot.clone(), pin, key_label: MASTER_KEY_LABEL.to_owned() })
    }
}

/// Why the HSM could not be used. Never carries the PIN or key material.
#[derive(Debug, thiserror::Error)]
pub enum HsmError {
    /// The library could not be loaded or initialised.
    #[error("cannot load the PKCS#11 module {path} (hsm_module): {reason}")]
    Module {
        /// The configured path.
        path: String,
        /// What the loader or C_Initialize said.
        reason: String,
    },
    /// No slot matches `hsm_slot`, or no slot holds an initialised token.
    #[error("no PKCS#11 slot {wanted} holds an initialised token (hsm_slot); slots with a token: {found}")]
    NoToken {
        /// What was asked for.
        wanted: String,
        /// What the module lists.
        found: String,
    },
    /// The token refused the PIN.
    #[error("the token `{token}` refused the PIN (hsm_pin): wrong PIN")]
    WrongPin {
        /// The token label.
        token: String,
    },
    /// The PIN is locked after too many wrong tries.
    #[error("the user PIN of token `{token}` is locked (too many wrong PINs); the security officer must reset it")]
    PinLocked {
        /// The token label.
        token: String,
    },
    /// The master key object is not in the token.
    #[error("the token `{token}` has no master key `{label}`: run `palisade hsm init` once to generate it")]
    KeyMissing {
        /// The token label.
        token: String,
        /// The key label.
        label: String,
    },
    /// Several objects carry the master key's label.
    #[error("the token `{token}` has {count} secret keys labelled `{label}`; exactly one is expected")]
    Ambiguous {
        /// The token label.
        token: String,
        /// The key label.
        label: String,
        /// How many.
        count: usize,
    },
    /// The token or module went away (removed, crashed, session closed) and could not be reopened.
    #[error("the HSM is unavailable: {0}")]
    Unavailable(String),
    /// Another PKCS#11 failure.
    #[error("PKCS#11 {0}")]
    Pkcs11(#[from] CkError),
    /// The blocking task died.
    #[error("the HSM worker thread failed")]
    Worker,
}

impl HsmError {
    /// Whether this is the token or module being away, rather than a configuration mistake: the
    /// server answers 503 to it and tries again on the next call.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Unavailable(_) | Self::Worker => true,
            Self::Pkcs11(e) => is_connection_error(e),
            _ => false,
        }
    }
}

/// Return values after which the session (or the whole module context) is worth reopening.
fn is_connection_error(e: &CkError) -> bool {
    matches!(
        e,
        CkError::Pkcs11(
            RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::DeviceRemoved
                | RvError::DeviceError
                | RvError::DeviceMemory
                | RvError::TokenNotPresent
                | RvError::TokenNotRecognized
                | RvError::UserNotLoggedIn
                | RvError::ObjectHandleInvalid
                | RvError::KeyHandleInvalid
                | RvError::CryptokiNotInitialized
                | RvError::SlotIdInvalid
                | RvError::GeneralError
                | RvError::FunctionFailed,
            _,
        )
    )
}

/// An open, logged-in session and the master key's handle in it.
struct Connection {
    pkcs11: Pkcs11,
    session: Session,
    key: ObjectHandle,
    slot: Slot,
    token_label: String,
}

impl Connection {
    /// Loads the module, finds the slot, logs in and finds (or, with `create`, generates) the key.
    /// Returns whether the key was generated.
    fn open(settings: &HsmSettings, create: bool) -> Result<(Self, bool), HsmError> {
        let module_err = |reason: String| HsmError::Module { path: settings.module.display().to_string(), reason };
        let pkcs11 = Pkcs11::new(&settings.module).map_err(|e| module_err(e.to_string()))?;
        match pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => return Err(module_err(e.to_string())),
        }
        match Self::open_in(pkcs11.clone(), settings, create) {
            Ok(opened) => Ok(opened),
            Err(e) => {
                // Leave the library as it was found, so the next attempt starts clean.
                let _ = pkcs11.finalize();
                Err(e)
            }
        }
    }

    fn open_in(pkcs11: Pkcs11, settings: &HsmSettings, create: bool) -> Result<(Self, bool), HsmError> {
        let (slot, token_label) = find_slot(&pkcs11, settings.slot.as_ref())?;
        let session = if create { pkcs11.open_rw_session(slot)? } else { pkcs11.open_ro_session(slot)? };
        match session.login(UserType::User, Some(&settings.pin)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(CkError::Pkcs11(RvError::PinIncorrect, _)) => return Err(HsmError::WrongPin { token: token_label }),
            Err(CkError::Pkcs11(RvError::PinLocked, _)) => return Err(HsmError::PinLocked { token: token_label }),
            Err(e) => return Err(e.into()),
        }
        let found = session.find_objects(&key_template(&settings.key_label))?;
        let (key, created) = match found.as_slice() {
            [key] => (*key, false),
            [] if create => (generate_key(&session, &settings.key_label)?, true),
            [] => return Err(HsmError::KeyMissing { token: token_label, label: settings.key_label.clone() }),
            many => {
                return Err(HsmError::Ambiguous {
                    token: token_label,
                    label: settings.key_label.clone(),
                    count: many.len(),
                });
            }
        };
        Ok((Self { pkcs11, session, key, slot, token_label }, created))
    }

    /// Closes the session and finalises the module, so the next open re-reads the slots.
    fn close(self) {
        let Self { pkcs11, session, .. } = self;
        drop(session);
        let _ = pkcs11.finalize();
    }

    fn wrap(&self, key_id: uuid::Uuid, material: &[u8]) -> Result<Vec<u8>, CkError> {
        let mut iv = [0u8; IV_BYTES];
        self.session.generate_random_slice(&mut iv)?;
        let aad = wrap_aad(key_id);
        let mut iv_param = iv;
        let params = GcmParams::new(&mut iv_param, &aad, TAG_BITS.into())?;
        let sealed = self.session.encrypt(&Mechanism::AesGcm(params), self.key, material)?;
        let mut out = Vec::with_capacity(IV_BYTES + sealed.len());
        out.extend_from_slice(&iv);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    fn unwrap(&self, key_id: uuid::Uuid, wrapped: &[u8]) -> Result<zeroize::Zeroizing<Vec<u8>>, CkError> {
        let (iv, sealed) = wrapped
            .split_at_checked(IV_BYTES)
            .ok_or(CkError::Pkcs11(RvError::EncryptedDataLenRange, cryptoki::context::Function::Decrypt))?;
        let mut iv: [u8; IV_BYTES] = iv.try_into().unwrap_or([0u8; IV_BYTES]);
        let aad = wrap_aad(key_id);
        let params = GcmParams::new(&mut iv, &aad, TAG_BITS.into())?;
        Ok(zeroize::Zeroizing::new(self.session.decrypt(&Mechanism::AesGcm(params), self.key, sealed)?))
    }
}

/// The same binding as `LocalKeyProvider`: a wrapped key cannot be passed off as another.
fn wrap_aad(key_id: uuid::Uuid) -> Vec<u8> {
    let mut aad = b"palisade data key v1:".to_vec();
    aad.extend_from_slice(key_id.as_bytes());
    aad
}

fn key_template(label: &str) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Label(label.as_bytes().to_vec()),
    ]
}

/// Generates the master key inside the token: a token object, private, sensitive and
/// non-extractable, able to encrypt and decrypt and nothing else.
fn generate_key(session: &Session, label: &str) -> Result<ObjectHandle, CkError> {
    let template = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::ValueLen(32u64.into()),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Modifiable(false),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Wrap(false),
        Attribute::Unwrap(false),
        Attribute::Sign(false),
        Attribute::Verify(false),
        Attribute::Derive(false),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    session.generate_key(&Mechanism::AesKeyGen, &template)
}

fn find_slot(pkcs11: &Pkcs11, wanted: Option<&HsmSlot>) -> Result<(Slot, String), HsmError> {
    let slots = pkcs11.get_slots_with_initialized_token()?;
    let mut labelled = Vec::with_capacity(slots.len());
    for slot in slots {
        let label = pkcs11.get_token_info(slot)?.label().trim().to_owned();
        labelled.push((slot, label));
    }
    let chosen = match wanted {
        None => labelled.first().cloned(),
        Some(HsmSlot::Number(n)) => labelled
            .iter()
            .find(|(slot, _)| slot.id() == *n)
            .cloned()
            .or_else(|| usize::try_from(*n).ok().and_then(|i| labelled.get(i)).cloned()),
        Some(HsmSlot::TokenLabel(label)) => labelled.iter().find(|(_, l)| l == label).cloned(),
    };
    chosen.ok_or_else(|| HsmError::NoToken {
        wanted: wanted.map_or_else(|| "(any)".to_owned(), ToString::to_string),
        found: if labelled.is_empty() {
            "none".to_owned()
        } else {
            labelled.iter().map(|(slot, label)| format!("{} (`{label}`)", slot.id())).collect::<Vec<_>>().join(", ")
        },
    })
}

struct Inner {
    settings: HsmSettings,
    /// Held only inside blocking closures, never across an `.await`.
    connection: Mutex<Option<Connection>>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Option<Connection>> {
        // A panic while holding it leaves at worst a session to reopen: carry on with it.
        self.connection.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `op` on the session, opening it first if needed; after a connection failure, reopens
    /// everything and tries once more.
    fn with_connection<T>(&self, op: impl Fn(&Connection) -> Result<T, CkError>) -> Result<T, HsmError> {
        let mut guard = self.lock();
        let mut reopened = false;
        if guard.is_none() {
            *guard = Some(self.reopen()?);
            reopened = true;
        }
        let first = match guard.as_ref() {
            Some(connection) => op(connection),
            None => return Err(HsmError::Unavailable("no session".to_owned())),
        };
        match first {
            Ok(value) => return Ok(value),
            Err(e) if !is_connection_error(&e) || reopened => {
                if is_connection_error(&e) {
                    if let Some(connection) = guard.take() {
                        connection.close();
                    }
                    return Err(HsmError::Unavailable(e.to_string()));
                }
                return Err(e.into());
            }
            Err(e) => {
                tracing::warn!(error = %e, "the HSM session failed; reopening it");
                if let Some(connection) = guard.take() {
                    connection.close();
                }
            }
        }
        *guard = Some(self.reopen()?);
        let retried = match guard.as_ref() {
            Some(connection) => op(connection),
            None => return Err(HsmError::Unavailable("no session".to_owned())),
        };
        retried.map_err(|e| {
            if is_connection_error(&e) {
                if let Some(connection) = guard.take() {
                    connection.close();
                }
                HsmError::Unavailable(e.to_string())
            } else {
                e.into()
            }
        })
    }

    fn reopen(&self) -> Result<Connection, HsmError> {
        match Connection::open(&self.settings, false) {
            Ok((connection, _)) => Ok(connection),
            // The token (or module) is away: a temporary state, answered 503.
            Err(HsmError::Pkcs11(e)) => Err(HsmError::Unavailable(e.to_string())),
            Err(e @ (HsmError::NoToken { .. } | HsmError::Module { .. })) => Err(HsmError::Unavailable(e.to_string())),
            Err(e) => Err(e),
        }
    }
}

/// Wraps data keys with a non-extractable AES-256 key inside a PKCS#11 token.
#[derive(Clone)]
pub struct Pkcs11KeyProvider {
    inner: Arc<Inner>,
    id: String,
}

impl std::fmt::Debug for Pkcs11KeyProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11KeyProvider").field("id", &self.id).field("settings", &self.inner.settings).finish()
    }
}

/// What `palisade hsm status` prints.
#[derive(Debug, Clone)]
pub struct HsmReport {
    /// The module path.
    pub module: String,
    /// The module's own description and version.
    pub library: String,
    /// The slot id.
    pub slot: u64,
    /// The token label.
    pub token_label: String,
    /// The provider id recorded beside wrapped keys.
    pub provider_id: String,
    /// Whether the key object exists.
    pub key_present: bool,
    /// `CKA_SENSITIVE` and not `CKA_EXTRACTABLE`, and the token refuses to read `CKA_VALUE`.
    pub key_protected: Option<bool>,
    /// The result of a wrap/unwrap round trip.
    pub round_trip: Result<(), String>,
}

impl Pkcs11KeyProvider {
    /// Opens the module, logs in and finds the master key; fails with [`HsmError::KeyMissing`]
    /// when it has not been generated (`palisade hsm init`).
    pub async fn open(settings: HsmSettings) -> Result<Self, HsmError> {
        Self::connect(settings, false).await.map(|(provider, _)| provider)
    }

    /// Like [`Pkcs11KeyProvider::open`], generating the master key when it is absent. Returns
    /// whether it was generated. Idempotent.
    pub async fn init(settings: HsmSettings) -> Result<(Self, bool), HsmError> {
        Self::connect(settings, true).await
    }

    async fn connect(settings: HsmSettings, create: bool) -> Result<(Self, bool), HsmError> {
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let (connection, created) = Connection::open(&settings, create)?;
            let id = format!("hsm:{}:{}", connection.token_label, settings.key_label);
            tracing::info!(
                provider = %id,
                module = %settings.module.display(),
                slot = connection.slot.id(),
                created,
                "HSM master key ready"
            );
            let inner = Arc::new(Inner { settings, connection: Mutex::new(Some(connection)) });
            Ok((Self { inner, id }, created))
        })
        .await
        .map_err(|_| HsmError::Worker)?
    }

    async fn blocking<T: Send + 'static>(
        &self,
        op: impl Fn(&Connection) -> Result<T, CkError> + Send + 'static,
    ) -> Result<T, HsmError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.with_connection(op)).await.map_err(|_| HsmError::Worker)?
    }

    /// Wraps with the HSM; the typed error keeps "unavailable" apart from other failures.
    pub async fn try_wrap(&self, key_id: uuid::Uuid, material: &DataKeyMaterial) -> Result<Vec<u8>, HsmError> {
        let material = material.clone();
        self.blocking(move |connection| connection.wrap(key_id, material.expose())).await
    }

    /// Unwraps with the HSM; the typed error keeps "unavailable" apart from a wrong key or altered data.
    pub async fn try_unwrap(&self, key_id: uuid::Uuid, wrapped: &[u8]) -> Result<DataKeyMaterial, HsmError> {
        let wrapped = wrapped.to_vec();
        let plain = self.blocking(move |connection| connection.unwrap(key_id, &wrapped)).await?;
        let bytes: [u8; 32] = plain.as_slice().try_into().map_err(|_| {
            HsmError::Pkcs11(CkError::Pkcs11(RvError::EncryptedDataInvalid, cryptoki::context::Function::Decrypt))
        })?;
        Ok(DataKeyMaterial::from_bytes(bytes))
    }

    /// Readiness: a wrap/unwrap round trip of a throwaway key through the token (reopening the
    /// session first if it was lost).
    pub async fn health(&self) -> Result<(), HsmError> {
        let probe = DataKeyMaterial::from_bytes([0x5a; 32]);
        let id = uuid::Uuid::nil();
        let wrapped = self.try_wrap(id, &probe).await?;
        let back = self.try_unwrap(id, &wrapped).await?;
        if back.expose() == probe.expose() {
            Ok(())
        } else {
            Err(HsmError::Unavailable("the round trip returned other bytes".to_owned()))
        }
    }

    /// The module, slot, token and key as `palisade hsm status` shows them, with a round trip.
    pub async fn report(&self) -> HsmReport {
        let module = self.inner.settings.module.display().to_string();
        let facts = self
            .blocking(|connection| {
                let info = connection.pkcs11.get_library_info()?;
                let library = format!(
                    "{} {} ({})",
                    info.library_description().trim(),
                    info.library_version(),
                    info.manufacturer_id().trim()
                );
                Ok((library, connection.slot.id(), connection.token_label.clone(), key_protected(connection)?))
            })
            .await;
        let round_trip = self.health().await.map_err(|e| e.to_string());
        match facts {
            Ok((library, slot, token_label, protected)) => HsmReport {
                module,
                library,
                slot,
                token_label,
                provider_id: self.id.clone(),
                key_present: true,
                key_protected: Some(protected),
                round_trip,
            },
            Err(e) => HsmReport {
                module,
                library: String::new(),
                slot: 0,
                token_label: String::new(),
                provider_id: self.id.clone(),
                key_present: false,
                key_protected: None,
                round_trip: Err(e.to_string()),
            },
        }
    }
}

/// Whether the key is sensitive, non-extractable, never was extractable, and the token refuses to
/// read its value (`C_GetAttributeValue(CKA_VALUE)` answers `CKR_ATTRIBUTE_SENSITIVE`).
fn key_protected(connection: &Connection) -> Result<bool, CkError> {
    let flags = connection.session.get_attributes(
        connection.key,
        &[AttributeType::Sensitive, AttributeType::Extractable, AttributeType::NeverExtractable],
    )?;
    let flag = |wanted: AttributeType| {
        flags.iter().find_map(|attribute| match (attribute, wanted) {
            (Attribute::Sensitive(v), AttributeType::Sensitive)
            | (Attribute::Extractable(v), AttributeType::Extractable)
            | (Attribute::NeverExtractable(v), AttributeType::NeverExtractable) => Some(*v),
            _ => None,
        })
    };
    let value = connection.session.get_attribute_info(connection.key, &[AttributeType::Value])?;
    let value_refused = matches!(value.as_slice(), [AttributeInfo::Sensitive] | [AttributeInfo::Unavailable]);
    Ok(flag(AttributeType::Sensitive) == Some(true)
        && flag(AttributeType::Extractable) == Some(false)
        && flag(AttributeType::NeverExtractable) == Some(true)
        && value_refused)
}

#[async_trait]
impl KeyProvider for Pkcs11KeyProvider {
    fn id(&self) -> String {
        self.id.clone()
    }

    fn is_hardware(&self) -> bool {
        true
    }

    async fn health(&self) -> Result<(), AeadError> {
        Pkcs11KeyProvider::health(self).await.map_err(|e| {
            tracing::warn!(error = %e, "HSM health check failed");
            AeadError::Unavailable
        })
    }

    async fn wrap(&self, key_id: uuid::Uuid, material: &DataKeyMaterial) -> Result<Vec<u8>, AeadError> {
        self.try_wrap(key_id, material).await.map_err(|e| {
            tracing::error!(error = %e, unavailable = e.is_unavailable(), "HSM wrap failed");
            if e.is_unavailable() { AeadError::Unavailable } else { AeadError::Seal }
        })
    }

    async fn unwrap(&self, key_id: uuid::Uuid, wrapped: &[u8]) -> Result<DataKeyMaterial, AeadError> {
        self.try_unwrap(key_id, wrapped).await.map_err(|e| {
            if e.is_unavailable() {
                tracing::error!(error = %e, %key_id, "HSM unwrap failed: the HSM is unavailable");
                AeadError::Unavailable
            } else {
                tracing::warn!(error = %e, %key_id, "HSM unwrap refused");
                AeadError::Open
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_numbers_or_token_labels() {
        assert_eq!(HsmSlot::parse(" 0 "), Ok(HsmSlot::Number(0)));
        assert_eq!(HsmSlot::parse("1234567890"), Ok(HsmSlot::Number(1_234_567_890)));
        assert_eq!(HsmSlot::parse("palisade"), Ok(HsmSlot::TokenLabel("palisade".to_owned())));
        assert!(HsmSlot::parse("").is_err());
        assert!(HsmSlot::parse(&"x".repeat(33)).is_err());
        assert!(HsmSlot::parse("99999999999999999999999").is_err());
    }

    #[test]
    fn settings_never_print_the_pin() {
        let settings = HsmSettings {
            module: PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"),
            slot: None,
            pin: SecretString::from("1234-secret-pin"),
            key_label: MASTER_KEY_LABEL.to_owned(),
        };
        let shown = format!("{settings:?}");
        assert!(!shown.contains("1234-secret-pin") && shown.contains("***"), "{shown}");
    }

    #[tokio::test]
    async fn a_missing_module_is_named_in_the_error() {
        let settings = HsmSettings {
            module: PathBuf::from("/nonexistent/libpkcs11.so"),
            slot: None,
            pin: SecretString::from("0000"),
            key_label: MASTER_KEY_LABEL.to_owned(),
        };
        let err = Pkcs11KeyProvider::open(settings).await.unwrap_err().to_string();
        assert!(err.contains("/nonexistent/libpkcs11.so") && err.contains("hsm_module"), "{err}");
    }
}
