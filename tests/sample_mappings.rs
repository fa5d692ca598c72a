//! Every sample payload through the transform its worker in the shipped topology uses (no
//! broker): what each source shape maps to, and the specific code of each bad input.

mod common;

use syncline::adapters::RawRecord;
use syncline::failure::{ErrorClass, Failure};
use syncline::schema::canonical::*;
use syncline::transforms::{self, Context, Transformed};
use syncline::xref::XrefTable;

const RUN: &str = "0000ab12";

fn xref(with_late_account: bool) -> XrefTable {
    let mut t = XrefTable::default();
    let mut files = vec!["samples/mdm/xref.json"];
    if with_late_account {
        files.push("samples/mdm/xref.late.json");
    }
    for f in files {
        for (k, v) in syncline::samples::xref_records(&common::repo_path(f), RUN).unwrap() {
            t.apply(&k, Some(&v)).unwrap();
        }
    }
    t
}

fn run(worker: &str, sample: &str, table: &XrefTable) -> Result<Transformed, Failure> {
    let topology = common::parse_topology(&std::fs::read_to_string(common::repo_path("topology.toml")).unwrap());
    let w = topology.workers.iter().find(|w| w.name == worker).unwrap();
    let transform = transforms::build(w).unwrap();
    let record = syncline::samples::load(&common::repo_path(&format!("samples/{sample}")), RUN).unwrap();
    let raw = RawRecord {
        topic: &w.inputs[0],
        partition: 0,
        offset: 42,
        key: None,
        payload: Some(&record.value),
        headers: &record.headers,
        timestamp_ms: Some(1_795_680_000_000),
    };
    transform.apply(&raw, &Context { now_ms: 1, xref: table })
}

fn only<'a>(t: &'a Transformed, output: &str) -> &'a CanonicalRecord {
    &t.outputs
        .iter()
        .find(|e| e.output == output)
        .unwrap_or_else(|| panic!("no {output} in {t:?}"))
        .record
}

fn dec(s: &str) -> String {
    s.to_string()
}

#[test]
fn cometd_platform_event_becomes_a_validated_sales_order() {
    let t = run(
        "order-submission",
        "salesforce/order_submitted.cometd.json",
        &xref(false),
    )
    .unwrap();
    let CanonicalRecord::SalesOrder(o) = only(&t, "sales_order") else {
        panic!()
    };
    assert_eq!(o.order_id, format!("801Dn{RUN}A1"));
    assert_eq!(t.correlation_id, o.order_id);
    assert_eq!(
        t.idempotency_key,
        format!("salesforce:event:5b4f7c1e-2a9d-4c3b-8e1f-0a7d{RUN}")
    );
    assert_eq!((o.legal_entity.as_str(), o.erp_instance.as_str()), ("US01", "erp-na"));
    assert_eq!(o.erp_customer_id, "17100001");
    assert_eq!(o.payment_terms, "NT30", "from the account's cross-reference");
    assert_eq!(o.currency, "USD");
    assert_eq!(o.total_amount.to_string(), dec("12480.50"));
    assert_eq!(o.lines.len(), 2);
    assert_eq!(o.lines[0].erp_material_id.as_deref(), Some("TG11"));
    assert_eq!(
        (o.lines[0].quantity.to_string(), o.lines[0].net_amount.to_string()),
        (dec("10.000"), dec("12000.50"))
    );
    // 2 boxes of 12 -> 24 EA at 20.0000 (240.00 / 12), amounts unchanged.
    let seal = &o.lines[1];
    assert_eq!(
        (seal.quantity.to_string(), seal.unit_of_measure.as_str()),
        (dec("24.000"), "EA")
    );
    assert_eq!(
        (seal.unit_price.to_string(), seal.net_amount.to_string()),
        (dec("20.0000"), dec("480.00"))
    );
    assert_eq!(
        o.ship_to.as_ref().and_then(|a| a.city.as_deref()),
        Some("San Francisco")
    );
    assert_eq!(o.requested_delivery_date, Some(20_790));
    assert_eq!(
        (o.meta.source_offset, o.meta.source_system.as_str()),
        (42, "salesforce")
    );
}

