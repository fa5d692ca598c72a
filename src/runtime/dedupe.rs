//! The per-worker idempotency store: which source events were already turned into output.
//!
//! Owns: membership by a 128-bit fingerprint of the idempotency key (16 bytes per entry instead
//! of the key itself keeps 1M keys well under 150 MB), expiry by TTL, eviction by entry count,
//! and which input partition each entry belongs to (dropped on revocation, restored from the
//! changelog on assignment). Must not: write to Kafka (the worker writes the changelog record in
//! the same transaction as the outputs).

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use sha2::{Digest, Sha256};

pub type Fingerprint = u128;

/// Fingerprints are already uniform (a SHA-256 prefix): hashing them again is wasted work.
#[derive(Default)]
pub struct FingerprintHasher(u64);

impl Hasher for FingerprintHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u128 keys are hashed here; fold anything else in so it still works.
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(b);
        }
    }

    fn write_u128(&mut self, v: u128) {
        self.0 = v as u64;
    }
}

/// A map keyed by fingerprint.
pub type FingerprintMap<V> = HashMap<Fingerprint, V, BuildHasherDefault<FingerprintHasher>>;

pub fn fingerprint(idempotency_key: &str) -> Fingerprint {
    let digest = Sha256::digest(idempotency_key.as_bytes());
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    u128::from_be_bytes(first)
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    expires_at: i64,
    partition: i32,
}

pub struct DedupeStore {
    ttl_ms: i64,
    max_entries: usize,
    entries: FingerprintMap<Entry>,
    /// Insertion order for eviction; stale pairs (re-inserted or dropped keys) are skipped.
    order: VecDeque<(Fingerprint, i64)>,
}

impl DedupeStore {
    pub fn new(ttl_ms: i64, max_entries: usize) -> Self {
        Self {
            ttl_ms,
            max_entries,
            entries: FingerprintMap::default(),
            order: VecDeque::new(),
        }
    }

    pub fn ttl_ms(&self) -> i64 {
        self.ttl_ms
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn contains(&self, fp: Fingerprint, now_ms: i64) -> bool {
        self.entries.get(&fp).is_some_and(|e| e.expires_at > now_ms)
    }

    /// Records `fp` until `expires_at`; evicts the oldest entries beyond `max_entries`.
    pub fn insert(&mut self, fp: Fingerprint, partition: i32, expires_at: i64) {
        self.entries.insert(fp, Entry { expires_at, partition });
        self.order.push_back((fp, expires_at));
        while self.entries.len() > self.max_entries {
            let Some((old, at)) = self.order.pop_front() else {
                break;
            };
            if self.entries.get(&old).is_some_and(|e| e.expires_at == at) {
                self.entries.remove(&old);
            }
        }
        // Keep the order queue from growing without bound when keys are re-inserted.
        if self.order.len() > self.max_entries.saturating_mul(2).max(1024) {
            self.compact_order();
        }
    }

    /// Drops expired entries; call now and then (the worker does once per batch at most).
    pub fn expire(&mut self, now_ms: i64) {
        while let Some(&(fp, at)) = self.order.front() {
            if at > now_ms {
                break;
            }
            self.order.pop_front();
            if self.entries.get(&fp).is_some_and(|e| e.expires_at == at) {
                self.entries.remove(&fp);
            }
        }
    }

    /// Forgets a revoked partition's entries: its new owner restores them from the changelog.
    pub fn drop_partition(&mut self, partition: i32) {
        self.entries.retain(|_, e| e.partition != partition);
        self.compact_order();
    }

    fn compact_order(&mut self) {
        let entries = &self.entries;
        self.order
            .retain(|(fp, at)| entries.get(fp).is_some_and(|e| e.expires_at == *at));
    }

    /// Changelog record value: the expiry instant.
    pub fn encode_value(expires_at: i64) -> [u8; 8] {
        expires_at.to_be_bytes()
    }

    /// Applies a changelog record read back for the input partitions in `wanted`. A `state3:`
    /// record's idempotency part holds entries of several partitions, each tagged with its own
    /// (28 bytes: fingerprint, expiry, partition).
    pub fn restore_record(
        &mut self,
        key: &[u8],
        value: Option<&[u8]>,
        now_ms: i64,
        wanted: &std::collections::BTreeSet<i32>,
    ) {
        if key.starts_with(super::state::STATE_BATCH_KEY.as_bytes()) {
            let (entries, _) = super::state::split_batch(value.unwrap_or_default());
            self.restore_entries(entries, now_ms, wanted);
        }
    }

    fn restore_entries(&mut self, entries: &[u8], now_ms: i64, wanted: &std::collections::BTreeSet<i32>) {
        for entry in entries.chunks_exact(28) {
            let (fp, rest) = entry.split_at(16);
            let (expiry, owner) = rest.split_at(8);
            let owner = i32::from_be_bytes(owner.try_into().unwrap_or_default());
            if wanted.contains(&owner) {
                self.apply_changelog(fp, Some(expiry), owner, now_ms);
            }
        }
    }

    /// One batch's fingerprints, packed as the idempotency part of a `state3:` record.
    pub fn encode_batch<'a>(entries: impl Iterator<Item = (&'a Fingerprint, &'a (i32, i64))>) -> Vec<u8> {
        let mut buf = Vec::new();
        for (fp, (cp, expires_at)) in entries {
            buf.extend_from_slice(&fp.to_be_bytes());
            buf.extend_from_slice(&Self::encode_value(*expires_at));
            buf.extend_from_slice(&cp.to_be_bytes());
        }
        buf
    }

