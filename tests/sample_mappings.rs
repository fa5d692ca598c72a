//! Every sample payload through the transform its worker in the shipped topology uses (no
//! broker): what each source shape maps to, and the specific code of each bad input.

use syncline_test_support as common;

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
    let transform =
        transforms::build(&w.name, &w.transform, &w.adapter, &w.event_types, w.governance.as_ref()).unwrap();
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
fn a_clean_new_account_is_approved_by_the_rules_and_requested_and_gaps_are_refused() {
    let t = run("account-sync", "salesforce/account_change.create.json", &xref(false)).unwrap();
    let CanonicalRecord::AccountGovernance(g) = only(&t, "account_governance") else {
        panic!()
    };
    let path: Vec<_> = g.transitions.iter().map(|t| t.to).collect();
    use GovernanceState as S;
    assert_eq!(path, [S::Proposed, S::Validated, S::Approved, S::Requested]);
    assert_eq!(g.legal_entity.as_deref(), Some("DE01"));
    let CanonicalRecord::CustomerMaster(c) = only(&t, "customer_master") else {
        panic!()
    };
    assert_eq!(c.change_type, ChangeType::Create);
    assert_eq!(c.erp_customer_id, None, "not an ERP customer yet");
    assert_eq!(
        c.billing_address.as_ref().and_then(|a| a.city.as_deref()),
        Some("Berlin")
    );
    assert_eq!(c.tax_id.as_deref(), Some("DE811234565"));
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

    // The documented SalesInvoicePostedBusinessEvent carries accounting-currency amounts and
    // no currency or Salesforce reference: without the SalesInvoiceHeadersV2 lookup it cannot
    // become an invoice.
    let err = run("erp-eu-d365", "erp/d365_fo/invoice.posted.json", &x).unwrap_err();
    assert_eq!(err.code, "MISSING_ORDER_REFERENCE", "{err:?}");
    let t = run_edited("erp-eu-d365", "erp/d365_fo/invoice.posted.json", &x, |v| {
        for (k, value) in [
            ("CurrencyCode", serde_json::json!("EUR")),
            ("TotalInvoiceAmount", serde_json::json!(1309.00)),
            ("TotalTaxAmount", serde_json::json!(209.00)),
            ("CustomersOrderReference", serde_json::json!(format!("801Dn{RUN}B2"))),
        ] {
            v[k] = value;
        }
    })
    .unwrap();
    let CanonicalRecord::Invoice(i) = only(&t, "invoice") else {
        panic!()
    };
    assert_eq!(
        (
            i.currency.as_str(),
            i.net_amount.to_string(),
            i.gross_amount.to_string(),
            i.erp_instance.as_str()
        ),
        ("EUR", dec("1100.00"), dec("1309.00"), "DEMF")
    );
    assert_eq!((i.invoice_date, i.due_date), (20_783, Some(20_813)), "/Date(ms)/ dates");
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

/// Runs a sample after `edit` changed its JSON (headers of binary samples are kept).
fn run_edited(
    worker: &str,
    sample: &str,
    table: &XrefTable,
    edit: impl FnOnce(&mut serde_json::Value),
) -> Result<Transformed, Failure> {
    let topology = common::parse_topology(&std::fs::read_to_string(common::repo_path("topology.toml")).unwrap());
    let w = topology.workers.iter().find(|w| w.name == worker).unwrap();
    let transform =
        transforms::build(&w.name, &w.transform, &w.adapter, &w.event_types, w.governance.as_ref()).unwrap();
    let record = syncline::samples::load(&common::repo_path(&format!("samples/{sample}")), RUN).unwrap();
    let mut value: serde_json::Value = serde_json::from_slice(&record.value).unwrap();
    edit(&mut value);
    let bytes = serde_json::to_vec(&value).unwrap();
    let raw = RawRecord {
        topic: &w.inputs[0],
        partition: 0,
        offset: 7,
        key: None,
        payload: Some(&bytes),
        headers: &record.headers,
        timestamp_ms: Some(1_795_680_000_000),
    };
    transform.apply(&raw, &Context { now_ms: 1, xref: table })
}

fn date(days: i32) -> String {
    date_of(days).unwrap().to_string()
}

#[test]
fn return_requests_from_a_platform_event_and_a_case_change() {
    let t = run(
        "return-requests",
        "salesforce/return_requested.cometd.json",
        &xref(false),
    )
    .unwrap();
    let CanonicalRecord::ReturnAuthorization(r) = only(&t, "return_authorization") else {
        panic!()
    };
    assert_eq!(
        t.correlation_id,
        format!("801Dn{RUN}A1"),
        "a return belongs to its order"
    );
    assert_eq!(r.meta.correlation_id, r.order_id);
    assert_eq!(
        (r.case_id.as_str(), r.rma_id.as_str()),
        (&*format!("500Dn{RUN}R1"), "00031001")
    );
    assert_eq!(r.original_invoice_id, Some(format!("9000{RUN}")));
    assert_eq!(
        (r.status, r.erp_instance.as_deref()),
        (ReturnStatus::Requested, Some("erp-na"))
    );
    assert_eq!(r.reason.as_deref(), Some("Damaged in transit"));
    let l = &r.lines[0];
    assert_eq!(
        (l.erp_material_id.as_deref(), l.quantity.to_string().as_str()),
        (Some("TG11"), "2.000")
    );
    assert_eq!((l.order_line_number, l.reason_code.as_deref()), (Some(1), Some("DMG")));

    let t = run(
        "return-requests",
        "salesforce/case_change.return_requested.json",
        &xref(false),
    )
    .unwrap();
    let CanonicalRecord::ReturnAuthorization(r) = only(&t, "return_authorization") else {
        panic!()
    };
    assert_eq!(
        (r.case_id.as_str(), r.rma_id.as_str()),
        (&*format!("500Dn{RUN}R2"), "00031002")
    );
    assert_eq!(t.idempotency_key, "salesforce:Case:500Dn0000ab12R2:1186533977:1");
    assert_eq!(
        (
            r.lines[0].quantity.to_string().as_str(),
            r.lines[0].unit_of_measure.as_str()
        ),
        ("12.000", "EA"),
        "1 Box is 12 EA by the uom cross-reference"
    );
}

#[test]
fn return_requests_that_are_not_requests_or_are_wrong() {
    let closed = run_edited(
        "return-requests",
        "salesforce/case_change.return_requested.json",
        &xref(false),
        |v| v["payload"]["Status"] = "Closed".into(),
    )
    .unwrap();
    assert!(
        closed.outputs.is_empty(),
        "a Case update that is not a return request emits nothing"
    );
    let zero = run_edited(
        "return-requests",
        "salesforce/return_requested.cometd.json",
        &xref(false),
        |v| {
            v["data"]["payload"]["Lines__c"] =
                serde_json::json!([{"Product2Id": format!("01tDn000PUMP{RUN}"), "Quantity": 0}])
        },
    )
    .unwrap_err();
    assert_eq!(zero.code, "INVALID_QUANTITY");
    let unknown = run_edited(
        "return-requests",
        "salesforce/return_requested.cometd.json",
        &xref(false),
        |v| v["data"]["payload"]["Account_Id__c"] = "001Dn000LATE".into(),
    )
    .unwrap_err();
    assert_eq!(
        (unknown.class, unknown.missing_ref.as_deref()),
        (ErrorClass::MissingMasterData, Some("account:001Dn000LATE")),
        "parked until the account is an ERP customer"
    );
    let no_lines = run_edited(
        "return-requests",
        "salesforce/return_requested.cometd.json",
        &xref(false),
        |v| v["data"]["payload"]["Lines__c"] = "[]".into(),
    )
    .unwrap_err();
    assert_eq!(no_lines.code, "INVALID_RETURN_LINES");
}

#[test]
fn sap_return_events_and_the_return_credit_memo() {
    let table = xref(false);
    let authorized = run("erp-returns", "erp/sap_s4/return.created.json", &table).unwrap();
    let CanonicalRecord::ReturnAuthorization(r) = only(&authorized, "return_authorization") else {
        panic!()
    };
    assert_eq!(
        (r.rma_id.as_str(), r.status),
        (&*format!("6000{RUN}"), ReturnStatus::Authorized)
    );
    assert_eq!(
        (r.case_id.clone(), r.order_id.clone()),
        (format!("500Dn{RUN}R1"), format!("801Dn{RUN}A1"))
    );
    assert_eq!(
        r.lines[0].salesforce_product_id,
        Some(format!("01tDn000PUMP{RUN}")),
        "material TG11 reversed"
    );
    assert_eq!(authorized.outputs.len(), 1, "a return never emits an order status");

    let received = run("erp-returns", "erp/sap_s4/return.goods_received.json", &table).unwrap();
    let CanonicalRecord::ReturnAuthorization(r) = only(&received, "return_authorization") else {
        panic!()
    };
    assert_eq!(r.status, ReturnStatus::GoodsReceived);

    let credited = run("erp-returns", "erp/sap_s4/return.credit_memo.json", &table).unwrap();
    let CanonicalRecord::Invoice(memo) = only(&credited, "invoice") else {
        panic!()
    };
    assert_eq!(memo.document_type, BillingDocumentType::CreditMemo);
    assert_eq!(
        (memo.invoice_id.clone(), memo.order_id.clone()),
        (format!("9100{RUN}"), format!("801Dn{RUN}A1"))
    );
    assert_eq!(memo.gross_amount.to_string(), "2604.11");
    let CanonicalRecord::ReturnAuthorization(r) = only(&credited, "return_authorization") else {
        panic!()
    };
    assert_eq!(
        (r.status, r.original_invoice_id.clone()),
        (ReturnStatus::Credited, Some(format!("9000{RUN}")))
    );
    assert_ne!(memo.meta.event_id, r.meta.event_id, "two outputs, two event ids");

    let orphan = run_edited("erp-returns", "erp/sap_s4/return.credit_memo.json", &table, |v| {
        v["data"].as_object_mut().unwrap().remove("YY1_SalesforceCase");
    })
    .unwrap_err();
    assert_eq!(orphan.code, "MISSING_CASE_REFERENCE");
    // The same credit memo on the billing worker is a plain CREDIT_MEMO invoice.
    let billing = run("erp-billing", "erp/sap_s4/return.credit_memo.json", &table).unwrap();
    assert_eq!(
        billing.outputs.iter().map(|e| e.output).collect::<Vec<_>>(),
        vec!["invoice"]
    );
    let wrong = run("erp-billing", "erp/sap_s4/return.created.json", &table).unwrap_err();
    assert_eq!(wrong.code, "UNKNOWN_EVENT_TYPE");
    // The billing worker was not told the landscape's return events.
    assert!(wrong.message.contains("[worker.event_types]"), "{}", wrong.message);
}

#[test]
fn closed_won_opportunities_become_billing_schedules() {
    let t = run(
        "subscription-won",
        "salesforce/opportunity_change.closed_won.json",
        &xref(false),
    )
    .unwrap();
    let CanonicalRecord::BillingSchedule(b) = only(&t, "billing_schedule") else {
        panic!()
    };
    assert_eq!(
        (b.opportunity_id.clone(), t.correlation_id.clone()),
        (format!("006Dn{RUN}S1"), format!("006Dn{RUN}S1"))
    );
    assert_eq!(
        (b.erp_customer_id.as_deref(), b.erp_instance.as_deref()),
        (Some("17100001"), Some("erp-na"))
    );
    assert_eq!((b.term_months, b.billing_frequency), (12, BillingFrequency::Quarterly));
    assert_eq!(date(b.start_date), "2027-01-01");
    assert_eq!(b.periods.len(), 4);
    assert!(
        b.periods.iter().all(|p| p.amount.to_string() == "1497.00"),
        "10 x 49.90 a month, 3 months a period; the one-time pump is not billed here"
    );
    assert_eq!(b.total_amount.to_string(), "5988.00");
    assert_eq!(
        (date(b.periods[3].period_start), date(b.periods[3].period_end)),
        ("2027-10-01".into(), "2027-12-31".into())
    );

    let t = run(
        "subscription-won",
        "salesforce/opportunity_closed_won.connect.json",
        &xref(false),
    )
    .unwrap();
    let CanonicalRecord::BillingSchedule(b) = only(&t, "billing_schedule") else {
        panic!()
    };
    assert_eq!((b.periods.len(), b.total_amount.to_string()), (6, "898.20".to_string()));

    let open = run_edited(
        "subscription-won",
        "salesforce/opportunity_change.closed_won.json",
        &xref(false),
        |v| v["payload"]["StageName"] = "Negotiation".into(),
    )
    .unwrap();
    assert!(open.outputs.is_empty());
    let one_time = run_edited(
        "subscription-won",
        "salesforce/opportunity_closed_won.connect.json",
        &xref(false),
        |v| {
            v["Lines__c"] =
                serde_json::json!([{"Product2Id": "01tX", "Quantity": 1, "UnitPrice": "10", "Subscription": false}])
        },
    )
    .unwrap();
    assert!(
        one_time.outputs.is_empty(),
        "no subscription lines, no billing schedule"
    );
    let fortnightly = run_edited(
        "subscription-won",
        "salesforce/opportunity_closed_won.connect.json",
        &xref(false),
        |v| v["Billing_Frequency__c"] = "Fortnightly".into(),
    )
    .unwrap_err();
    assert_eq!(fortnightly.code, "INVALID_BILLING_FREQUENCY");
    let forever = run_edited(
        "subscription-won",
        "salesforce/opportunity_closed_won.connect.json",
        &xref(false),
        |v| v["Subscription_Term_Months__c"] = 600.into(),
    )
    .unwrap_err();
    assert_eq!(forever.code, "INVALID_TERM");
}

#[test]
fn billing_plans_and_dunning_become_subscription_payment_status() {
    let table = xref(false);
    let plan = run("erp-subscriptions", "erp/generic/billing_plan.created.json", &table).unwrap();
    let CanonicalRecord::PaymentStatus(p) = only(&plan, "payment") else {
        panic!()
    };
    assert_eq!(
        (p.order_id.clone(), p.payment_id.clone()),
        (format!("006Dn{RUN}S1"), format!("BP-{RUN}"))
    );
    assert_eq!(
        (p.status, p.amount_open.to_string().as_str()),
        (PaymentState::Open, "5988.00")
    );
    assert_eq!(p.invoice_id, format!("BP-{RUN}"), "the plan until its first invoice");
    assert_eq!(plan.outputs.len(), 1, "subscriptions have no order status");

    let dunning = run("erp-subscriptions", "erp/generic/dunning.level2.binary.json", &table).unwrap();
    let CanonicalRecord::PaymentStatus(p) = only(&dunning, "payment") else {
        panic!()
    };
    assert_eq!(
        (p.status, p.dunning_level, p.collection_risk),
        (PaymentState::InDunning, Some(2), true)
    );
    assert_eq!(p.invoice_id, format!("9200{RUN}"));
    let first_letter = run_edited(
        "erp-subscriptions",
        "erp/generic/dunning.level2.binary.json",
        &table,
        |v| v["dunning_level"] = 1.into(),
    )
    .unwrap();
    let CanonicalRecord::PaymentStatus(p) = only(&first_letter, "payment") else {
        panic!()
    };
    assert!(!p.collection_risk, "a first reminder is not a collection risk");
}

#[test]
fn part_requests_and_sap_allocation_results() {
    let table = xref(false);
    let t = run(
        "part-requests",
        "salesforce/part_reservation_requested.pubsub.json",
        &table,
    )
    .unwrap();
    let CanonicalRecord::PartReservation(r) = only(&t, "part_reservation") else {
        panic!()
    };
    assert_eq!(
        (r.reservation_id.clone(), t.correlation_id.clone()),
        (format!("0TTDn{RUN}P1"), format!("0TTDn{RUN}P1"))
    );
    assert_eq!(
        (r.erp_material_id.as_deref(), r.quantity.to_string().as_str()),
        (Some("SK12"), "3.000")
    );
    assert_eq!(
        (r.status, r.plant.as_deref(), r.work_order_id.clone()),
        (
            ReservationStatus::Requested,
            Some("1710"),
            Some(format!("0WODn{RUN}W1"))
        )
    );

    let t = run(
        "part-requests",
        "salesforce/product_request_line_item.create.json",
        &table,
    )
    .unwrap();
    let CanonicalRecord::PartReservation(r) = only(&t, "part_reservation") else {
        panic!()
    };
    assert_eq!(
        (r.reservation_id.clone(), r.erp_material_id.as_deref()),
        (format!("0TTDn{RUN}P2"), Some("TG11"))
    );
    let noted = run_edited(
        "part-requests",
        "salesforce/product_request_line_item.create.json",
        &table,
        |v| {
            v["payload"]["ChangeEventHeader"]["changeType"] = "UPDATE".into();
        },
    )
    .unwrap();
    assert!(
        noted.outputs.is_empty(),
        "an open line item's update is not a new request"
    );
    let cancelled = run_edited(
        "part-requests",
        "salesforce/product_request_line_item.create.json",
        &table,
        |v| {
            v["payload"]["ChangeEventHeader"]["changeType"] = "UPDATE".into();
            v["payload"]["Status"] = "Cancelled".into();
        },
    )
    .unwrap();
    let CanonicalRecord::PartReservation(r) = only(&cancelled, "part_reservation") else {
        panic!()
    };
    assert_eq!(r.status, ReservationStatus::Cancelled);

    let back = run("erp-allocations", "erp/sap_s4/reservation.back_ordered.json", &table).unwrap();
    let CanonicalRecord::PartReservation(r) = only(&back, "part_reservation") else {
        panic!()
    };
    assert_eq!(
        (r.status, r.reservation_id.clone()),
        (ReservationStatus::BackOrdered, format!("0TTDn{RUN}P1"))
    );
    assert_eq!(r.expected_replenishment_date.map(date).as_deref(), Some("2026-12-30"));
    assert_eq!(r.salesforce_product_id, format!("01tDn000SEAL{RUN}"));
    let ok = run("erp-allocations", "erp/sap_s4/reservation.confirmed.json", &table).unwrap();
    let CanonicalRecord::PartReservation(r) = only(&ok, "part_reservation") else {
        panic!()
    };
    assert_eq!(
        (r.status, r.allocated_quantity.map(|q| q.to_string())),
        (ReservationStatus::Allocated, Some("3.000".into()))
    );
    let unknown = run_edited(
        "erp-allocations",
        "erp/sap_s4/reservation.confirmed.json",
        &table,
        |v| v["data"]["Product"] = "ZZ99".into(),
    )
    .unwrap_err();
    assert_eq!(unknown.code, "UNKNOWN_MATERIAL");
    let orphan = run_edited(
        "erp-allocations",
        "erp/sap_s4/reservation.confirmed.json",
        &table,
        |v| {
            v["data"].as_object_mut().unwrap().remove("YY1_SalesforceReservation");
        },
    )
    .unwrap_err();
    assert_eq!(orphan.code, "MISSING_RESERVATION_REFERENCE");
}
