//! ERP business events: CloudEvents whose `type` and field names depend on the ERP (profile).
//!
//! Owns: reading an ERP event into an [`ErpEvent`]: which business event it is, which instance
//! sent it, its document number and time. Profiles are tables (event types, field paths); the
//! transforms read the rest of `data` through the profile's field names. Must not: map to
//! canonical records.

pub mod catalog;
pub mod cloudevents;
pub mod lookups;
pub mod profile;

use serde_json::Value;

use crate::adapters::{RawRecord, json};
use crate::failure::Failure;
use crate::schema::decimal::Dec;

pub use catalog::Catalog;
pub use profile::Profile;

/// The business events syncline understands, whatever the ERP calls them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErpEventKind {
    OrderCreated,
    /// Something on the order changed (SAP's `SalesOrder.Changed.v1`): its status is read from
    /// the order's credit and rejection status, not from the event's name.
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
    Dunning,
    /// The ERP authorized a return (RMA created).
    ReturnAuthorized,
    ReturnRejected,
    /// Returned goods arrived at the warehouse.
    ReturnGoodsReceived,
    /// A subscription's billing plan exists in the ERP.
    BillingPlanCreated,
    /// Allocation results of a part reservation.
    PartAllocated,
    PartBackOrdered,
    PartRejected,
}

impl ErpEventKind {
    /// The names a topology uses for the kinds (`[worker.event_types]`).
    pub const NAMES: [(&'static str, ErpEventKind); 21] = [
        ("order_created", Self::OrderCreated),
        ("order_changed", Self::OrderChanged),
        ("order_accepted", Self::OrderAccepted),
        ("order_rejected", Self::OrderRejected),
        ("order_credit_hold", Self::OrderCreditHold),
        ("order_credit_released", Self::OrderCreditReleased),
        ("order_cancelled", Self::OrderCancelled),
        ("delivery_created", Self::DeliveryCreated),
        ("goods_issued", Self::GoodsIssued),
        ("delivered", Self::Delivered),
        ("invoice_posted", Self::InvoicePosted),
        ("credit_memo_posted", Self::CreditMemoPosted),
        ("payment_posted", Self::PaymentPosted),
        ("dunning", Self::Dunning),
        ("return_authorized", Self::ReturnAuthorized),
        ("return_rejected", Self::ReturnRejected),
        ("return_goods_received", Self::ReturnGoodsReceived),
        ("billing_plan_created", Self::BillingPlanCreated),
        ("part_allocated", Self::PartAllocated),
        ("part_back_ordered", Self::PartBackOrdered),
        ("part_rejected", Self::PartRejected),
    ];

    pub fn from_name(name: &str) -> Option<Self> {
        Self::NAMES.iter().find(|(n, _)| *n == name).map(|(_, k)| *k)
    }
}

/// One ERP event, normalized enough to route and deduplicate.
#[derive(Debug, Clone)]
pub struct ErpEvent<'a> {
    pub profile: &'static Profile,
    pub kind: ErpEventKind,
    pub event_id: String,
    pub event_type: String,
    /// The ERP instance (e.g. `erp-na`): `data` field, else the last segment of the source.
    pub instance: String,
    pub occurred_at: i64,
    /// The ERP document number of the event's object (sales order, delivery, billing doc, payment,
    /// return, billing plan, reservation).
    pub document_id: String,
    /// The event's `data`, read field by field (see `json::Object`).
    pub data: json::Object<'a>,
}

impl ErpEvent<'_> {
    /// The idempotency key (docs/architecture.md, "Canonical model"): system, instance, document, event type, time.
    pub fn idempotency_key(&self) -> String {
        format!(
            "{}:{}:{}:{}:{}",
            self.profile.source_system, self.instance, self.document_id, self.event_type, self.occurred_at
        )
    }

    /// A field of `data` by the profile's name for a canonical concept (see `profile::Field`).
    pub fn field(&self, f: profile::Field) -> Option<&'static str> {
        self.profile.path(f)
    }

    /// A text field; `None` when absent or when the profile has no such field.
    pub fn opt(&self, f: profile::Field) -> Result<Option<String>, Failure> {
        match self.field(f) {
            Some(path) => self.data.text(path),
            None => Ok(None),
        }
    }

    /// A text field the event cannot do without (`MISSING_FIELD` names the vendor's field).
    pub fn req(&self, f: profile::Field) -> Result<String, Failure> {
        let path = self.field(f).unwrap_or("?");
        self.opt(f)?.ok_or_else(|| json::missing(path))
    }

    pub fn opt_i64(&self, f: profile::Field) -> Result<Option<i64>, Failure> {
        match self.field(f) {
            Some(path) => json::i64_of(self.data.value(path).as_deref(), path),
            None => Ok(None),
        }
    }

    /// An exact decimal (amount or quantity); `code` classifies a malformed value.
    pub fn dec<const S: u32>(&self, f: profile::Field, code: &'static str) -> Result<Option<Dec<S>>, Failure> {
        match self.field(f) {
            Some(path) => json::dec(self.data.value(path).as_deref(), path, code),
            None => Ok(None),
        }
    }

    pub fn date(&self, f: profile::Field) -> Result<Option<i32>, Failure> {
        match self.field(f) {
            Some(path) => self.data.date(path),
            None => Ok(None),
        }
    }

    /// The document's items (empty when it has none).
    pub fn lines(&self) -> Result<Vec<Value>, Failure> {
        match self.field(profile::Field::Lines).and_then(|p| self.data.value(p)) {
            None => Ok(Vec::new()),
            Some(v) => match v.into_owned() {
                Value::Array(items) => Ok(items),
                _ => Err(Failure::poison("WRONG_TYPE", "document lines must be an array")),
            },
        }
    }

    /// The item's own number, else its 1-based position.
    pub fn line_number(&self, item: &Value, index: usize) -> Result<i32, Failure> {
        Ok(
            json::opt_i64(item, self.profile.line_path(profile::LineField::LineNumber))?
                .map(|n| n as i32)
                .unwrap_or(index as i32 + 1),
        )
    }
}

