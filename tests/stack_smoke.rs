//! Smoke tests of the real stack: Kafka transactions and the registry's wire format.

use syncline_test_support as common;

use std::time::Duration;

use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use schema_registry_converter::async_impl::avro::{AvroDecoder, AvroEncoder};
use schema_registry_converter::async_impl::schema_registry::SrSettings;
use schema_registry_converter::schema_registry_common::{SchemaType, SubjectNameStrategy, SuppliedSchema};
use syncline::kafka::clients;

async fn send(p: &FutureProducer, topic: &str, key: &str, value: &str) {
    p.send(FutureRecord::to(topic).key(key).payload(value), Duration::from_secs(10))
        .await
        .map_err(|(e, _)| e)
        .expect("send");
}

#[tokio::test]
async fn read_committed_consumer_sees_only_committed_transactions() {
    let topic = common::unique("smoke.txn");
    common::topics(&[&topic], 1).await;
    let before = clients::end_offsets(&common::kafka(), &[&topic], common::TIMEOUT)
        .await
        .unwrap();

    let producer = clients::transactional_producer(&common::kafka(), &common::unique("smoke-txn"), common::TIMEOUT)
        .await
        .unwrap();
    producer.begin_transaction().unwrap();
    send(&producer, &topic, "k", "committed-1").await;
    send(&producer, &topic, "k", "committed-2").await;
    producer.commit_transaction(common::TIMEOUT).unwrap();
    producer.begin_transaction().unwrap();
    send(&producer, &topic, "k", "aborted").await;
    producer.abort_transaction(common::TIMEOUT).unwrap();
    producer.begin_transaction().unwrap();
    send(&producer, &topic, "k", "committed-3").await;
    producer.commit_transaction(common::TIMEOUT).unwrap();

    let seen: Vec<String> = clients::read_committed_since(&common::kafka(), &before, common::TIMEOUT)
        .await
        .unwrap()
        .iter()
        .map(|m| String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned())
        .collect();
    assert_eq!(seen, vec!["committed-1", "committed-2", "committed-3"]);
}

#[tokio::test]
async fn registry_round_trip_in_confluent_wire_format() {
    let settings = SrSettings::new(common::registry().url);
    let topic = common::unique("smoke.avro");
    let raw = r#"{"type":"record","name":"Ping","namespace":"io.syncline.test","fields":[{"name":"n","type":"long"},{"name":"s","type":"string"}]}"#;
    let strategy = SubjectNameStrategy::TopicNameStrategyWithSchema(
        topic.clone(),
        false,
        SuppliedSchema::new(Some("io.syncline.test.Ping".into()), SchemaType::Avro, raw.into()),
    );
    #[derive(serde::Serialize)]
    struct Ping {
        n: i64,
        s: String,
    }
    let bytes = AvroEncoder::new(settings.clone())
        .encode_struct(
            Ping {
                n: 42,
                s: "hello".into(),
            },
            &strategy,
        )
        .await
        .expect("the schema registry must be running (make test starts it)");
    assert_eq!(bytes[0], 0, "magic byte");
    let id = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    assert!(id > 0);

    let decoded = AvroDecoder::new(settings).decode(Some(&bytes)).await.unwrap();
    assert_eq!(
        decoded.value,
        apache_avro::types::Value::Record(vec![
            ("n".into(), apache_avro::types::Value::Long(42)),
            ("s".into(), apache_avro::types::Value::String("hello".into())),
        ])
    );
    // And the registry really holds it under TopicNameStrategy.
    let client = syncline::schema::registry::RegistryClient::new(&common::registry()).unwrap();
    assert!(client.subjects().await.unwrap().contains(&format!("{topic}-value")));
}
