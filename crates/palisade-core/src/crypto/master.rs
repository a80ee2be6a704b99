//! The master key and the providers that wrap data keys with it.
//!
//! The master key never encrypts data itself: it only wraps data keys. Today it comes from the
//! environment or a development key file; a PKCS#11 HSM slots in as another [`KeyProvider`], where
//! the master key never leaves the device.

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use std::path::Path;

use super::aead::{AeadError, AeadKey, DataKeyMaterial};

/// Why a master key could not be had. Never carries the key or its text.
#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    /// The configured value is not base64 of exactly 32 bytes.
    #[error("expected base64 of exactly 32 bytes ({0})")]
    Malformed(&'static str),
    /// The development key file could not be read or written.
    #[error("development key file {path}: {source}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The development key file may be read or written by other accounts (Unix mode bits for the
    /// group or others), so it is not used.
    #[error(
        "development key file {path} is readable or writable by group or others (mode {mode:04o}): \
         the master key must be private to Palisade's account; run `chmod 600 {path}`"
    )]
    Exposed {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
}

/// The 32-byte master key, wiped from memory on drop and never printed.
pub struct MasterKey(DataKeyMaterial);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<hidden>)")
    }
}

impl MasterKey {
    /// Parses base64 (standard alphabet, padded or not) of exactly 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, MasterKeyError> {
        let text = text.trim();
        let engine = base64::engine::GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            base64::engine::GeneralPurposeConfig::new()
                .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
        );
        let bytes = zeroize::Zeroizing::new(engine.decode(text).map_err(|_| MasterKeyError::Malformed("not base64"))?);
        let array: [u8; 32] = bytes.as_slice().try_into().map_err(|_| MasterKeyError::Malformed("wrong length"))?;
        Ok(Self(DataKeyMaterial::from_bytes(array)))
    }

    /// Wraps raw bytes (tests, HSM-less embedding).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(DataKeyMaterial::from_bytes(bytes))
    }

    /// A fresh random key.
    pub fn generate() -> Result<Self, AeadError> {
        Ok(Self(DataKeyMaterial::generate()?))
    }

    /// Reads the development key file at `path`, or makes one (mode 0600, in a directory made with
    /// mode 0700 if missing) if there is none. Returns the key and whether it was just created.
    ///
    /// On Unix an existing file that the group or others may read or write is refused
    /// ([`MasterKeyError::Exposed`]) before its content is read.
    pub fn load_or_create_dev_file(path: &Path) -> Result<(Self, bool), MasterKeyError> {
        let file_err = |source| MasterKeyError::File { path: path.display().to_string(), source };
        match Self::read_dev_file(path) {
            Ok(key) => return Ok((key, false)),
            Err(MasterKeyError::File { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt;
                // Only the directories made here: an existing one keeps its mode (start-up warns
                // about a data directory open to others).
                builder.mode(0o700);
            }
            builder.create(dir).map_err(file_err)?;
        }
        let key = Self::generate().map_err(|_| MasterKeyError::Malformed("random generator failed"))?;
        let text = zeroize::Zeroizing::new(STANDARD.encode(key.0.expose()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        match options.open(path) {
            Ok(mut file) => {
                use std::io::Write;
                file.write_all(text.as_bytes()).map_err(file_err)?;
                file.sync_all().map_err(file_err)?;
                Ok((key, true))
            }
            // Another process made it between our read and our create: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok((Self::read_dev_file(path)?, false)),
            Err(e) => Err(file_err(e)),
        }
    }

    /// Reads an existing development key file, refusing it (on Unix) when its mode lets the group
    /// or others in. The mode is taken from the opened file, so it is the file that is read.
    fn read_dev_file(path: &Path) -> Result<Self, MasterKeyError> {
        use std::io::Read as _;
        let file_err = |source| MasterKeyError::File { path: path.display().to_string(), source };
        let mut file = std::fs::File::open(path).map_err(file_err)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = file.metadata().map_err(file_err)?.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                return Err(MasterKeyError::Exposed { path: path.display().to_string(), mode });
            }
        }
        let mut text = zeroize::Zeroizing::new(String::new());
        file.read_to_string(&mut text).map_err(file_err)?;
        Self::from_base64(&text)
    }

    /// A short public fingerprint (first 8 hex digits of SHA-256 over a fixed label and the key), so
    /// operators can tell keys apart without seeing them.
    pub fn fingerprint(&self) -> String {
        let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        ctx.update(b"palisade master key fingerprint v1");
        ctx.update(self.0.expose());
        let digest = ctx.finish();
        digest.as_ref().iter().take(4).map(|b| format!("{b:02x}")).collect()
    }
}

/// Wraps and unwraps data keys. Implementations: [`LocalKeyProvider`] (master key in memory) and,
/// later, a PKCS#11 HSM. Calls may block on a device, hence async.
#[async_trait]
pub trait KeyProvider: Send + Sync + 'static {
    /// Names the provider and its master key, as stored beside each wrapped key (`local:ab12cd34`).
    fn id(&self) -> String;

    /// Encrypts `material` for the data key `key_id`; the id is bound as associated data so a
    /// wrapped key cannot be passed off as another.
    async fn wrap(&self, key_id: uuid::Uuid, material: &DataKeyMaterial) -> Result<Vec<u8>, AeadError>;

    /// Reverses [`KeyProvider::wrap`].
    async fn unwrap(&self, key_id: uuid::Uuid, wrapped: &[u8]) -> Result<DataKeyMaterial, AeadError>;

    /// Whether the master key is held by hardware (an HSM): the encryption service then honours
    /// classes whose policy requires an HSM, and `/ready` reports an `hsm` component.
    fn is_hardware(&self) -> bool {
        false
    }

    /// Checks that the provider answers now (an HSM reachable and its key usable), for `/ready`.
    async fn health(&self) -> Result<(), AeadError> {
        Ok(())
    }
}

