//! The business transaction tracker, as `syncline run` runs it: with a tiny service level an
//! order without ERP acceptance is stuck, and leaves the stuck list once accepted; a return shows
//! on its order's timeline and a part reservation gets a timeline of its own; the timelines
//! survive a restart of the process. Event times are set relative to the run (the samples' own
//! times are fixed dates, which the wall clock passes), and the service levels are also judged
//! at an explicit time a month ahead (`orders stuck --at`).

use syncline_test_support as common;

use std::process::{Child, Command};
use std::time::Duration;

const RUN: &str = "0000ef56";

fn cli(topology: &std::path::Path, args: &[&str]) -> (bool, String) {
    common::syncline(topology, args, &[])
}

fn stop(child: Child) {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let mut child = child;
    let _ = child.wait();
}

async fn gauge(base: &str, name: &str, label: (&str, &str)) -> f64 {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && s.labels.get(label.0) == Some(label.1))
        .map(|s| match s.value {
            prometheus_parse::Value::Gauge(v) => v,
            _ => 0.0,
        })
        .sum()
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn stuck_orders_appear_leave_and_survive_a_restart() {
    let suffix = common::unique("trk");
    let text = common::shipped_topology_text_private(&suffix)
        .replace("\"SUBMITTED->ACCEPTED\" = \"1h\"", "\"SUBMITTED->ACCEPTED\" = \"1s\"");
    let file = common::TopologyFile::create(&text).await;
    let path = file.path.clone();
    let p = common::producer();
    for (k, v) in syncline::samples::xref_records(&common::repo_path("samples/mdm/xref.json"), RUN).unwrap() {
        common::produce(&p, &common::private("mdm.xref", &suffix), &k, &v).await;
    }
    let (child, base) = common::spawn_run(&path, "trk");
    let order = format!("801Dn{RUN}A1");
    let submitted_at = chrono::Utc::now() - chrono::Duration::minutes(10);
    let accepted_at = submitted_at + chrono::Duration::minutes(5);
    let sample = syncline::samples::load(
        &common::repo_path("samples/salesforce/order_submitted.cometd.json"),
        RUN,
    )
    .unwrap();
    common::produce(
        &p,
        &common::private("sf.order.submitted", &suffix),
        &order,
        &common::with_time(&sample.value, "/data/payload/CreatedDate", submitted_at),
    )
    .await;

    eventually("the order to be stuck before acceptance", async || {
        let (_, out) = cli(&path, &["orders", "stuck", "--json"]);
        out.contains(&order) && out.contains("SUBMITTED->ACCEPTED")
    })
    .await;
    eventually("the stuck gauge", async || {
        gauge(&base, "syncline_orders_stuck", ("transition", "SUBMITTED->ACCEPTED")).await >= 1.0
    })
    .await;

    let accepted =
        syncline::samples::load(&common::repo_path("samples/erp/sap_s4/salesorder.created.json"), RUN).unwrap();
    common::produce(
        &p,
        &common::private("erp.sales-order.events", &suffix),
        "5000",
        &common::with_time(&accepted.value, "/time", accepted_at),
    )
    .await;
    eventually("the order to leave the stuck list", async || {
        let (ok, out) = cli(&path, &["orders", "stuck", "--json"]);
        ok && !out.contains(&order)
    })
    .await;
    // ACCEPTED->SHIPPED is 3d: a month ahead the accepted order is overdue, by the clock given.
    let month_ahead = (accepted_at + chrono::Duration::days(30)).to_rfc3339();
    let (ok, out) = cli(&path, &["orders", "stuck", "--json", "--at", &month_ahead]);
    assert!(ok, "{out}");
    let stuck: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mine: Vec<&serde_json::Value> = stuck
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["order_id"] == order.as_str())
        .collect();
    assert_eq!(mine.len(), 1, "{out}");
    assert_eq!(mine[0]["transition"], "ACCEPTED->SHIPPED", "{out}");
    assert_eq!(mine[0]["since"], accepted_at.timestamp_millis(), "{out}");
    assert_eq!(
        mine[0]["overdue_ms"],
        chrono::Duration::days(27).num_milliseconds(),
        "{out}"
    );
    eventually("the state gauge", async || {
        gauge(&base, "syncline_orders_in_state", ("state", "ACCEPTED")).await >= 1.0
    })
    .await;

    // A return joins its order's timeline; a part reservation is a timeline of its own.
    let reservation = format!("0TTDn{RUN}P1");
    for (topic, key, file) in [
        (
            "sf.case.returns",
            format!("500Dn{RUN}R1"),
            "salesforce/return_requested.cometd.json",
        ),
        (
            "sf.part.requests",
            reservation.clone(),
            "salesforce/part_reservation_requested.pubsub.json",
        ),
    ] {
        let sample = syncline::samples::load(&common::repo_path(&format!("samples/{file}")), RUN).unwrap();
        common::produce(&p, &common::private(topic, &suffix), &key, &sample.value).await;
    }
    eventually("the return on the order's timeline", async || {
        let (_, out) = cli(&path, &["orders", "show", &order]);
        out.contains("RETURN 00031001 REQUESTED")
    })
    .await;
    eventually("the reservation's own timeline", async || {
        let (_, out) = cli(&path, &["orders", "show", &reservation]);
        out.contains(&format!("reservation {reservation}")) && out.contains("RESERVATION REQUESTED")
    })
    .await;
    assert_eq!(
        gauge(&base, "syncline_orders_in_state", ("state", "ACCEPTED")).await,
        1.0,
        "a reservation is not an order"
    );
    stop(child);

    // After a restart the tracker starts from its changelog, not from nothing.
    let (child, base) = common::spawn_run(&path, "trk");
    eventually("restored gauges", async || {
        gauge(&base, "syncline_orders_in_state", ("state", "ACCEPTED")).await >= 1.0
    })
    .await;
    let (ok, out) = cli(&path, &["orders", "show", &order]);
    assert!(ok, "{out}");
    assert!(out.contains("now ACCEPTED"), "{out}");
    assert!(
        out.contains("SUBMITTED") && out.contains("salesforce") && out.contains("sap_s4 / erp-na"),
        "{out}"
    );
    assert!(out.contains("RETURN 00031001 REQUESTED"), "{out}");
    let (ok, out) = cli(&path, &["orders", "show", &reservation]);
    assert!(ok && out.contains("RESERVATION REQUESTED"), "{out}");
    stop(child);
}
