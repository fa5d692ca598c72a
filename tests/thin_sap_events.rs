//! SAP S/4HANA notification events (the sales order event carries the order number and its
//! organisation, the goods-issue event only the delivery number, the billing event the billing
//! document) completed through the OData APIs of a local fixture server, end to end on the real
//! broker: ACCEPTED → SHIPPED → INVOICED → PAID with the right Salesforce id, one call per
//! document (the delivery and billing workers reach the order through the learned `document:`
//! links, not through another call), nothing dead-lettered across an API outage, a document not
//! visible yet parked and re-driven on the timer, one never found dead-lettered
//! `ENRICHMENT_NOT_FOUND`. And `syncline run` completing thin orders through a slow API is
//! killed with SIGKILL mid-stream, across an API outage: every order comes out once.

use syncline_test_support as common;

use std::time::Duration;

use rdkafka::message::Message;
use syncline::config::EnrichConfig;
use syncline::runtime::dlq::header;
use syncline::samples::vendor_api::{self, Fault, VendorApi};
use syncline::schema::canonical::*;

const RUN: &str = "0000e1a7";
const ROOT: &str = "sap/opu/odata/sap";

fn enrich(not_found_for: std::time::Duration) -> EnrichConfig {
    EnrichConfig {
        api: "s4".into(),
        not_found_for,
        retry_every: std::time::Duration::from_secs(1),
    }
}