/// Reads one record as an event of `catalog`'s profile.
pub fn parse<'a>(raw: &RawRecord<'a>, catalog: &Catalog) -> Result<ErpEvent<'a>, Failure> {
    let profile = catalog.profile;
    let ce = match &profile.bare {
        Some(bare) if raw.header("ce_specversion").is_none() => {
            if cloudevents::is_structured(raw.payload) {
                cloudevents::parse(raw)?
            } else {
                bare_event(json::parse_payload(raw.payload)?, bare)?
            }
        }
        _ => cloudevents::parse(raw)?,
    };
    let named = catalog.kind_of(&ce.event_type).ok_or_else(|| {
        Failure::business(
            "UNKNOWN_EVENT_TYPE",
            format!(
                "`{}` is not an event type of the {} profile; name it in [worker.event_types] if the ERP publishes it",
                ce.event_type, profile.name
            ),
        )
    })?;
    let kind = profile.refined(named, |path| ce.data.text(path).ok().flatten());
    if !ce.data.is_object() {
        return Err(Failure::poison(
            "MISSING_FIELD",
            format!("`{}` event has no `data` object", ce.event_type),
        ));
    }
    let occurred_at = match profile.path(profile::Field::EventTime) {
        Some(path) if let Some(t) = ce.data.value(path) => json::instant_of(Some(&t), path)?,
        _ => ce
            .time_ms
            .or(raw.timestamp_ms)
            .ok_or_else(|| Failure::poison("MISSING_FIELD", "event has no time (`time` attribute or data field)"))?,
    };
    let instance = profile
        .path(profile::Field::Instance)
        .and_then(|p| ce.data.text(p).ok().flatten())
        .unwrap_or_else(|| {
            ce.source
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or(&ce.source)
                .to_string()
        });
    let doc_path = profile.document_path(kind);
    let document_id = match ce.data.text(doc_path)? {
        Some(d) => d,
        None => ce.subject.clone().ok_or_else(|| {
            Failure::poison(
                "MISSING_FIELD",
                format!("required field `{doc_path}` (document number) is missing"),
            )
        })?,
    };
    Ok(ErpEvent {
        profile,
        kind,
        event_id: ce.id,
        event_type: ce.event_type,
        instance,
        occurred_at,
        document_id,
        data: ce.data,
    })
}

/// `raw`'s payload with its event data replaced by `data` (an enriched event): the `data` of a
/// structured CloudEvent, the whole payload of a binary-mode one or of a bare envelope (whose
/// data is the body).
pub fn with_data(raw: &RawRecord<'_>, data: serde_json::Map<String, Value>) -> Result<Vec<u8>, Failure> {
    let encode =
        |v: &Value| serde_json::to_vec(v).map_err(|e| Failure::poison("INVALID_JSON", format!("enriched event: {e}")));
    if raw.header("ce_specversion").is_some() {
        return encode(&Value::Object(data));
    }
    let mut event = json::parse_payload(raw.payload)?;
    match event.as_object_mut() {
        Some(obj) if obj.contains_key("specversion") => {
            obj.insert("data".into(), Value::Object(data));
            encode(&event)
        }
        _ => encode(&Value::Object(data)),
    }
}

/// An ERP's own JSON envelope read as a CloudEvent whose data is the whole body.
fn bare_event(v: Value, bare: &profile::BareEnvelope) -> Result<cloudevents::CloudEvent<'static>, Failure> {
    if !v.is_object() {
        return Err(Failure::poison("NOT_A_CLOUDEVENT", "payload is JSON but not an object"));
    }
    Ok(cloudevents::CloudEvent {
        id: json::req_str(&v, bare.id)?,
        source: json::opt_str(&v, bare.source)?.unwrap_or_default(),
        event_type: json::req_str(&v, bare.event_type)?,
        time_ms: Some(json::req_instant(&v, bare.time)?),
        subject: None,
        data: json::Object::Tree(v),
        binary_mode: false,
    })
}
