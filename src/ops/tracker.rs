//! The business transaction tracker: every order's lifecycle across Salesforce and the ERPs,
//! SUBMITTED → ACCEPTED → SHIPPED → INVOICED → PAID (or REJECTED / CREDIT_HOLD / CANCELLED), with
//! the time of each step, and which orders sit in a state longer than its service level.
//! Returns and credit memos appear on the timeline of the order they return; subscriptions
//! (billing schedule, billing plan, dunning) and part reservations have timelines of their own
//! (kind `subscription` / `reservation`), without order states or service levels.
//!
//! It reads the canonical outputs (sales orders, statuses, shipments, invoices, payments,
//! returns, billing schedules, reservations) as their consumers would, keeps one timeline per order in a compacted changelog topic (so it
//! survives restarts and `syncline orders` can read it), and sets the
//! `syncline_orders_in_state` / `syncline_orders_stuck` gauges. Updates are idempotent per event
//! id, so reading an output twice changes nothing. Must not: sit on the workers' hot path.
//!
//! Why one file of ~550 lines: the timeline model, the service-level judgment and the follower
//! loop change together; a third of the file is tests.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, DefaultConsumerContext, StreamConsumer};
use rdkafka::message::Message;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::{KafkaConfig, Topology};
use crate::kafka::clients::{self, TopicSpec};
use crate::kafka::txn::{Out, Outbox};
use crate::schema::canonical::*;
use crate::schema::lifecycle::{self, STATES, enum_name, parse_transition, state_name};
use crate::schema::{Catalog, Codec};

use crate::telemetry::Metrics;

/// One thing that happened to an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// `SUBMITTED`, `ACCEPTED`, ..., or a document: `SHIPMENT 80000031`, `INVOICE 9000`, `PAYMENT PAY-1`.
    pub what: String,
    pub at: i64,
    pub source_system: String,
    pub source_instance: String,
    pub event_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeline {
    /// The order id, or the opportunity / reservation id for the other kinds.
    pub order_id: String,
    /// `order`, `subscription` or `reservation`.
    #[serde(default = "order_kind")]
    pub kind: String,
    pub state: OrderStatusCode,
    pub entered_at: i64,
    pub steps: Vec<Step>,
}

fn order_kind() -> String {
    "order".into()
}

impl Timeline {
    fn new(order_id: &str) -> Self {
        Self {
            order_id: order_id.to_string(),
            kind: order_kind(),
            state: OrderStatusCode::Unknown,
            entered_at: 0,
            steps: Vec::new(),
        }
    }

    /// Adds `step`; moves the state when `status` moves the order forward. False if already seen.
    pub fn apply(&mut self, step: Step, status: Option<OrderStatusCode>) -> bool {
        if self
            .steps
            .iter()
            .any(|s| s.event_id == step.event_id && s.what == step.what)
        {
            return false;
        }
        if let Some(st) = status {
            let current = (self.state != OrderStatusCode::Unknown).then_some(lifecycle::Current {
                rank: lifecycle::rank(self.state),
                status_at: self.entered_at,
            });
            let candidate = lifecycle::Current {
                rank: lifecycle::rank(st),
                status_at: step.at,
            };
            if lifecycle::is_newer(current, candidate) {
                self.state = st;
                self.entered_at = step.at;
            }
        }
        self.steps.push(step);
        self.steps.sort_by_key(|s| s.at);
        true
    }
}

/// One order's timeline as text, for `syncline orders show` and the demo.
pub fn render(tl: &Timeline) -> String {
    let at = crate::runtime::dlq::rfc3339;
    let mut out = if tl.state == OrderStatusCode::Unknown {
        format!("{} {}:\n", tl.kind, tl.order_id)
    } else {
        format!(
            "{} {}: now {} since {}\n",
            tl.kind,
            tl.order_id,
            state_name(tl.state),
            at(tl.entered_at)
        )
    };
    for s in &tl.steps {
        out.push_str(&format!(
            "  {}  {:<36} {} / {}\n",
            at(s.at),
            s.what,
            s.source_system,
            s.source_instance
        ));
    }
    out
}

