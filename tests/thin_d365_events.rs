//! Dynamics 365 F&O's documented `SalesInvoicePostedBusinessEvent` (accounting-currency amounts,
//! no currency, no Salesforce reference) completed through the `SalesInvoiceHeadersV2` data
//! entity of a local fixture server, end to end on the real broker: the invoice in the
//! document's currency with net = total - tax and INVOICED for the right Salesforce order, one
//! call per document (the re-sent event and the order's other documents use the learned links),
//! an invoice the entity does not list yet (an empty collection) parked and re-driven, and an
//! id neither Microsoft documents nor the worker names dead-lettered `UNKNOWN_EVENT_TYPE`, and
//! a free text invoice (no sales order) dead-lettered `MISSING_ORDER_REFERENCE` without a call.

use syncline_test_support as common;

use rdkafka::message::Message;
use syncline::config::EnrichConfig;
use syncline::runtime::dlq::header;
use syncline::samples::vendor_api::{self, D365Invoice, VendorApi};
use syncline::schema::canonical::*;

const RUN: &str = "0000d365";
const ROOT: &str = "d365";
const COMPANY: &str = "DEMF";

fn invoice_of<'a>(invoice: &'a str, order: &'a str, customer: &'a str, sf: &'a str) -> D365Invoice<'a> {
    D365Invoice {
        company: COMPANY,
        invoice,
        order,
        customer,
        salesforce_order: sf,
    }
}

/// The documented event of the sample, for invoice `invoice` (a new event id each).
async fn publish_invoice(env: &common::Scenario, invoice: &str) {
    let r = syncline::samples::load(&common::repo_path("samples/erp/d365_fo/invoice.posted.json"), env.run)
        .expect("sample");
    let payload = String::from_utf8_lossy(&r.value)
        .replace(&format!("CIV-{}", env.run), invoice)
        .replace(&format!("{}0002", env.run), &format!("{}-{invoice}", env.run));
    common::produce(
        &env.producer,
        &env.topic("erp.eu.d365.events"),
        invoice,
        payload.as_bytes(),
    )
    .await;
}

#[tokio::test]
async fn the_documented_d365_invoice_event_reaches_salesforce_through_the_data_entities() {
    let api = VendorApi::default();
    let addr = api.serve(0).await.expect("fixture server");
    let (invoice, order, customer, sf) = (
        format!("CIV-{RUN}"),
        format!("SO-{RUN}"),
        format!("DE-{RUN}"),
        format!("801Dn{RUN}B2"),
    );
    api.d365_sales_invoice(ROOT, &invoice_of(&invoice, &order, &customer, &sf));

    let mut env = common::Scenario::new("d365", RUN).await;
    let mut cfg = vendor_api::connection(addr, ROOT).expect("api config");
    cfg.timeout = std::time::Duration::from_secs(2);
    env.topology.api.insert("d365".into(), cfg);
    let w = env.worker_config("erp-eu-d365");
    w.enrich = Some(EnrichConfig {
        api: "d365".into(),
        not_found_for: std::time::Duration::from_secs(5 * 60),
        retry_every: std::time::Duration::from_secs(1),
    });
    let running = env.start(&["erp-eu-d365"]).await;

    publish_invoice(&env, &invoice).await;
    let invoices = env.wait("o2c.invoice", 1).await;
    let i: Invoice = env.decode(&invoices[0]).await;
    assert_eq!(
        (
            i.order_id.as_str(),
            i.erp_order_id.as_deref(),
            i.erp_instance.as_str(),
            i.currency.as_str()
        ),
        (sf.as_str(), Some(order.as_str()), COMPANY, "EUR")
    );
    assert_eq!(
        (
            i.net_amount.to_string(),
            i.tax_amount.to_string(),
            i.gross_amount.to_string()
        ),
        ("1100.00".to_string(), "209.00".to_string(), "1309.00".to_string()),
        "net is the total less the tax"
    );
    assert_eq!((i.invoice_date, i.due_date), (20_783, Some(20_813)));
    let statuses = env.wait("o2c.order-status", 1).await;
    let s: OrderStatus = env.decode(&statuses[0]).await;
    assert_eq!(
        (s.order_id.as_str(), s.status),
        (sf.as_str(), OrderStatusCode::Invoiced)
    );
    assert_eq!(api.total_calls(), 1, "one call for the invoice");

    // Both documents are linked to the Salesforce order on the cross-reference topic.
    let learned = common::read_all(&env.topology.defaults.xref_topic).await;
    let keys: Vec<String> = learned
        .iter()
        .filter_map(|m| m.key().map(|k| String::from_utf8_lossy(k).to_string()))
        .collect();
    for document in [format!("sales_invoice:{invoice}"), format!("sales_order:{order}")] {
        let key = format!("document:d365_fo:{COMPANY}:{document}");
        assert!(keys.contains(&key), "{key} not in {keys:?}");
    }

    // Posted but not listed by the entity yet (an empty collection): parked, then re-driven.
    let late = format!("CIV-{RUN}-2");
    publish_invoice(&env, &late).await;
    let parked = env.wait("syncline.parked", 1).await;
    assert_eq!(
        common::header(&parked[0], header::PARK_REF),
        Some(format!("enrich:d365:sales_invoice:{late}").as_str())
    );
    api.d365_sales_invoice(ROOT, &invoice_of(&late, &order, &customer, &sf));
    let invoices = env.wait("o2c.invoice", 2).await;
    let mut ids = Vec::new();
    for m in &invoices {
        let i: Invoice = env.decode(m).await;
        ids.push(i.invoice_id);
    }
    assert!(ids.contains(&late), "{ids:?}");

    // An id neither in Microsoft's documentation nor in [worker.event_types].
    common::produce(
        &env.producer,
        &env.topic("erp.eu.d365.events"),
        "x",
        br#"{"BusinessEventId":"WarehouseTeleportedBusinessEvent","BusinessEventLegalEntity":"DEMF","EventId":"x","EventTime":"/Date(1795690800000)/"}"#,
    )
    .await;
    let dead = env.wait("syncline.dlq", 1).await;
    assert_eq!(common::header(&dead[0], header::ERROR_CODE), Some("UNKNOWN_EVENT_TYPE"));

    // A free text invoice names no sales order: no Salesforce order to report it on, and no
    // sales-invoice lookup to make.
    let calls = api.total_calls();
    env.publish("erp.eu.d365.events", "FTI", "erp/d365_fo/free_text_invoice.posted.json")
        .await;
    let dead = env.wait("syncline.dlq", 2).await;
    let codes: Vec<&str> = dead
        .iter()
        .filter_map(|m| common::header(m, header::ERROR_CODE))
        .collect();
    assert!(codes.contains(&"MISSING_ORDER_REFERENCE"), "{codes:?}");
    assert_eq!(api.total_calls(), calls, "no call for a free text invoice");
    running.stop().await;
}
