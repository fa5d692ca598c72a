//! Which vendor API call completes which thin ERP event, as data: SAP's business events are
//! notifications (the sales order event carries the order number and its organisation, the
//! delivery event the delivery number), so the fields a flow needs come from the OData APIs.
//!
//! Owns: per profile, the lookups (event kinds, the key field, the request path, the answer's
//! shape, which answer fields fill which profile fields, and which of them link the document to
//! its order, to be learned as a `document:` cross-reference). Must not: call anything (the
//! runtime's enricher does) or map to canonical records (transforms read the merged event as
//! they read a fat one).
//!
//! Paths are relative to the connection's `base_url` (for SAP, `…/sap/opu/odata/sap`; for
//! Dynamics 365, the environment's root, under which `data/` is); `{key}` is the value of the
//! lookup's key field and `{instance}` the event's instance (a D365 legal entity), URL-encoded.

use super::ErpEventKind::{self, *};
use super::profile::{Field, LineField};

/// Where the entity is in an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// OData v2 (SAP Gateway): `{"d": {…entity…}}`.
    ODataV2Entity,
    /// OData v4 collection (Dynamics 365 data entities): `{"value": [{…}, …]}`, first row.
    ODataV4First,
}

/// The document's items in the answer and their fields, by the profile's line field they fill.
#[derive(Debug, PartialEq, Eq)]
pub struct Items {
    /// Dotted path to the array, e.g. `to_Item.results` (OData v2 `$expand`).
    pub path: &'static str,
    pub fields: &'static [(&'static str, LineField)],
    /// Item fields that fill a header field from the first item (a delivery's
    /// `ReferenceSDDocument` is its sales order).
    pub first: &'static [(&'static str, Field)],
}

/// One API call that completes events of some kinds.
#[derive(Debug, PartialEq, Eq)]
pub struct Lookup {
    /// The document kind the answer describes: names the `document:` cross-reference entry.
    pub document: &'static str,
    pub kinds: &'static [ErpEventKind],
    /// The event field whose value identifies the document.
    pub key: Field,
    pub path: &'static str,
    pub shape: Shape,
    /// The fields whose absence calls for the lookup (a fat event has them and needs no call);
    /// the other fields it fills are filled only when the call is made anyway. A lookup that
    /// only links the document to its sales order is not needed once the event names its
    /// Salesforce order.
    pub requires: &'static [Field],
    /// Answer field (dotted path in the entity) → profile field it fills.
    pub copy: &'static [(&'static str, Field)],
    pub items: Option<Items>,
    /// Fields that link the document to its order: learned once, so later events of the same
    /// document need no call. Only `ErpOrderId` and `SalesforceOrderId` are links.
    pub links: &'static [Field],
    /// Read past the answer cache: the event reports a change of state the cached answer
    /// predates.
    pub fresh: bool,
    /// Events without these fields are not this lookup's document (a D365 free text invoice
    /// names no sales order and is not a sales invoice).
    pub only_with: &'static [Field],
}

impl Lookup {
    /// Every profile field this lookup can fill.
    pub fn fills(&self) -> impl Iterator<Item = Field> + '_ {
        let items = self.items.as_ref();
        self.copy
            .iter()
            .map(|(_, f)| *f)
            .chain(items.map(|_| Field::Lines))
            .chain(items.into_iter().flat_map(|i| i.first.iter().map(|(_, f)| *f)))
    }
}

const ORDER_EVENTS: &[ErpEventKind] = &[
    OrderCreated,
    OrderAccepted,
    OrderRejected,
    OrderCreditHold,
    OrderCreditReleased,
    OrderCancelled,
];
const DELIVERY_EVENTS: &[ErpEventKind] = &[DeliveryCreated, GoodsIssued, Delivered];
const BILLING_EVENTS: &[ErpEventKind] = &[InvoicePosted, CreditMemoPosted];
/// Every event of an order's lifecycle.
const ORDER_LIFECYCLE: &[ErpEventKind] = &[
    OrderCreated,
    OrderChanged,
    OrderAccepted,
    OrderRejected,
    OrderCreditHold,
    OrderCreditReleased,
    OrderCancelled,
    DeliveryCreated,
    GoodsIssued,
    Delivered,
    InvoicePosted,
    CreditMemoPosted,
    PaymentPosted,
];
/// Everything after the order that reaches the order's lifecycle through its sales order.
const AFTER_ORDER: &[ErpEventKind] = &[
    DeliveryCreated,
    GoodsIssued,
    Delivered,
    InvoicePosted,
    CreditMemoPosted,
    PaymentPosted,
];

