//! `syncline_consumer_lag` is reported by the instance that owns a partition, and only by it:
//! when a second instance joins and takes partitions over, the first one drops their series, so
//! `sum by (worker)` over both instances counts every partition once.

use syncline_test_support as common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{Names, Running};

/// The (topic, partition) pairs an instance's registry holds a lag series for.
fn lag_series(running: &Running, worker: &str) -> BTreeSet<(String, String)> {
    running
        .metrics
        .registry
        .gather()
        .iter()
        .filter(|f| f.name() == "syncline_consumer_lag")
        .flat_map(|f| f.get_metric().iter())
        .filter_map(|m| {
            let label = |n: &str| {
                m.get_label()
                    .iter()
                    .find(|l| l.name() == n)
                    .map(|l| l.value().to_string())
            };
            (label("worker")? == worker).then_some((label("topic")?, label("partition")?))
        })
        .collect()
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn lag_series_of_revoked_partitions_are_removed() {
    let names = Names::new("lag");
    names.create_topics(4).await;
    let p = common::producer();
    for seq in 0..40 {
        let order = format!("801L{seq:02}");
        common::produce(&p, &names.input, &order, &common::status_event(&order, seq, "accepted")).await;
    }
    let all: BTreeSet<(String, String)> = (0..4).map(|p| (names.input.clone(), p.to_string())).collect();

    let a = Running::start(&names.topology(20), "a").await;
    eventually("instance a to report every partition", || {
        lag_series(&a, &names.worker) == all
    })
    .await;

    let b = Running::start(&names.topology(20), "b").await;
    eventually("the partitions to be split, each reported once", || {
        let (sa, sb) = (lag_series(&a, &names.worker), lag_series(&b, &names.worker));
        !sa.is_empty()
            && !sb.is_empty()
            && sa.is_disjoint(&sb)
            && sa.union(&sb).cloned().collect::<BTreeSet<_>>() == all
    })
    .await;
    // And it stays so over further statistics rounds (every 5 s).
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (sa, sb) = (lag_series(&a, &names.worker), lag_series(&b, &names.worker));
    assert!(sa.is_disjoint(&sb), "a: {sa:?}, b: {sb:?}");
    assert_eq!(sa.union(&sb).cloned().collect::<BTreeSet<_>>(), all);

    b.stop().await;
    eventually("instance a to take every partition back", || {
        lag_series(&a, &names.worker) == all
    })
    .await;
    // The values are offsets, not placeholders: once everything is consumed they read 0.
    let lag = |r: &Running| -> i64 {
        all.iter()
            .map(|(t, p)| r.metrics.consumer_lag.with_label_values(&[&names.worker, t, p]).get())
            .sum()
    };
    eventually("the backlog to be consumed", || lag(&a) == 0).await;
    a.stop().await;
}
