//! Durations as the topology writes them: `250ms`, `5s`, `2m`, `7d`.
//!
//! Owns: the one parser and its error text, and the serde hooks that turn a setting into a
//! `std::time::Duration` while the topology is read, so no later layer parses or re-checks it.
//! Must not: pick defaults (the setting's owner does).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// The words every duration error carries (the topology loader recognises them).
pub const NOT_A_DURATION: &str = "is not a duration";

/// Parses `text` (humantime syntax); the error says what would be valid.
pub fn parse(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("`{text}` {NOT_A_DURATION} ({e}); write e.g. `250ms`, `5s`, `2m`, `7d`"))
}

/// `#[serde(deserialize_with = "crate::duration::setting")]` on a `Duration` field.
pub fn setting<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse(&text).map_err(serde::de::Error::custom)
}

/// The same for a table of durations (e.g. service levels per transition).
pub fn settings<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Duration>, D::Error> {
    BTreeMap::<String, String>::deserialize(d)?
        .into_iter()
        .map(|(k, text)| parse(&text).map(|v| (k, v)).map_err(serde::de::Error::custom))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct S {
        #[serde(deserialize_with = "setting")]
        wait: Duration,
    }

    #[test]
    fn a_setting_is_a_duration_once_read() {
        let s: S = toml::from_str("wait = \"250ms\"").unwrap();
        assert_eq!(s.wait, Duration::from_millis(250));
        let e = toml::from_str::<S>("wait = \"soon\"").err().unwrap().to_string();
        assert!(e.contains("`soon` is not a duration"), "{e}");
    }
}