/// SAP S/4HANA: `API_OUTBOUND_DELIVERY_SRV;v=0002`, `API_BILLING_DOCUMENT_SRV` and
/// `API_SALES_ORDER_SRV`. Order matters: a delivery or billing document first yields its sales
/// order, then the sales order yields the Salesforce order (`PurchaseOrderByCustomer`).
pub static SAP_S4: &[Lookup] = &[
    Lookup {
        document: "outbound_delivery",
        kinds: DELIVERY_EVENTS,
        key: Field::DeliveryId,
        path: "API_OUTBOUND_DELIVERY_SRV;v=0002/A_OutbDeliveryHeader('{key}')?$expand=to_DeliveryDocumentItem",
        shape: Shape::ODataV2Entity,
        requires: &[Field::ErpOrderId, Field::Lines],
        copy: &[("OverallGoodsMovementStatus", Field::Complete)],
        items: Some(Items {
            path: "to_DeliveryDocumentItem.results",
            fields: &[
                ("DeliveryDocumentItem", LineField::LineNumber),
                ("ReferenceSDDocumentItem", LineField::OrderLine),
                ("Material", LineField::Material),
                ("ActualDeliveryQuantity", LineField::Quantity),
                ("DeliveryQuantityUnit", LineField::Unit),
            ],
            first: &[("ReferenceSDDocument", Field::ErpOrderId)],
        }),
        links: &[Field::ErpOrderId],
        fresh: false,
        only_with: &[],
    },
    Lookup {
        document: "billing_document",
        kinds: BILLING_EVENTS,
        key: Field::InvoiceId,
        path: "API_BILLING_DOCUMENT_SRV/A_BillingDocument('{key}')?$expand=to_Item",
        shape: Shape::ODataV2Entity,
        requires: &[Field::ErpOrderId, Field::NetAmount, Field::Currency, Field::Lines],
        copy: &[
            ("TotalNetAmount", Field::NetAmount),
            ("TotalTaxAmount", Field::TaxAmount),
            ("TransactionCurrency", Field::Currency),
            ("BillingDocumentCategory", Field::BillingCategory),
            ("BillingDocumentDate", Field::InvoiceDate),
            ("SoldToParty", Field::ErpCustomerId),
            ("CustomerPaymentTerms", Field::PaymentTerms),
        ],
        items: Some(Items {
            path: "to_Item.results",
            fields: &[
                ("BillingDocumentItem", LineField::LineNumber),
                ("Material", LineField::Material),
                ("BillingQuantity", LineField::Quantity),
                ("BillingQuantityUnit", LineField::Unit),
                ("NetAmount", LineField::NetAmount),
                ("BillingDocumentItemText", LineField::Description),
            ],
            first: &[("SalesDocument", Field::ErpOrderId)],
        }),
        links: &[Field::ErpOrderId],
        fresh: false,
        only_with: &[],
    },
    // A payment reaches its order through the billing document it clears (learned when the
    // invoice went by; else the billing document is read once).
    Lookup {
        document: "billing_document",
        kinds: &[PaymentPosted, Dunning],
        key: Field::InvoiceId,
        path: "API_BILLING_DOCUMENT_SRV/A_BillingDocument('{key}')?$expand=to_Item",
        shape: Shape::ODataV2Entity,
        requires: &[Field::ErpOrderId],
        copy: &[],
        items: Some(Items {
            path: "to_Item.results",
            fields: &[],
            first: &[("SalesDocument", Field::ErpOrderId)],
        }),
        links: &[Field::ErpOrderId],
        fresh: false,
        only_with: &[],
    },
    // `SalesOrder.Changed.v1` says only that the order changed: its credit and rejection
    // status are read as they are now, never from the cache.
    Lookup {
        document: "sales_order",
        kinds: &[OrderChanged],
        key: Field::ErpOrderId,
        path: "API_SALES_ORDER_SRV/A_SalesOrder('{key}')",
        shape: Shape::ODataV2Entity,
        requires: &[Field::CreditStatus, Field::SalesforceOrderId],
        copy: &[
            ("PurchaseOrderByCustomer", Field::SalesforceOrderId),
            ("TotalCreditCheckStatus", Field::CreditStatus),
            ("OverallSDDocumentRejectionSts", Field::RejectionStatus),
            ("RequestedDeliveryDate", Field::ExpectedDeliveryDate),
        ],
        items: None,
        links: &[Field::SalesforceOrderId],
        fresh: true,
        only_with: &[],
    },
    Lookup {
        document: "sales_order",
        kinds: ORDER_EVENTS,
        key: Field::ErpOrderId,
        path: "API_SALES_ORDER_SRV/A_SalesOrder('{key}')",
        shape: Shape::ODataV2Entity,
        requires: &[Field::SalesforceOrderId],
        copy: &[
            ("PurchaseOrderByCustomer", Field::SalesforceOrderId),
            ("RequestedDeliveryDate", Field::ExpectedDeliveryDate),
            ("TotalCreditCheckStatus", Field::HoldReason),
        ],
        items: None,
        links: &[Field::SalesforceOrderId],
        fresh: false,
        only_with: &[],
    },
    Lookup {
        document: "sales_order",
        kinds: AFTER_ORDER,
        key: Field::ErpOrderId,
        path: "API_SALES_ORDER_SRV/A_SalesOrder('{key}')",
        shape: Shape::ODataV2Entity,
        requires: &[Field::SalesforceOrderId],
        copy: &[("PurchaseOrderByCustomer", Field::SalesforceOrderId)],
        items: None,
        links: &[Field::SalesforceOrderId],
        fresh: false,
        only_with: &[],
    },
];