    /// Applies one restored entry: key = fingerprint, value = expiry (None = tombstone).
    fn apply_changelog(&mut self, key: &[u8], value: Option<&[u8]>, partition: i32, now_ms: i64) {
        let Ok(k) = <[u8; 16]>::try_from(key) else {
            return;
        };
        let fp = u128::from_be_bytes(k);
        match value.and_then(|v| <[u8; 8]>::try_from(v).ok()) {
            Some(v) => {
                let expires_at = i64::from_be_bytes(v);
                if expires_at > now_ms {
                    self.insert(fp, partition, expires_at);
                }
            }
            None => {
                self.entries.remove(&fp);
            }
        }
    }
}

impl super::state::Store for DedupeStore {
    const NAME: &'static str = "dedupe";
    const MIXES_PARTITIONS: bool = true;
    fn restore(&mut self, r: &super::state::Restored, wanted: &std::collections::BTreeSet<i32>, now_ms: i64) {
        self.restore_record(&r.key, r.value.as_deref(), now_ms, wanted);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_record_restores_only_the_wanted_partitions() {
        let pending: FingerprintMap<(i32, i64)> = [(1u128, (0, 500)), (2u128, (2, 500))].into_iter().collect();
        let value = DedupeStore::encode_batch(pending.iter());
        // The entries as the idempotency part of a transaction's state record: partition 0 is
        // not ours; partition 2 is, whichever changelog partition held it.
        let framed = crate::runtime::state::frame_batch(&value, &[7; 29]);
        let mut s = DedupeStore::new(1000, 10);
        let key = format!("{}t-0-0", crate::runtime::state::STATE_BATCH_KEY);
        s.restore_record(key.as_bytes(), Some(&framed), 100, &[2].into_iter().collect());
        assert!(!s.contains(1, 100) && s.contains(2, 100) && s.len() == 1);
    }

    #[test]
    fn remembers_until_ttl_and_evicts_oldest() {
        let mut s = DedupeStore::new(1000, 2);
        let (a, b, c) = (fingerprint("a"), fingerprint("b"), fingerprint("c"));
        s.insert(a, 0, 1000);
        assert!(s.contains(a, 999) && !s.contains(a, 1000));
        s.insert(b, 0, 2000);
        s.insert(c, 1, 3000);
        assert_eq!(s.len(), 2);
        assert!(!s.contains(a, 0), "oldest evicted past max_entries");
        s.drop_partition(1);
        assert!(!s.contains(c, 0) && s.contains(b, 0));
        s.expire(2500);
        assert!(s.is_empty());
    }

    #[test]
    fn changelog_round_trip_skips_expired() {
        let mut s = DedupeStore::new(1000, 10);
        let fp = fingerprint("k");
        s.apply_changelog(&fp.to_be_bytes(), Some(&DedupeStore::encode_value(5000)), 3, 1000);
        assert!(s.contains(fp, 4000));
        let old = fingerprint("old");
        s.apply_changelog(&old.to_be_bytes(), Some(&DedupeStore::encode_value(10)), 3, 1000);
        assert!(!s.contains(old, 0));
        s.apply_changelog(&fp.to_be_bytes(), None, 3, 1000);
        assert!(!s.contains(fp, 0));
    }

    #[test]
    fn expired_entries_are_not_restored() {
        let mut s = DedupeStore::new(1000, 10);
        let (a, b) = (fingerprint("a"), fingerprint("b"));
        let pending: FingerprintMap<(i32, i64)> = [(a, (0, 5000)), (b, (0, 10))].into_iter().collect();
        let framed = crate::runtime::state::frame_batch(&DedupeStore::encode_batch(pending.iter()), &[]);
        let key = format!("{}t-0-0", crate::runtime::state::STATE_BATCH_KEY);
        s.restore_record(key.as_bytes(), Some(&framed), 100, &[0].into_iter().collect());
        assert!(s.contains(a, 200));
        assert!(!s.contains(b, 0), "expired entries are not restored");
    }

    #[test]
    fn a_million_keys_stay_small() {
        // 16-byte key + 16-byte entry; the map's overhead keeps this far below 150 MB.
        assert!(std::mem::size_of::<(Fingerprint, Entry)>() <= 32);
    }
}
