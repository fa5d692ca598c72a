//! Which Salesforce REST calls complete which change event, as data. A change event carries only
//! the fields that changed: an Order activated by a status change arrives with `Status` and
//! `LastModifiedDate`, without its account, currency or items. Change Data Capture enrichment
//! cannot add related records (OrderItems), so the record is read with
//! `sobjects/<entity>/{id}` and its items with a SOQL query.
//!
//! Owns: per entity, when a change event needs completing, the record call, the related query
//! and how its rows become the items the transform reads. Must not: call anything (the
//! runtime's enricher does) or map to canonical records.
//!
//! Paths are relative to the connection's `base_url`, the org's REST root
//! (`https://<my-domain>.my.salesforce.com/services/data/v62.0`); `{id}` is the record id.

/// Rows of a SOQL query that become one field of the event (a JSON array).
#[derive(Debug, PartialEq, Eq)]
pub struct Related {
    /// `query?q=…` (SOQL, URL-encoded, `{id}` quoted in it).
    pub query: &'static str,
    /// The event field the rows fill.
    pub into: &'static str,
    /// Row field (dotted for a parent's field) → item field.
    pub fields: &'static [(&'static str, &'static str)],
}

#[derive(Debug, PartialEq, Eq)]
pub struct Lookup {
    pub entity: &'static str,
    /// Only events in which this field has this value are completed: the transform reads no
    /// other change of the record.
    pub when: (&'static str, &'static str),
    /// Fields whose absence calls `record` (a change event enriched by CDC has them).
    pub requires: &'static [&'static str],
    /// The record, every field (custom ones included): `sobjects/<entity>/{id}`.
    pub record: &'static str,
    pub related: Option<Related>,
}

/// The Order activation the `order_submission` transform reads: the order's fields, and its
/// OrderItems as the `Lines__c` items (`LineNumber, Product2Id, Quantity, UnitPrice,
/// UnitOfMeasure, Description`), the unit being the product's `QuantityUnitOfMeasure`.
pub static LOOKUPS: &[Lookup] = &[Lookup {
    entity: "Order",
    when: ("Status", "Activated"),
    requires: &["AccountId"],
    record: "sobjects/Order/{id}",
    related: Some(Related {
        query: "query?q=SELECT+Id,OrderItemNumber,Product2Id,Quantity,UnitPrice,Description,Product2.QuantityUnitOfMeasure+FROM+OrderItem+WHERE+OrderId='{id}'+ORDER+BY+OrderItemNumber",
        into: "Lines__c",
        fields: &[
            ("OrderItemNumber", "LineNumber"),
            ("Product2Id", "Product2Id"),
            ("Quantity", "Quantity"),
            ("UnitPrice", "UnitPrice"),
            ("Product2.QuantityUnitOfMeasure", "UnitOfMeasure"),
            ("Description", "Description"),
        ],
    }),
}];

/// The lookup completing change events of `entity`, if any.
pub fn for_entity(entity: &str) -> Option<&'static Lookup> {
    LOOKUPS.iter().find(|l| l.entity == entity)
}
