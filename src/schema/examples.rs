//! One realistic value of every canonical record, for the demo, docs and round-trip tests.
//!
//! Owns: example data only. Must not: be used by the runtime to fill in missing values.

use super::canonical::*;

/// Meta for an example event of `order_id`, keyed by `source_version`.
pub fn meta(order_id: &str, source_system: &str, source_version: &str, at_ms: i64) -> Meta {
    let idempotency_key = format!("{source_system}:{order_id}:{source_version}");
    Meta {
        event_id: Meta::event_id_for(&idempotency_key),
        idempotency_key,
        correlation_id: order_id.to_string(),
        causation_id: source_version.to_string(),
        source_system: source_system.to_string(),
        source_instance: "example".to_string(),
        source_topic: "example".to_string(),
        source_partition: 0,
        source_offset: 0,
        occurred_at: at_ms,
        processed_at: at_ms,
    }
}

fn dec<T: std::str::FromStr>(text: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    // Literals below are fixed and valid; a bad one is a programming error caught by tests.
    text.parse().unwrap_or_else(|e| panic!("example literal {text}: {e:?}"))
}

pub fn sales_order(order_id: &str, at_ms: i64) -> SalesOrder {
    SalesOrder {
        meta: meta(order_id, "salesforce", "e1c1a6f2-0d5b-4d5e-9a3c-1f0e8a1b2c3d", at_ms),
        order_id: order_id.to_string(),
        order_number: Some("00000123".into()),
        erp_instance: "erp-na".into(),
        legal_entity: "US01".into(),
        sales_org: Some("1710".into()),
        salesforce_account_id: "001Dn00000A1b2cIAB".into(),
        erp_customer_id: "17100001".into(),
        order_date: 20_783,
        requested_delivery_date: Some(20_790),
        po_number: Some("PO-88812".into()),
        currency: "USD".into(),
        payment_terms: "NT30".into(),
        incoterms: Some("FOB".into()),
        total_amount: dec("12345678.90"),
        ship_to: Some(Address {
            street: Some("1 Market St".into()),
            city: Some("San Francisco".into()),
            postal_code: Some("94105".into()),
            region: Some("CA".into()),
            country: Some("US".into()),
        }),
        lines: vec![SalesOrderLine {
            line_number: 1,
            salesforce_product_id: "01tDn000003XyZaIAK".into(),
            erp_material_id: Some("TG11".into()),
            description: Some("Industrial pump".into()),
            quantity: dec("10"),
            unit_of_measure: "EA".into(),
            unit_price: dec("1234567.8900"),
            net_amount: dec("12345678.90"),
        }],
    }
}

pub fn order_status(order_id: &str, status: OrderStatusCode, at_ms: i64) -> OrderStatus {
    OrderStatus {
        meta: meta(order_id, "sap_s4", &format!("{status:?}-{at_ms}"), at_ms),
        order_id: order_id.to_string(),
        erp_order_id: Some("5000012".into()),
        erp_instance: "erp-na".into(),
        status,
        status_at: at_ms,
        reason: None,
        hold_reason: (status == OrderStatusCode::CreditHold).then(|| "credit limit exceeded".into()),
        expected_delivery_date: Some(20_790),
    }
}

pub fn shipment(order_id: &str, at_ms: i64) -> Shipment {
    Shipment {
        meta: meta(order_id, "sap_s4", "80000031-GI", at_ms),
        shipment_id: "80000031".into(),
        order_id: order_id.to_string(),
        erp_order_id: Some("5000012".into()),
        erp_instance: "erp-na".into(),
        ship_status: ShipStatus::GoodsIssued,
        complete: true,
        shipped_at: Some(at_ms),
        carrier: Some("UPS".into()),
        tracking_number: Some("1Z999AA10123456784".into()),
        lines: vec![ShipmentLine {
            line_number: 10,
            order_line_number: Some(1),
            salesforce_product_id: Some("01tDn000003XyZaIAK".into()),
            erp_material_id: "TG11".into(),
            quantity: dec("10"),
            unit_of_measure: "EA".into(),
        }],
    }
}

