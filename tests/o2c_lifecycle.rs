//! Order-to-cash end to end on the real broker with the shipped topology's workers: an order goes
//! SUBMITTED → SalesOrder on the routed ERP topic → ACCEPTED → SHIPPED → INVOICED → PAID; a late
//! status is not published; an order for an account without cross-reference is parked and
//! re-driven exactly once when the reference arrives; bad events land in the dead-letter topic.

use syncline_test_support as common;

use rdkafka::message::Message;
use syncline::runtime::dlq::header;
use syncline::schema::canonical::*;

const RUN: &str = "0000cd34";

#[tokio::test]
async fn order_to_cash_with_parking_redrive_stale_status_and_dead_letters() {
    let env = common::Scenario::new("o2c", RUN).await;
    env.publish_xref("mdm/xref.json").await;
    let running = env
        .start(&[
            "order-submission",
            "erp-order-status",
            "erp-delivery",
            "erp-billing",
            "erp-payment",
            "account-sync",
        ])
        .await;
    let a1 = format!("801Dn{RUN}A1");

    // SUBMITTED -> SalesOrder routed by legal entity US01 to the NA ERP.
    env.publish("sf.order.submitted", &a1, "salesforce/order_submitted.cometd.json")
        .await;
    let so = env.wait("erp.na.sales-order.requests", 1).await;
    assert_eq!(so[0].key(), Some(a1.as_bytes()));
    let order: SalesOrder = env.decode(&so[0]).await;
    assert_eq!(
        (order.order_id.as_str(), order.total_amount.to_string()),
        (a1.as_str(), "12480.50".to_string())
    );
    assert!(
        common::read_all(&env.topic("erp.eu.sales-order.requests"))
            .await
            .is_empty()
    );

    // The ERP side, one step after the other as it happens in time.
    env.publish(
        "erp.sales-order.events",
        &format!("5000{RUN}"),
        "erp/sap_s4/salesorder.created.json",
    )
    .await;
    env.wait("o2c.order-status", 1).await;
    // A credit block that happened before the acceptance but arrives after it: stale.
    env.publish(
        "erp.sales-order.events",
        &format!("5000{RUN}"),
        "erp/sap_s4/salesorder.credit_blocked.late.json",
    )
    .await;
    env.publish(
        "erp.delivery.events",
        &format!("8000{RUN}"),
        "erp/sap_s4/delivery.goods_issued.json",
    )
    .await;
    env.wait("o2c.order-status", 2).await;
    env.wait("o2c.shipment", 1).await;
    env.publish(
        "erp.billing.events",
        &format!("9000{RUN}"),
        "erp/sap_s4/billing.created.json",
    )
    .await;
    env.wait("o2c.order-status", 3).await;
    env.publish(
        "erp.payment.events",
        &format!("PAY-{RUN}"),
        "erp/generic/payment.posted.binary.json",
    )
    .await;
    let statuses = env.wait("o2c.order-status", 4).await;

    let mut seen = Vec::new();
    for m in &statuses {
        assert_eq!(
            m.key(),
            Some(a1.as_bytes()),
            "every output of the order carries its key"
        );
        let s: OrderStatus = env.decode(m).await;
        assert_eq!(s.meta.correlation_id, a1);
        seen.push(s.status);
    }
    assert_eq!(
        seen,
        vec![
            OrderStatusCode::Accepted,
            OrderStatusCode::Shipped,
            OrderStatusCode::Invoiced,
            OrderStatusCode::Paid
        ]
    );
    let worker = |name: &str| env.worker(name);
    assert_eq!(
        running
            .counted(
                &running.metrics.stale,
                &[&worker("erp-order-status"), &env.topic("erp.sales-order.events")],
                1
            )
            .await,
        1,
        "the late credit block"
    );
    for (topic, record) in [
        ("o2c.shipment", "shipment"),
        ("o2c.invoice", "invoice"),
        ("o2c.payment", "payment_status"),
    ] {
        let out = env.wait(topic, 1).await;
        assert_eq!(out.len(), 1, "{record}");
        assert_eq!(out[0].key(), Some(a1.as_bytes()));
        assert_eq!(
            common::header(&out[0], header::OUTPUT_CORRELATION_ID),
            Some(a1.as_str())
        );
    }
    let invoice: Invoice = env.decode(&env.wait("o2c.invoice", 1).await[0]).await;
    assert_eq!(invoice.gross_amount.to_string(), "13541.34");

    // An order for an account the ERP does not know yet: parked, not dead-lettered.
    let b2 = format!("801Dn{RUN}B2");
    env.publish("sf.order.submitted", &b2, "salesforce/order_submitted.pubsub.json")
        .await;
    let parked = env.wait("syncline.parked", 1).await;
    assert_eq!(
        common::header(&parked[0], header::PARK_REASON),
        Some("missing-master-data")
    );
    assert_eq!(
        common::header(&parked[0], header::PARK_REF),
        Some(format!("account:001Dn000LATE{RUN}").as_str())
    );
    env.publish(
        "sf.account.changes",
        &format!("001Dn000LATE{RUN}"),
        "salesforce/account_change.create.json",
    )
    .await;
    // A clean account: approved by the rules, requested from the EU ERP (its legal entity's).
    let customer: CustomerMaster = env.decode(&env.wait("erp.eu.customer.requests", 1).await[0]).await;
    assert_eq!(customer.change_type, ChangeType::Create);
    assert!(
        common::read_all(&env.topic("erp.eu.sales-order.requests"))
            .await
            .is_empty(),
        "still parked"
    );

    // The ERP answers with the new customer number: the parked order flows by itself, once.
    env.publish_xref("mdm/xref.late.json").await;
    let eu = env.wait("erp.eu.sales-order.requests", 1).await;
    let redriven: SalesOrder = env.decode(&eu[0]).await;
    assert_eq!(
        (redriven.order_id.as_str(), redriven.erp_customer_id.as_str()),
        (b2.as_str(), format!("DE-{RUN}").as_str())
    );
    assert_eq!(
        running
            .counted(&running.metrics.redriven, &[&worker("order-submission")], 1)
            .await,
        1
    );

    // Bad input: dead letters with specific codes, the stream unaffected.
    env.publish(
        "sf.order.submitted",
        &format!("801Dn{RUN}C3"),
        "salesforce/order_submitted.connect.json",
    )
    .await;
    env.publish(
        "sf.account.changes",
        &format!("001Dn000ACME{RUN}"),
        "salesforce/account_change.gap.json",
    )
    .await;
    let dlq = env.wait("syncline.dlq", 2).await;
    let mut codes: Vec<&str> = dlq
        .iter()
        .filter_map(|m| common::header(m, header::ERROR_CODE))
        .collect();
    codes.sort();
    assert_eq!(codes, vec!["INVALID_QUANTITY", "SF_GAP_EVENT"]);

    // Nothing more appears later: no duplicate re-drive, no second output.
    env.settle(&["order-submission", "account-sync"]).await;
    assert_eq!(
        common::read_all(&env.topic("erp.eu.sales-order.requests")).await.len(),
        1
    );
    assert_eq!(
        common::read_all(&env.topic("erp.na.sales-order.requests")).await.len(),
        1
    );
    assert_eq!(common::read_all(&env.topic("o2c.order-status")).await.len(), 4);
    running.stop().await;
}
