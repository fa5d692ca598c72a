//! `syncline demo`: the embedded default run against the local stack.
//!
//! Creates the topology's topics, registers the canonical schemas, loads the sample
//! cross-reference, runs every worker of the topology in this process, publishes the sample
//! Salesforce and ERP events one business step after another (one order through its whole
//! lifecycle, one order whose account is not yet an ERP customer — the account goes through
//! customer governance: suspected a duplicate, approved by the operator, requested, activated by
//! the ERP's answer — a late status, two bad events), and prints what came out: decoded canonical records per topic, dead letters, parked
//! and re-driven records, and the key counters.
//!
//! The ERP events of the order-to-cash story are the vendors' thin ones (SAP notifications, the
//! Dynamics 365 invoice business event): the demo serves their APIs from the local fixture
//! (`samples::vendor_api`) and completes them through it.
//!
//! Why one file of ~580 lines: the demo's script (the steps, their samples and what each prints)
//! is data a reader wants in one place; the code around it is small.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::app::{Options, Process};
use crate::config::{EnrichConfig, Topology};
use crate::kafka::clients::{self, Offsets};
use crate::runtime::dlq::header;
use crate::samples::vendor_api::{D365Invoice, VendorApi};
use crate::schema::registry::{self, RegistryClient};
use crate::schema::{Catalog, Codec, render};
use crate::telemetry::Metrics;

use super::CliError;

const TIMEOUT: Duration = Duration::from_secs(30);

