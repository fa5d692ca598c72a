//! One status gate per lifecycle, on the real broker: four workers race to report 200 orders
//! (order status and billing first, a late credit block after the invoices, the delivery
//! worker started late), and `o2c.order-status` never shows an order's status go backwards.
//! The same race without the gate (each worker publishing straight to the public topic, as
//! before #20) does show regressions: the gate is what prevents them.

use syncline_test_support as common;

use std::collections::HashMap;

use rdkafka::message::{Message, OwnedMessage};
use syncline::schema::canonical::*;
use syncline::schema::lifecycle::rank;

const RUN: &str = "0000ga7e";
const ORDERS: usize = 200;

/// Sample `file` for order `i`: its own order, Salesforce order, documents and event id.
fn event(file: &str, i: usize, time: Option<&str>) -> Vec<u8> {
    let r = syncline::samples::load(&common::repo_path(&format!("samples/{file}")), RUN).expect("sample");
    let text = String::from_utf8_lossy(&r.value)
        .replace(&format!("5000{RUN}"), &format!("51{i:03}{RUN}"))
        .replace(&format!("801Dn{RUN}A1"), &format!("801Dn{RUN}G{i:03}"))
        .replace(&format!("8000{RUN}"), &format!("81{i:03}{RUN}"))
        .replace(&format!("9000{RUN}"), &format!("91{i:03}{RUN}"));
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("json");
    v["id"] = serde_json::Value::String(format!("{}-{i}", v["id"].as_str().unwrap_or("e")));
    if let Some(t) = time {
        v["time"] = serde_json::Value::String(t.into());
    }
    v.to_string().into_bytes()
}

async fn publish_all(env: &common::Scenario, topic: &str, file: &str, time: Option<&str>) {
    for i in 0..ORDERS {
        let key = format!("801Dn{RUN}G{i:03}");
        common::produce(&env.producer, &env.topic(topic), &key, &event(file, i, time)).await;
    }
}

/// The race; the statuses `o2c.order-status` shows per order, in the order it shows them.
async fn race(
    gated: bool,
) -> (
    HashMap<String, Vec<OrderStatusCode>>,
    common::Scenario,
    Vec<common::Running>,
) {
    let mut env = common::Scenario::new(if gated { "gate" } else { "nogate" }, RUN).await;
    if !gated {
        // Before #20: every worker wrote the public topic itself.
        let public = env.topic("o2c.order-status");
        let internal = env.topic("syncline.status.order-status");
        for w in env.topology.workers.iter_mut() {
            for o in w.outputs.iter_mut() {
                if o.topic.as_deref() == Some(internal.as_str()) {
                    o.topic = Some(public.clone());
                }
            }
        }
    }
    env.publish_xref("mdm/xref.json").await;
    let first = env.start(&["erp-order-status", "erp-billing"]).await;
    publish_all(
        &env,
        "erp.sales-order.events",
        "erp/sap_s4/salesorder.created.json",
        None,
    )
    .await;
    publish_all(&env, "erp.billing.events", "erp/sap_s4/billing.created.json", None).await;
    env.wait("o2c.invoice", ORDERS).await;
    env.settle(&["erp-order-status", "erp-billing"]).await;
    if gated {
        env.settle(&["order-status-gate"]).await;
    }
    // A credit block raised after the acceptance, handled after the invoice went out.
    publish_all(
        &env,
        "erp.sales-order.events",
        "erp/sap_s4/salesorder.credit_blocked.late.json",
        Some("2026-11-26T10:00:00Z"),
    )
    .await;
    // The delivery worker comes up late: its goods issues (before the invoices) arrive last.
    publish_all(
        &env,
        "erp.delivery.events",
        "erp/sap_s4/delivery.goods_issued.json",
        None,
    )
    .await;
    // Alone: the gate of the first process already reads what it writes.
    let late = common::Running::start_workers(env.topology.clone(), "b", &[env.worker("erp-delivery")]).await;
    env.wait("o2c.shipment", ORDERS).await;
    env.settle(&["erp-order-status", "erp-delivery"]).await;
    if gated {
        env.settle(&["order-status-gate"]).await;
    }
    let mut out: Vec<OwnedMessage> = common::read_all(&env.topic("o2c.order-status")).await;
    out.sort_by_key(|m| (m.partition(), m.offset()));
    let mut per_order: HashMap<String, Vec<OrderStatusCode>> = HashMap::new();
    for m in &out {
        let s: OrderStatus = env.decode(m).await;
        per_order.entry(s.order_id).or_default().push(s.status);
    }
    (per_order, env, vec![first, late])
}

fn regressions(per_order: &HashMap<String, Vec<OrderStatusCode>>) -> Vec<String> {
    per_order
        .iter()
        .filter(|(_, seen)| seen.windows(2).any(|w| rank(w[1]) < rank(w[0])))
        .map(|(order, seen)| format!("{order}: {seen:?}"))
        .collect()
}

