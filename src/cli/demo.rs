//! `syncline demo`: the embedded default run against the local stack.
//!
//! Creates the topology's topics, registers the canonical schemas, publishes one example of
//! every canonical record in a committed Kafka transaction and one in an aborted transaction,
//! then reads the output topics back with a read-committed consumer and prints what came out.

use std::path::Path;
use std::time::Duration;

use rdkafka::message::Message;
use rdkafka::producer::{FutureRecord, Producer};

use crate::config::Topology;
use crate::runtime::clients;
use crate::schema::canonical::{Canonical, OrderStatusCode};
use crate::schema::registry::{self, RegistryClient};
use crate::schema::{Catalog, Codec, examples, render};

use super::CliError;

const TIMEOUT: Duration = Duration::from_secs(30);

pub async fn run(t: &Topology, schema_dir: &Path) -> Result<(), CliError> {
    let catalog = Catalog::load(schema_dir)?;
    println!("== topics");
    let created = clients::ensure_topics(&t.kafka, &clients::topology_topics(t, 3)).await?;
    println!(
        "created {} topic(s){}",
        created.len(),
        if created.is_empty() { " (all existed)" } else { "" }
    );

    println!("\n== schemas");
    let client = RegistryClient::new(&t.registry)?;
    client.wait_ready(TIMEOUT).await?;
    for r in registry::register_all(&client, t, &catalog).await? {
        let what = if r.newly_registered {
            "registered"
        } else {
            "already registered"
        };
        println!("{:<40} {} v{} (id {}) {what}", r.subject, r.record, r.version, r.id);
    }

    let codec = Codec::new(registry::sr_settings(&t.registry)?);
    let now = chrono::Utc::now().timestamp_millis();
    let order = format!("801Dn000001DemoA{}", now % 100);
    let mut batch: Vec<(String, Vec<u8>)> = Vec::new();
    let mut add = |topic: &str, bytes: Vec<u8>| batch.push((topic.to_string(), bytes));
    add(
        "erp.na.sales-order.requests",
        encode(
            &codec,
            &catalog,
            "erp.na.sales-order.requests",
            &examples::sales_order(&order, now),
        )
        .await?,
    );
    add(
        "o2c.order-status",
        encode(
            &codec,
            &catalog,
            "o2c.order-status",
            &examples::order_status(&order, OrderStatusCode::Accepted, now),
        )
        .await?,
    );
    add(
        "o2c.shipment",
        encode(&codec, &catalog, "o2c.shipment", &examples::shipment(&order, now)).await?,
    );
    add(
        "o2c.invoice",
        encode(&codec, &catalog, "o2c.invoice", &examples::invoice(&order, now)).await?,
    );
    add(
        "o2c.payment",
        encode(&codec, &catalog, "o2c.payment", &examples::payment(&order, now)).await?,
    );
    add(
        "o2c.customer",
        encode(
            &codec,
            &catalog,
            "o2c.customer",
            &examples::customer("001Dn00000A1b2cIAB", now),
        )
        .await?,
    );
    let aborted = encode(
        &codec,
        &catalog,
        "o2c.order-status",
        &examples::order_status(&order, OrderStatusCode::Cancelled, now),
    )
    .await?;

    let topics: Vec<&str> = batch.iter().map(|(t, _)| t.as_str()).collect();
    let before = clients::end_offsets(&t.kafka, &topics, TIMEOUT)?;

    println!("\n== produce");
    let producer = clients::transactional_producer(&t.kafka, "syncline-demo", TIMEOUT)?;
    producer.begin_transaction()?;
    for (topic, bytes) in &batch {
        send(&producer, topic, &order, bytes).await?;
    }
    producer.commit_transaction(TIMEOUT)?;
    println!(
        "committed a transaction of {} records (one per canonical record type)",
        batch.len()
    );
    producer.begin_transaction()?;
    send(&producer, "o2c.order-status", &order, &aborted).await?;
    producer.abort_transaction(TIMEOUT)?;
    println!("aborted a transaction holding an OrderStatus CANCELLED (must not be seen)");

    println!("\n== read back (read_committed)");
    let messages = clients::read_committed_since(&t.kafka, &before, TIMEOUT).await?;
    let mut seen_cancelled = false;
    for m in &messages {
        let Some(payload) = m.payload() else { continue };
        let (id, _) = crate::schema::codec::split_header(payload)?;
        let value = codec.decode_value(payload, None).await?;
        let writer = catalog_schema_for(&catalog, m.topic(), t);
        let json = match writer {
            Some(s) => render::to_json(&value, s),
            None => serde_json::json!(format!("{value:?}")),
        };
        if json["status"] == "CANCELLED" {
            seen_cancelled = true;
        }
        println!("{} [p{} @{}] schema id {id}:", m.topic(), m.partition(), m.offset());
        println!("{}", serde_json::to_string_pretty(&json).unwrap_or_default());
    }
    println!(
        "\n{} committed record(s) read back; aborted record visible: {}",
        messages.len(),
        if seen_cancelled { "YES (bug)" } else { "no" }
    );
    if messages.len() != batch.len() || seen_cancelled {
        return Err(CliError::Failed(
            "read-committed output does not match what was committed".into(),
        ));
    }
    Ok(())
}

async fn encode<T: Canonical>(codec: &Codec, catalog: &Catalog, topic: &str, record: &T) -> Result<Vec<u8>, CliError> {
    Ok(codec.encode(topic, catalog.latest(T::RECORD)?, record).await?)
}

async fn send(
    producer: &rdkafka::producer::FutureProducer,
    topic: &str,
    key: &str,
    bytes: &[u8],
) -> Result<(), CliError> {
    producer
        .send(FutureRecord::to(topic).key(key).payload(bytes), TIMEOUT)
        .await
        .map_err(|(e, _)| CliError::Kafka(e))?;
    Ok(())
}

/// The latest local schema of the record written to `topic`, for rendering.
fn catalog_schema_for<'a>(catalog: &'a Catalog, topic: &str, t: &Topology) -> Option<&'a apache_avro::Schema> {
    t.workers
        .iter()
        .flat_map(|w| w.outputs.iter())
        .find(|o| o.topics().any(|x| x == topic))
        .and_then(|o| catalog.latest(&o.schema).ok())
        .map(|s| &s.schema)
}
