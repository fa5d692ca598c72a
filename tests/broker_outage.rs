//! The broker stopped and restarted mid-stream: the worker waits it out and then every event
//! comes out exactly once, with no dead letter caused by the outage. (Own test binary: it stops
//! the shared broker, which no other test may see.)

use syncline_test_support as common;

use std::time::Duration;

use common::{Names, Running};

#[tokio::test]
async fn broker_restart_mid_stream_loses_and_duplicates_nothing() {
    let names = Names::new("brk");
    names.create_topics(2).await;
    let n: u32 = 2000;
    let input = names.input.clone();
    // The producer buffers through the outage (idempotent, long delivery timeout).
    let feeder = tokio::spawn(async move {
        let p = common::producer();
        for seq in 0..n {
            let order = format!("801B{:03}", seq % 50);
            common::produce(&p, &input, &order, &common::status_event(&order, seq, "accepted")).await;
            if seq % 100 == 99 {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    });
    let running = Running::start(&names.topology(50), "a").await;
    let first = common::wait_for(&names.output, 100, Duration::from_secs(60)).await;
    assert!(first.len() >= 100);

    let _restart = common::RestartStack;
    common::stack(&["stop", "kafka"]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    common::stack(&["start", "kafka"]);

    feeder.await.unwrap();
    let out = common::wait_for(&names.output, n as usize, Duration::from_secs(240)).await;
    common::wait_consumed(&names.worker, &[&names.input], Duration::from_secs(60)).await;
    let out = if out.len() == n as usize {
        common::read_all(&names.output).await
    } else {
        out
    };
    let per_key = common::count_by_idempotency_key(&out);
    assert!(per_key.values().all(|c| *c == 1), "duplicates after the broker restart");
    assert_eq!(per_key.len(), n as usize, "every event once");
    assert!(
        common::read_all(&names.dlq).await.is_empty(),
        "an outage is not a reason to dead-letter"
    );
    running.stop().await;
}
