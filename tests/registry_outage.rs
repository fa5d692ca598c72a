//! A registry outage is back-pressure, not bad data: the worker retries, writes no dead letter,
//! and produces everything once the registry is back. (Own test binary: it stops the shared
//! registry, which no other test may see.)

mod common;

use std::time::Duration;

use common::{Names, Running};

#[tokio::test]
async fn registry_outage_delays_output_without_dead_letters() {
    let names = Names::new("outage");
    names.create_topics(2).await;
    let p = common::producer();
    let n = 60;
    for seq in 0..n {
        let order = format!("801O{:02}", seq % 7);
        common::produce(&p, &names.input, &order, &common::status_event(&order, seq, "accepted")).await;
    }
    common::stack(&["stop", "registry"]);
    let client = syncline::schema::registry::RegistryClient::new(&common::registry()).unwrap();
    assert!(
        client.subjects().await.is_err(),
        "the registry must really be down for this test"
    );

    // A fresh worker must reach the registry to register its output schema: it cannot.
    let running = Running::start(&names.topology(20), "a").await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(
        common::read_all(&names.output).await.is_empty(),
        "nothing can be encoded without the registry"
    );
    assert!(
        common::read_all(&names.dlq).await.is_empty(),
        "an outage is not a reason to dead-letter"
    );
    let retries = running.counter(&running.metrics.retries, &[&names.worker, "REGISTRY_UNAVAILABLE"]);
    assert!(retries > 0, "the worker retried");

    common::stack(&["start", "registry"]);
    let out = common::wait_for(&names.output, n as usize, Duration::from_secs(90)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        common::read_all(&names.output).await.len(),
        n as usize,
        "got {}",
        out.len()
    );
    assert!(common::read_all(&names.dlq).await.is_empty());
    running.stop().await;
}
