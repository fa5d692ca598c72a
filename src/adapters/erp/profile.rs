//! ERP profiles as data: which CloudEvent `type` is which business event, and where each
//! canonical concept lives in the event's `data`.
//!
//! Owns: the vendor vocabularies (SAP S/4HANA business events, Dynamics 365 F&O business events,
//! syncline's generic JSON). Must not: contain mapping logic; a new ERP is a new table here.

use super::ErpEventKind::{self, *};

/// Canonical concepts a transform asks a profile for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    EventTime,
    Instance,
    SalesforceOrderId,
    ErpOrderId,
    DeliveryId,
    InvoiceId,
    PaymentId,
    Reason,
    HoldReason,
    /// The order's overall credit status (SAP `TotalCreditCheckStatus`: `B` blocked).
    CreditStatus,
    /// What a billing document is (SAP `BillingDocumentCategory`: `O` credit memo).
    BillingCategory,
    /// The order's overall rejection status (SAP `OverallSDDocumentRejectionSts`: `C` all
    /// items rejected).
    RejectionStatus,
    ExpectedDeliveryDate,
    Carrier,
    TrackingNumber,
    Currency,
    NetAmount,
    TaxAmount,
    GrossAmount,
    AmountPaid,
    AmountOpen,
    DueDate,
    InvoiceDate,
    ErpCustomerId,
    PaymentTerms,
    DunningLevel,
    Complete,
    Lines,
    /// Returns: the ERP's RMA number, the Salesforce Case it answers, the billing document credited.
    ReturnId,
    SalesforceCaseId,
    OriginalInvoiceId,
    /// Subscriptions: the ERP billing plan (its Salesforce reference is `SalesforceOrderId`,
    /// which holds the Opportunity id for subscription documents).
    BillingPlanId,
    /// Part reservations: the ERP reservation, the Salesforce request it answers, its item.
    ReservationId,
    SalesforceReservationId,
    WorkOrderId,
    Material,
    Quantity,
    Unit,
    AllocatedQuantity,
    ReplenishmentDate,
    Plant,
}

/// Fields of one item in a document's `Lines` array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineField {
    LineNumber,
    OrderLine,
    Material,
    Quantity,
    Unit,
    NetAmount,
    Description,
    ReasonCode,
}

/// Attribute names of an ERP's own envelope when it does not send CloudEvents (D365 business
/// events arrive as plain JSON through Service Bus or Event Grid).
#[derive(Debug, PartialEq, Eq)]
pub struct BareEnvelope {
    pub id: &'static str,
    pub event_type: &'static str,
    pub time: &'static str,
    pub source: &'static str,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Profile {
    pub name: &'static str,
    /// `meta.source_system` of records derived from this profile.
    pub source_system: &'static str,
    pub bare: Option<BareEnvelope>,
    types: &'static [(&'static str, ErpEventKind)],
    fields: &'static [(Field, &'static str)],
    lines: &'static [(LineField, &'static str)],
    /// API calls that complete thin events (`lookups`); empty when every event is complete.
    pub lookups: &'static [super::lookups::Lookup],
    /// Event types whose kind their data decides.
    pub refine: &'static [Refine],
}

/// An event type that stands for two kinds: SAP raises `BillingDocument.Created.v1` for
/// invoices and credit memos alike, and `BillingDocumentCategory` tells them apart.
#[derive(Debug, PartialEq, Eq)]
pub struct Refine {
    pub kind: ErpEventKind,
    pub field: Field,
    pub value: &'static str,
    pub becomes: ErpEventKind,
}