/// A provider holding the master key in process memory.
pub struct LocalKeyProvider {
    key: AeadKey,
    fingerprint: String,
}

impl LocalKeyProvider {
    /// A provider over `master`.
    pub fn new(master: &MasterKey) -> Result<Self, AeadError> {
        Ok(Self { key: AeadKey::new(&master.0)?, fingerprint: master.fingerprint() })
    }
}

fn wrap_aad(key_id: uuid::Uuid) -> Vec<u8> {
    let mut aad = b"palisade data key v1:".to_vec();
    aad.extend_from_slice(key_id.as_bytes());
    aad
}

#[async_trait]
impl KeyProvider for LocalKeyProvider {
    fn id(&self) -> String {
        format!("local:{}", self.fingerprint)
    }

    async fn wrap(&self, key_id: uuid::Uuid, material: &DataKeyMaterial) -> Result<Vec<u8>, AeadError> {
        self.key.seal(material.expose(), &wrap_aad(key_id))
    }

    async fn unwrap(&self, key_id: uuid::Uuid, wrapped: &[u8]) -> Result<DataKeyMaterial, AeadError> {
        let plain = self.key.open(wrapped, &wrap_aad(key_id))?;
        let bytes: [u8; 32] = plain.as_slice().try_into().map_err(|_| AeadError::Open)?;
        Ok(DataKeyMaterial::from_bytes(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_key_parsing_refuses_wrong_lengths_and_text() {
        assert!(MasterKey::from_base64(&STANDARD.encode([7u8; 32])).is_ok());
        assert!(MasterKey::from_base64(&STANDARD.encode([7u8; 31])).is_err());
        assert!(MasterKey::from_base64(&STANDARD.encode([7u8; 33])).is_err());
        assert!(MasterKey::from_base64("not base64 at all!").is_err());
        let err = MasterKey::from_base64("c2VjcmV0").unwrap_err().to_string();
        assert!(!err.contains("c2VjcmV0"), "the value must never be echoed: {err}");
    }

    #[test]
    fn dev_key_file_is_created_once_with_mode_0600() {
        let dir = tempfile_dir();
        let path = dir.join("master.key");
        let (first, created) = MasterKey::load_or_create_dev_file(&path).unwrap();
        assert!(created);
        let (again, created) = MasterKey::load_or_create_dev_file(&path).unwrap();
        assert!(!created);
        assert_eq!(first.fingerprint(), again.fingerprint());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[cfg(unix)]
    fn mode_of(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[cfg(unix)]
    #[test]
    fn the_directory_made_for_the_dev_key_file_is_private() {
        let dir = tempfile_dir();
        let data = dir.join("palisade-data");
        MasterKey::load_or_create_dev_file(&data.join("master.key")).unwrap();
        assert_eq!(mode_of(&data), 0o700);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_dev_key_file_open_to_group_or_others_is_refused_naming_the_fix() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile_dir();
        let path = dir.join("master.key");
        let (key, _) = MasterKey::load_or_create_dev_file(&path).unwrap();
        for mode in [0o644, 0o640, 0o604, 0o620, 0o602, 0o660] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = MasterKey::load_or_create_dev_file(&path).unwrap_err();
            assert!(matches!(err, MasterKeyError::Exposed { mode: m, .. } if m == mode), "{mode:o}: {err}");
            let message = err.to_string();
            let shown = path.display().to_string();
            assert!(message.contains(&format!("chmod 600 {shown}")), "{message}");
            assert!(message.contains(&format!("{mode:04o}")), "{message}");
            assert_eq!(mode_of(&path), mode, "the file is left as it was");
        }
        // Owner-only modes are accepted, read-only included, and the key is the same one.
        for mode in [0o600, 0o400] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let (again, created) = MasterKey::load_or_create_dev_file(&path).unwrap();
            assert!(!created);
            assert_eq!(again.fingerprint(), key.fingerprint());
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("palisade-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[tokio::test]
    async fn wrapped_keys_are_bound_to_their_id_and_master() {
        let provider = LocalKeyProvider::new(&MasterKey::from_bytes([1; 32])).unwrap();
        let material = DataKeyMaterial::generate().unwrap();
        let id = uuid::Uuid::new_v4();
        let wrapped = provider.wrap(id, &material).await.unwrap();
        assert_eq!(provider.unwrap(id, &wrapped).await.unwrap().expose(), material.expose());
        assert!(provider.unwrap(uuid::Uuid::new_v4(), &wrapped).await.is_err());
        let other = LocalKeyProvider::new(&MasterKey::from_bytes([2; 32])).unwrap();
        assert!(other.unwrap(id, &wrapped).await.is_err());
    }
}
