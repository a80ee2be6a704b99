//! In-memory ports for this crate's unit tests only. The real adapters (and their conformance
//! suite) are in `palisade-store`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::audit::AuditRecord;
use crate::crypto::{KeyPurpose, WrappedDataKey};
use crate::store::{AuditStore, KeyStore, StoreError};

#[derive(Default)]
pub(crate) struct MemoryStore {
    pub(crate) keys: Mutex<Vec<WrappedDataKey>>,
    pub(crate) min_versions: Mutex<std::collections::HashMap<KeyPurpose, u32>>,
    pub(crate) audit: Mutex<BTreeMap<i64, AuditRecord>>,
    pub(crate) checkpoints: Mutex<Vec<crate::audit::AuditCheckpoint>>,
}

#[async_trait]
impl KeyStore for MemoryStore {
    async fn insert_data_key(&self, key: &WrappedDataKey) -> Result<bool, StoreError> {
        let mut keys = self.keys.lock().unwrap();
        if keys.iter().any(|k| k.purpose == key.purpose && k.version == key.version) {
            return Ok(false);
        }
        keys.push(key.clone());
        Ok(true)
    }

    async fn data_keys(&self, purpose: KeyPurpose) -> Result<Vec<WrappedDataKey>, StoreError> {
        Ok(self.keys.lock().unwrap().iter().filter(|k| k.purpose == purpose).cloned().collect())
    }

    async fn data_key(&self, id: uuid::Uuid) -> Result<Option<WrappedDataKey>, StoreError> {
        Ok(self.keys.lock().unwrap().iter().find(|k| k.id == id).cloned())
    }
    async fn delete_data_keys(&self, purpose: KeyPurpose) -> Result<u64, StoreError> {
        let mut keys = self.keys.lock().unwrap();
        let before = keys.len();
        keys.retain(|k| k.purpose != purpose);
        Ok((before - keys.len()) as u64)
    }

    async fn min_decryption_version(&self, purpose: KeyPurpose) -> Result<u32, StoreError> {
        Ok(self.min_versions.lock().unwrap().get(&purpose).copied().unwrap_or(1))
    }

    async fn set_min_decryption_version(
        &self,
        purpose: KeyPurpose,
        version: u32,
        _at: time::OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.min_versions.lock().unwrap().insert(purpose, version);
        Ok(())
    }
}

#[async_trait]
impl AuditStore for MemoryStore {
    async fn audit_head(&self) -> Result<Option<AuditRecord>, StoreError> {
        Ok(self.audit.lock().unwrap().values().next_back().cloned())
    }

    async fn try_append_audit(&self, record: &AuditRecord) -> Result<bool, StoreError> {
        let mut audit = self.audit.lock().unwrap();
        if audit.contains_key(&record.seq) {
            return Ok(false);
        }
        audit.insert(record.seq, record.clone());
        Ok(true)
    }

    async fn try_append_audit_batch(&self, records: &[AuditRecord]) -> Result<bool, StoreError> {
        let mut audit = self.audit.lock().unwrap();
        if records.iter().any(|r| audit.contains_key(&r.seq)) {
            return Ok(false);
        }
        for record in records {
            audit.insert(record.seq, record.clone());
        }
        Ok(true)
    }

    async fn audit_records(&self, after: i64, limit: u32) -> Result<Vec<AuditRecord>, StoreError> {
        Ok(self.audit.lock().unwrap().range(after + 1..).take(limit as usize).map(|(_, r)| r.clone()).collect())
    }

    async fn audit_search(&self, filter: &crate::audit::AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        if filter.kinds.len() > 2 {
            return Err(StoreError::Other(format!(
                "an audit search takes at most two kinds, not {}",
                filter.kinds.len()
            )));
        }
        let audit = self.audit.lock().unwrap();
        Ok(audit
            .values()
            .rev()
            .filter(|r| filter.before.is_none_or(|b| r.seq < b))
            .filter(|r| filter.subject.is_none() || r.subject == filter.subject)
            .filter(|r| filter.kinds.is_empty() || filter.kinds.contains(&r.kind))
            .filter(|r| filter.since.is_none_or(|at| r.at >= at) && filter.until.is_none_or(|at| r.at < at))
            .take(filter.limit as usize)
            .cloned()
            .collect())
    }

