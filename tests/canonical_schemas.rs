//! Canonical schemas against the real registry: round trips, exact decimals, evolution both ways,
//! incompatible changes refused, and garbage decoded into specific errors.

use syncline_test_support as common;

use std::path::Path;
use std::process::Command;

use apache_avro::types::Value;
use syncline::schema::canonical::*;
use syncline::schema::registry::{self, RegistryClient, RegistryError};
use syncline::schema::{Catalog, Codec, CodecError, compat, examples};

fn catalog() -> Catalog {
    Catalog::load(&common::repo_path("schemas")).unwrap()
}

fn codec() -> Codec {
    Codec::new(registry::sr_settings(&common::registry()).unwrap())
}

async fn round_trip<T: Canonical + PartialEq + std::fmt::Debug>(codec: &Codec, catalog: &Catalog, record: T) {
    let topic = common::unique(&format!("rt.{}", T::RECORD));
    let schema = catalog.latest(T::RECORD).unwrap();
    let bytes = codec
        .encode(&topic, schema, &record)
        .await
        .unwrap_or_else(|e| panic!("{}: {e} (the registry must be running)", T::RECORD));
    assert_eq!(bytes[0], 0);
    let back: T = codec.decode(&bytes, schema).await.unwrap();
    assert_eq!(back, record, "{} changed in the round trip", T::RECORD);
}

#[tokio::test]
async fn every_record_type_round_trips_through_the_registry() {
    let (codec, catalog) = (codec(), catalog());
    let now = 1_764_000_000_000;
    round_trip(&codec, &catalog, examples::sales_order("801A", now)).await;
    round_trip(
        &codec,
        &catalog,
        examples::order_status("801A", OrderStatusCode::CreditHold, now),
    )
    .await;
    round_trip(&codec, &catalog, examples::shipment("801A", now)).await;
    round_trip(&codec, &catalog, examples::invoice("801A", now)).await;
    round_trip(&codec, &catalog, examples::payment("801A", now)).await;
    round_trip(&codec, &catalog, examples::customer("001A", now)).await;
    round_trip(&codec, &catalog, examples::return_authorization("801A", now)).await;
    round_trip(&codec, &catalog, examples::billing_schedule("006A", now)).await;
    round_trip(&codec, &catalog, examples::part_reservation("0TTA", now)).await;
}

#[tokio::test]
async fn decimals_survive_exactly_and_extra_precision_is_rejected() {
    let (codec, catalog) = (codec(), catalog());
    let mut order = examples::sales_order("801D", 0);
    order.total_amount = "12345678.90".parse().unwrap();
    order.lines[0].quantity = "0.001".parse().unwrap();
    order.lines[0].unit_price = "-0.0001".parse().unwrap();
    let topic = common::unique("dec");
    let schema = catalog.latest("sales_order").unwrap();
    let bytes = codec.encode(&topic, schema, &order).await.unwrap();
    let back: SalesOrder = codec.decode(&bytes, schema).await.unwrap();
    assert_eq!(back.total_amount.to_string(), "12345678.90");
    assert_eq!(back.lines[0].quantity.to_string(), "0.001");
    assert_eq!(back.lines[0].unit_price.to_string(), "-0.0001");
    // The documented rule: never rounded, never truncated.
    let err = "0.005".parse::<syncline::schema::decimal::Money>().unwrap_err();
    assert!(err.to_string().contains("more than 2 decimal places"), "{err}");
}

#[tokio::test]
async fn v1_reader_reads_v2_data_and_v2_reader_reads_v1_data() {
    let (codec, catalog) = (codec(), catalog());
    let v1 = catalog.version("order_status", 1).unwrap();
    let v2 = catalog.version("order_status", 2).unwrap();
    let topic = common::unique("evo");
    let status = examples::order_status("801E", OrderStatusCode::CreditHold, 0);
    assert!(status.hold_reason.is_some());

    // Written with v2, read by a v1 reader: the new fields are simply not there.
    let v2_bytes = codec.encode(&topic, v2, &status).await.unwrap();
    let as_v1 = codec.decode_value(&v2_bytes, Some(&v1.schema)).await.unwrap();
    let Value::Record(fields) = &as_v1 else {
        panic!("not a record: {as_v1:?}")
    };
    assert!(fields.iter().all(|(n, _)| n != "hold_reason"));
    assert!(
        fields
            .iter()
            .any(|(n, v)| n == "status" && *v == Value::Enum(4, "CREDIT_HOLD".into()))
    );

    // Written with v1 (under the same BACKWARD subject), read by v2: defaults fill the gaps.
    let v1_bytes = codec.encode(&topic, v1, &status).await.unwrap();
    assert_ne!(v1_bytes[1..5], v2_bytes[1..5], "v1 and v2 have different schema ids");
    let read: OrderStatus = codec.decode(&v1_bytes, v2).await.unwrap();
    assert_eq!(read.hold_reason, None);
    assert_eq!(read.expected_delivery_date, None);
    assert_eq!(read.status, OrderStatusCode::CreditHold);
}

