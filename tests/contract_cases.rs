//! `syncline test`: the shipped cases pass, a changed mapping fails the right case with a
//! readable diff, and the in-memory path produces what the broker path produces.

use syncline_test_support as common;

use std::time::Duration;

use rdkafka::message::Message;
use syncline::contract;
use syncline::schema::{Catalog, Codec, render};

/// How many cases ship (one file each).
fn shipped_cases() -> usize {
    std::fs::read_dir(common::repo_path("tests/contracts"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "toml"))
        .count()
}

fn syncline_test(topology: &std::path::Path, cases: &std::path::Path) -> (bool, String) {
    common::syncline(topology, &["test", &cases.display().to_string()], &[])
}

#[test]
fn the_shipped_cases_pass() {
    let (ok, out) = syncline_test(
        &common::repo_path("topology.toml"),
        &common::repo_path("tests/contracts"),
    );
    assert!(ok, "{out}");
    assert!(out.contains(&format!("{} passed, 0 failed", shipped_cases())), "{out}");
}

#[test]
fn a_changed_mapping_fails_the_right_case_with_a_diff() {
    // The route of legal entity US01 changes: only the case that routes US01 breaks.
    let shipped = std::fs::read_to_string(common::repo_path("topology.toml")).unwrap();
    let changed = shipped.replacen(
        "\"US01\" = \"erp.na.sales-order.requests\"",
        "\"US01\" = \"erp.us.sales-order.requests\"",
        1,
    );
    let dir = tempfile::tempdir().unwrap();
    let topology = dir.path().join("topology.toml");
    std::fs::write(&topology, changed).unwrap();
    let (ok, out) = syncline_test(&topology, &common::repo_path("tests/contracts"));
    assert!(!ok);
    assert!(
        out.contains(&format!("{} passed, 1 failed", shipped_cases() - 1)),
        "{out}"
    );
    assert!(
        out.contains("FAILED order submitted (CometD)")
            && out.contains("output[0]: expected topic erp.na.sales-order.requests, got erp.us.sales-order.requests"),
        "{out}"
    );

    // An expectation that disagrees with the mapping shows the field, the expected and actual value.
    let case = std::fs::read_to_string(common::repo_path("tests/contracts/erp_order_status.toml")).unwrap();
    std::fs::write(
        dir.path().join("case.toml"),
        case.replace("status = \"ACCEPTED\"", "status = \"CREDIT_HOLD\""),
    )
    .unwrap();
    let (ok, out) = syncline_test(&common::repo_path("topology.toml"), &dir.path().join("case.toml"));
    assert!(!ok);
    assert!(
        out.contains("field `status`: expected CREDIT_HOLD, got ACCEPTED"),
        "{out}"
    );
}

/// Decoded canonical records without the fields that depend on where and when they ran.
fn comparable(mut v: serde_json::Value) -> serde_json::Value {
    if let Some(meta) = v.get_mut("meta").and_then(|m| m.as_object_mut()) {
        for k in ["processed_at", "source_topic", "source_partition", "source_offset"] {
            meta.remove(k);
        }
    }
    v
}

#[tokio::test]
async fn in_memory_and_broker_paths_produce_the_same_records() {
    let case = contract::load_case(&common::repo_path("tests/contracts/erp_delivery.toml")).unwrap();
    let shipped = common::parse_topology(&std::fs::read_to_string(common::repo_path("topology.toml")).unwrap());
    let catalog = Catalog::load(&common::repo_path("schemas")).unwrap();
    let in_memory = contract::run_case(&shipped, &catalog, &case, &common::repo_path(""))
        .await
        .unwrap();
    assert_eq!(in_memory.outputs.len(), 2);

    // The same case through the real broker, registry and worker.
    let suffix = common::unique("parity");
    let topology = common::shipped_topology_private(&suffix);
    syncline::kafka::clients::ensure_topics(
        &common::kafka(),
        &syncline::kafka::clients::topology_topics(&topology, 1),
    )
    .await
    .unwrap();
    let p = common::producer();
    for e in &case.master_data {
        common::produce(
            &p,
            &common::private("mdm.xref", &suffix),
            &e.reference(),
            &serde_json::to_vec(e).unwrap(),
        )
        .await;
    }
    let worker = format!("erp-delivery-{}", suffix.replace('.', "-"));
    let running = common::Running::start_workers(topology, "a", std::slice::from_ref(&worker)).await;
    let sample =
        syncline::samples::load(&common::repo_path(case.inputs[0].file.as_deref().unwrap()), &case.run).unwrap();
    common::produce(&p, &common::private("erp.delivery.events", &suffix), "k", &sample.value).await;
    let codec = Codec::new(syncline::schema::registry::sr_settings(&common::registry()).unwrap());
    for (topic, _, expected) in &in_memory.outputs {
        let got = common::wait_for(&common::private(topic, &suffix), 1, Duration::from_secs(60)).await;
        assert_eq!(got.len(), 1, "{topic}");
        let schema = &catalog
            .latest(if topic == "o2c.shipment" {
                "shipment"
            } else {
                "order_status"
            })
            .unwrap()
            .schema;
        let value = codec
            .decode_value(got[0].payload().unwrap(), Some(schema))
            .await
            .unwrap();
        assert_eq!(
            comparable(render::to_json(&value, schema)),
            comparable(expected.clone()),
            "{topic}"
        );
    }
    running.stop().await;
}