#[tokio::test]
async fn racing_workers_never_move_an_order_backwards_through_the_gate() {
    let (per_order, env, running) = race(true).await;
    assert_eq!(per_order.len(), ORDERS, "every order has statuses");
    let backwards = regressions(&per_order);
    assert!(
        backwards.is_empty(),
        "{} orders went backwards: {:?}",
        backwards.len(),
        &backwards[..backwards.len().min(5)]
    );
    for seen in per_order.values() {
        assert_eq!(seen.last(), Some(&OrderStatusCode::Invoiced), "{seen:?}");
    }
    // The gate counted what it held back, by where it came from.
    let gate = env.worker("order-status-gate");
    let skipped = |topic: &str| {
        running[0]
            .metrics
            .stale
            .with_label_values(&[&gate, &env.topic(topic)])
            .get()
    };
    assert_eq!(skipped("erp.delivery.events"), ORDERS as u64, "every lagging SHIPPED");
    assert_eq!(
        skipped("erp.sales-order.events"),
        ORDERS as u64,
        "every late credit block"
    );
    for r in running {
        r.stop().await;
    }
}

#[tokio::test]
async fn without_the_gate_the_same_race_moves_orders_backwards() {
    let (per_order, _env, running) = race(false).await;
    let backwards = regressions(&per_order);
    assert!(
        backwards.len() >= ORDERS,
        "each worker's own ledger lets the late credit block and the lagging SHIPPED through: {} of {ORDERS}",
        backwards.len()
    );
    for r in running {
        r.stop().await;
    }
}

/// The gate as `syncline run` processes: two instances share its partitions, one is killed
/// with SIGKILL mid-stream and comes back; the race still never moves an order backwards, and
/// every status the gate publishes is published once.
#[tokio::test]
async fn the_gate_holds_across_a_sigkill_and_two_instances_rebalancing() {
    let env = common::Scenario::new("gatekill", RUN).await;
    let file = common::TopologyFile::create(&common::shipped_topology_text_private(&env.suffix)).await;
    let gate = env.worker("order-status-gate");
    let internal = env.topic("syncline.status.order-status");
    env.publish_xref("mdm/xref.json").await;
    let sources = common::Running::start_workers(
        env.topology.clone(),
        "a",
        &["erp-order-status", "erp-billing", "erp-delivery"].map(|w| env.worker(w)),
    )
    .await;
    let spawn = |instance: &str| {
        let (child, _) = common::spawn_run_with(&file.path, instance, &["--worker", &gate, "--no-tracker"]);
        common::KillOnDrop(child)
    };
    let mut first = spawn("g1");
    let _second = spawn("g2");
    publish_all(
        &env,
        "erp.sales-order.events",
        "erp/sap_s4/salesorder.created.json",
        None,
    )
    .await;
    publish_all(&env, "erp.billing.events", "erp/sap_s4/billing.created.json", None).await;
    let public = env.topic("o2c.order-status");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while common::read_all(&public).await.len() < ORDERS / 2 {
        assert!(tokio::time::Instant::now() < deadline, "the gate published nothing");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    first.0.kill().expect("SIGKILL");
    let _ = first.0.wait();
    let _first_again = spawn("g1");
    env.wait("o2c.invoice", ORDERS).await;
    env.settle(&["erp-order-status", "erp-billing"]).await;
    common::wait_consumed(&gate, &[&internal], std::time::Duration::from_secs(90)).await;
    publish_all(
        &env,
        "erp.sales-order.events",
        "erp/sap_s4/salesorder.credit_blocked.late.json",
        Some("2026-11-26T10:00:00Z"),
    )
    .await;
    publish_all(
        &env,
        "erp.delivery.events",
        "erp/sap_s4/delivery.goods_issued.json",
        None,
    )
    .await;
    env.wait("o2c.shipment", ORDERS).await;
    env.settle(&["erp-order-status", "erp-delivery"]).await;
    common::wait_consumed(&gate, &[&internal], std::time::Duration::from_secs(90)).await;

    let mut out: Vec<OwnedMessage> = common::read_all(&public).await;
    out.sort_by_key(|m| (m.partition(), m.offset()));
    let per_key = common::count_by_idempotency_key(&out);
    assert!(per_key.values().all(|n| *n == 1), "a status published twice");
    let mut per_order: HashMap<String, Vec<OrderStatusCode>> = HashMap::new();
    for m in &out {
        let s: OrderStatus = env.decode(m).await;
        per_order.entry(s.order_id).or_default().push(s.status);
    }
    assert_eq!(per_order.len(), ORDERS);
    let backwards = regressions(&per_order);
    assert!(backwards.is_empty(), "{:?}", &backwards[..backwards.len().min(5)]);
    for seen in per_order.values() {
        assert_eq!(seen.last(), Some(&OrderStatusCode::Invoiced), "{seen:?}");
    }
    sources.stop().await;
}
