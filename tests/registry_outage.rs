//! A registry outage is back-pressure, not bad data: the worker retries, writes no dead letter,
//! and produces everything once the registry is back. The registry comes back while another
//! process holds port 9000 (Quarkus's default management port), refuses to start with a clear
//! message while its own management port is taken, and listens on loopback only. (Own test
//! binary: it stops the shared registry, which no other test may see.)

use syncline_test_support as common;

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
    let _restart = common::RestartStack;
    common::stack(&["stop", "registry"]);
    let client = syncline::schema::registry::RegistryClient::new(&common::registry()).unwrap();
    assert!(
        client.subjects().await.is_err(),
        "the registry must really be down for this test"
    );

    // A fresh worker must reach the registry to register its output schema: it cannot.
    let running = Running::start(&names.topology(20), "a").await;
    let retrying = tokio::time::Instant::now() + Duration::from_secs(60);
    while running.counter(&running.metrics.retries, &[&names.worker, "REGISTRY_UNAVAILABLE"]) < 2 {
        assert!(tokio::time::Instant::now() < retrying, "the worker never retried");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        common::read_all(&names.output).await.is_empty(),
        "nothing can be encoded without the registry"
    );
    assert!(
        common::read_all(&names.dlq).await.is_empty(),
        "an outage is not a reason to dead-letter"
    );
    // A management port held by someone else is named, with the variable that moves it.
    let port = std::env::var("SYNCLINE_REGISTRY_MANAGEMENT_PORT").unwrap_or_else(|_| "18081".into());
    let held = std::net::TcpListener::bind(format!("127.0.0.1:{port}")).unwrap();
    let (ok, text) = common::stack_output(&["start", "registry"]);
    assert!(!ok, "started with its management port taken: {text}");
    assert!(
        text.contains(&format!("port {port}")) && text.contains("SYNCLINE_REGISTRY_MANAGEMENT_PORT"),
        "{text}"
    );
    drop(held);
    // Port 9000 held (if nothing on this machine holds it already) does not matter.
    let _nine_thousand = std::net::TcpListener::bind("0.0.0.0:9000");
    common::stack(&["start", "registry"]);
    for service in ["registry", "kafka"] {
        let listening = common::listening_addresses(common::stack_pid(service));
        assert!(!listening.is_empty(), "{service} listens on nothing?");
        assert!(
            listening
                .iter()
                .all(|a| a.starts_with("127.0.0.1:") || a.starts_with("[::1]:")),
            "{service} listens beyond loopback: {listening:?}"
        );
    }
    let out = common::wait_for(&names.output, n as usize, Duration::from_secs(90)).await;
    common::wait_consumed(&names.worker, &[&names.input], Duration::from_secs(30)).await;
    assert_eq!(
        common::read_all(&names.output).await.len(),
        n as usize,
        "got {}",
        out.len()
    );
    assert!(common::read_all(&names.dlq).await.is_empty());
    running.stop().await;
}
