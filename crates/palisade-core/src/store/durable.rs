//! The durable store: the source of truth. This part of it holds the wrapped data keys and
//! the audit chain.

use async_trait::async_trait;

use super::StoreError;
use crate::audit::AuditRecord;
use crate::crypto::{KeyPurpose, WrappedDataKey};

/// Wrapped (encrypted) data keys, versioned per purpose.
#[async_trait]
pub trait KeyStore: Send + Sync + 'static {
    /// Inserts a new key version. Returns `false`, storing nothing, when that purpose already has
    /// that version (another instance made it first). A duplicate `id` is an error, not `false`.
    async fn insert_data_key(&self, key: &WrappedDataKey) -> Result<bool, StoreError>;

    /// Every version of the keys for `purpose`, oldest first.
    async fn data_keys(&self, purpose: KeyPurpose) -> Result<Vec<WrappedDataKey>, StoreError>;

    /// One key by its id.
    async fn data_key(&self, id: uuid::Uuid) -> Result<Option<WrappedDataKey>, StoreError>;
}

/// The append-only audit chain.
#[async_trait]
pub trait AuditStore: Send + Sync + 'static {
    /// The last record of the chain, if any.
    async fn audit_head(&self) -> Result<Option<AuditRecord>, StoreError>;

    /// Appends `record` if its `seq` is free. Returns `false`, storing nothing, when another writer
    /// took that sequence number first (the caller re-reads the head and seals again). A duplicate
    /// `id` is an error, not `false`. `at` is stored at microsecond precision (the MAC covers it).
    async fn try_append_audit(&self, record: &AuditRecord) -> Result<bool, StoreError>;

    /// Records with `seq > after`, in order, at most `limit`.
    async fn audit_records(&self, after: i64, limit: u32) -> Result<Vec<AuditRecord>, StoreError>;
}

/// The whole durable store, as the services see it.
#[async_trait]
pub trait DurableStore: KeyStore + AuditStore {
    /// Which backend this is (`sqlite`, `postgres`), for diagnostics.
    fn backend(&self) -> &'static str;

    /// Answers when the store is reachable.
    async fn ping(&self) -> Result<(), StoreError>;
}