impl Profile {
    pub fn by_name(name: &str) -> Option<&'static Profile> {
        PROFILES.iter().copied().find(|p| p.name == name)
    }

    pub fn kind_of(&self, event_type: &str) -> Option<ErpEventKind> {
        self.types.iter().find(|(t, _)| *t == event_type).map(|(_, k)| *k)
    }

    /// `kind` as the event's data decides it (see [`Refine`]).
    pub fn refined(&self, kind: ErpEventKind, value_of: impl Fn(&str) -> Option<String>) -> ErpEventKind {
        self.refine
            .iter()
            .find(|r| r.kind == kind && self.path(r.field).and_then(&value_of).as_deref() == Some(r.value))
            .map_or(kind, |r| r.becomes)
    }

    pub fn line_path(&self, field: LineField) -> &'static str {
        self.lines
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, p)| *p)
            .unwrap_or("")
    }

    pub fn path(&self, field: Field) -> Option<&'static str> {
        self.fields.iter().find(|(f, _)| *f == field).map(|(_, p)| *p)
    }

    /// Where the document number of an event of `kind` is.
    pub fn document_path(&self, kind: ErpEventKind) -> &'static str {
        let field = match kind {
            OrderCreated | OrderChanged | OrderAccepted | OrderRejected | OrderCreditHold | OrderCreditReleased
            | OrderCancelled => Field::ErpOrderId,
            DeliveryCreated | GoodsIssued | Delivered => Field::DeliveryId,
            InvoicePosted | CreditMemoPosted => Field::InvoiceId,
            PaymentPosted | Dunning => Field::PaymentId,
            ReturnAuthorized | ReturnRejected | ReturnGoodsReceived => Field::ReturnId,
            BillingPlanCreated => Field::BillingPlanId,
            PartAllocated | PartBackOrdered | PartRejected => Field::ReservationId,
        };
        self.path(field).unwrap_or("document_id")
    }
}

pub static PROFILES: [&Profile; 3] = [&GENERIC, &SAP_S4, &D365_FO];

/// syncline's own generic ERP JSON (documented in the README).
pub static GENERIC: Profile = Profile {
    name: "generic_erp",
    source_system: "generic_erp",
    bare: None,
    lookups: &[],
    refine: &[],
    lines: &[
        (LineField::LineNumber, "line_number"),
        (LineField::OrderLine, "order_line_number"),
        (LineField::Material, "erp_material_id"),
        (LineField::Quantity, "quantity"),
        (LineField::Unit, "unit_of_measure"),
        (LineField::NetAmount, "net_amount"),
        (LineField::Description, "description"),
        (LineField::ReasonCode, "reason_code"),
    ],
    types: &[
        ("io.syncline.erp.salesorder.created", OrderCreated),
        ("io.syncline.erp.salesorder.accepted", OrderAccepted),
        ("io.syncline.erp.salesorder.rejected", OrderRejected),
        ("io.syncline.erp.salesorder.credit_hold", OrderCreditHold),
        ("io.syncline.erp.salesorder.credit_released", OrderCreditReleased),
        ("io.syncline.erp.salesorder.cancelled", OrderCancelled),
        ("io.syncline.erp.delivery.created", DeliveryCreated),
        ("io.syncline.erp.delivery.goods_issued", GoodsIssued),
        ("io.syncline.erp.delivery.delivered", Delivered),
        ("io.syncline.erp.billing.invoice_posted", InvoicePosted),
        ("io.syncline.erp.billing.credit_memo_posted", CreditMemoPosted),
        ("io.syncline.erp.payment.posted", PaymentPosted),
        ("io.syncline.erp.payment.dunning", Dunning),
        ("io.syncline.erp.return.authorized", ReturnAuthorized),
        ("io.syncline.erp.return.rejected", ReturnRejected),
        ("io.syncline.erp.return.goods_received", ReturnGoodsReceived),
        ("io.syncline.erp.billing_plan.created", BillingPlanCreated),
        ("io.syncline.erp.reservation.allocated", PartAllocated),
        ("io.syncline.erp.reservation.back_ordered", PartBackOrdered),
        ("io.syncline.erp.reservation.rejected", PartRejected),
    ],
    fields: &[
        (Field::Instance, "erp_instance"),
        (Field::SalesforceOrderId, "salesforce_order_id"),
        (Field::ErpOrderId, "erp_order_id"),
        (Field::DeliveryId, "delivery_id"),
        (Field::InvoiceId, "invoice_id"),
        (Field::PaymentId, "payment_id"),
        (Field::Reason, "reason"),
        (Field::HoldReason, "hold_reason"),
        (Field::ExpectedDeliveryDate, "expected_delivery_date"),
        (Field::Carrier, "carrier"),
        (Field::TrackingNumber, "tracking_number"),
        (Field::Currency, "currency"),
        (Field::NetAmount, "net_amount"),
        (Field::TaxAmount, "tax_amount"),
        (Field::GrossAmount, "gross_amount"),
        (Field::AmountPaid, "amount_paid"),
        (Field::AmountOpen, "amount_open"),
        (Field::DueDate, "due_date"),
        (Field::InvoiceDate, "invoice_date"),
        (Field::ErpCustomerId, "erp_customer_id"),
        (Field::PaymentTerms, "payment_terms"),
        (Field::DunningLevel, "dunning_level"),
        (Field::Complete, "complete"),
        (Field::Lines, "lines"),
        (Field::ReturnId, "rma_id"),
        (Field::SalesforceCaseId, "salesforce_case_id"),
        (Field::OriginalInvoiceId, "original_invoice_id"),
        (Field::BillingPlanId, "billing_plan_id"),
        (Field::ReservationId, "reservation_id"),
        (Field::SalesforceReservationId, "salesforce_reservation_id"),
        (Field::WorkOrderId, "salesforce_work_order_id"),
        (Field::Material, "erp_material_id"),
        (Field::Quantity, "quantity"),
        (Field::Unit, "unit_of_measure"),
        (Field::AllocatedQuantity, "allocated_quantity"),
        (Field::ReplenishmentDate, "expected_replenishment_date"),
        (Field::Plant, "plant"),
    ],
};