#[test]
fn pubsub_order_for_an_account_without_xref_waits_then_maps() {
    let err = run(
        "order-submission",
        "salesforce/order_submitted.pubsub.json",
        &xref(false),
    )
    .unwrap_err();
    assert_eq!(err.class, ErrorClass::MissingMasterData);
    assert_eq!(
        err.missing_ref.as_deref(),
        Some(format!("account:001Dn000LATE{RUN}").as_str())
    );
    let t = run(
        "order-submission",
        "salesforce/order_submitted.pubsub.json",
        &xref(true),
    )
    .unwrap();
    let CanonicalRecord::SalesOrder(o) = only(&t, "sales_order") else {
        panic!()
    };
    assert_eq!(
        (o.legal_entity.as_str(), o.erp_customer_id.as_str()),
        ("DE01", format!("DE-{RUN}").as_str())
    );
    assert_eq!(o.payment_terms, "Net30", "the order's own terms win");
    assert_eq!(o.order_date, 20_783, "from CreatedDate in epoch milliseconds");
}

#[test]
fn connect_record_with_zero_quantity_is_a_business_error() {
    let err = run(
        "order-submission",
        "salesforce/order_submitted.connect.json",
        &xref(true),
    )
    .unwrap_err();
    assert_eq!((err.class, err.code), (ErrorClass::Business, "INVALID_QUANTITY"));
}

#[test]
fn order_change_event_with_bitmap_changed_fields_maps_when_activated() {
    let t = run(
        "order-submission",
        "salesforce/order_change.activated.json",
        &xref(false),
    )
    .unwrap();
    let CanonicalRecord::SalesOrder(o) = only(&t, "sales_order") else {
        panic!()
    };
    assert_eq!(o.order_id, format!("801Dn{RUN}D4"));
    assert_eq!(t.idempotency_key, format!("salesforce:Order:801Dn{RUN}D4:1186533401:1"));
    assert_eq!(
        (o.legal_entity.as_str(), o.total_amount.to_string()),
        ("CA01", dec("1200.00"))
    );
    assert_eq!(o.lines[0].quantity.to_string(), "60.000");
}

#[test]
fn account_changes_become_customer_master_and_gaps_are_refused() {
    let t = run("account-sync", "salesforce/account_change.create.json", &xref(false)).unwrap();
    let CanonicalRecord::CustomerMaster(c) = only(&t, "customer_master") else {
        panic!()
    };
    assert_eq!(c.change_type, ChangeType::Create);
    assert_eq!(c.erp_customer_id, None, "not an ERP customer yet");
    assert_eq!(
        c.billing_address.as_ref().and_then(|a| a.city.as_deref()),
        Some("Berlin")
    );
    assert_eq!(c.tax_id.as_deref(), Some("DE811234567"));
    let gap = run("account-sync", "salesforce/account_change.gap.json", &xref(false)).unwrap_err();
    assert_eq!(gap.code, "SF_GAP_EVENT");
}

