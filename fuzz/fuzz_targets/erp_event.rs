//! Any bytes (and binary-mode headers) as an ERP record, for every profile and flow.
#![no_main]

use libfuzzer_sys::fuzz_target;
use syncline::adapters::RawRecord;
use syncline::adapters::erp::Catalog;
use syncline::adapters::erp::profile::PROFILES;
use syncline::transforms::erp::{ErpFlows, Flow};
use syncline::transforms::{Context, Transform};

fuzz_target!(|data: &[u8]| {
    // The first bytes, split on NUL, also become ce_* headers: binary mode gets fuzzed too.
    let mut parts = data.splitn(3, |b| *b == 0);
    let (a, b, rest) = (parts.next().unwrap_or_default(), parts.next(), parts.next());
    let headers: Vec<(String, Vec<u8>)> = match (b, rest) {
        (Some(b), Some(_)) => vec![
            ("ce_specversion".into(), b"1.0".to_vec()),
            ("ce_type".into(), a.to_vec()),
            ("ce_id".into(), b.to_vec()),
            ("ce_source".into(), b"/x/y".to_vec()),
        ],
        _ => vec![],
    };
    let payload = rest.unwrap_or(data);
    let table = syncline::xref::XrefTable::default();
    let ctx = Context { now_ms: 0, xref: &table };
    for profile in PROFILES {
        for h in [&headers[..], &[][..]] {
            let raw = RawRecord { topic: "erp", partition: 0, offset: 0, key: None, payload: Some(payload), headers: h, timestamp_ms: None };
            let _ = ErpFlows { catalog: Catalog::of(profile), flows: Flow::ALL_FLOWS }.apply(&raw, &ctx);
        }
    }
});
