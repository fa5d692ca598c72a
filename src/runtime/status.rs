//! The status ledger that keeps lifecycles from going backwards: orders (`OrderStatus`), returns
//! (`ReturnAuthorization`) and part reservations (`PartReservation`).
//!
//! Owns: the last status published per lifecycle (by input partition, with a changelog like the
//! other stores), and applying the model's "newer or stale" rule (`schema::lifecycle`) to it.
//! Must not: send anything; the worker drops a stale status and counts it.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use super::dedupe::{Fingerprint, FingerprintMap, fingerprint};
use crate::schema::canonical::CanonicalRecord;
use crate::schema::lifecycle::{Current, rank, reservation_rank, return_rank};

/// The ledger key and position of a status-bearing record; `None` for records without a
/// lifecycle status. The key is the fingerprint of the lifecycle's id (the bare order id, as
/// earlier versions keyed orders; the other lifecycles prefixed, so ids of different objects never
/// collide): 16 bytes per lifecycle in memory and in the changelog, whatever the id's length.
pub fn gate(record: &CanonicalRecord) -> Option<(Fingerprint, Current)> {
    let (key, rank, status_at) = match record {
        CanonicalRecord::OrderStatus(s) => (Cow::Borrowed(s.order_id.as_str()), rank(s.status), s.status_at),
        CanonicalRecord::ReturnAuthorization(r) => (
            Cow::Owned(format!("return:{}", r.case_id)),
            return_rank(r.status),
            r.status_at,
        ),
        CanonicalRecord::PartReservation(r) => (
            Cow::Owned(format!("reservation:{}", r.reservation_id)),
            reservation_rank(r.status),
            r.status_at,
        ),
        _ => return None,
    };
    Some((fingerprint(&key), Current::new(rank, status_at)))
}

/// One packed changelog entry: fingerprint, partition, rank, status time (big-endian).
const ENTRY_BYTES: usize = 16 + 4 + 1 + 8;

/// How often the ledger's changes are written to its own changelog (`SNAPSHOT_INTERVAL`): in
/// between they live in the transactions' state records, whose changelog keeps only the
/// idempotency window; a snapshot carries them to the ledger's longer retention.
pub const SNAPSHOT_INTERVAL: Duration = Duration::from_secs(60);

/// Most entries one snapshot record carries (~475 KB). A record must stay under the producer's
/// and the broker's 1 MB message limit, and one transaction should not carry megabytes: a busy
/// worker changes hundreds of thousands of lifecycles a minute, so a snapshot that is due goes
/// out over as many transactions as it needs, one record each.
pub const SNAPSHOT_CHUNK: usize = 16_384;

/// The entries one snapshot record wrote, for `StatusStore::snapshotted`.
pub type SnapshotChunk = Vec<(Fingerprint, (i32, Current))>;

pub struct StatusStore {
    lifecycles: FingerprintMap<(i32, Current)>,
    /// Changes committed since the last snapshot.
    unsnapshotted: FingerprintMap<(i32, Current)>,
    last_snapshot: Instant,
}

impl Default for StatusStore {
    fn default() -> Self {
        Self {
            lifecycles: FingerprintMap::default(),
            unsnapshotted: FingerprintMap::default(),
            last_snapshot: Instant::now(),
        }
    }
}

impl StatusStore {
    pub fn current(&self, key: &Fingerprint) -> Option<Current> {
        self.lifecycles.get(key).map(|(_, c)| *c)
    }

    /// A committed change (the worker decided it is newer).
    pub fn set(&mut self, key: Fingerprint, partition: i32, current: Current) {
        self.lifecycles.insert(key, (partition, current));
        self.unsnapshotted.insert(key, (partition, current));
    }

    /// A change read back: the ledger only ever moves forward, so whichever record is read
    /// first, the newer position wins.
    fn restore(&mut self, key: Fingerprint, partition: i32, current: Current) {
        let known = self.lifecycles.get(&key).map(|(_, c)| *c);
        if known.is_none() || crate::schema::lifecycle::is_newer(known, current) {
            self.lifecycles.insert(key, (partition, current));
        }
    }

    pub fn drop_partition(&mut self, partition: i32) {
        self.lifecycles.retain(|_, (p, _)| *p != partition);
        self.unsnapshotted.retain(|_, (p, _)| *p != partition);
    }