/// SAP S/4HANA business events (Event Mesh / Advanced Event Mesh), SAP field names.
pub static SAP_S4: Profile = Profile {
    name: "sap_s4",
    source_system: "sap_s4",
    bare: None,
    lookups: super::lookups::SAP_S4,
    refine: &[Refine {
        kind: InvoicePosted,
        field: Field::BillingCategory,
        value: "O",
        becomes: CreditMemoPosted,
    }],
    lines: &[
        (LineField::LineNumber, "Item"),
        (LineField::OrderLine, "ReferenceSDDocumentItem"),
        (LineField::Material, "Material"),
        (LineField::Quantity, "Quantity"),
        (LineField::Unit, "QuantityUnit"),
        (LineField::NetAmount, "NetAmount"),
        (LineField::Description, "ItemText"),
        (LineField::ReasonCode, "ReturnReason"),
    ],
    types: &[
        ("sap.s4.beh.salesorder.v1.SalesOrder.Created.v1", OrderCreated),
        ("sap.s4.beh.salesorder.v1.SalesOrder.Changed.v1", OrderChanged),
        ("sap.s4.beh.salesorder.v1.SalesOrder.Deleted.v1", OrderCancelled),
        (
            "sap.s4.beh.outbounddelivery.v1.OutboundDelivery.Created.v1",
            DeliveryCreated,
        ),
        (
            "sap.s4.beh.outbounddelivery.v1.OutboundDelivery.GIStatusChanged.v1",
            GoodsIssued,
        ),
        (
            "sap.s4.beh.billingdocument.v1.BillingDocument.Created.v1",
            InvoicePosted,
        ),
    ],
    fields: &[
        (Field::Instance, "SAPClient"),
        (Field::SalesforceOrderId, "PurchaseOrderByCustomer"),
        (Field::ErpOrderId, "SalesOrder"),
        (Field::DeliveryId, "OutboundDelivery"),
        (Field::InvoiceId, "BillingDocument"),
        (Field::PaymentId, "AccountingDocument"),
        (Field::Reason, "SalesDocumentRjcnReason"),
        (Field::HoldReason, "TotalCreditCheckStatus"),
        (Field::CreditStatus, "TotalCreditCheckStatus"),
        (Field::BillingCategory, "BillingDocumentCategory"),
        (Field::RejectionStatus, "OverallSDDocumentRejectionSts"),
        (Field::ExpectedDeliveryDate, "RequestedDeliveryDate"),
        (Field::Carrier, "ShippingPoint"),
        (Field::TrackingNumber, "TrackingNumber"),
        (Field::Currency, "TransactionCurrency"),
        (Field::NetAmount, "TotalNetAmount"),
        (Field::TaxAmount, "TotalTaxAmount"),
        (Field::GrossAmount, "TotalGrossAmount"),
        (Field::AmountPaid, "AmountInTransactionCurrency"),
        (Field::AmountOpen, "OpenAmountInTransactionCurrency"),
        (Field::DueDate, "NetDueDate"),
        (Field::InvoiceDate, "BillingDocumentDate"),
        (Field::ErpCustomerId, "SoldToParty"),
        (Field::PaymentTerms, "CustomerPaymentTerms"),
        (Field::DunningLevel, "DunningLevel"),
        (Field::Complete, "OverallGoodsMovementStatus"),
        (Field::Lines, "Items"),
        (Field::ReturnId, "CustomerReturn"),
        (Field::SalesforceCaseId, "YY1_SalesforceCase"),
        (Field::OriginalInvoiceId, "ReferenceSDDocument"),
        (Field::BillingPlanId, "BillingPlan"),
        (Field::ReservationId, "Reservation"),
        (Field::SalesforceReservationId, "YY1_SalesforceReservation"),
        (Field::WorkOrderId, "YY1_SalesforceWorkOrder"),
        (Field::Material, "Product"),
        (Field::Quantity, "ResvnItmRequiredQtyInBaseUnit"),
        (Field::Unit, "BaseUnit"),
        (Field::AllocatedQuantity, "ConfirmedQuantity"),
        (Field::ReplenishmentDate, "ProductAvailabilityDate"),
        (Field::Plant, "Plant"),
    ],
};