/// One step of the story: publish a sample, then wait for its effect.
struct Step {
    say: &'static str,
    topic: &'static str,
    key: &'static str,
    sample: &'static str,
    /// (topic, records expected there in total since the demo started)
    wait_for: Option<(&'static str, usize)>,
}

const STEPS: &[Step] = &[
    Step {
        say: "Salesforce: order A1 submitted (platform event, CometD envelope)",
        topic: "sf.order.submitted",
        key: "801Dn{{RUN}}A1",
        sample: "salesforce/order_submitted.cometd.json",
        wait_for: Some(("erp.na.sales-order.requests", 1)),
    },
    Step {
        say: "SAP S/4HANA: sales order created for A1 (notification: the order number only; the Salesforce order from API_SALES_ORDER_SRV)",
        topic: "erp.sales-order.events",
        key: "5000{{RUN}}",
        sample: "erp/sap_s4/notification/salesorder.created.json",
        wait_for: Some(("o2c.order-status", 1)),
    },
    Step {
        say: "SAP S/4HANA: a credit block from before the acceptance arrives late (must not be published)",
        topic: "erp.sales-order.events",
        key: "5000{{RUN}}",
        sample: "erp/sap_s4/salesorder.credit_blocked.late.json",
        wait_for: None,
    },
    Step {
        say: "SAP S/4HANA: goods issued for A1 (the delivery number only; items and sales order from API_OUTBOUND_DELIVERY_SRV, the Salesforce order from the learned link)",
        topic: "erp.delivery.events",
        key: "8000{{RUN}}",
        sample: "erp/sap_s4/notification/delivery.gi_status_changed.json",
        wait_for: Some(("o2c.order-status", 2)),
    },
    Step {
        say: "SAP S/4HANA: billing document created for A1 (amounts and items from API_BILLING_DOCUMENT_SRV)",
        topic: "erp.billing.events",
        key: "9000{{RUN}}",
        sample: "erp/sap_s4/notification/billing.created.json",
        wait_for: Some(("o2c.order-status", 3)),
    },
    Step {
        say: "Treasury (generic ERP JSON, binary-mode CloudEvent): payment posted for A1",
        topic: "erp.payment.events",
        key: "PAY-{{RUN}}",
        sample: "erp/generic/payment.posted.binary.json",
        wait_for: Some(("o2c.order-status", 4)),
    },
    Step {
        say: "Salesforce: order B2 for an account the EU ERP does not know yet (Pub/Sub API shape)",
        topic: "sf.order.submitted",
        key: "801Dn{{RUN}}B2",
        sample: "salesforce/order_submitted.pubsub.json",
        wait_for: Some(("syncline.parked", 1)),
    },
    Step {
        say: "Salesforce: the account is created (change event) -> governance: tax id and legal entity checked, named like the known customer Berliner Pumpenwerk AG -> DUPLICATE_SUSPECTED, no CustomerMaster",
        topic: "sf.account.changes",
        key: "001Dn000LATE{{RUN}}",
        sample: "salesforce/account_change.create.json",
        wait_for: Some(("mdm.account-governance", 1)),
    },
];

/// After the operator's review of the account.
const BAD_STEPS: &[Step] = &[
    Step {
        say: "Salesforce: an order with quantity 0 (Kafka Connect record) -> dead letter",
        topic: "sf.order.submitted",
        key: "801Dn{{RUN}}C3",
        sample: "salesforce/order_submitted.connect.json",
        wait_for: None,
    },
    Step {
        say: "Salesforce: a GAP_OVERFLOW change event -> dead letter, the record must be re-synced",
        topic: "sf.account.changes",
        key: "001Dn000ACME{{RUN}}",
        sample: "salesforce/account_change.gap.json",
        wait_for: Some(("syncline.dlq", 2)),
    },
];

/// After the re-drive: the EU ERP (Dynamics 365 F&O, business events on one topic) takes B2 on.
const EU_STEPS: &[Step] = &[Step {
    say: "Dynamics 365 F&O: SalesInvoicePostedBusinessEvent for B2 (accounting-currency amounts, /Date(ms)/ times; currency, totals and the Salesforce order from SalesInvoiceHeadersV2)",
    topic: "erp.eu.d365.events",
    key: "SO-{{RUN}}",
    sample: "erp/d365_fo/invoice.posted.json",
    wait_for: Some(("o2c.order-status", 5)),
}];

/// Where the fixture serves each vendor's API, under its own root.
const SAP_ROOT: &str = "sap/opu/odata/sap";
const D365_ROOT: &str = "d365";

/// The vendors' APIs for the thin events of the story: the local fixture answers as SAP and
/// Dynamics 365 document, and the workers that read thin events complete them through it.
async fn vendor_apis(t: &Topology, run: &str) -> Result<(Topology, VendorApi), CliError> {
    let api = VendorApi::default();
    let addr = api
        .serve(0)
        .await
        .map_err(|e| CliError::Failed(format!("vendor API fixture: {e}")))?;
    let (order, sf_a1) = (format!("5000{run}"), format!("801Dn{run}A1"));
    api.sap_sales_order(SAP_ROOT, &order, &sf_a1);
    api.sap_delivery(SAP_ROOT, &format!("8000{run}"), &order);
    api.sap_billing_document(SAP_ROOT, &format!("9000{run}"), &order);
    api.d365_sales_invoice(
        D365_ROOT,
        &D365Invoice {
            company: "DEMF",
            invoice: &format!("CIV-{run}"),
            order: &format!("SO-{run}"),
            customer: &format!("DE-{run}"),
            salesforce_order: &format!("801Dn{run}B2"),
        },
    );
    let mut t = t.clone();
    for (name, root) in [("s4", SAP_ROOT), ("d365", D365_ROOT)] {
        let cfg = crate::samples::vendor_api::connection(addr, root)
            .map_err(|e| CliError::Failed(format!("vendor API connection: {e}")))?;
        t.api.insert(name.into(), cfg);
    }
    for w in t.workers.iter_mut() {
        let api = match w.name.as_str() {
            "erp-order-status" | "erp-delivery" | "erp-billing" => "s4",
            "erp-eu-d365" => "d365",
            _ => continue,
        };
        w.enrich = Some(EnrichConfig {
            api: api.into(),
            not_found_for: Duration::from_secs(60),
            retry_every: Duration::from_secs(2),
        });
    }
    println!("vendor APIs: SAP OData v2 and Dynamics 365 OData v4 fixture on {addr}");
    Ok((t, api))
}

/// The other workflows: service and returns, subscriptions, field-service parts.
const WORKFLOW_STEPS: &[Step] = &[
    Step {
        say: "Salesforce: a return is requested for A1 (Case, Return_Requested__e platform event)",
        topic: "sf.case.returns",
        key: "500Dn{{RUN}}R1",
        sample: "salesforce/return_requested.cometd.json",
        wait_for: Some(("erp.na.return.requests", 1)),
    },
    Step {
        say: "SAP S/4HANA: return authorized (RMA created)",
        topic: "erp.returns.events",
        key: "6000{{RUN}}",
        sample: "erp/sap_s4/return.created.json",
        wait_for: Some(("service.return-status", 1)),
    },
    Step {
        say: "SAP S/4HANA: returned goods received",
        topic: "erp.returns.events",
        key: "6000{{RUN}}",
        sample: "erp/sap_s4/return.goods_received.json",
        wait_for: Some(("service.return-status", 2)),
    },
    Step {
        say: "SAP S/4HANA: credit memo posted for the return -> CREDIT_MEMO invoice and CREDITED",
        topic: "erp.returns.events",
        key: "6000{{RUN}}",
        sample: "erp/sap_s4/return.credit_memo.json",
        wait_for: Some(("service.return-status", 3)),
    },
    Step {
        say: "Salesforce: Opportunity S1 closed-won with a monitoring subscription (change event)",
        topic: "sf.opportunity.changes",
        key: "006Dn{{RUN}}S1",
        sample: "salesforce/opportunity_change.closed_won.json",
        wait_for: Some(("erp.na.billing-schedule.requests", 1)),
    },
    Step {
        say: "Billing (generic ERP JSON): billing plan created for S1",
        topic: "erp.subscription.events",
        key: "006Dn{{RUN}}S1",
        sample: "erp/generic/billing_plan.created.json",
        wait_for: Some(("subscription.payment-status", 1)),
    },
    Step {
        say: "Treasury: second dunning level on S1's first invoice -> collection risk",
        topic: "erp.subscription.events",
        key: "006Dn{{RUN}}S1",
        sample: "erp/generic/dunning.level2.binary.json",
        wait_for: Some(("subscription.payment-status", 2)),
    },
    Step {
        say: "Salesforce Field Service: a technician reserves 3 seal kits (P1, Pub/Sub API)",
        topic: "sf.part.requests",
        key: "0TTDn{{RUN}}P1",
        sample: "salesforce/part_reservation_requested.pubsub.json",
        wait_for: Some(("erp.part-reservation.requests", 1)),
    },
    Step {
        say: "SAP S/4HANA: P1 back-ordered until 2026-12-30",
        topic: "erp.reservation.events",
        key: "0TTDn{{RUN}}P1",
        sample: "erp/sap_s4/reservation.back_ordered.json",
        wait_for: Some(("field-service.part-reservation", 1)),
    },
    Step {
        say: "SAP S/4HANA: stock arrived, P1 allocated",
        topic: "erp.reservation.events",
        key: "0TTDn{{RUN}}P1",
        sample: "erp/sap_s4/reservation.confirmed.json",
        wait_for: Some(("field-service.part-reservation", 2)),
    },
];

/// The operator's part of customer governance, as `syncline customers pending|approve|show`
/// do it: the account suspected a duplicate is approved, and its CustomerMaster leaves.
async fn review(t: &Topology, run: &str, before: &Offsets) -> Result<Option<String>, CliError> {
    use crate::ops::customers;
    use crate::transforms::governance::decision::{Action, Decision};
    let failed = |e: customers::CustomersError| CliError::Failed(e.to_string());
    let (_, rules) = customers::governance(t).map_err(failed)?;
    let account = format!("001Dn000LATE{run}");
    let table = customers::read(&t.kafka, &t.defaults.xref_topic)
        .await
        .map_err(failed)?;
    for g in customers::pending(&table) {
        let why: Vec<&str> = g.reasons.iter().map(|r| r.message.as_str()).collect();
        println!(
            "   customers pending: {} {} ({})",
            g.salesforce_id,
            g.state.name(),
            why.join("; ")
        );
    }
    println!(
        "-> operator: syncline customers approve {account} --reason \"another company: a different register entry\""
    );
    let decision = Decision {
        account_id: account.clone(),
        decision: Action::Approve,
        version: 0,
        into: None,
        by: "demo".into(),
        at: chrono::Utc::now().timestamp_millis(),
        reason: Some("another company: a different register entry".into()),
    };
    customers::decide(&t.kafka, &table, &rules, decision)
        .await
        .map_err(failed)?;
    if !wait_for(t, before, "erp.eu.customer.requests", 1).await? {
        return Ok(Some("the approved account's CustomerMaster did not leave".into()));
    }
    let table = customers::read(&t.kafka, &t.defaults.xref_topic)
        .await
        .map_err(failed)?;
    if let Some(crate::xref::XrefEntry::Governance(g)) =
        crate::xref::XrefLookup::get(&table, &crate::xref::reference("governance", &account))
    {
        for line in customers::render(g).lines() {
            println!("   {line}");
        }
    }
    Ok(None)
}

/// Publishes each step's sample and waits for its effect; the first step without one fails.
async fn play(
    t: &Topology,
    producer: &FutureProducer,
    samples: &Path,
    run: &str,
    before: &Offsets,
    steps: &[Step],
) -> Result<Option<String>, CliError> {
    for step in steps {
        println!("-> {}", step.say);
        let record =
            crate::samples::load(&samples.join(step.sample), run).map_err(|e| CliError::Failed(e.to_string()))?;
        let headers: Vec<(&str, &[u8])> = record.headers.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
        send(
            producer,
            step.topic,
            &step.key.replace("{{RUN}}", run),
            &record.value,
            &headers,
        )
        .await?;
        if let Some((topic, n)) = step.wait_for
            && !wait_for(t, before, topic, n).await?
        {
            return Ok(Some(format!("nothing arrived on {topic} after: {}", step.say)));
        }
    }
    Ok(None)
}

pub async fn run(t: &Topology, schema_dir: &Path) -> Result<(), CliError> {
    let catalog = Arc::new(Catalog::load(schema_dir)?);
    let samples = schema_dir.parent().unwrap_or(Path::new(".")).join("samples");
    let run = format!("{:08x}", chrono::Utc::now().timestamp() as u32);
    println!("== set-up (run {run})");
    let (with_apis, api) = vendor_apis(t, &run).await?;
    let t = &with_apis;
    let created = clients::ensure_topics(&t.kafka, &clients::topology_topics(t, 3)).await?;
    println!("topics: {} created", created.len());
    let client = RegistryClient::new(&t.registry)?;
    client.wait_ready(TIMEOUT).await?;
    let regs = registry::register_all(&client, &t.output_subjects(), &catalog).await?;
    println!("schemas: {} subjects registered or up to date (BACKWARD)", regs.len());

    let watched: Vec<&str> = watched_topics(t);
    let before = clients::end_offsets(&t.kafka, &watched, TIMEOUT).await?;
    let producer = clients::plain_producer(&t.kafka)?;
    for file in ["mdm/xref.json", "mdm/xref.customers.json"] {
        for (key, value) in
            crate::samples::xref_records(&samples.join(file), &run).map_err(|e| CliError::Failed(e.to_string()))?
        {
            send(&producer, &t.defaults.xref_topic, &key, &value, &[]).await?;
        }
    }
    println!(
        "master data: account ACME, products PUMP and SEAL, unit Box=12 EA, known customer Berliner Pumpenwerk AG published to {}",
        t.defaults.xref_topic
    );

    let process = Process::start(
        t.clone(),
        catalog.clone(),
        Options {
            instance: "demo".into(),
            tracker: true,
            ..Options::default()
        },
    )
    .await?;
    let metrics = process.metrics.clone();
    println!("workers: {} started in this process\n", t.workers.len());

    println!("== the story");
    let mut failed = play(t, &producer, &samples, &run, &before, STEPS).await?;
    if failed.is_none() {
        failed = review(t, &run, &before).await?;
    }
    if failed.is_none() {
        failed = play(t, &producer, &samples, &run, &before, BAD_STEPS).await?;
    }
    if failed.is_none() {
        println!(
            "-> EU ERP answers: account LATE is customer DE-{run} (mdm.xref) -> the account is ACTIVE and the parked order B2 flows by itself"
        );
        for (key, value) in crate::samples::xref_records(&samples.join("mdm/xref.late.json"), &run)
            .map_err(|e| CliError::Failed(e.to_string()))?
        {
            send(&producer, &t.defaults.xref_topic, &key, &value, &[]).await?;
        }
        if !wait_for(t, &before, "erp.eu.sales-order.requests", 1).await? {
            failed = Some("the parked order was not re-driven".into());
        } else if !wait_for(t, &before, "mdm.account-governance", 3).await? {
            failed = Some("the account did not become ACTIVE".into());
        }
    }
    if failed.is_none() {
        failed = play(t, &producer, &samples, &run, &before, EU_STEPS).await?;
    }
    if failed.is_none() {
        println!("\n== service and returns, subscriptions, field-service parts");
        failed = play(t, &producer, &samples, &run, &before, WORKFLOW_STEPS).await?;
    }
    // Let the last transactions settle, and the tracker follow them, before reading.
    let tracked_ids = [
        format!("801Dn{run}A1"),
        format!("801Dn{run}B2"),
        format!("006Dn{run}S1"),
        format!("0TTDn{run}P1"),
    ];
    if t.tracker.enabled {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while tokio::time::Instant::now() < deadline {
            let tracked = crate::ops::tracker::load(t).await?;
            let steps = |id: &String| tracked.timelines.get(id).map_or(0, |tl| tl.steps.len());
            // A1: its lifecycle, the return's four steps and the credit memo; P1: three steps.
            if tracked_ids.iter().all(|o| steps(o) > 0) && steps(&tracked_ids[0]) >= 10 && steps(&tracked_ids[3]) >= 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    process.stop();
    process.wait().await?;

    let codec = Codec::new(registry::sr_settings(&t.registry)?);
    print_outputs(t, &catalog, &codec, &before).await?;
    print_counters(&metrics);
    println!(
        "{:<45} {} (one per document: later events of a document use the learned links)",
        "vendor API calls (fixture)",
        api.total_calls()
    );
    if t.tracker.enabled {
        println!(
            "\n== timelines (business transaction tracker): orders with their returns, a subscription, a reservation"
        );
        let tracked = crate::ops::tracker::load(t).await?;
        for id in &tracked_ids {
            match tracked.timelines.get(id) {
                Some(tl) => print!("{}", crate::ops::tracker::render(tl)),
                None => println!("{id}: not tracked yet"),
            }
        }
    }
    match failed {
        Some(why) => Err(CliError::Failed(why)),
        None => Ok(()),
    }
}

fn watched_topics(t: &Topology) -> Vec<&str> {
    let mut topics: Vec<&str> = t
        .workers
        .iter()
        .flat_map(|w| w.outputs.iter().flat_map(|o| o.topics()))
        .chain([t.defaults.dead_letter_topic.as_str(), t.defaults.parked_topic.as_str()])
        .collect();
    topics.sort();
    topics.dedup();
    topics
}

async fn send(
    producer: &FutureProducer,
    topic: &str,
    key: &str,
    value: &[u8],
    headers: &[(&str, &[u8])],
) -> Result<(), CliError> {
    let mut h = rdkafka::message::OwnedHeaders::new();
    for (k, v) in headers {
        h = h.insert(rdkafka::message::Header {
            key: k,
            value: Some(*v),
        });
    }
    producer
        .send(FutureRecord::to(topic).key(key).payload(value).headers(h), TIMEOUT)
        .await
        .map_err(|(e, _)| CliError::Kafka(e))?;
    Ok(())
}

/// Waits until `topic` has `n` committed records since the demo started.
async fn wait_for(t: &Topology, before: &Offsets, topic: &str, n: usize) -> Result<bool, CliError> {
    let from: Offsets = before
        .iter()
        .filter(|((tp, _), _)| tp == topic)
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while tokio::time::Instant::now() < deadline {
        if clients::read_committed_since(&t.kafka, &from, TIMEOUT).await?.len() >= n {
            return Ok(true);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(false)
}

async fn print_outputs(t: &Topology, catalog: &Catalog, codec: &Codec, before: &Offsets) -> Result<(), CliError> {
    let messages = clients::read_committed_since(&t.kafka, before, TIMEOUT).await?;
    let mut by_topic: BTreeMap<&str, Vec<&OwnedMessage>> = BTreeMap::new();
    for m in &messages {
        by_topic.entry(m.topic()).or_default().push(m);
    }
    let schema_of = |topic: &str| {
        t.workers
            .iter()
            .flat_map(|w| w.outputs.iter())
            .find(|o| o.topics().any(|x| x == topic))
            .and_then(|o| catalog.latest(&o.schema).ok())
    };
    for (topic, records) in &by_topic {
        // Dead letters and parked records are listed below; a status gate's internal topic holds
        // what the public status topic shows, forward moves only.
        let internal = t
            .workers
            .iter()
            .any(|w| w.transform == "status_gate" && w.inputs.iter().any(|i| i == topic));
        if *topic == t.defaults.dead_letter_topic || *topic == t.defaults.parked_topic || internal {
            continue;
        }
        println!("\n== {topic} ({} record(s))", records.len());
        for m in records {
            let key = m.key().map(String::from_utf8_lossy).unwrap_or_default();
            let json = match (m.payload(), schema_of(topic)) {
                (Some(p), Some(s)) => render::to_json(&codec.decode_value(p, Some(&s.schema)).await?, &s.schema),
                _ => serde_json::json!("<undecodable>"),
            };
            println!(
                "key {key}:\n{}",
                serde_json::to_string_pretty(&json).unwrap_or_default()
            );
        }
    }
    let header_of = |m: &OwnedMessage, name: &str| -> String {
        m.headers()
            .and_then(|h| h.iter().find(|x| x.key == name).and_then(|x| x.value))
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default()
    };
    println!("\n== dead letters ({})", t.defaults.dead_letter_topic);
    for m in by_topic
        .get(t.defaults.dead_letter_topic.as_str())
        .into_iter()
        .flatten()
    {
        println!(
            "{}:{} from {} [{}] {}: {}",
            m.partition(),
            m.offset(),
            header_of(m, header::ORIGINAL_TOPIC),
            header_of(m, header::ERROR_CLASS),
            header_of(m, header::ERROR_CODE),
            header_of(m, header::ERROR_MESSAGE)
        );
    }
    println!("\n== parked ({})", t.defaults.parked_topic);
    for m in by_topic.get(t.defaults.parked_topic.as_str()).into_iter().flatten() {
        println!(
            "{}:{} from {} ({}) waiting for {}",
            m.partition(),
            m.offset(),
            header_of(m, header::ORIGINAL_TOPIC),
            header_of(m, header::PARK_REASON),
            header_of(m, header::PARK_REF)
        );
    }
    Ok(())
}

fn print_counters(m: &Metrics) {
    println!("\n== counters");
    for family in m.registry.gather() {
        let total: f64 = family.get_metric().iter().map(|x| x.get_counter().get_value()).sum();
        if family.get_field_type() == prometheus::proto::MetricType::COUNTER && total > 0.0 {
            println!("{:<45} {total}", family.name());
        }
    }
}
