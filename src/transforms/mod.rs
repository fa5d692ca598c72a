//! Transforms: typed source events → canonical records, one module per workflow.
//!
//! Owns: the catalogue of transform names a worker may name and the outputs each emits, so the
//! topology can be checked before anything runs. Must not: do I/O.

/// What a transform is called in `topology.toml` and which named outputs it emits.
#[derive(Debug, Clone, Copy)]
pub struct TransformSpec {
    pub name: &'static str,
    pub outputs: &'static [&'static str],
    pub summary: &'static str,
}

const SPECS: &[TransformSpec] = &[
    TransformSpec {
        name: "order_submission",
        outputs: &["sales_order"],
        summary: "Salesforce order submitted -> SalesOrder, routed to the owning ERP",
    },
    TransformSpec {
        name: "erp_order_events",
        outputs: &["order_status"],
        summary: "ERP sales-order created/accepted/rejected/credit block -> OrderStatus",
    },
    TransformSpec {
        name: "erp_delivery_events",
        outputs: &["shipment", "order_status"],
        summary: "ERP outbound delivery / goods issue -> Shipment and OrderStatus SHIPPED",
    },
    TransformSpec {
        name: "erp_billing_events",
        outputs: &["invoice", "order_status"],
        summary: "ERP billing document posted -> Invoice and OrderStatus INVOICED",
    },
    TransformSpec {
        name: "erp_payment_events",
        outputs: &["payment", "order_status"],
        summary: "ERP payment posted / dunning -> PaymentStatus and OrderStatus PAID",
    },
    TransformSpec {
        name: "account_changes",
        outputs: &["customer_master"],
        summary: "Salesforce Account change event -> CustomerMaster request",
    },
];

pub fn spec(name: &str) -> Option<&'static TransformSpec> {
    SPECS.iter().find(|s| s.name == name)
}

pub fn names() -> Vec<&'static str> {
    SPECS.iter().map(|s| s.name).collect()
}
