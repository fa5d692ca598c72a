//! A flood of malformed input across twelve kinds: every record ends in the dead-letter topic
//! with the specific code of its kind, the worker stays alive (a valid order after the flood is
//! processed), nothing else is produced, and memory stays flat: the worker (a `syncline run`
//! process) holds no more resident memory after the second half of the flood than a bound above
//! what it held after the first half.
//! FLOOD_EVENTS sets the size (default 1200 in `make test`; the campaign in RELIABILITY.md uses
//! 10000).

use syncline_test_support as common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::private;
use rdkafka::message::Message;
use syncline::runtime::dlq::header;

fn pe(fields: serde_json::Value, uuid: &str) -> Vec<u8> {
    serde_json::json!({"payload": fields, "event": {"replayId": 1, "EventUuid": uuid}})
        .to_string()
        .into_bytes()
}

fn order(i: usize, quantity: &str, currency: &str) -> serde_json::Value {
    serde_json::json!({
        "CreatedDate": "2026-11-26T09:00:00Z", "Order_Id__c": format!("801F{i}"), "Account_Id__c": "001F",
        "Legal_Entity__c": "US01", "Currency__c": currency,
        "Lines__c": format!("[{{\"Product2Id\":\"01tF\",\"Quantity\":{quantity},\"UnitPrice\":\"1.00\"}}]")
    })
}

/// The i-th malformed record and the code it must be dead-lettered with.
fn malformed(i: usize) -> (&'static str, Vec<u8>) {
    let uuid = format!("00000000-0000-4000-8000-{i:012}");
    match i % 12 {
        0 => ("INVALID_JSON", b"{\"payload\": {\"Order_Id__c\": ".to_vec()),
        1 => ("INVALID_UTF8", vec![0x7b, 0xff, 0xfe, 0x7d]),
        // Confluent wire-format Avro where JSON is expected: magic byte, id, truncated datum.
        2 => ("INVALID_UTF8", vec![0x00, 0x00, 0x00, 0x00, 0x07, 0x02, 0xff]),
        3 => ("PAYLOAD_TOO_LARGE", {
            let mut v = b"{\"pad\":\"".to_vec();
            v.extend(std::iter::repeat_n(b'x', 540 * 1024));
            v.extend_from_slice(b"\"}");
            v
        }),
        4 => ("MISSING_FIELD", pe(serde_json::json!({"CreatedDate": "2026-11-26T09:00:00Z"}), &uuid)),
        5 => ("WRONG_TYPE", pe({ let mut o = order(i, "1", "USD"); o["Account_Id__c"] = serde_json::json!({"nested": true}); o }, &uuid)),
        6 => ("UNKNOWN_EVENT_TYPE", serde_json::json!({"ChangeEventHeader": {"entityName": "Contact", "recordIds": ["003F"], "changeType": "UPDATE",
            "sequenceNumber": 1, "commitTimestamp": 1, "commitNumber": i}}).to_string().into_bytes()),
        7 => ("INVALID_QUANTITY", pe(order(i, "-2", "USD"), &uuid)),
        8 => ("INVALID_QUANTITY", pe(order(i, "0", "USD"), &uuid)),
        9 => ("UNKNOWN_CURRENCY", pe(order(i, "1", "XYZ"), &uuid)),
        10 => ("FIELD_TOO_LONG", pe({ let mut o = order(i, "1", "USD"); o["Order_Number__c"] = serde_json::json!("9".repeat(5000)); o }, &uuid)),
        _ => ("MISSING_EVENT_UUID", serde_json::json!({"payload": order(i, "1", "USD")}).to_string().into_bytes()),
    }
}

#[tokio::test]
async fn every_malformed_input_is_dead_lettered_with_its_code_and_the_worker_survives() {
    let n: usize = std::env::var("FLOOD_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1200);
    let suffix = common::unique("flood");
    let file = common::TopologyFile::create(&common::shipped_topology_text_private(&suffix)).await;
    let path = &file.path;
    let p = common::producer();
    let xref = [
        (
            "account:001F",
            r#"{"type":"account","salesforce_id":"001F","erp_customer_id":"C","payment_terms":"NT30"}"#,
        ),
        (
            "product:01tF",
            r#"{"type":"product","salesforce_id":"01tF","erp_material_id":"M","unit_of_measure":"EA"}"#,
        ),
    ];
    for (k, v) in xref {
        common::produce(&p, &private("mdm.xref", &suffix), k, v.as_bytes()).await;
    }
    let worker = format!("order-submission-{}", suffix.replace('.', "-"));
    let (child, _) = common::spawn_run_with(path, "flood", &["--worker", &worker, "--no-tracker"]);
    let child = common::KillOnDrop(child);
    let input = private("sf.order.submitted", &suffix);
    let mut expected: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_key: BTreeMap<String, &'static str> = BTreeMap::new();
    // Two halves: the first warms every buffer up, the second must not grow memory further.
    let mut rss_after = Vec::new();
    for half in [0..n / 2, n / 2..n] {
        let end = half.end;
        for i in half {
            let (code, payload) = malformed(i);
            let key = format!("bad-{i}");
            *expected.entry(code.to_string()).or_default() += 1;
            by_key.insert(key.clone(), code);
            common::produce(&p, &input, &key, &payload).await;
        }
        let dlq = common::wait_for(&private("syncline.dlq", &suffix), end, Duration::from_secs(120)).await;
        assert_eq!(dlq.len(), end, "every malformed record so far is a dead letter");
        rss_after.push(rss_mb(child.0.id()));
    }
    // One good order after the flood: the worker must still be working.
    common::produce(
        &p,
        &input,
        "801GOOD",
        &pe(order(999_999, "3", "USD"), "00000000-0000-4000-8000-999999999999"),
    )
    .await;
    let out = common::wait_for(
        &private("erp.na.sales-order.requests", &suffix),
        1,
        Duration::from_secs(120),
    )
    .await;
    assert_eq!(out.len(), 1, "the worker survived the flood");
    let dlq = common::wait_for(&private("syncline.dlq", &suffix), n, Duration::from_secs(120)).await;
    assert_eq!(dlq.len(), n, "every malformed record is a dead letter");
    let mut got: BTreeMap<String, usize> = BTreeMap::new();
    for m in &dlq {
        let code = common::header(m, header::ERROR_CODE).unwrap().to_string();
        let key = String::from_utf8_lossy(m.key().unwrap()).into_owned();
        assert_eq!(by_key.get(&key).copied(), Some(code.as_str()), "record {key}");
        *got.entry(code).or_default() += 1;
    }
    assert_eq!(got, expected);
    assert!(got.len() >= 10, "at least ten kinds: {got:?}");
    eprintln!("malformed inputs by code: {got:?}");
    let growth = rss_after[1] - rss_after[0];
    eprintln!(
        "resident memory after each half of the flood: {:.0} MB, {:.0} MB (growth {growth:.0} MB)",
        rss_after[0], rss_after[1]
    );
    assert!(
        growth < 64.0,
        "memory grew by {growth:.0} MB during the second half of the flood: {rss_after:?}"
    );
}

/// Resident memory of process `pid`.
fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}
