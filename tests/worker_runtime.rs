//! The worker runtime against the real broker and registry: exactly N out for N in, per-key
//! order, duplicates, dead letters with their headers, sequenced dead letters, and a rebalance
//! between two instances.

use syncline_test_support as common;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use common::{Names, Running};
use rdkafka::message::Message;
use syncline::runtime::dlq::header;
use syncline::schema::canonical::{OrderStatus, OrderStatusCode};
use syncline::schema::{Catalog, Codec};

fn codec() -> Codec {
    Codec::new(syncline::schema::registry::sr_settings(&common::registry()).unwrap())
}

async fn decode_statuses(messages: &[rdkafka::message::OwnedMessage]) -> Vec<OrderStatus> {
    let catalog = Catalog::load(&common::repo_path("schemas")).unwrap();
    let schema = catalog.latest("order_status").unwrap();
    let codec = codec();
    let mut out = Vec::new();
    for m in messages {
        out.push(codec.decode::<OrderStatus>(m.payload().unwrap(), schema).await.unwrap());
    }
    out
}

/// Checks every order's statuses came out in the order its events went in (status_at grows).
fn assert_per_key_order(statuses: &[OrderStatus]) {
    let mut last: BTreeMap<&str, i64> = BTreeMap::new();
    for s in statuses {
        let prev = last.insert(&s.order_id, s.status_at);
        assert!(
            prev.is_none_or(|p| p < s.status_at),
            "order {} went back in time",
            s.order_id
        );
    }
}

#[tokio::test]
async fn n_events_in_exactly_n_outputs_in_per_key_order() {
    let names = Names::new("rt.count");
    names.create_topics(3).await;
    let p = common::producer();
    let n = 300u32;
    for seq in 0..n {
        let order = format!("801ORD{:03}", seq % 25);
        common::produce(&p, &names.input, &order, &common::status_event(&order, seq, "accepted")).await;
    }
    let running = Running::start(&names.topology(50), "a").await;
    let out = common::wait_for(&names.output, n as usize, Duration::from_secs(60)).await;
    // Everything consumed and committed: a wrongly duplicating worker would show it now.
    common::wait_consumed(&names.worker, &[&names.input], Duration::from_secs(60)).await;
    let out = if out.len() == n as usize {
        common::read_all(&names.output).await
    } else {
        out
    };
    assert_eq!(out.len(), n as usize);
    let statuses = decode_statuses(&out).await;
    let ids: HashSet<_> = statuses.iter().map(|s| s.meta.event_id.clone()).collect();
    assert_eq!(ids.len(), n as usize, "every output is a different event");
    for (m, s) in out.iter().zip(&statuses) {
        assert_eq!(
            m.key(),
            Some(s.order_id.as_bytes()),
            "outputs are keyed by correlation id"
        );
        assert_eq!(
            common::header(m, header::OUTPUT_IDEMPOTENCY_KEY),
            Some(s.meta.idempotency_key.as_str())
        );
        assert_eq!(s.status, OrderStatusCode::Accepted);
    }
    assert_per_key_order(&statuses);
    assert_eq!(
        running
            .counted(&running.metrics.produced, &[&names.worker, &names.output], u64::from(n))
            .await,
        u64::from(n)
    );
    assert_eq!(
        running
            .counted(&running.metrics.consumed, &[&names.worker, &names.input], u64::from(n))
            .await,
        u64::from(n)
    );
    assert!(common::read_all(&names.dlq).await.is_empty());
    running.stop().await;
}

