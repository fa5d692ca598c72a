//! Operator tooling against the real broker, through the `syncline dlq` command: a business dead
//! letter is fixed and replayed exactly once (and a second replay changes nothing), a dry run
//! changes nothing, and `release` lets the events held behind a key flow in order.

use syncline_test_support as common;

use std::time::Duration;

use common::{Running, private};
use rdkafka::message::Message;
use syncline::schema::canonical::SalesOrder;
use syncline::schema::{Catalog, Codec};

fn order_event(order: &str, uuid_tail: &str, with_terms: bool, quantity: u32) -> Vec<u8> {
    let mut payload = serde_json::json!({
        "CreatedDate": "2026-11-26T09:00:00Z",
        "Order_Id__c": order,
        "Account_Id__c": "001OPS",
        "Legal_Entity__c": "US01",
        "Currency__c": "USD",
        "Lines__c": format!("[{{\"Product2Id\":\"01tOPS\",\"Quantity\":{quantity},\"UnitPrice\":\"10.00\"}}]"),
    });
    if with_terms {
        payload["Payment_Terms__c"] = serde_json::json!("NT15");
    }
    serde_json::json!({"payload": payload, "event": {"replayId": 1, "EventUuid": format!("00000000-0000-4000-8000-{uuid_tail}")}})
        .to_string()
        .into_bytes()
}

fn dlq_cli(topology: &std::path::Path, args: &[&str]) -> (bool, String) {
    let args: Vec<&str> = std::iter::once("dlq").chain(args.iter().copied()).collect();
    common::syncline(topology, &args, &[])
}

