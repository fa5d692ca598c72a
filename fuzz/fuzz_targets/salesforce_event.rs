//! Any bytes as a Salesforce record: the adapter and every Salesforce-side transform return a
//! mapping or a classified failure, never panic. The cross-reference holds the samples' master
//! data (with `{{RUN}}` left as is, as in the seed corpus), so mutated samples get past the
//! lookups into the period arithmetic, unit conversion and amount checks.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use syncline::adapters::{RawRecord, salesforce};
use syncline::transforms::{Context, Transform};
use syncline::xref::XrefTable;

fn xref() -> &'static XrefTable {
    static TABLE: OnceLock<XrefTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = XrefTable::default();
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/mdm/xref.json");
        for (k, v) in syncline::samples::xref_records(&path, "{{RUN}}").unwrap_or_default() {
            let _ = t.apply(&k, Some(&v));
        }
        t
    })
}

fuzz_target!(|data: &[u8]| {
    let raw = RawRecord { topic: "sf", partition: 0, offset: 0, key: None, payload: Some(data), headers: &[], timestamp_ms: Some(0) };
    if let Ok(e) = salesforce::parse(&raw) {
        let _ = e.identity();
    }
    let ctx = Context { now_ms: 0, xref: xref() };
    let _ = syncline::transforms::order_submission::OrderSubmission.apply(&raw, &ctx);
    let _ = syncline::transforms::customer::AccountChanges.apply(&raw, &ctx);
    let _ = syncline::transforms::returns::ReturnRequests.apply(&raw, &ctx);
    let _ = syncline::transforms::subscription::OpportunityWon.apply(&raw, &ctx);
    let _ = syncline::transforms::parts::PartRequests.apply(&raw, &ctx);
});