/// Dynamics 365 F&O data entities (OData v4, `cross-company=true` with the legal entity in the
/// filter). `SalesInvoicePostedBusinessEvent` carries accounting-currency amounts and no
/// Salesforce reference: `SalesInvoiceHeadersV2` has the document's currency, totals, terms and
/// the customer's order reference (where the Salesforce order id is kept). Any other event of an
/// order reaches the Salesforce order through `SalesOrderHeadersV2`.
pub static D365_FO: &[Lookup] = &[
    Lookup {
        document: "sales_invoice",
        kinds: &[InvoicePosted],
        key: Field::InvoiceId,
        path: "data/SalesInvoiceHeadersV2?$filter=InvoiceNumber%20eq%20'{key}'%20and%20dataAreaId%20eq%20'{instance}'&cross-company=true",
        shape: Shape::ODataV4First,
        requires: &[Field::Currency, Field::GrossAmount],
        copy: &[
            ("CurrencyCode", Field::Currency),
            ("TotalInvoiceAmount", Field::GrossAmount),
            ("TotalTaxAmount", Field::TaxAmount),
            ("PaymentTermsName", Field::PaymentTerms),
            ("InvoiceCustomerAccountNumber", Field::ErpCustomerId),
            ("SalesOrderNumber", Field::ErpOrderId),
            ("CustomersOrderReference", Field::SalesforceOrderId),
        ],
        items: None,
        links: &[Field::ErpOrderId, Field::SalesforceOrderId],
        fresh: false,
        only_with: &[Field::ErpOrderId],
    },
    Lookup {
        document: "sales_order",
        kinds: ORDER_LIFECYCLE,
        key: Field::ErpOrderId,
        path: "data/SalesOrderHeadersV2?$filter=SalesOrderNumber%20eq%20'{key}'%20and%20dataAreaId%20eq%20'{instance}'&cross-company=true",
        shape: Shape::ODataV4First,
        requires: &[Field::SalesforceOrderId],
        copy: &[("CustomersOrderReference", Field::SalesforceOrderId)],
        items: None,
        links: &[Field::SalesforceOrderId],
        fresh: false,
        only_with: &[],
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_filled_by_their_lookup_and_are_order_references() {
        for l in SAP_S4.iter().chain(D365_FO) {
            for link in l.links {
                assert!(
                    matches!(link, Field::ErpOrderId | Field::SalesforceOrderId),
                    "{}: {link:?}",
                    l.document
                );
                assert!(l.fills().any(|f| f == *link), "{}: {link:?} is not filled", l.document);
            }
            assert!(l.path.contains("{key}"), "{}", l.document);
        }
    }
}
