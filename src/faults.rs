//! Test-only fault injection, compiled only with the `fault-injection` feature (the integration
//! tests turn it on; a user's build never has it).
//!
//! Owns: the hooks that make a worker fail the way a bug would, so tests can prove what the
//! supervisor does about it. Must not: be reachable in a build without the feature.

use std::sync::atomic::{AtomicBool, Ordering};

use rdkafka::message::{Message, OwnedMessage};

/// A record with this key makes the worker that collects it panic, once per process.
pub const PANIC_KEY: &str = "syncline-fault-injection:panic";

static PANICKED: AtomicBool = AtomicBool::new(false);

/// Panics the calling worker task if `batch` holds a record keyed [`PANIC_KEY`] and no worker of
/// this process panicked for it yet (the restarted worker reads the record again and goes on).
pub fn panic_on_marked(batch: &[OwnedMessage]) {
    let marked = batch.iter().any(|m| m.key() == Some(PANIC_KEY.as_bytes()));
    if marked && !PANICKED.swap(true, Ordering::SeqCst) {
        panic!("fault injection: a record keyed {PANIC_KEY}");
    }
}
