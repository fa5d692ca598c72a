//! Any text as a topology file: problems or a topology, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let env: std::collections::HashMap<String, String> = [("A".to_string(), "x".to_string())].into();
        let _ = syncline::config::parse(text, &env, &["order_status".to_string()]);
    }
});
