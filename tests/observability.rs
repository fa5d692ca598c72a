//! `syncline run` as an operator sees it: /readyz flips once partitions are assigned, /healthz
//! answers, and /metrics counts exactly what was processed (read with a Prometheus parser).

mod common;

use std::process::Command;
use std::time::Duration;

use common::Names;

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
    names.create_topics(2).await;
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

    let (mut child, base) = common::spawn_run(&topology, "obs");

    let (status, _) = get(&format!("{base}/healthz")).await;
    assert_eq!(status, 200);
    // Ready only once partitions are assigned: poll until it flips, having seen it not ready or
    // already past assignment (a fast broker may assign before the first poll).
    let mut statuses = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = get(&format!("{base}/readyz")).await;
        statuses.push(status);
        if status == 200 {
            assert!(body.contains("\"ready\":true"), "{body}");
            break;
        }
        assert_eq!(status, 503, "{body}");
        assert!(tokio::time::Instant::now() < deadline, "never ready: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    common::wait_for(&names.output, n as usize, Duration::from_secs(60)).await;
    common::wait_for(&names.dlq, 1, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
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