pub fn invoice(order_id: &str, at_ms: i64) -> Invoice {
    Invoice {
        meta: meta(order_id, "d365_fo", "CIV-000042", at_ms),
        invoice_id: "CIV-000042".into(),
        document_type: BillingDocumentType::Invoice,
        order_id: order_id.to_string(),
        erp_order_id: Some("SO-000777".into()),
        erp_instance: "erp-eu".into(),
        erp_customer_id: "DE-001".into(),
        salesforce_account_id: Some("001Dn00000A1b2cIAB".into()),
        invoice_date: 20_783,
        due_date: Some(20_813),
        currency: "EUR".into(),
        net_amount: dec("1000.00"),
        tax_amount: dec("190.00"),
        gross_amount: dec("1190.00"),
        payment_terms: Some("Net30".into()),
        lines: vec![InvoiceLine {
            line_number: 1,
            salesforce_product_id: Some("01tDn000003XyZaIAK".into()),
            erp_material_id: "D0001".into(),
            description: Some("Service hours".into()),
            quantity: dec("8.5"),
            unit_of_measure: "H".into(),
            net_amount: dec("1000.00"),
        }],
    }
}

pub fn payment(order_id: &str, at_ms: i64) -> PaymentStatus {
    PaymentStatus {
        meta: meta(order_id, "generic_erp", "PAY-9001", at_ms),
        payment_id: "PAY-9001".into(),
        invoice_id: "CIV-000042".into(),
        order_id: order_id.to_string(),
        erp_instance: "erp-eu".into(),
        status: PaymentState::Paid,
        currency: "EUR".into(),
        amount_paid: dec("1190.00"),
        amount_open: dec("0"),
        paid_at: Some(at_ms),
        dunning_level: Some(0),
        collection_risk: false,
    }
}

pub fn customer(account_id: &str, at_ms: i64) -> CustomerMaster {
    CustomerMaster {
        meta: meta(account_id, "salesforce", "cdc-0001-1", at_ms),
        salesforce_account_id: account_id.to_string(),
        erp_customer_id: None,
        erp_instance: Some("erp-na".into()),
        change_type: ChangeType::Create,
        name: Some("Acme Pumps Inc.".into()),
        legal_entity: Some("US01".into()),
        tax_id: Some("US-12-3456789".into()),
        currency: Some("USD".into()),
        payment_terms: Some("NT30".into()),
        billing_address: Some(Address {
            street: Some("1 Market St".into()),
            city: Some("San Francisco".into()),
            postal_code: Some("94105".into()),
            region: Some("CA".into()),
            country: Some("US".into()),
        }),
        shipping_address: None,
        changed_fields: vec![],
    }
}

pub fn account_governance(account_id: &str, at_ms: i64) -> AccountGovernance {
    use GovernanceState as S;
    AccountGovernance {
        meta: meta(account_id, "salesforce", "cdc-0001-1", at_ms),
        salesforce_account_id: account_id.to_string(),
        state: S::DuplicateSuspected,
        state_at: at_ms,
        version: 3,
        legal_entity: Some("DE01".into()),
        erp_instance: None,
        erp_customer_id: None,
        reasons: vec![GovernanceReason {
            code: "DUPLICATE_NAME".into(),
            message: "name is 0.96 like `Berliner Pumpenwerk GmbH` (001B)".into(),
            candidate_account_id: Some("001B".into()),
            score: Some(0.96),
        }],
        transitions: vec![
            GovernanceTransition {
                from: S::Unknown,
                to: S::Proposed,
                by: "salesforce:005A".into(),
                at: at_ms,
                reason: None,
            },
            GovernanceTransition {
                from: S::Validated,
                to: S::DuplicateSuspected,
                by: "rule:duplicates".into(),
                at: at_ms,
                reason: Some("DUPLICATE_NAME".into()),
            },
        ],
    }
}

