//! The remaining workflows end to end on the real broker, each with both of its workers from the
//! shipped topology: a return with its credit memo, a closed-won subscription through its billing
//! plan to dunning, and a part reservation back-ordered then allocated. Each asserts the
//! canonical outputs, their correlation ids and keys, and their order.

use syncline_test_support as common;

use common::Scenario;
use rdkafka::message::{Message, OwnedMessage};
use syncline::runtime::dlq::header;
use syncline::schema::canonical::*;

/// Every record carries `key` as its Kafka key and correlation header.
fn assert_correlated(records: &[OwnedMessage], key: &str) {
    for m in records {
        assert_eq!(m.key(), Some(key.as_bytes()), "{}", m.topic());
        assert_eq!(common::header(m, header::OUTPUT_CORRELATION_ID), Some(key));
    }
}

#[tokio::test]
async fn return_request_authorized_received_and_credited() {
    const RUN: &str = "0000e1a1";
    let env = Scenario::new("returns", RUN).await;
    env.publish_xref("mdm/xref.json").await;
    let running = env.start(&["return-requests", "erp-returns"]).await;
    let order = format!("801Dn{RUN}A1");

    env.publish(
        "sf.case.returns",
        &format!("500Dn{RUN}R1"),
        "salesforce/return_requested.cometd.json",
    )
    .await;
    let requests = env.wait("erp.na.return.requests", 1).await;
    assert_correlated(&requests, &order);
    let request: ReturnAuthorization = env.decode(&requests[0]).await;
    assert_eq!(
        (request.status, request.order_id.as_str()),
        (ReturnStatus::Requested, order.as_str())
    );
    assert_eq!(request.lines[0].erp_material_id.as_deref(), Some("TG11"));

    let rma = format!("6000{RUN}");
    for sample in ["return.created", "return.goods_received", "return.credit_memo"] {
        env.publish("erp.returns.events", &rma, &format!("erp/sap_s4/{sample}.json"))
            .await;
    }
    let statuses = env.wait("service.return-status", 3).await;
    assert_correlated(&statuses, &order);
    let mut seen = Vec::new();
    for m in &statuses {
        let r: ReturnAuthorization = env.decode(m).await;
        assert_eq!(
            (r.rma_id.as_str(), r.case_id.as_str()),
            (rma.as_str(), request.case_id.as_str())
        );
        seen.push(r.status);
    }
    assert_eq!(
        seen,
        vec![
            ReturnStatus::Authorized,
            ReturnStatus::GoodsReceived,
            ReturnStatus::Credited
        ]
    );
    let credit = env.wait("o2c.invoice", 1).await;
    assert_correlated(&credit, &order);
    let memo: Invoice = env.decode(&credit[0]).await;
    assert_eq!(memo.document_type, BillingDocumentType::CreditMemo);
    assert_eq!(
        (memo.invoice_id, memo.gross_amount.to_string()),
        (format!("9100{RUN}"), "2604.11".into())
    );
    let credited: ReturnAuthorization = env.decode(&statuses[2]).await;
    assert_eq!(
        credited.original_invoice_id,
        Some(format!("9000{RUN}")),
        "the invoice credited"
    );

    // The ERP re-sends the credit memo: nothing new.
    env.publish("erp.returns.events", &rma, "erp/sap_s4/return.credit_memo.json")
        .await;
    // A second return, from a Case change event: 1 Box becomes 12 EA.
    env.publish(
        "sf.case.returns",
        &format!("500Dn{RUN}R2"),
        "salesforce/case_change.return_requested.json",
    )
    .await;
    let requests = env.wait("erp.na.return.requests", 2).await;
    let second: ReturnAuthorization = env.decode(&requests[1]).await;
    assert_eq!(
        (second.order_id, second.lines[0].quantity.to_string()),
        (format!("801Dn{RUN}D4"), "12.000".into())
    );
    env.settle(&["return-requests", "erp-returns"]).await;
    assert_eq!(common::read_all(&env.topic("service.return-status")).await.len(), 3);
    assert_eq!(common::read_all(&env.topic("o2c.invoice")).await.len(), 1);
    assert_eq!(
        running
            .counted(&running.metrics.duplicates, &[&env.worker("erp-returns")], 1)
            .await,
        1
    );
    running.stop().await;
}

