//! `syncline run` as an operator sees it: /readyz says 503 while the instance has no partition
//! (another group member holds the only one) and flips to 200 once it is assigned, /healthz
//! answers, and /metrics counts exactly what was processed (read with a Prometheus parser).

use syncline_test_support as common;

use std::process::Command;
use std::time::Duration;

use common::Names;
use rdkafka::consumer::{Consumer, StreamConsumer};

async fn get(url: &str) -> (u16, String) {
    let resp = reqwest::get(url).await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// Sum of a metric's samples whose labels include all of `labels`.
fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

#[tokio::test]
async fn metrics_and_health_reflect_what_was_processed() {
    let names = Names::new("obs");
    names.create_topics(1).await;
    let dir = tempfile::tempdir().unwrap();
    let topology = dir.path().join("topology.toml");
    std::fs::write(&topology, names.topology(20)).unwrap();
    let p = common::producer();
    let n = 40u32;
    for seq in 0..n {
        let order = format!("801M{:02}", seq % 9);
        common::produce(&p, &names.input, &order, &common::status_event(&order, seq, "accepted")).await;
    }
    common::produce(
        &p,
        &names.input,
        "801M00",
        &common::status_event("801M00", 0, "accepted"),
    )
    .await; // re-sent
    common::produce(&p, &names.input, "801BAD", b"{oops").await; // poison

    // Another member of the worker's group takes the only partition first.
    let holder: StreamConsumer = syncline::kafka::clients::base(&common::kafka())
        .set("group.id", format!("syncline.{}", names.worker))
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    holder.subscribe(&[&names.input]).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while holder.assignment().unwrap().count() == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the holder got no partition");
        let _ = tokio::time::timeout(Duration::from_millis(200), holder.recv()).await;
    }

    let (mut child, base) = common::spawn_run(&topology, "obs");
    let (status, _) = get(&format!("{base}/healthz")).await;
    assert_eq!(status, 200);
    // Joined, running, but with no partition: not ready. Keep the holder polling meanwhile.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let _ = tokio::time::timeout(Duration::from_millis(100), holder.recv()).await;
        let (status, body) = get(&format!("{base}/readyz")).await;
        assert_eq!(status, 503, "ready without a partition: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["ready"], false, "{body}");
        if v["workers"][0]["state"] == "running" {
            assert_eq!(v["workers"][0]["partitions"], 0, "{body}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never running: {body}");
    }
    // The holder leaves: the partition moves to syncline and readiness flips.
    holder.unsubscribe();
    drop(holder);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = get(&format!("{base}/readyz")).await;
        if status == 200 {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["ready"], true, "{body}");
            assert_eq!(v["workers"][0]["state"], "running", "{body}");
            assert_eq!(v["workers"][0]["partitions"], 1, "{body}");
            break;
        }
        assert_eq!(status, 503, "{body}");
        assert!(tokio::time::Instant::now() < deadline, "never ready: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    common::wait_for(&names.output, n as usize, Duration::from_secs(60)).await;
    common::wait_for(&names.dlq, 1, Duration::from_secs(30)).await;
    common::wait_consumed(&names.worker, &[&names.input], Duration::from_secs(30)).await;
    let (status, text) = get(&format!("{base}/metrics")).await;
    assert_eq!(status, 200);
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    let w = names.worker.as_str();
    assert_eq!(
        value(&scrape, "syncline_events_consumed_total", &[("worker", w)]),
        f64::from(n + 2)
    );
    assert_eq!(
        value(
            &scrape,
            "syncline_events_produced_total",
            &[("worker", w), ("topic", &names.output)]
        ),
        f64::from(n)
    );
    assert_eq!(
        value(&scrape, "syncline_duplicates_skipped_total", &[("worker", w)]),
        1.0
    );
    assert_eq!(
        value(
            &scrape,
            "syncline_dead_letters_total",
            &[("worker", w), ("code", "INVALID_JSON")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &scrape,
            "syncline_events_failed_total",
            &[("worker", w), ("class", "poison"), ("code", "INVALID_JSON")]
        ),
        1.0
    );
    assert_eq!(value(&scrape, "syncline_worker_up", &[("worker", w)]), 1.0);
    assert!(
        value(
            &scrape,
            "syncline_transactions_total",
            &[("worker", w), ("outcome", "committed")]
        ) >= 1.0
    );
    assert!(
        value(
            &scrape,
            "syncline_registry_requests_total",
            &[("operation", "register"), ("outcome", "ok")]
        ) >= 1.0
    );
    assert!(value(&scrape, "syncline_end_to_end_latency_seconds_count", &[("worker", w)]) >= f64::from(n));

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
}