    async fn audit_counts(
        &self,
        since: time::OffsetDateTime,
        until: time::OffsetDateTime,
        bucket: time::Duration,
    ) -> Result<Vec<crate::audit::AuditCount>, StoreError> {
        let micros = bucket.whole_microseconds();
        if micros < 1 || bucket.subsec_nanoseconds() % 1000 != 0 {
            return Err(StoreError::Other(format!("a bucket of {bucket} is not a whole number of microseconds")));
        }
        let mut counts: std::collections::BTreeMap<(u32, String, String), u64> = std::collections::BTreeMap::new();
        for r in self.audit.lock().unwrap().values().filter(|r| r.at >= since && r.at < until) {
            let slice = u32::try_from((r.at - since).whole_microseconds() / micros).unwrap_or(u32::MAX);
            *counts.entry((slice, r.kind.clone(), r.outcome.clone())).or_default() += 1;
        }
        Ok(counts
            .into_iter()
            .map(|((bucket, kind, outcome), count)| crate::audit::AuditCount { bucket, kind, outcome, count })
            .collect())
    }

    async fn audit_top_addresses(
        &self,
        since: time::OffsetDateTime,
        until: time::OffsetDateTime,
        kinds: &[&str],
        limit: u32,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let mut counts: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
        for r in self.audit.lock().unwrap().values().filter(|r| r.at >= since && r.at < until) {
            if let Some(ip) = &r.ip
                && (r.outcome == "failure" || kinds.contains(&r.kind.as_str()))
            {
                *counts.entry(ip.clone()).or_default() += 1;
            }
        }
        let mut top: Vec<(String, u64)> = counts.into_iter().collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        top.truncate(limit as usize);
        Ok(top)
    }

    async fn audit_records_about(
        &self,
        who: &[String],
        after: i64,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let about = |r: &&AuditRecord| {
            r.actor.as_ref().is_some_and(|a| who.contains(a)) || r.subject.as_ref().is_some_and(|s| who.contains(s))
        };
        Ok(self
            .audit
            .lock()
            .unwrap()
            .range(after + 1..)
            .map(|(_, r)| r)
            .filter(about)
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn redact_audit_records(
        &self,
        who: &[String],
        pseudonym: &str,
        after: i64,
        limit: u32,
        at: time::OffsetDateTime,
    ) -> Result<crate::audit::RedactionPage, StoreError> {
        let mut audit = self.audit.lock().unwrap();
        let mut page = crate::audit::RedactionPage::default();
        for (seq, record) in audit.range_mut(after + 1..) {
            if page.examined >= u64::from(limit) {
                break;
            }
            let about = record.actor.as_ref().is_some_and(|a| who.contains(a))
                || record.subject.as_ref().is_some_and(|s| who.contains(s));
            if !about {
                continue;
            }
            page.examined += 1;
            page.last_seq = Some(*seq);
            if crate::audit::redact(record, who, pseudonym, at) {
                page.redacted += 1;
            }
        }
        Ok(page)
    }

    async fn audit_checkpoint(&self) -> Result<Option<crate::audit::AuditCheckpoint>, StoreError> {
        Ok(self.checkpoints.lock().unwrap().last().cloned())
    }

    async fn archive_audit_prefix(&self, checkpoint: &crate::audit::AuditCheckpoint) -> Result<bool, StoreError> {
        let mut checkpoints = self.checkpoints.lock().unwrap();
        let mut audit = self.audit.lock().unwrap();
        let head = audit.keys().next_back().copied().unwrap_or(0);
        if checkpoints.last().is_some_and(|c| c.seq >= checkpoint.seq) || checkpoint.seq >= head {
            return Ok(false);
        }
        audit.retain(|seq, _| *seq > checkpoint.seq);
        checkpoints.push(checkpoint.clone());
        Ok(true)
    }

    async fn audit_prefix_before(&self, before: time::OffsetDateTime) -> Result<Option<i64>, StoreError> {
        let audit = self.audit.lock().unwrap();
        let mut last = None;
        for (seq, record) in audit.iter() {
            if record.at >= before {
                break;
            }
            last = Some(*seq);
        }
        Ok(last)
    }
}
