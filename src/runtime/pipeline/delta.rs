//! What one batch changed — idempotency entries, held keys, ledger positions, parked records,
//! counters — kept apart until the batch's transaction committed, then applied to the stores
//! and metrics (`Pipeline::apply`). An aborted batch leaves the stores as they were.

use std::collections::HashMap;

use super::Coordinates;
use crate::runtime::dedupe::FingerprintMap;
use crate::runtime::dlq::HeldEntry;
use crate::runtime::parking::ParkedEntry;
use crate::runtime::status;

/// What a batch changed, applied to the stores and metrics only once it committed.
#[derive(Default)]
pub(crate) struct Pending {
    pub(crate) fingerprints: FingerprintMap<(i32, i64)>,
    /// Held-key changes (None = released), applied in order after the commit.
    pub(crate) held: HashMap<Vec<u8>, Option<(i32, HeldEntry)>>,
    pub(crate) released: u64,
    pub(crate) consumed: HashMap<String, u64>,
    pub(crate) produced: HashMap<String, u64>,
    pub(crate) failed: HashMap<(String, &'static str, &'static str), u64>,
    pub(crate) dead_letters: HashMap<&'static str, u64>,
    pub(crate) duplicates: u64,
    pub(crate) held_count: u64,
    pub(crate) statuses: FingerprintMap<(i32, crate::schema::lifecycle::Current)>,
    /// The ledger snapshot entries the transaction carries.
    pub(crate) snapshot: Option<status::SnapshotChunk>,
    /// Stale statuses skipped, by the topic their source event came from (a status gate's
    /// records come from several workers).
    pub(crate) stale: HashMap<String, u64>,
    pub(crate) parked: u64,
    /// Parked-store changes in order (None = re-driven, removed).
    pub(crate) parked_changes: Vec<(Coordinates, Option<(i32, ParkedEntry)>)>,
    /// Keys parked in this batch, and on which reference.
    pub(crate) parked_keys: HashMap<Vec<u8>, String>,
    pub(crate) redriven: u64,
    /// Document links written to the cross-reference topic (key, value), added to the local
    /// table once committed so the next batch needs no call.
    pub(crate) learned: Vec<(String, Vec<u8>)>,
    /// The same entries, read by the batch's later records of a transform that reads its own
    /// writes (`Transform::reads_own_writes`).
    pub(crate) written: Vec<crate::xref::XrefEntry>,
}

impl Pending {
    /// For a batch of `records`: the maps every record adds to start at their final size.
    pub(crate) fn for_batch(records: usize) -> Self {
        Self {
            fingerprints: FingerprintMap::with_capacity_and_hasher(records, Default::default()),
            statuses: FingerprintMap::with_capacity_and_hasher(records, Default::default()),
            ..Self::default()
        }
    }
}
