//! The allocator the binaries run with (mimalloc) and how it is tuned.
//!
//! Owns: mimalloc's process-wide options. Must not: declare the global allocator (each binary
//! does, with `mimalloc::MiMalloc`), or depend on being it: tuning an unused mimalloc is harmless.

use libmimalloc_sys::{mi_collect, mi_option_get, mi_option_set, mi_option_t};

/// mimalloc's `purge_delay` option: the same position in its v2 and v3 option enums.
const PURGE_DELAY: mi_option_t = 15;

/// How long freed memory stays with the process before it goes back to the OS.
const PURGE_DELAY_MS: std::os::raw::c_long = 1000;

/// Call once, first thing in `main`. A worker frees and reallocates its batch buffers every
/// few milliseconds; with mimalloc's default 10 ms purge delay those pages went back to the OS
/// between batches and the kernel zeroed them again for the next one, about a tenth of
/// syncline's CPU per record in the benchmark. Memory left idle still goes back after a second.
pub fn tune() {
    // SAFETY: sets a process-wide option; mimalloc reads it whenever it schedules a purge.
    unsafe { mi_option_set(PURGE_DELAY, PURGE_DELAY_MS) };
}

/// Hands freed memory back to the OS now instead of after the purge delay, so that a resident
/// size measured next is what the process holds, not what it freed a moment ago.
pub fn release_freed() {
    // SAFETY: a process-wide collection; safe to call from any thread at any time.
    unsafe { mi_collect(true) };
}

/// The purge delay in force (ms).
pub fn purge_delay_ms() -> std::os::raw::c_long {
    // SAFETY: reads a process-wide option.
    unsafe { mi_option_get(PURGE_DELAY) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Position 15 is `purge_delay`: its default is mimalloc's documented 10 ms.
    #[test]
    fn tune_sets_the_purge_delay() {
        let before = purge_delay_ms();
        assert!(before == 10 || before == PURGE_DELAY_MS, "{before}");
        tune();
        assert_eq!(purge_delay_ms(), PURGE_DELAY_MS);
    }
}