#[tokio::test]
async fn a_resent_source_event_produces_one_output() {
    let names = Names::new("rt.dup");
    names.create_topics(1).await;
    let p = common::producer();
    let event = common::status_event("801DUP", 1, "accepted");
    common::produce(&p, &names.input, "801DUP", &event).await;
    let running = Running::start(&names.topology(10), "a").await;
    common::wait_for(&names.output, 1, Duration::from_secs(60)).await;
    // The same event again, in a later batch: the restored/in-memory store must catch it.
    common::produce(&p, &names.input, "801DUP", &event).await;
    common::produce(
        &p,
        &names.input,
        "801DUP",
        &common::status_event("801DUP", 2, "credit_hold"),
    )
    .await;
    let out = common::wait_for(&names.output, 2, Duration::from_secs(60)).await;
    common::wait_consumed(&names.worker, &[&names.input], Duration::from_secs(60)).await;
    assert_eq!(common::read_all(&names.output).await.len(), 2, "{out:?}");
    assert_eq!(
        running.counted(&running.metrics.duplicates, &[&names.worker], 1).await,
        1
    );
    running.stop().await;

    // A restarted worker restores the store from its changelog: a third copy is skipped too.
    common::produce(&p, &names.input, "801DUP", &event).await;
    common::produce(
        &p,
        &names.input,
        "801DUP",
        &common::status_event("801DUP", 3, "accepted"),
    )
    .await;
    let running = Running::start(&names.topology(10), "a").await;
    common::wait_for(&names.output, 3, Duration::from_secs(60)).await;
    common::wait_consumed(&names.worker, &[&names.input], Duration::from_secs(60)).await;
    assert_eq!(common::read_all(&names.output).await.len(), 3);
    assert_eq!(
        running.counted(&running.metrics.duplicates, &[&names.worker], 1).await,
        1
    );
    running.stop().await;
}

#[tokio::test]
async fn poison_goes_to_the_dead_letter_topic_with_every_header_and_the_stream_goes_on() {
    let names = Names::new("rt.poison");
    names.create_topics(1).await;
    let p = common::producer();
    common::produce(&p, &names.input, "801P1", &common::status_event("801P1", 1, "accepted")).await;
    common::produce_with_headers(
        &p,
        &names.input,
        "801P2",
        b"{not json",
        &[("traceparent", "00-abc-def-01")],
    )
    .await;
    common::produce(&p, &names.input, "801P3", &common::status_event("801P3", 3, "accepted")).await;
    let running = Running::start(&names.topology(10), "a").await;
    let out = common::wait_for(&names.output, 2, Duration::from_secs(60)).await;
    assert_eq!(out.len(), 2);
    let dlq = common::wait_for(&names.dlq, 1, Duration::from_secs(30)).await;
    assert_eq!(dlq.len(), 1);
    let d = &dlq[0];
    assert_eq!(d.key(), Some(&b"801P2"[..]));
    assert_eq!(d.payload(), Some(&b"{not json"[..]), "original value unchanged");
    assert_eq!(
        common::header(d, "traceparent"),
        Some("00-abc-def-01"),
        "original headers kept"
    );
    assert_eq!(common::header(d, header::ORIGINAL_TOPIC), Some(names.input.as_str()));
    assert_eq!(common::header(d, header::ORIGINAL_PARTITION), Some("0"));
    assert_eq!(common::header(d, header::ORIGINAL_OFFSET), Some("1"));
    assert!(common::header(d, header::ORIGINAL_TIMESTAMP).is_some());
    assert_eq!(common::header(d, header::WORKER), Some(names.worker.as_str()));
    assert_eq!(common::header(d, header::ERROR_CLASS), Some("poison"));
    assert_eq!(common::header(d, header::ERROR_CODE), Some("INVALID_JSON"));
    assert!(common::header(d, header::ERROR_MESSAGE).is_some_and(|m| m.contains("not JSON")));
    assert_eq!(common::header(d, header::ATTEMPTS), Some("1"));
    assert!(common::header(d, header::FIRST_FAILURE).is_some_and(|t| t.ends_with('Z')));
    assert_eq!(common::header(d, header::CORRELATION_ID), Some("801P2"));
    assert_eq!(
        running
            .counted(&running.metrics.dead_letters, &[&names.worker, "INVALID_JSON"], 1)
            .await,
        1
    );
    running.stop().await;
}