/// An order past its service level.
#[derive(Debug, Clone, Serialize)]
pub struct Stuck {
    pub order_id: String,
    pub transition: String,
    pub since: i64,
    pub overdue_ms: i64,
}

/// Every timeline, with the service levels of the topology.
#[derive(Default)]
pub struct Tracker {
    pub timelines: HashMap<String, Timeline>,
    service_levels: Vec<(String, OrderStatusCode, Duration)>,
}

impl Tracker {
    pub fn new(t: &Topology) -> Self {
        let service_levels = t
            .tracker
            .service_levels
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), parse_transition(k)?.0, *v)))
            .collect();
        Self {
            timelines: HashMap::new(),
            service_levels,
        }
    }

    pub fn restore(&mut self, value: &[u8]) {
        if let Ok(t) = serde_json::from_slice::<Timeline>(value) {
            self.timelines.insert(t.order_id.clone(), t);
        }
    }

    /// Orders waiting in a state longer than its service level allows, most overdue first.
    pub fn stuck(&self, now_ms: i64) -> Vec<Stuck> {
        let mut out: Vec<Stuck> = self
            .timelines
            .values()
            .flat_map(|t| {
                self.service_levels
                    .iter()
                    .filter(move |(_, from, _)| *from == t.state)
                    .filter_map(move |(name, _, limit)| {
                        let overdue = now_ms - t.entered_at - limit.as_millis() as i64;
                        (overdue > 0).then(|| Stuck {
                            order_id: t.order_id.clone(),
                            transition: name.clone(),
                            since: t.entered_at,
                            overdue_ms: overdue,
                        })
                    })
            })
            .collect();
        out.sort_by_key(|s| std::cmp::Reverse(s.overdue_ms));
        out
    }

    pub fn set_gauges(&self, m: &Metrics, now_ms: i64) {
        let mut by_state: BTreeMap<String, i64> = STATES.iter().map(|s| (s.to_string(), 0)).collect();
        // Subscriptions and reservations have no order state (UNKNOWN): not orders, not counted.
        for t in self.timelines.values().filter(|t| t.state != OrderStatusCode::Unknown) {
            *by_state.entry(state_name(t.state)).or_default() += 1;
        }
        for (s, n) in by_state {
            m.orders_in_state.with_label_values(&[&s]).set(n);
        }
        let mut stuck: BTreeMap<&str, i64> = self.service_levels.iter().map(|(k, _, _)| (k.as_str(), 0)).collect();
        for s in self.stuck(now_ms) {
            if let Some(n) = stuck.get_mut(s.transition.as_str()) {
                *n += 1;
            }
        }
        for (transition, n) in stuck {
            m.orders_stuck.with_label_values(&[transition]).set(n);
        }
    }
}

/// Which timeline a canonical output belongs to and what it adds there.
struct Placed {
    id: String,
    /// Set for the records that start a non-order timeline.
    kind: Option<&'static str>,
    step: Step,
    status: Option<OrderStatusCode>,
}