#[tokio::test]
async fn thin_sap_events_reach_salesforce_through_the_odata_apis() {
    let api = VendorApi::default();
    let addr = api.serve(0).await.expect("fixture server");
    let (order, delivery, billing, sf) = (
        format!("5000{RUN}"),
        format!("8000{RUN}"),
        format!("9000{RUN}"),
        format!("801Dn{RUN}A1"),
    );
    api.sap_sales_order(ROOT, &order, &sf);
    api.sap_delivery(ROOT, &delivery, &order);
    api.sap_billing_document(ROOT, &billing, &order);

    let mut env = common::Scenario::new("thin", RUN).await;
    let mut cfg = vendor_api::connection(addr, ROOT).expect("api config");
    cfg.timeout = std::time::Duration::from_secs(2);
    cfg.breaker_failures = 3;
    cfg.breaker_open = std::time::Duration::from_millis(500);
    env.topology.api.insert("s4".into(), cfg);
    for w in env.topology.workers.iter_mut() {
        if w.adapter == "sap_s4"
            && ["erp-order-status", "erp-delivery", "erp-billing"]
                .iter()
                .any(|n| w.name.starts_with(n))
        {
            w.enrich = Some(enrich(std::time::Duration::from_secs(6)));
        }
    }
    let running = env
        .start(&["erp-order-status", "erp-delivery", "erp-billing", "erp-payment"])
        .await;
    let status_of = |m: &rdkafka::message::OwnedMessage| m.key().map(|k| String::from_utf8_lossy(k).to_string());

    // Created: the order number only; the Salesforce order comes from A_SalesOrder.
    env.publish(
        "erp.sales-order.events",
        &order,
        "erp/sap_s4/notification/salesorder.created.json",
    )
    .await;
    let out = env.wait("o2c.order-status", 1).await;
    let accepted: OrderStatus = env.decode(&out[0]).await;
    assert_eq!(
        (
            accepted.order_id.as_str(),
            accepted.status,
            accepted.erp_order_id.as_deref()
        ),
        (sf.as_str(), OrderStatusCode::Accepted, Some(order.as_str()))
    );
    assert_eq!(status_of(&out[0]).as_deref(), Some(sf.as_str()));

    // Goods issue: the delivery number only. Its items and sales order come from the delivery
    // API; the Salesforce order from the link the order-status worker learned.
    env.publish(
        "erp.delivery.events",
        &delivery,
        "erp/sap_s4/notification/delivery.gi_status_changed.json",
    )
    .await;
    let shipments = env.wait("o2c.shipment", 1).await;
    let shipment: Shipment = env.decode(&shipments[0]).await;
    assert_eq!(
        (
            shipment.order_id.as_str(),
            shipment.erp_order_id.as_deref(),
            shipment.lines.len()
        ),
        (sf.as_str(), Some(order.as_str()), 2)
    );
    assert_eq!(shipment.lines[0].erp_material_id, "TG11");
    assert!(shipment.complete);

    // Billing document: amounts, items and the sales order from the billing API.
    env.publish(
        "erp.billing.events",
        &billing,
        "erp/sap_s4/notification/billing.created.json",
    )
    .await;
    let invoices = env.wait("o2c.invoice", 1).await;
    let invoice: Invoice = env.decode(&invoices[0]).await;
    assert_eq!(
        (
            invoice.order_id.as_str(),
            invoice.gross_amount.to_string(),
            invoice.lines.len()
        ),
        (sf.as_str(), "13541.34".to_string(), 2)
    );

    env.publish("erp.payment.events", &sf, "erp/generic/payment.posted.binary.json")
        .await;
    let statuses = env.wait("o2c.order-status", 4).await;
    let mut seen = Vec::new();
    for m in &statuses {
        let s: OrderStatus = env.decode(m).await;
        assert_eq!(s.order_id, sf);
        seen.push(s.status);
    }
    assert_eq!(
        seen,
        [
            OrderStatusCode::Accepted,
            OrderStatusCode::Shipped,
            OrderStatusCode::Invoiced,
            OrderStatusCode::Paid
        ]
    );
    // One call per document: the later workers found the sales order's link.
    let so_path = format!("{ROOT}/API_SALES_ORDER_SRV/A_SalesOrder('{order}')");
    assert_eq!(api.calls(&so_path), 1, "the sales order was read once");
    assert_eq!(
        api.total_calls(),
        3,
        "sales order, delivery, billing document: one call each"
    );
    let learned = common::read_all(&env.topology.defaults.xref_topic).await;
    let keys: Vec<String> = learned
        .iter()
        .filter_map(|m| m.key().map(|k| String::from_utf8_lossy(k).to_string()))
        .collect();
    assert!(
        keys.contains(&format!("document:sap_s4:erp-na:sales_order:{order}")),
        "{keys:?}"
    );
    assert!(keys.contains(&format!("document:sap_s4:erp-na:outbound_delivery:{delivery}")));

    // An API outage (503 on every call): the batch waits, nothing is dead-lettered, and the
    // order flows once the API is back.
    let (order2, sf2) = (format!("5001{RUN}"), format!("801Dn{RUN}B2"));
    api.sap_sales_order(ROOT, &order2, &sf2);
    api.outage(Some(Fault::Status(503, None)));
    publish_order(&env, &order2).await;
    let unavailable = tokio::time::Instant::now() + Duration::from_secs(30);
    while counted_requests(&running, "unavailable") + counted_requests(&running, "circuit_open") < 3 {
        assert!(
            tokio::time::Instant::now() < unavailable,
            "the worker never met the outage"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(common::read_all(&env.topic("o2c.order-status")).await.len(), 4);
    api.outage(None);
    assert!(orders(&env, 5).await.contains(&sf2));

    // Not visible yet: parked, then re-driven on the timer once the API has it.
    let (order3, sf3) = (format!("5002{RUN}"), format!("801Dn{RUN}C3"));
    publish_order(&env, &order3).await;
    let parked = env.wait("syncline.parked", 1).await;
    assert_eq!(
        common::header(&parked[0], header::PARK_REF),
        Some(format!("enrich:s4:sales_order:{order3}").as_str())
    );
    api.sap_sales_order(ROOT, &order3, &sf3);
    assert!(orders(&env, 6).await.contains(&sf3));

    // Never visible: dead-lettered once older than `not_found_for`, with its reason.
    let order4 = format!("5003{RUN}");
    publish_order(&env, &order4).await;
    let dead = tokio::time::timeout(Duration::from_secs(40), async {
        loop {
            let d = common::read_all(&env.topic("syncline.dlq")).await;
            if !d.is_empty() {
                return d;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    })
    .await
    .expect("the order never found is dead-lettered");
    assert_eq!(dead.len(), 1, "only the order never found");
    assert_eq!(
        common::header(&dead[0], header::ERROR_CODE),
        Some("ENRICHMENT_NOT_FOUND")
    );
    running.stop().await;
}

/// The Salesforce orders of the first `n` order statuses (topic partitions interleave them).
async fn orders(env: &common::Scenario, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for m in env.wait("o2c.order-status", n).await {
        let s: OrderStatus = env.decode(&m).await;
        out.push(s.order_id);
    }
    out
}

async fn publish_order(env: &common::Scenario, order: &str) {
    let r = syncline::samples::load(
        &common::repo_path("samples/erp/sap_s4/notification/salesorder.created.json"),
        env.run,
    )
    .expect("sample");
    let payload = String::from_utf8_lossy(&r.value)
        .replace(&format!("5000{}", env.run), order)
        .replace(&format!("{}0101", env.run), &format!("{}0101-{order}", env.run));
    common::produce(
        &env.producer,
        &env.topic("erp.sales-order.events"),
        order,
        payload.as_bytes(),
    )
    .await;
}

fn counted_requests(running: &common::Running, outcome: &str) -> u64 {
    running.metrics.api_requests.with_label_values(&["s4", outcome]).get()
}

/// SIGKILL of a `syncline run` process while it completes thin order events through a slow
/// API (20 ms a call), with an outage in between: after a restart every order is ACCEPTED
/// exactly once, with its Salesforce id, and nothing is dead-lettered.
#[tokio::test]
async fn thin_events_survive_sigkill_and_an_api_outage_exactly_once() {
    const ORDERS: usize = 120;
    let api = VendorApi::default();
    let addr = api.serve(0).await.expect("fixture server");
    // Slow enough (2 calls in flight, 40 ms each) that the kills land mid-stream.
    api.set_delay(Duration::from_millis(40));
    let order = |i: usize| format!("52{i:03}{RUN}");
    let sf = |i: usize| format!("801Dn{RUN}K{i:03}");
    for i in 0..ORDERS {
        api.sap_sales_order(ROOT, &order(i), &sf(i));
    }
    let suffix = common::unique("thinkill");
    let worker = format!("erp-order-status-{}", suffix.replace('.', "-"));
    // Its order statuses reach o2c.order-status through the order status gate.
    let gate = format!("order-status-gate-{}", suffix.replace('.', "-"));
    let text = common::shipped_topology_text_private(&suffix).replacen(
        "transform = \"erp_order_events\"\n",
        "transform = \"erp_order_events\"\n[worker.enrich]\napi = \"s4\"\nretry_every = \"1s\"\n",
        1,
    ) + &format!(
        "\n[api.s4]\nbase_url = \"http://{addr}/{ROOT}\"\nauth = {{ kind = \"basic\", username = \"SYNCLINE_COMM\", password = \"${{SYNCLINE_TEST_S4_PASSWORD:-unset}}\" }}\ntimeout = \"2s\"\nmax_concurrent = 2\nbreaker_open = \"300ms\"\n"
    );
    let file = common::TopologyFile::create(&text).await;
    let (input, output, dlq) = (
        common::private("erp.sales-order.events", &suffix),
        common::private("o2c.order-status", &suffix),
        common::private("syncline.dlq", &suffix),
    );
    let feeder = {
        let input = input.clone();
        tokio::spawn(async move {
            let p = common::producer();
            let sample = syncline::samples::load(
                &common::repo_path("samples/erp/sap_s4/notification/salesorder.created.json"),
                RUN,
            )
            .expect("sample");
            let sample = String::from_utf8_lossy(&sample.value).into_owned();
            for i in 0..ORDERS {
                let o = format!("52{i:03}{RUN}");
                let payload = sample
                    .replace(&format!("5000{RUN}"), &o)
                    .replace(&format!("{RUN}0101"), &format!("{RUN}0101-{o}"));
                common::produce(&p, &input, &o, payload.as_bytes()).await;
                if i % 20 == 19 {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            }
        })
    };
    let run = || {
        common::spawn_run_env(
            &file.path,
            "thinkill",
            &["--worker", &worker, "--worker", &gate, "--no-tracker"],
            &[("SYNCLINE_TEST_S4_PASSWORD", "fixture")],
        )
    };
    for cycle in 0..2 {
        let before = common::read_all(&output).await.len();
        let (child, _) = run();
        let mut child = common::KillOnDrop(child);
        if cycle == 0 {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            while common::read_all(&output).await.len() <= before {
                assert!(tokio::time::Instant::now() < deadline, "nothing committed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            // The API goes away under the running worker, then comes back before the kill.
            api.outage(Some(Fault::Status(503, Some(1))));
            tokio::time::sleep(Duration::from_millis(1500)).await;
            api.outage(None);
            tokio::time::sleep(Duration::from_millis(400)).await;
        } else {
            // A batch's calls take seconds here: killed while it is being completed.
            let started = tokio::time::Instant::now();
            while api.total_calls() < ORDERS / 2 && started.elapsed() < Duration::from_secs(30) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        child.0.kill().expect("SIGKILL");
        let _ = child.0.wait();
        let committed = common::read_all(&output).await.len();
        eprintln!("cycle {cycle}: killed with {committed} of {ORDERS} orders committed");
    }
    feeder.await.expect("feeder");
    let (child, _) = run();
    let _child = common::KillOnDrop(child);
    common::wait_for(&output, ORDERS, Duration::from_secs(120)).await;
    common::wait_consumed(&worker, &[&input], Duration::from_secs(60)).await;
    let out = common::read_all(&output).await;
    let per_key = common::count_by_idempotency_key(&out);
    assert_eq!(per_key.len(), ORDERS, "every order once");
    assert!(per_key.values().all(|n| *n == 1), "a duplicate: {per_key:?}");
    let codec = syncline::schema::Codec::new(syncline::schema::registry::sr_settings(&common::registry()).unwrap());
    let catalog = syncline::schema::Catalog::load(&common::repo_path("schemas")).unwrap();
    let schema = catalog.latest(OrderStatus::RECORD).unwrap();
    let mut ids = std::collections::HashSet::new();
    for m in &out {
        let s: OrderStatus = codec.decode(m.payload().unwrap(), schema).await.unwrap();
        assert_eq!(s.status, OrderStatusCode::Accepted);
        ids.insert(s.order_id);
    }
    assert_eq!(ids, (0..ORDERS).map(sf).collect(), "each with its Salesforce id");
    assert!(common::read_all(&dlq).await.is_empty(), "nothing dead-lettered");
}

/// Credentials the API refuses (after the one token refresh): not a dead-letter flood. The
/// batch is retried until the worker's retries are spent, then the worker stops and its health
/// names the connection; nothing is dead-lettered or published.
#[tokio::test]
async fn refused_credentials_stop_the_worker_with_the_connection_named() {
    let api = VendorApi::default();
    let addr = api.serve(0).await.expect("fixture server");
    let order = format!("5300{RUN}");
    api.sap_sales_order(ROOT, &order, &format!("801Dn{RUN}U1"));
    api.outage(Some(Fault::Status(401, None)));
    let mut env = common::Scenario::new("thin401", RUN).await;
    let cfg = vendor_api::connection(addr, ROOT).expect("api config");
    env.topology.api.insert("s4".into(), cfg);
    let w = env.worker_config("erp-order-status");
    w.enrich = Some(enrich(std::time::Duration::from_secs(60)));
    w.retry = Some(syncline::config::RetryConfig {
        initial_backoff: std::time::Duration::from_millis(50),
        max_backoff: std::time::Duration::from_millis(100),
        max_attempts: 3,
    });
    let running = env.start(&["erp-order-status"]).await;
    for i in 0..5 {
        publish_order(&env, &format!("53{i:02}{RUN}")).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let stopped = loop {
        let stopped: Vec<String> = running
            .health
            .snapshot()
            .into_iter()
            .filter_map(|(_, s, _)| match s {
                syncline::runtime::supervisor::WorkerState::Stopped(why) => Some(why),
                _ => None,
            })
            .collect();
        if !stopped.is_empty() {
            break stopped;
        }
        assert!(tokio::time::Instant::now() < deadline, "the worker never stopped");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        stopped[0].contains("API_UNAUTHORIZED") && stopped[0].contains("api `s4`"),
        "{stopped:?}"
    );
    assert!(!running.health.ready());
    assert!(
        common::read_all(&env.topic("syncline.dlq")).await.is_empty(),
        "no dead letter"
    );
    assert!(common::read_all(&env.topic("o2c.order-status")).await.is_empty());
    running.stop().await;
}

/// `SalesOrder.Changed.v1` names no status: the order is read past the cache each time, and
/// its credit and rejection status say what Salesforce sees (blocked → CREDIT_HOLD, released →
/// ACCEPTED again, all items rejected → REJECTED).
#[tokio::test]
async fn a_changed_order_reports_the_state_the_api_reads_now() {
    let api = VendorApi::default();
    let addr = api.serve(0).await.expect("fixture server");
    let (order, sf) = (format!("5400{RUN}"), format!("801Dn{RUN}V1"));
    api.sap_sales_order(ROOT, &order, &sf);
    let mut env = common::Scenario::new("thinchg", RUN).await;
    let mut cfg = vendor_api::connection(addr, ROOT).expect("api config");
    cfg.cache_ttl = std::time::Duration::from_secs(10 * 60);
    env.topology.api.insert("s4".into(), cfg);
    env.worker_config("erp-order-status").enrich = Some(enrich(std::time::Duration::from_secs(60)));
    let running = env.start(&["erp-order-status"]).await;
    publish_order(&env, &order).await;
    let changed = |minute: u32| {
        let r = syncline::samples::load(
            &common::repo_path("samples/erp/sap_s4/notification/salesorder.changed.json"),
            RUN,
        )
        .expect("sample");
        String::from_utf8_lossy(&r.value)
            .replace(&format!("5000{RUN}"), &order)
            .replace("10:05:00Z", &format!("10:{minute:02}:00Z"))
            .replace(&format!("{RUN}0104"), &format!("{RUN}0104-{minute}"))
    };
    let mut want = vec![OrderStatusCode::Accepted];
    for (minute, credit, rejection, status) in [
        (5, "B", "", OrderStatusCode::CreditHold),
        (6, "D", "", OrderStatusCode::Accepted),
        (7, "D", "C", OrderStatusCode::Rejected),
    ] {
        env.wait("o2c.order-status", want.len()).await;
        api.sap_sales_order_in(ROOT, &order, &sf, credit, rejection);
        let event = changed(minute);
        common::produce(
            &env.producer,
            &env.topic("erp.sales-order.events"),
            &order,
            event.as_bytes(),
        )
        .await;
        want.push(status);
    }
    let out = env.wait("o2c.order-status", want.len()).await;
    let mut seen = Vec::new();
    for m in &out {
        let s: OrderStatus = env.decode(m).await;
        assert_eq!(s.order_id, sf);
        seen.push(s.status);
    }
    assert_eq!(seen, want);
    let path = format!("{ROOT}/API_SALES_ORDER_SRV/A_SalesOrder('{order}')");
    assert_eq!(api.calls(&path), 4, "created once, each change read past the cache");
    running.stop().await;
}