    /// A snapshot record's value, if one is due, and the entries it holds: the batch's own
    /// `pending` changes and the changes since the last snapshot, at most `SNAPSHOT_CHUNK`.
    /// While changes are left, the next transactions carry the rest.
    pub fn snapshot_due(&self, pending: &FingerprintMap<(i32, Current)>) -> Option<(Vec<u8>, SnapshotChunk)> {
        if !self.interval_passed() || (self.unsnapshotted.is_empty() && pending.is_empty()) {
            return None;
        }
        let earlier = self.unsnapshotted.iter().filter(|(k, _)| !pending.contains_key(*k));
        let chunk: SnapshotChunk = pending
            .iter()
            .chain(earlier)
            .take(SNAPSHOT_CHUNK)
            .map(|(k, v)| (*k, *v))
            .collect();
        Some((Self::encode_batch(chunk.iter().map(|(k, v)| (k, v))), chunk))
    }

    /// Whether changes wait for a snapshot that is due (an idle worker writes it on its own).
    pub fn snapshot_waiting(&self) -> bool {
        !self.unsnapshotted.is_empty() && self.interval_passed()
    }

    fn interval_passed(&self) -> bool {
        self.last_snapshot.elapsed() >= SNAPSHOT_INTERVAL
    }

    /// A transaction carrying `chunk` committed: those changes are in the ledger's changelog
    /// (unless the entry moved on since, which a later chunk carries). The next snapshot is due
    /// an interval after the last change left.
    pub fn snapshotted(&mut self, chunk: &SnapshotChunk) {
        for (key, (_, written)) in chunk {
            if self.unsnapshotted.get(key).is_some_and(|(_, c)| c == written) {
                self.unsnapshotted.remove(key);
            }
        }
        if self.unsnapshotted.is_empty() {
            self.last_snapshot = Instant::now();
        }
    }

    /// Packed entries: a snapshot record's value, or the ledger part of a state record.
    pub fn encode_batch<'a>(entries: impl Iterator<Item = (&'a Fingerprint, &'a (i32, Current))>) -> Vec<u8> {
        let mut buf = Vec::new();
        for (key, (cp, c)) in entries {
            buf.extend_from_slice(&key.to_be_bytes());
            buf.extend_from_slice(&cp.to_be_bytes());
            buf.push(c.rank);
            buf.extend_from_slice(&c.status_at.to_be_bytes());
        }
        buf
    }

    /// Applies a changelog record read back (from either changelog) for the input partitions in
    /// `wanted`: a state record's ledger part or a snapshot, both packed entries tagged with
    /// their partition.
    pub fn restore_record(&mut self, key: &[u8], value: Option<&[u8]>, wanted: &std::collections::BTreeSet<i32>) {
        let value = value.unwrap_or_default();
        if key.starts_with(super::state::STATE_BATCH_KEY.as_bytes()) {
            let (_, entries) = super::state::split_batch(value);
            self.restore_entries(entries, wanted);
        } else if key.starts_with(super::state::LEDGER_BATCH_KEY.as_bytes()) {
            self.restore_entries(value, wanted);
        }
    }

    fn restore_entries(&mut self, entries: &[u8], wanted: &std::collections::BTreeSet<i32>) {
        for entry in entries.chunks_exact(ENTRY_BYTES) {
            let (fp, rest) = entry.split_at(16);
            let (cp, rest) = rest.split_at(4);
            let (rank, at) = rest.split_at(1);
            let (Ok(fp), Ok(cp), Ok(at)) = (
                <[u8; 16]>::try_from(fp),
                <[u8; 4]>::try_from(cp),
                <[u8; 8]>::try_from(at),
            ) else {
                continue;
            };
            let owner = i32::from_be_bytes(cp);
            if wanted.contains(&owner) {
                self.restore(
                    u128::from_be_bytes(fp),
                    owner,
                    Current::new(rank[0], i64::from_be_bytes(at)),
                );
            }
        }
    }
}