#[tokio::test]
async fn later_events_of_a_dead_lettered_key_are_held_while_other_keys_flow() {
    let names = Names::new("rt.held");
    names.create_topics(1).await;
    let p = common::producer();
    // First event of K has no order reference: a business dead letter.
    let bad = serde_json::json!({"specversion":"1.0","id":"x","source":"/erp/erp-na","type":"io.syncline.erp.salesorder.accepted",
        "time":"2025-11-26T10:00:00Z","data":{"erp_order_id":"5000001"}})
    .to_string();
    common::produce(&p, &names.input, "801K", bad.as_bytes()).await;
    common::produce(
        &p,
        &names.input,
        "801K",
        &common::status_event("801K", 2, "credit_hold"),
    )
    .await;
    common::produce(
        &p,
        &names.input,
        "801OTHER",
        &common::status_event("801OTHER", 3, "accepted"),
    )
    .await;
    common::produce(&p, &names.input, "801K", &common::status_event("801K", 4, "accepted")).await;
    let running = Running::start(&names.topology(10), "a").await;
    let out = common::wait_for(&names.output, 1, Duration::from_secs(60)).await;
    let parked = common::wait_for(&names.parked, 2, Duration::from_secs(30)).await;
    common::wait_consumed(&names.worker, &[&names.input], Duration::from_secs(60)).await;
    let out = if out.len() == 1 {
        common::read_all(&names.output).await
    } else {
        out
    };
    assert_eq!(out.len(), 1, "only the other key flows");
    assert_eq!(out[0].key(), Some(&b"801OTHER"[..]));
    let dlq = common::read_all(&names.dlq).await;
    assert_eq!(dlq.len(), 1);
    assert_eq!(
        common::header(&dlq[0], header::ERROR_CODE),
        Some("MISSING_ORDER_REFERENCE")
    );
    assert_eq!(common::header(&dlq[0], header::ERROR_CLASS), Some("business"));
    assert_eq!(parked.len(), 2, "both later events of K are held, in order");
    let offsets: Vec<&str> = parked
        .iter()
        .filter_map(|m| common::header(m, header::ORIGINAL_OFFSET))
        .collect();
    assert_eq!(offsets, vec!["1", "3"]);
    assert!(
        parked
            .iter()
            .all(|m| common::header(m, header::PARK_REASON) == Some("held-behind-dead-letter"))
    );
    assert_eq!(running.counted(&running.metrics.held, &[&names.worker], 2).await, 2);
    running.stop().await;
}

#[tokio::test]
async fn two_instances_share_partitions_through_a_rebalance_without_duplicates_or_gaps() {
    let names = Names::new("rt.group");
    names.create_topics(4).await;
    let p = common::producer();
    let topology = names.topology(20);
    let first = Running::start(&topology, "a").await;
    let n = 400u32;
    for seq in 0..n / 2 {
        let order = format!("801G{:03}", seq % 40);
        common::produce(&p, &names.input, &order, &common::status_event(&order, seq, "accepted")).await;
    }
    common::wait_for(&names.output, 50, Duration::from_secs(60)).await;
    // A second instance joins mid-stream: the group rebalances while records flow.
    let second = Running::start(&topology, "b").await;
    // Feed the second half once the group has given the new instance partitions.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while second
        .health
        .snapshot()
        .iter()
        .all(|(_, _, partitions)| *partitions == 0)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the second instance never got partitions"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for seq in n / 2..n {
        let order = format!("801G{:03}", seq % 40);
        common::produce(&p, &names.input, &order, &common::status_event(&order, seq, "accepted")).await;
    }
    let out = common::wait_for(&names.output, n as usize, Duration::from_secs(90)).await;
    common::wait_consumed(&names.worker, &[&names.input], Duration::from_secs(60)).await;
    let out = if out.len() == n as usize {
        common::read_all(&names.output).await
    } else {
        out
    };
    let statuses = decode_statuses(&out).await;
    let ids: HashSet<_> = statuses.iter().map(|s| s.meta.idempotency_key.clone()).collect();
    assert_eq!(ids.len(), n as usize, "no gap");
    assert_eq!(statuses.len(), n as usize, "no duplicate");
    assert_per_key_order(&statuses);
    let produced = |r: &Running| r.counter(&r.metrics.produced, &[&names.worker, &names.output]);
    let settled = tokio::time::Instant::now() + Duration::from_secs(10);
    while produced(&first) + produced(&second) < u64::from(n) && tokio::time::Instant::now() < settled {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (a, b) = (produced(&first), produced(&second));
    assert_eq!(a + b, u64::from(n));
    assert!(b > 0, "the second instance got partitions and produced");
    first.stop().await;
    second.stop().await;
}
