//! Any bytes as a Salesforce record: the adapter and both Salesforce transforms return a mapping
//! or a classified failure, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use syncline::adapters::{RawRecord, salesforce};
use syncline::transforms::Context;
use syncline::transforms::Transform;

fuzz_target!(|data: &[u8]| {
    let raw = RawRecord { topic: "sf", partition: 0, offset: 0, key: None, payload: Some(data), headers: &[], timestamp_ms: Some(0) };
    if let Ok(e) = salesforce::parse(&raw) {
        let _ = e.identity();
    }
    let table = syncline::xref::XrefTable::default();
    let ctx = Context { now_ms: 0, xref: &table };
    let _ = syncline::transforms::order_submission::OrderSubmission.apply(&raw, &ctx);
    let _ = syncline::transforms::customer::AccountChanges.apply(&raw, &ctx);
});