#[tokio::test]
async fn closed_won_to_billing_schedule_to_dunning() {
    const RUN: &str = "0000e2b2";
    let env = Scenario::new("subscriptions", RUN).await;
    env.publish_xref("mdm/xref.json").await;
    let running = env.start(&["subscription-won", "erp-subscriptions"]).await;
    let opportunity = format!("006Dn{RUN}S1");

    env.publish(
        "sf.opportunity.changes",
        &opportunity,
        "salesforce/opportunity_change.closed_won.json",
    )
    .await;
    let schedules = env.wait("erp.na.billing-schedule.requests", 1).await;
    assert_correlated(&schedules, &opportunity);
    let schedule: BillingSchedule = env.decode(&schedules[0]).await;
    assert_eq!(
        (
            schedule.periods.len(),
            schedule.total_amount.to_string(),
            schedule.billing_frequency
        ),
        (4, "5988.00".to_string(), BillingFrequency::Quarterly)
    );
    assert_eq!(schedule.erp_customer_id.as_deref(), Some("17100001"));

    env.publish(
        "erp.subscription.events",
        &opportunity,
        "erp/generic/billing_plan.created.json",
    )
    .await;
    env.publish(
        "erp.subscription.events",
        &opportunity,
        "erp/generic/dunning.level2.binary.json",
    )
    .await;
    let payments = env.wait("subscription.payment-status", 2).await;
    assert_correlated(&payments, &opportunity);
    let plan: PaymentStatus = env.decode(&payments[0]).await;
    let dunning: PaymentStatus = env.decode(&payments[1]).await;
    assert_eq!(
        (plan.status, plan.amount_open, plan.collection_risk),
        (PaymentState::Open, schedule.total_amount, false),
        "the plan's open amount is the schedule's total"
    );
    assert_eq!(
        (dunning.status, dunning.dunning_level, dunning.collection_risk),
        (PaymentState::InDunning, Some(2), true)
    );
    assert_eq!(dunning.meta.correlation_id, schedule.meta.correlation_id);
    env.settle(&["subscription-won", "erp-subscriptions"]).await;
    assert!(
        common::read_all(&env.topic("o2c.order-status")).await.is_empty(),
        "a subscription never writes order statuses"
    );
    running.stop().await;
}

#[tokio::test]
async fn part_reservation_back_ordered_then_allocated() {
    const RUN: &str = "0000e3c3";
    let env = Scenario::new("parts", RUN).await;
    env.publish_xref("mdm/xref.json").await;
    let running = env.start(&["part-requests", "erp-allocations"]).await;
    let reservation = format!("0TTDn{RUN}P1");

    env.publish(
        "sf.part.requests",
        &reservation,
        "salesforce/part_reservation_requested.pubsub.json",
    )
    .await;
    let requests = env.wait("erp.part-reservation.requests", 1).await;
    assert_correlated(&requests, &reservation);
    let request: PartReservation = env.decode(&requests[0]).await;
    assert_eq!(
        (
            request.status,
            request.erp_material_id.as_deref(),
            request.quantity.to_string()
        ),
        (ReservationStatus::Requested, Some("SK12"), "3.000".to_string())
    );

    env.publish(
        "erp.reservation.events",
        &reservation,
        "erp/sap_s4/reservation.back_ordered.json",
    )
    .await;
    env.publish(
        "erp.reservation.events",
        &reservation,
        "erp/sap_s4/reservation.confirmed.json",
    )
    .await;
    // A back-order decided before the allocation but delivered after it is stale.
    let late = serde_json::json!({
        "specversion": "1.0", "type": "sap.s4.beh.reservation.v1.Reservation.BackOrdered.v1",
        "source": "/default/sap.s4.beh/erp-na", "id": format!("late-{RUN}"), "time": "2026-12-25T10:00:00Z",
        "data": {"Reservation": format!("7000{RUN}"), "YY1_SalesforceReservation": reservation, "Product": "SK12",
                 "ResvnItmRequiredQtyInBaseUnit": "3", "BaseUnit": "EA"}
    });
    common::produce(
        &env.producer,
        &env.topic("erp.reservation.events"),
        &reservation,
        late.to_string().as_bytes(),
    )
    .await;
    let results = env.wait("field-service.part-reservation", 2).await;
    assert_correlated(&results, &reservation);
    let back: PartReservation = env.decode(&results[0]).await;
    let allocated: PartReservation = env.decode(&results[1]).await;
    assert_eq!(back.status, ReservationStatus::BackOrdered);
    assert_eq!(
        back.expected_replenishment_date
            .and_then(date_of)
            .map(|d| d.to_string()),
        Some("2026-12-30".into())
    );
    assert_eq!(
        (allocated.status, allocated.allocated_quantity.map(|q| q.to_string())),
        (ReservationStatus::Allocated, Some("3.000".into()))
    );
    let worker = env.worker("erp-allocations");
    assert_eq!(
        running
            .counted(
                &running.metrics.stale,
                &[&worker, &env.topic("erp.reservation.events")],
                1
            )
            .await,
        1,
        "the late back-order"
    );
    assert_eq!(
        common::read_all(&env.topic("field-service.part-reservation"))
            .await
            .len(),
        2
    );
    running.stop().await;
}