/// Dynamics 365 Finance & Operations business events, by the names Microsoft documents. Only the
/// ids whose contract Microsoft publishes are built in: `SalesInvoicePostedBusinessEvent` (the
/// contract `InvoiceAccount, InvoiceId, SalesOrderId, InvoiceDate, InvoiceDueDate,
/// InvoiceAmountInAccountingCurrency, InvoiceTaxAmount, LegalEntity`) and the free text invoice's
/// `CustFreeTextInvoicePostedBusinessEvent`. A deployment names the other events it enables (its
/// business event catalog lists their ids) in `[worker.event_types]`.
///
/// The event's amounts are in the legal entity's accounting currency (`InvoiceAmountMST`,
/// `SumTaxMST`); the canonical invoice is in the document's currency, so its amounts, currency,
/// terms and the customer's order reference (the Salesforce order) come from the
/// `SalesInvoiceHeadersV2` data entity, whose field names are used here.
pub static D365_FO: Profile = Profile {
    name: "d365_fo",
    source_system: "d365_fo",
    lookups: super::lookups::D365_FO,
    refine: &[],
    bare: Some(BareEnvelope {
        id: "EventId",
        event_type: "BusinessEventId",
        time: "EventTime",
        source: "BusinessEventLegalEntity",
    }),
    lines: &[],
    types: &[
        ("SalesInvoicePostedBusinessEvent", InvoicePosted),
        ("CustFreeTextInvoicePostedBusinessEvent", InvoicePosted),
    ],
    fields: &[
        (Field::EventTime, "EventTime"),
        (Field::Instance, "LegalEntity"),
        (Field::SalesforceOrderId, "CustomersOrderReference"),
        (Field::ErpOrderId, "SalesOrderId"),
        (Field::InvoiceId, "InvoiceId"),
        (Field::Currency, "CurrencyCode"),
        (Field::TaxAmount, "TotalTaxAmount"),
        (Field::GrossAmount, "TotalInvoiceAmount"),
        (Field::DueDate, "InvoiceDueDate"),
        (Field::InvoiceDate, "InvoiceDate"),
        (Field::ErpCustomerId, "InvoiceAccount"),
        (Field::PaymentTerms, "PaymentTermsName"),
    ],
};