/// Restored from both changelogs: its own snapshots, and the ledger part of the transactions'
/// state records in the idempotency changelog (other records are ignored).
impl super::state::Store for StatusStore {
    const NAME: &'static str = "status";
    const MIXES_PARTITIONS: bool = true;
    fn restore(&mut self, r: &super::state::Restored, wanted: &std::collections::BTreeSet<i32>, _now_ms: i64) {
        self.restore_record(&r.key, r.value.as_deref(), wanted);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::canonical::OrderStatusCode::{self, *};

    fn at(s: OrderStatusCode, t: i64) -> Current {
        Current {
            rank: rank(s),
            status_at: t,
        }
    }

    #[test]
    fn a_snapshot_restores_the_wanted_partitions() {
        let wanted: std::collections::BTreeSet<i32> = [0, 2].into_iter().collect();
        let entries: FingerprintMap<(i32, Current)> = [
            (fingerprint("801A"), (0, at(Shipped, 5))),
            (fingerprint("return:500B"), (1, Current::new(2, 6))),
            (fingerprint("801C"), (2, at(CreditHold, -7))),
        ]
        .into_iter()
        .collect();
        let mut packed = StatusStore::default();
        let key = format!("{}t-0-0", crate::runtime::state::LEDGER_BATCH_KEY);
        let value = StatusStore::encode_batch(entries.iter());
        assert_eq!(value.len(), 3 * ENTRY_BYTES);
        packed.restore_record(key.as_bytes(), Some(&value), &wanted);
        assert_eq!(packed.current(&fingerprint("801A")), Some(at(Shipped, 5)));
        assert_eq!(packed.current(&fingerprint("801C")), Some(at(CreditHold, -7)));
        assert_eq!(
            packed.current(&fingerprint("return:500B")),
            None,
            "partition 1 is not wanted"
        );
    }

    #[test]
    fn state_records_and_snapshots_restore_the_newest_position_in_any_order() {
        let wanted: std::collections::BTreeSet<i32> = [0].into_iter().collect();
        let older: FingerprintMap<(i32, Current)> = [(fingerprint("801A"), (0, at(Accepted, 1)))].into_iter().collect();
        let newer: FingerprintMap<(i32, Current)> = [(fingerprint("801A"), (0, at(Shipped, 2)))].into_iter().collect();
        let state_key = format!("{}t-0-9", crate::runtime::state::STATE_BATCH_KEY);
        let snapshot_key = format!("{}t-0-5", crate::runtime::state::LEDGER_BATCH_KEY);
        // A snapshot (ledger changelog) newer than a state record still in the idempotency window.
        let state_value = crate::runtime::state::frame_batch(&[1; 28], &StatusStore::encode_batch(older.iter()));
        let snapshot_value = StatusStore::encode_batch(newer.iter());
        for order in [[&state_key, &snapshot_key], [&snapshot_key, &state_key]] {
            let mut s = StatusStore::default();
            for key in order {
                let value = if key == &state_key {
                    &state_value
                } else {
                    &snapshot_value
                };
                s.restore_record(key.as_bytes(), Some(value), &wanted);
            }
            assert_eq!(s.current(&fingerprint("801A")), Some(at(Shipped, 2)));
        }
    }

    #[test]
    fn a_snapshot_carries_every_change_since_the_last_one() {
        let mut s = StatusStore::default();
        let pending: FingerprintMap<(i32, Current)> =
            [(fingerprint("801B"), (1, at(Accepted, 3)))].into_iter().collect();
        assert_eq!(s.snapshot_due(&pending), None, "not due yet");
        s.set(fingerprint("801A"), 0, at(Shipped, 2));
        s.last_snapshot = Instant::now() - SNAPSHOT_INTERVAL;
        assert!(s.snapshot_waiting());
        let (value, chunk) = s.snapshot_due(&pending).unwrap();
        assert_eq!(value.len(), 2 * ENTRY_BYTES);
        s.set(fingerprint("801B"), 1, at(Accepted, 3));
        s.snapshotted(&chunk);
        assert!(!s.snapshot_waiting());
        assert_eq!(
            s.current(&fingerprint("801A")),
            Some(at(Shipped, 2)),
            "the ledger itself stays"
        );
    }

    #[test]
    fn a_large_snapshot_goes_out_in_bounded_chunks_over_several_transactions() {
        let mut s = StatusStore::default();
        let total = SNAPSHOT_CHUNK * 2 + 10;
        for i in 0..total {
            s.set(fingerprint(&format!("801-{i}")), 0, at(Accepted, 1));
        }
        s.last_snapshot = Instant::now() - SNAPSHOT_INTERVAL;
        let mut written = 0;
        let mut transactions = 0;
        while let Some((value, chunk)) = s.snapshot_due(&FingerprintMap::default()) {
            assert!(value.len() <= SNAPSHOT_CHUNK * ENTRY_BYTES, "a record stays under 1 MB");
            assert!(value.len() < 1_000_000);
            if transactions == 0 {
                // A change made after a chunk was written, before it committed: a later chunk
                // carries the newer position.
                s.set(chunk[0].0, 0, at(Shipped, 2));
                written += chunk.len() - 1;
            } else {
                written += chunk.len();
            }
            s.snapshotted(&chunk);
            transactions += 1;
            assert!(transactions < 10, "the snapshot drains");
        }
        assert_eq!(written, total);
        assert_eq!(transactions, 3);
        assert!(!s.snapshot_waiting(), "the next snapshot is an interval away");
    }
}