#[test]
fn sap_order_delivery_and_billing_events() {
    let x = xref(false);
    let t = run("erp-order-status", "erp/sap_s4/salesorder.created.json", &x).unwrap();
    let CanonicalRecord::OrderStatus(s) = only(&t, "order_status") else {
        panic!()
    };
    assert_eq!(
        (s.status, s.order_id.clone()),
        (OrderStatusCode::Accepted, format!("801Dn{RUN}A1"))
    );
    assert_eq!(
        (s.erp_instance.as_str(), s.erp_order_id.clone()),
        ("erp-na", Some(format!("5000{RUN}")))
    );
    assert_eq!(s.expected_delivery_date, Some(20_790));

    let t = run("erp-delivery", "erp/sap_s4/delivery.goods_issued.json", &x).unwrap();
    let CanonicalRecord::Shipment(sh) = only(&t, "shipment") else {
        panic!()
    };
    assert!(sh.complete);
    assert_eq!(sh.ship_status, ShipStatus::GoodsIssued);
    assert_eq!(
        sh.lines[1].salesforce_product_id,
        Some(format!("01tDn000SEAL{RUN}")),
        "material -> product"
    );
    assert_eq!(sh.tracking_number.as_deref(), Some("1Z999AA10123456784"));
    let CanonicalRecord::OrderStatus(s) = only(&t, "order_status") else {
        panic!()
    };
    assert_eq!(s.status, OrderStatusCode::Shipped);
    assert_ne!(s.meta.event_id, sh.meta.event_id, "two outputs, two event ids");
    assert_eq!(s.meta.correlation_id, sh.meta.correlation_id);

    let t = run("erp-billing", "erp/sap_s4/billing.created.json", &x).unwrap();
    let CanonicalRecord::Invoice(i) = only(&t, "invoice") else {
        panic!()
    };
    assert_eq!(
        (
            i.net_amount.to_string(),
            i.tax_amount.to_string(),
            i.gross_amount.to_string()
        ),
        (dec("12480.50"), dec("1060.84"), dec("13541.34"))
    );
    assert_eq!(
        i.salesforce_account_id,
        Some(format!("001Dn000ACME{RUN}")),
        "customer -> account"
    );
    assert_eq!(i.due_date, Some(20_813));
    let CanonicalRecord::OrderStatus(s) = only(&t, "order_status") else {
        panic!()
    };
    assert_eq!(s.status, OrderStatusCode::Invoiced);
}

#[test]
fn generic_binary_payment_and_d365_bare_events() {
    let x = xref(true);
    let t = run("erp-payment", "erp/generic/payment.posted.binary.json", &x).unwrap();
    let CanonicalRecord::PaymentStatus(p) = only(&t, "payment") else {
        panic!()
    };
    assert_eq!(
        (p.status, p.amount_paid.to_string()),
        (PaymentState::Paid, dec("13541.34"))
    );
    assert_eq!(p.invoice_id, format!("9000{RUN}"));
    let CanonicalRecord::OrderStatus(s) = only(&t, "order_status") else {
        panic!()
    };
    assert_eq!(s.status, OrderStatusCode::Paid);

    let t = run("erp-eu-d365", "erp/d365_fo/salesorder.confirmed.json", &x).unwrap();
    let CanonicalRecord::OrderStatus(s) = only(&t, "order_status") else {
        panic!()
    };
    assert_eq!(
        (s.status, s.erp_instance.as_str()),
        (OrderStatusCode::Accepted, "erp-eu")
    );
    assert_eq!(s.status_at, 1_795_690_800_000, "EventTime /Date(ms)/");
    assert_eq!(s.expected_delivery_date, Some(20_792));
    let t = run("erp-eu-d365", "erp/d365_fo/invoice.posted.json", &x).unwrap();
    let CanonicalRecord::Invoice(i) = only(&t, "invoice") else {
        panic!()
    };
    assert_eq!(
        (i.currency.as_str(), i.gross_amount.to_string()),
        ("EUR", dec("1309.00"))
    );
    assert_eq!(i.salesforce_account_id, Some(format!("001Dn000LATE{RUN}")));
    assert_eq!(only(&t, "order_status"), &t.outputs[1].record);
}

#[test]
fn a_d365_invoice_on_the_sap_billing_worker_is_not_guessed() {
    let err = run("erp-billing", "erp/d365_fo/invoice.posted.json", &xref(true)).unwrap_err();
    assert_eq!(err.code, "NOT_A_CLOUDEVENT");
    let err = run("erp-order-status", "erp/sap_s4/billing.created.json", &xref(true)).unwrap_err();
    assert_eq!(err.code, "UNKNOWN_EVENT_TYPE");
}
