//! Durations as the topology writes them: `250ms`, `5s`, `2m`, `7d`.
//!
//! Owns: the one parser and its error text, for every layer that reads a duration setting.
//! Must not: pick defaults (the setting's owner does).

use std::time::Duration;

/// Parses `text` (humantime syntax); the error says what would be valid.
pub fn parse(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("`{text}` is not a duration ({e}); write e.g. `250ms`, `5s`, `2m`, `7d`"))
}