fn schemas_with_incompatible_fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&common::repo_path("schemas"), dir.path());
    copy_dir(&common::repo_path("tests/fixtures/incompatible"), dir.path());
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn schemas_check_passes_on_the_repo_and_names_the_breaking_field() {
    assert!(compat::check(&common::repo_path("schemas")).is_ok());
    let dir = schemas_with_incompatible_fixture();
    let findings = compat::check(dir.path()).unwrap_err();
    assert_eq!(findings.len(), 1, "{findings:?}");
    let msg = findings[0].to_string();
    assert!(
        msg.contains("order_status") && msg.contains("v3") && msg.contains("v2"),
        "{msg}"
    );
    assert!(msg.contains("priority"), "the breaking field must be named: {msg}");

    // The CLI says the same and exits non-zero.
    let out = Command::new(env!("CARGO_BIN_EXE_syncline"))
        .args(["schemas", "check", "--schemas"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("priority"));
    let ok = Command::new(env!("CARGO_BIN_EXE_syncline"))
        .args(["schemas", "check", "--schemas"])
        .arg(common::repo_path("schemas"))
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
}

#[tokio::test]
async fn the_registry_refuses_the_incompatible_version() {
    let client = RegistryClient::new(&common::registry()).unwrap();
    let subject = format!("{}-value", common::unique("refuse"));
    let v2 = catalog().version("order_status", 2).unwrap().raw.clone();
    client.register(&subject, &v2).await.unwrap();
    client.set_compatibility(&subject, "BACKWARD").await.unwrap();
    let dir = schemas_with_incompatible_fixture();
    let v3 = std::fs::read_to_string(dir.path().join("order_status/v3.avsc")).unwrap();
    match client.register(&subject, &v3).await {
        Err(RegistryError::Refused { status, .. }) => assert_eq!(status, 409),
        other => panic!("an incompatible schema must be refused, got {other:?}"),
    }
}

#[tokio::test]
async fn garbage_decodes_to_specific_errors() {
    let (codec, catalog) = (codec(), catalog());
    let schema = catalog.latest("order_status").unwrap();
    assert_eq!(
        codec.decode::<OrderStatus>(b"{\"json\":1}", schema).await,
        Err(CodecError::WrongMagic(b'{'))
    );
    assert_eq!(
        codec.decode::<OrderStatus>(&[0, 0, 1], schema).await,
        Err(CodecError::Truncated(3))
    );
    assert_eq!(codec.decode::<OrderStatus>(&[], schema).await, Err(CodecError::Empty));
    assert_eq!(
        codec
            .decode::<OrderStatus>(&[0, 0x7f, 0xff, 0xff, 0xf0, 2], schema)
            .await,
        Err(CodecError::UnknownSchemaId(0x7fff_fff0))
    );
    let good = codec
        .encode(
            &common::unique("garbage"),
            schema,
            &examples::order_status("801G", OrderStatusCode::Accepted, 0),
        )
        .await
        .unwrap();
    let truncated = &good[..good.len() / 2];
    assert!(matches!(
        codec.decode::<OrderStatus>(truncated, schema).await,
        Err(CodecError::Malformed { .. })
    ));
    let mut trailing = good.clone();
    trailing.extend_from_slice(b"junk");
    assert!(matches!(
        codec.decode::<OrderStatus>(&trailing, schema).await,
        Err(CodecError::TrailingBytes { trailing: 4, .. })
    ));
}

#[tokio::test]
async fn register_is_idempotent_and_sets_backward() {
    let mut topology = syncline::config::parse(
        &std::fs::read_to_string(common::repo_path("topology.toml")).unwrap(),
        &std::collections::HashMap::<String, String>::new(),
        &Catalog::record_names(&common::repo_path("schemas")),
    )
    .unwrap();
    // Own topic names, so this run starts from subjects nobody registered.
    let suffix = common::unique("reg");
    for w in &mut topology.workers {
        for o in &mut w.outputs {
            o.topic = o.topic.as_ref().map(|t| format!("{t}.{suffix}"));
            for topic in o.routes.values_mut() {
                *topic = format!("{topic}.{suffix}");
            }
        }
    }
    let client = RegistryClient::new(&common::registry()).unwrap();
    let catalog = catalog();
    let first = registry::register_all(&client, &topology.output_subjects(), &catalog)
        .await
        .unwrap();
    let mut topics: Vec<&str> = topology
        .workers
        .iter()
        .flat_map(|w| w.outputs.iter().flat_map(|o| o.topics()))
        .collect();
    topics.sort();
    topics.dedup();
    assert_eq!(first.len(), topics.len(), "one subject per output topic");
    assert_eq!(first.len(), 18, "the public topics and the status gate's internal one");
    assert!(first.iter().all(|r| r.newly_registered && r.compatibility_changed));
    let second = registry::register_all(&client, &topology.output_subjects(), &catalog)
        .await
        .unwrap();
    assert!(
        second.iter().all(|r| !r.newly_registered && !r.compatibility_changed),
        "{second:?}"
    );
    let subjects = client.subjects().await.unwrap();
    for r in &second {
        assert!(subjects.contains(&r.subject));
        assert_eq!(
            client.compatibility(&r.subject).await.unwrap().as_deref(),
            Some("BACKWARD")
        );
    }
    assert_eq!(
        first.iter().map(|r| r.id).collect::<Vec<_>>(),
        second.iter().map(|r| r.id).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn every_version_of_every_schema_registers_in_order_under_backward() {
    // Including the records no worker writes yet: the registry accepts each, and each evolution
    // step passes the registry's own BACKWARD rule, not only `schemas check`.
    let client = RegistryClient::new(&common::registry()).unwrap();
    let catalog = catalog();
    let mut records = 0;
    for (record, versions) in catalog.records() {
        let subject = format!("{}-value", common::unique(&format!("all.{record}")));
        let mut ids = Vec::new();
        for (i, v) in versions.iter().enumerate() {
            ids.push(
                client
                    .register(&subject, &v.raw)
                    .await
                    .unwrap_or_else(|e| panic!("{record} v{}: {e}", v.version)),
            );
            if i == 0 {
                client.set_compatibility(&subject, "BACKWARD").await.unwrap();
            }
        }
        ids.dedup();
        assert_eq!(ids.len(), versions.len(), "{record}: each version is a new schema");
        records += 1;
    }
    assert!(records >= 9, "{records} records");
}