pub fn return_authorization(order_id: &str, at_ms: i64) -> ReturnAuthorization {
    ReturnAuthorization {
        meta: meta(order_id, "sap_s4", "CustomerReturn.Created-60000042", at_ms),
        rma_id: "60000042".into(),
        case_id: "500Dn000RET1".into(),
        order_id: order_id.to_string(),
        original_invoice_id: Some("90000042".into()),
        erp_instance: Some("erp-na".into()),
        status: ReturnStatus::GoodsReceived,
        status_at: at_ms,
        reason: Some("Damaged in transit".into()),
        lines: vec![ReturnLine {
            line_number: 10,
            order_line_number: Some(1),
            salesforce_product_id: Some("01tDn000PUMP".into()),
            erp_material_id: Some("TG11".into()),
            quantity: dec("2"),
            unit_of_measure: "EA".into(),
            reason_code: None,
        }],
    }
}

pub fn billing_schedule(opportunity_id: &str, at_ms: i64) -> BillingSchedule {
    let start = start_of_2027();
    BillingSchedule {
        meta: meta(opportunity_id, "salesforce", "Opportunity-1186534112-1", at_ms),
        opportunity_id: opportunity_id.to_string(),
        salesforce_account_id: "001Dn000ACME".into(),
        erp_customer_id: Some("17100001".into()),
        erp_instance: None,
        start_date: start,
        term_months: 6,
        billing_frequency: BillingFrequency::Quarterly,
        currency: "USD".into(),
        total_amount: dec("2994.00"),
        periods: vec![
            BillingPeriod {
                period_number: 1,
                period_start: start,
                period_end: start + 89,
                amount: dec("1497.00"),
            },
            BillingPeriod {
                period_number: 2,
                period_start: start + 90,
                period_end: start + 180,
                amount: dec("1497.00"),
            },
        ],
    }
}

pub fn part_reservation(reservation_id: &str, at_ms: i64) -> PartReservation {
    PartReservation {
        meta: meta(reservation_id, "sap_s4", "Reservation.BackOrdered-7000042", at_ms),
        reservation_id: reservation_id.to_string(),
        work_order_id: Some("0WODn000W1".into()),
        salesforce_product_id: "01tDn000SEAL".into(),
        erp_material_id: Some("SK12".into()),
        quantity: dec("3"),
        unit_of_measure: "EA".into(),
        plant: None,
        status: ReservationStatus::BackOrdered,
        status_at: at_ms,
        allocated_quantity: Some(dec("0")),
        expected_replenishment_date: Some(start_of_2027()),
        reason: None,
    }
}

fn start_of_2027() -> i32 {
    epoch_days(chrono::NaiveDate::from_ymd_opt(2027, 1, 1).unwrap_or_default())
}

/// Every example, as the runtime holds them.
pub fn all(at_ms: i64) -> Vec<CanonicalRecord> {
    vec![
        CanonicalRecord::SalesOrder(sales_order("801A", at_ms)),
        CanonicalRecord::OrderStatus(order_status("801A", OrderStatusCode::CreditHold, at_ms)),
        CanonicalRecord::Shipment(shipment("801A", at_ms)),
        CanonicalRecord::Invoice(invoice("801A", at_ms)),
        CanonicalRecord::PaymentStatus(payment("801A", at_ms)),
        CanonicalRecord::CustomerMaster(customer("001A", at_ms)),
        CanonicalRecord::AccountGovernance(account_governance("001A", at_ms)),
        CanonicalRecord::ReturnAuthorization(return_authorization("801A", at_ms)),
        CanonicalRecord::BillingSchedule(billing_schedule("006A", at_ms)),
        CanonicalRecord::PartReservation(part_reservation("0TTA", at_ms)),
    ]
}
