//! Records parked for missing master data, and the keys queued behind them.
//!
//! Owns: which source records wait for which cross-reference (by their original coordinates, so
//! re-drive reads the record itself back from its input topic), per input partition, with a
//! compacted changelog like the other stores. Must not: decide when to re-drive (the worker does
//! when the reference arrives) or hold payloads (the input topic has them).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

/// Where a parked record lives and what it waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParkedEntry {
    pub reference: String,
    pub key: Option<Vec<u8>>,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

impl ParkedEntry {
    pub fn coordinates(&self) -> (String, i32, i64) {
        (self.topic.clone(), self.partition, self.offset)
    }

    /// Changelog key: the original coordinates.
    pub fn changelog_key(&self) -> Vec<u8> {
        format!("{}/{}/{}", self.topic, self.partition, self.offset).into_bytes()
    }
}

#[derive(Default)]
pub struct ParkedStore {
    entries: BTreeMap<(String, i32, i64), (i32, ParkedEntry)>,
    keys: HashMap<Vec<u8>, (usize, String)>,
}

impl ParkedStore {
    pub fn insert(&mut self, changelog_partition: i32, entry: ParkedEntry) {
        let coord = entry.coordinates();
        self.remove(&coord);
        if let Some(k) = &entry.key {
            let e = self.keys.entry(k.clone()).or_insert((0, entry.reference.clone()));
            e.0 += 1;
        }
        self.entries.insert(coord, (changelog_partition, entry));
    }

    pub fn remove(&mut self, coord: &(String, i32, i64)) {
        if let Some((_, old)) = self.entries.remove(coord)
            && let Some(k) = &old.key
            && let Some(e) = self.keys.get_mut(k)
        {
            e.0 -= 1;
            if e.0 == 0 {
                self.keys.remove(k);
            }
        }
    }

    /// The reference a key's earlier record is parked on, if any.
    pub fn key_parked_on(&self, key: &[u8]) -> Option<&str> {
        self.keys.get(key).map(|(_, r)| r.as_str())
    }

    /// Every distinct reference something waits for.
    pub fn references(&self) -> Vec<String> {
        let mut refs: Vec<String> = self.entries.values().map(|(_, e)| e.reference.clone()).collect();
        refs.sort();
        refs.dedup();
        refs
    }

    /// Entries waiting on any of `refs`, in original order per input partition.
    pub fn waiting_on(&self, refs: &[String]) -> Vec<ParkedEntry> {
        self.entries
            .values()
            .filter(|(_, e)| refs.contains(&e.reference))
            .map(|(_, e)| e.clone())
            .collect()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn drop_partition(&mut self, changelog_partition: i32) {
        let gone: Vec<_> = self
            .entries
            .iter()
            .filter(|(_, (cp, _))| *cp == changelog_partition)
            .map(|(c, _)| c.clone())
            .collect();
        for c in gone {
            self.remove(&c);
        }
    }

    pub fn apply_changelog(&mut self, key: &[u8], value: Option<&[u8]>, changelog_partition: i32) {
        match value.and_then(|v| serde_json::from_slice::<ParkedEntry>(v).ok()) {
            Some(entry) => self.insert(changelog_partition, entry),
            None => {
                let text = String::from_utf8_lossy(key);
                let mut parts = text.rsplitn(3, '/');
                let (Some(offset), Some(partition), Some(topic)) = (parts.next(), parts.next(), parts.next()) else {
                    return;
                };
                if let (Ok(o), Ok(p)) = (offset.parse(), partition.parse()) {
                    self.remove(&(topic.to_string(), p, o));
                }
            }
        }
    }
}

impl super::state::Store for ParkedStore {
    const NAME: &'static str = "parked";
    const MIXES_PARTITIONS: bool = false;
    fn restore(&mut self, r: &super::state::Restored, _wanted: &std::collections::BTreeSet<i32>, _now_ms: i64) {
        self.apply_changelog(&r.key, r.value.as_deref(), r.partition);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(reference: &str, key: &str, offset: i64) -> ParkedEntry {
        ParkedEntry {
            reference: reference.into(),
            key: Some(key.as_bytes().to_vec()),
            topic: "in".into(),
            partition: 0,
            offset,
        }
    }

    #[test]
    fn keys_stay_parked_until_their_last_entry_goes() {
        let mut s = ParkedStore::default();
        s.insert(0, entry("account:1", "K", 5));
        s.insert(0, entry("account:1", "K", 7));
        assert_eq!(s.key_parked_on(b"K"), Some("account:1"));
        assert_eq!(
            s.waiting_on(&["account:1".into()])
                .iter()
                .map(|e| e.offset)
                .collect::<Vec<_>>(),
            vec![5, 7]
        );
        s.remove(&("in".into(), 0, 5));
        assert!(s.key_parked_on(b"K").is_some());
        let tomb = entry("account:1", "K", 7).changelog_key();
        s.apply_changelog(&tomb, None, 0);
        assert!(s.key_parked_on(b"K").is_none() && s.is_empty());
    }
}
