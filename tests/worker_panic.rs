//! A worker whose task panics (a bug, made here by the test-only fault-injection hook) is
//! restarted by the supervisor like a failing one: counted in `syncline_worker_restarts_total`,
//! shown by `/readyz` as not running (503, with the reason) until it is back, and the records of
//! the batch it dropped come out once the new worker reads them again: none lost, none doubled.

use syncline_test_support as common;

use std::time::Duration;

use common::{Names, Running};
use tokio::sync::watch;

async fn readyz(base: &str) -> (u16, serde_json::Value) {
    let resp = reqwest::get(format!("{base}/readyz")).await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

/// Polls `/readyz` until `done` holds for its answer; returns that answer.
async fn until(base: &str, what: &str, done: impl Fn(u16, &serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = readyz(base).await;
        if done(status, &body) {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_panicking_worker_is_restarted_and_readiness_flips_and_recovers() {
    let names = Names::new("panic");
    names.create_topics(1).await;
    let running = Running::start(&names.topology(20), "a").await;
    let (_stop_http, stop_rx) = watch::channel(false);
    let addr = syncline::ops::http::serve(
        "127.0.0.1:0".parse().unwrap(),
        running.metrics.clone(),
        running.health.clone(),
        stop_rx,
    )
    .await
    .unwrap();
    let base = format!("http://{addr}");
    until(&base, "ready", |status, _| status == 200).await;

    let p = common::producer();
    for seq in 0..10 {
        let order = format!("801P{seq:02}");
        common::produce(&p, &names.input, &order, &common::status_event(&order, seq, "accepted")).await;
    }
    common::wait_for(&names.output, 10, Duration::from_secs(60)).await;

    // The marked record makes the worker collecting it panic, once.
    common::produce(
        &p,
        &names.input,
        syncline::faults::PANIC_KEY,
        &common::status_event("801P10", 10, "accepted"),
    )
    .await;
    // The supervisor waits its backoff (>= 400 ms) in `restarting`: polled every 20 ms, that is
    // the first answer that is not ready.
    let down = until(&base, "readiness to drop", |status, _| status != 200).await;
    let (status, _) = readyz(&base).await;
    assert_eq!(status, 503);
    let worker = &down["workers"][0];
    assert_eq!(down["ready"], false, "{down}");
    assert_eq!(worker["worker"], format!("{}/a", names.worker), "{down}");
    assert_eq!(worker["state"], "restarting", "{down}");
    assert_eq!(worker["partitions"], 0, "{down}");
    let detail = worker["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("panicked") && detail.contains("fault injection"),
        "{down}"
    );
    let up = until(&base, "readiness to recover", |status, _| status == 200).await;
    assert_eq!(up["workers"][0]["state"], "running", "{up}");

    assert_eq!(
        running
            .counted(&running.metrics.worker_restarts, &[&names.worker, "panic"], 1)
            .await,
        1
    );
    assert_eq!(
        running.metrics.worker_up.with_label_values(&[&names.worker]).get(),
        1,
        "up again"
    );
    for seq in 11..20 {
        let order = format!("801P{seq:02}");
        common::produce(&p, &names.input, &order, &common::status_event(&order, seq, "accepted")).await;
    }
    common::wait_consumed(&names.worker, &[&names.input], Duration::from_secs(60)).await;
    let out = common::read_all(&names.output).await;
    let per_key = common::count_by_idempotency_key(&out);
    assert_eq!(per_key.len(), 20, "every event, the one that met the panic too");
    assert!(per_key.values().all(|c| *c == 1), "no duplicate after the restart");
    assert!(common::read_all(&names.dlq).await.is_empty(), "a panic is not bad data");
    running.stop().await;
}