#[tokio::test]
async fn replay_release_and_their_safety() {
    let suffix = common::unique("ops");
    let text = common::shipped_topology_text_private(&suffix);
    let dir = tempfile::tempdir().unwrap();
    let topology_path = dir.path().join("topology.toml");
    std::fs::write(&topology_path, &text).unwrap();
    let topology = common::parse_topology(&text);
    let clients = syncline::kafka::clients::topology_topics(&topology, 3);
    syncline::kafka::clients::ensure_topics(&common::kafka(), &clients)
        .await
        .unwrap();
    let topic = |t: &str| private(t, &suffix);
    let p = common::producer();
    // The account is known but has no payment terms yet.
    let account = br#"{"type":"account","salesforce_id":"001OPS","erp_customer_id":"C-1","erp_instance":"erp-na"}"#;
    common::produce(&p, &topic("mdm.xref"), "account:001OPS", account).await;
    let product = br#"{"type":"product","salesforce_id":"01tOPS","erp_material_id":"M-1","unit_of_measure":"EA"}"#;
    common::produce(&p, &topic("mdm.xref"), "product:01tOPS", product).await;
    let worker = format!("order-submission-{}", suffix.replace('.', "-"));
    let running = Running::start_workers(topology, "a", std::slice::from_ref(&worker)).await;

    // O1 lacks payment terms: a business dead letter.
    common::produce(
        &p,
        &topic("sf.order.submitted"),
        "O1",
        &order_event("O1", "000000000001", false, 1),
    )
    .await;
    // K2's first event has quantity 0; its next two events are held behind the dead letter.
    common::produce(
        &p,
        &topic("sf.order.submitted"),
        "K2",
        &order_event("K2", "000000000002", true, 0),
    )
    .await;
    common::produce(
        &p,
        &topic("sf.order.submitted"),
        "K2",
        &order_event("K2", "000000000003", true, 3),
    )
    .await;
    common::produce(
        &p,
        &topic("sf.order.submitted"),
        "K2",
        &order_event("K2", "000000000004", true, 4),
    )
    .await;
    let dlq = common::wait_for(&topic("syncline.dlq"), 2, Duration::from_secs(60)).await;
    assert_eq!(dlq.len(), 2);
    let held = common::wait_for(&topic("syncline.parked"), 2, Duration::from_secs(30)).await;
    assert_eq!(held.len(), 2);
    let orders = topic("erp.na.sales-order.requests");
    assert!(common::read_all(&orders).await.is_empty());

    let (ok, listed) = dlq_cli(&topology_path, &["list"]);
    assert!(ok, "{listed}");
    assert!(
        listed.contains("MISSING_PAYMENT_TERMS") && listed.contains("INVALID_QUANTITY"),
        "{listed}"
    );
    assert!(listed.contains("2 of 2 dead letter(s)"), "{listed}");

    // Release K2 without replaying its dead letter: the held events flow, in order.
    let (ok, out) = dlq_cli(
        &topology_path,
        &["release", "--key", "K2", "--reason", "quantity fixed in Salesforce"],
    );
    assert!(ok, "{out}");
    let released = common::wait_for(&orders, 2, Duration::from_secs(60)).await;
    assert_eq!(released.len(), 2);
    let codec = Codec::new(syncline::schema::registry::sr_settings(&common::registry()).unwrap());
    let catalog = Catalog::load(&common::repo_path("schemas")).unwrap();
    let schema = catalog.latest("sales_order").unwrap();
    let mut quantities = Vec::new();
    for m in &released {
        let o: SalesOrder = codec.decode(m.payload().unwrap(), schema).await.unwrap();
        assert_eq!(o.order_id, "K2");
        quantities.push(o.lines[0].quantity.to_string());
    }
    assert_eq!(
        quantities,
        vec!["3.000", "4.000"],
        "held events flow in their original order"
    );

    // Fix the reference data, then replay by code: a dry run first changes nothing.
    let fixed = br#"{"type":"account","salesforce_id":"001OPS","erp_customer_id":"C-1","erp_instance":"erp-na","payment_terms":"NT30"}"#;
    common::produce(&p, &topic("mdm.xref"), "account:001OPS", fixed).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (ok, out) = dlq_cli(
        &topology_path,
        &["replay", "--code", "MISSING_PAYMENT_TERMS", "--dry-run"],
    );
    assert!(ok, "{out}");
    assert!(out.contains("dry run: 1 selected, 1 replayed, 0 skipped"), "{out}");
    common::wait_consumed(&worker, &[&topic("sf.order.submitted")], Duration::from_secs(60)).await;
    assert_eq!(common::read_all(&orders).await.len(), 2, "a dry run publishes nothing");

    let (ok, out) = dlq_cli(&topology_path, &["replay", "--code", "MISSING_PAYMENT_TERMS"]);
    assert!(ok, "{out}");
    assert!(out.contains("replay: 1 selected, 1 replayed"), "{out}");
    let after = common::wait_for(&orders, 3, Duration::from_secs(60)).await;
    let o1: SalesOrder = codec.decode(after[2].payload().unwrap(), schema).await.unwrap();
    assert_eq!((o1.order_id.as_str(), o1.payment_terms.as_str()), ("O1", "NT30"));

    // The same replay again: nothing new, and it says so.
    let (ok, out) = dlq_cli(&topology_path, &["replay", "--code", "MISSING_PAYMENT_TERMS"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("0 replayed, 1 skipped as already replayed") && out.contains("nothing new"),
        "{out}"
    );
    common::wait_consumed(&worker, &[&topic("sf.order.submitted")], Duration::from_secs(60)).await;
    assert_eq!(common::read_all(&orders).await.len(), 3, "exactly once");

    let (ok, json) = dlq_cli(&topology_path, &["list", "--json"]);
    assert!(ok);
    let listed: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    let decisions: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["decision"]["action"].as_str())
        .collect();
    assert_eq!(decisions.len(), 2, "{json}");
    assert!(decisions.contains(&"replayed") && decisions.contains(&"released"));

    // Clear errors.
    let (ok, out) = dlq_cli(&topology_path, &["show", "abc"]);
    assert!(!ok && out.contains("is not a dead-letter position"), "{out}");
    let (ok, out) = dlq_cli(&topology_path, &["replay", "--code", "NO_SUCH_CODE"]);
    assert!(!ok && out.contains("no dead letter matches"), "{out}");
    let (ok, out) = dlq_cli(&topology_path, &["replay"]);
    assert!(!ok && out.contains("--all"), "{out}");
    let position = format!("{}:{}", dlq[0].partition(), dlq[0].offset());
    let (ok, out) = dlq_cli(&topology_path, &["show", &position]);
    assert!(ok && out.contains("syncline.error.code"), "{out}");
    running.stop().await;
}