fn step_of(record: &CanonicalRecord) -> Placed {
    let meta = record.meta();
    let mut step = Step {
        what: String::new(),
        at: meta.occurred_at,
        source_system: meta.source_system.clone(),
        source_instance: meta.source_instance.clone(),
        event_id: meta.event_id.clone(),
    };
    let mut kind = None;
    let (id, status) = match record {
        CanonicalRecord::SalesOrder(o) => {
            step.what = "SUBMITTED".into();
            (o.order_id.clone(), Some(OrderStatusCode::Submitted))
        }
        CanonicalRecord::OrderStatus(s) => {
            step.what = state_name(s.status);
            step.at = s.status_at;
            (s.order_id.clone(), Some(s.status))
        }
        CanonicalRecord::Shipment(s) => {
            step.what = format!("SHIPMENT {}", s.shipment_id);
            (s.order_id.clone(), None)
        }
        CanonicalRecord::Invoice(i) => {
            step.what = match i.document_type {
                BillingDocumentType::CreditMemo => format!("CREDIT_MEMO {} {}", i.invoice_id, i.gross_amount),
                _ => format!("INVOICE {}", i.invoice_id),
            };
            (i.order_id.clone(), None)
        }
        CanonicalRecord::PaymentStatus(p) => {
            step.what = format!("PAYMENT {} {}", p.payment_id, enum_name(&p.status));
            if let Some(level) = p.dunning_level {
                step.what.push_str(&format!(" level {level}"));
            }
            if p.collection_risk {
                step.what.push_str(" COLLECTION_RISK");
            }
            (p.order_id.clone(), None)
        }
        CanonicalRecord::CustomerMaster(c) => {
            step.what = "CUSTOMER".into();
            (c.salesforce_account_id.clone(), None)
        }
        CanonicalRecord::AccountGovernance(g) => {
            step.what = format!("GOVERNANCE {}", g.state.name());
            step.at = g.state_at;
            (g.salesforce_account_id.clone(), None)
        }
        CanonicalRecord::ReturnAuthorization(r) => {
            step.what = format!("RETURN {} {}", r.rma_id, enum_name(&r.status));
            step.at = r.status_at;
            (r.order_id.clone(), None)
        }
        CanonicalRecord::BillingSchedule(b) => {
            kind = Some("subscription");
            step.what = format!(
                "BILLING_SCHEDULE {} x {} {} {}",
                b.periods.len(),
                enum_name(&b.billing_frequency),
                b.total_amount,
                b.currency
            );
            (b.opportunity_id.clone(), None)
        }
        CanonicalRecord::PartReservation(r) => {
            kind = Some("reservation");
            step.what = format!("RESERVATION {}", enum_name(&r.status));
            if let Some(date) = r.expected_replenishment_date.and_then(date_of) {
                step.what.push_str(&format!(" until {date}"));
            }
            step.at = r.status_at;
            (r.reservation_id.clone(), None)
        }
    };
    Placed { id, kind, step, status }
}

/// Topics the tracker reads, with the schema record written there.
pub fn tracked_topics(t: &Topology) -> Vec<(String, String)> {
    let wanted = [
        "sales_order",
        "order_status",
        "shipment",
        "invoice",
        "payment_status",
        "return_authorization",
        "billing_schedule",
        "part_reservation",
    ];
    let mut out: Vec<(String, String)> = t
        .workers
        .iter()
        .flat_map(|w| w.outputs.iter())
        .filter(|o| wanted.contains(&o.schema.as_str()))
        .flat_map(|o| o.topics().map(move |topic| (topic.to_string(), o.schema.clone())))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Reads every timeline from the changelog topic.
pub async fn load(t: &Topology) -> Result<Tracker, rdkafka::error::KafkaError> {
    ensure_changelog(&t.kafka, &t.tracker.changelog_topic).await?;
    let mut tracker = Tracker::new(t);
    let ends = clients::end_offsets(&t.kafka, &[&t.tracker.changelog_topic], Duration::from_secs(30)).await?;
    let from = ends.keys().map(|k| (k.clone(), 0)).collect();
    for m in clients::read_committed_since(&t.kafka, &from, Duration::from_secs(30)).await? {
        if let Some(v) = m.payload() {
            tracker.restore(v);
        }
    }
    Ok(tracker)
}

async fn ensure_changelog(cfg: &KafkaConfig, topic: &str) -> Result<(), rdkafka::error::KafkaError> {
    clients::ensure_topics(
        cfg,
        &[TopicSpec {
            name: topic.to_string(),
            partitions: 3,
            compacted: true,
            retention_ms: None,
        }],
    )
    .await
    .map(|_| ())
}

async fn decode(codec: &Codec, catalog: &Catalog, record: &str, bytes: &[u8]) -> Option<CanonicalRecord> {
    let schema = catalog.latest(record).ok()?;
    Some(match record {
        "sales_order" => CanonicalRecord::SalesOrder(codec.decode(bytes, schema).await.ok()?),
        "order_status" => CanonicalRecord::OrderStatus(codec.decode(bytes, schema).await.ok()?),
        "shipment" => CanonicalRecord::Shipment(codec.decode(bytes, schema).await.ok()?),
        "invoice" => CanonicalRecord::Invoice(codec.decode(bytes, schema).await.ok()?),
        "payment_status" => CanonicalRecord::PaymentStatus(codec.decode(bytes, schema).await.ok()?),
        "return_authorization" => CanonicalRecord::ReturnAuthorization(codec.decode(bytes, schema).await.ok()?),
        "billing_schedule" => CanonicalRecord::BillingSchedule(codec.decode(bytes, schema).await.ok()?),
        "part_reservation" => CanonicalRecord::PartReservation(codec.decode(bytes, schema).await.ok()?),
        _ => return None,
    })
}

/// Why the tracker stopped.
#[derive(Debug, thiserror::Error)]
pub enum TrackerError {
    #[error("tracker: kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// A timeline that cannot be encoded stops the tracker before its offsets are committed, so
    /// a restart reads the same outputs again; nothing is written in its place.
    #[error("tracker: {0}")]
    Encode(#[from] crate::runtime::state::EncodeError),
}

/// Follows the outputs until `shutdown`, keeping timelines, changelog and gauges current.
pub async fn run(
    t: Arc<Topology>,
    catalog: Arc<Catalog>,
    codec: Arc<Codec>,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), TrackerError> {
    let mut tracker = load(&t).await?;
    info!(orders = tracker.timelines.len(), "tracker restored");
    let topics = tracked_topics(&t);
    let record_of: HashMap<String, String> = topics.iter().cloned().collect();
    let consumer: StreamConsumer<DefaultConsumerContext> = clients::base(&t.kafka)
        .set("group.id", "syncline.tracker")
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create_with_context(DefaultConsumerContext)?;
    let names: Vec<&str> = topics.iter().map(|(t, _)| t.as_str()).collect();
    consumer.subscribe(&names)?;
    let producer = clients::plain_producer(&t.kafka)?;
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        let mut dirty: HashMap<String, ()> = HashMap::new();
        let mut got = 0;
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = tick.tick() => {}
            first = consumer.recv() => {
                let mut next = Some(first);
                while let Some(m) = next.take() {
                    match m {
                        Ok(m) => {
                            got += 1;
                            if let (Some(record), Some(bytes)) = (record_of.get(m.topic()), m.payload())
                                && let Some(canonical) = decode(&codec, &catalog, record, bytes).await
                            {
                                let placed = step_of(&canonical);
                                let timeline = tracker
                                    .timelines
                                    .entry(placed.id.clone())
                                    .or_insert_with(|| Timeline::new(&placed.id));
                                if let Some(kind) = placed.kind {
                                    timeline.kind = kind.to_string();
                                }
                                if timeline.apply(placed.step, placed.status) {
                                    dirty.insert(placed.id, ());
                                }
                            }
                        }
                        Err(e) => warn!(error = %e, "tracker consumer error"),
                    }
                    if got < 500
                        && let Ok(m) = tokio::time::timeout(Duration::from_millis(50), consumer.recv()).await
                    {
                        next = Some(m);
                    }
                }
            }
        }
        if !dirty.is_empty() {
            let mut outbox = Outbox::new(&producer);
            for order in dirty.keys() {
                if let Some(tl) = tracker.timelines.get(order) {
                    let value = crate::runtime::state::json_value("tracker timeline", tl)?;
                    outbox
                        .send(Out {
                            topic: &t.tracker.changelog_topic,
                            partition: None,
                            key: Some(order.as_bytes()),
                            payload: Some(&value),
                            headers: &[],
                        })
                        .await?;
                }
            }
            outbox.flush().await?;
        }
        if got > 0 {
            // After the changelog is written: a crash in between re-reads, and re-applying is a no-op.
            if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
                warn!(error = %e, "tracker offset commit");
            }
        }
        tracker.set_gauges(&metrics, chrono::Utc::now().timestamp_millis());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(what: &str, at: i64) -> Step {
        Step {
            what: what.into(),
            at,
            source_system: "x".into(),
            source_instance: "x".into(),
            event_id: format!("{what}-{at}"),
        }
    }

    #[test]
    fn timelines_move_forward_idempotently() {
        let mut t = Timeline::new("801A");
        assert!(t.apply(step("SUBMITTED", 1), Some(OrderStatusCode::Submitted)));
        assert!(t.apply(step("ACCEPTED", 5), Some(OrderStatusCode::Accepted)));
        assert!(
            !t.apply(step("ACCEPTED", 5), Some(OrderStatusCode::Accepted)),
            "same event twice"
        );
        assert!(
            t.apply(step("CREDIT_HOLD", 3), Some(OrderStatusCode::CreditHold)),
            "recorded"
        );
        assert_eq!(
            (t.state, t.entered_at),
            (OrderStatusCode::Accepted, 5),
            "but the older hold does not win"
        );
        assert_eq!(t.steps.iter().map(|s| s.at).collect::<Vec<_>>(), vec![1, 3, 5]);
    }

    fn meta(id: &str) -> Meta {
        Meta {
            event_id: id.into(),
            idempotency_key: id.into(),
            correlation_id: String::new(),
            causation_id: String::new(),
            source_system: "sap_s4".into(),
            source_instance: "erp-na".into(),
            source_topic: String::new(),
            source_partition: 0,
            source_offset: 0,
            occurred_at: 1,
            processed_at: 1,
        }
    }

    #[test]
    fn returns_join_their_order_and_reservations_have_their_own_timeline() {
        let ret = CanonicalRecord::ReturnAuthorization(ReturnAuthorization {
            meta: meta("r1"),
            rma_id: "6000".into(),
            case_id: "500A".into(),
            order_id: "801A".into(),
            original_invoice_id: None,
            erp_instance: None,
            status: ReturnStatus::GoodsReceived,
            status_at: 7,
            reason: None,
            lines: vec![],
        });
        let placed = step_of(&ret);
        assert_eq!((placed.id.as_str(), placed.kind, placed.status), ("801A", None, None));
        assert_eq!(
            (placed.step.what.as_str(), placed.step.at),
            ("RETURN 6000 GOODS_RECEIVED", 7)
        );
        let res = CanonicalRecord::PartReservation(PartReservation {
            meta: meta("p1"),
            reservation_id: "0TT1".into(),
            work_order_id: None,
            salesforce_product_id: "01t".into(),
            erp_material_id: None,
            quantity: "3".parse().unwrap(),
            unit_of_measure: "EA".into(),
            plant: None,
            status: ReservationStatus::BackOrdered,
            status_at: 9,
            allocated_quantity: None,
            expected_replenishment_date: Some(20_817),
            reason: None,
        });
        let placed = step_of(&res);
        assert_eq!((placed.id.as_str(), placed.kind), ("0TT1", Some("reservation")));
        assert_eq!(placed.step.what, "RESERVATION BACK_ORDERED until 2026-12-30");
        // Not an order: no order state, so not in the order gauges.
        let mut t = Timeline::new("0TT1");
        assert!(t.apply(placed.step, placed.status));
        assert_eq!(t.state, OrderStatusCode::Unknown);
        assert!(render(&t).starts_with("order 0TT1:\n"), "{}", render(&t));
    }
}
