//! (d) Enrichment: the `erp-order-status` worker on thin SAP notification events (the order
//! number only, as SAP publishes `SalesOrder.Created.v1`) completed through the vendor API
//! fixture (`samples::vendor_api`, SAP's OData v2 shape on loopback), beside the same worker on
//! fat events. Each round drains the same inputs three times, each with a fresh worker (its own
//! consumer group, API cache and cross-reference topic, so no learned link saves a call): fat
//! events, thin events with the API answering at once, thin events with the API answering in
//! `BENCH_API_LATENCY_MS` (20). The figure: throughput at that latency over throughput at none
//! (target ≥ 0.5: the calls of a batch run concurrently, they must not serialize it).
//! Calls in flight are the connection's `max_concurrent`, so at latency L the worker completes
//! at most max_concurrent / L events a second (Little's law): 64 in flight at 20 ms cap it at
//! 3200/s, 256 at 12800/s. Environment: BENCH_ENRICH_EVENTS (20000 per input),
//! BENCH_API_CONCURRENT (`max_concurrent`, 256), BENCH_ENRICH_ROUNDS (3).

use std::time::Duration;

use syncline::config::{EnrichConfig, Topology};
use syncline::kafka::clients;
use syncline::samples::vendor_api::{self, VendorApi};

use super::{bench_topology, create_topics, env_num, event, observe_commits, produce_all, start_worker};

const ROOT: &str = "sap/opu/odata/sap";

pub struct EnrichmentRounds {
    pub n: u64,
    pub latency_ms: u64,
    pub concurrent: u64,
    /// (fat, thin at 0 ms, thin at the latency) events/s, per round.
    pub rounds: Vec<(f64, f64, f64)>,
}

impl EnrichmentRounds {
    /// The round of median ratio thin-with-latency / thin-without.
    fn median(&self) -> (f64, f64, f64) {
        let mut r = self.rounds.clone();
        r.sort_by(|x, y| (x.2 / x.1).total_cmp(&(y.2 / y.1)));
        r[r.len() / 2]
    }
}

/// Sales order `n`'s number (fat and thin events alike).
fn order_number(n: u64) -> String {
    format!("{}", 5_000_000_000u64 + n)
}

/// A thin `SalesOrder.Created.v1` for order `n`: what SAP publishes, nothing more.
fn thin_event(n: u64) -> (String, Vec<u8>) {
    let order = order_number(n);
    let value = serde_json::json!({
        "specversion": "1.0",
        "type": "sap.s4.beh.salesorder.v1.SalesOrder.Created.v1",
        "source": "/default/sap.s4.beh/erp-na",
        "id": format!("c0000000-0000-4000-8000-{n:012}"),
        "time": "2026-11-26T09:20:00Z",
        "datacontenttype": "application/json",
        "data": {
            "SalesOrder": order,
            "SalesOrderType": "OR",
            "SalesOrganization": "1710",
            "DistributionChannel": "10",
            "OrganizationDivision": "00",
            "SoldToParty": "17100001",
            "EventRaisedDateTime": "2026-11-26T09:20:00Z"
        }
    });
    (order, value.to_string().into_bytes())
}

/// The worker reading `input`, writing `output`, its cross-reference topic its own (`run`).
fn worker_topology(suffix: &str, input: &str, output: &str, run: &str, api: Option<std::net::SocketAddr>) -> Topology {
    let mut t = bench_topology("erp-order-status", &format!("{suffix}.enrich"));
    let w = &mut t.workers[0];
    w.name = format!("bench-enrich-{}-{run}", suffix.replace('.', "-"));
    w.inputs = vec![input.to_string()];
    w.outputs[0].topic = Some(output.to_string());
    t.defaults.xref_topic = format!("bench.{suffix}.enrich.xref.{run}");
    if let Some(addr) = api {
        let mut cfg = vendor_api::connection(addr, ROOT).unwrap();
        cfg.max_concurrent = env_num("BENCH_API_CONCURRENT", 256) as usize;
        t.api.insert("s4".into(), cfg);
        t.workers[0].enrich = Some(EnrichConfig {
            api: "s4".into(),
            not_found_for: std::time::Duration::from_secs(15 * 60),
            retry_every: std::time::Duration::from_secs(30),
        });
    }
    t
}

/// Drains `input` with a fresh worker; its sustained events/s.
async fn drain(t: Topology, input: &str, n: u64) -> f64 {
    let input_ends = clients::end_offsets(&t.kafka, &[input], Duration::from_secs(10))
        .await
        .unwrap();
    let w = t.workers[0].name.clone();
    let output = t.workers[0].outputs[0].topic.clone().unwrap_or_default();
    create_topics(&t, &[&output]).await;
    let observer = observe_commits(&t, &format!("syncline.{w}"), &input_ends, Duration::from_secs(900));
    let process = start_worker(t).await;
    let progress = observer.await.unwrap().expect("the worker did not finish");
    let produced = process.metrics.produced.with_label_values(&[&w, &output]);
    let counted = std::time::Instant::now();
    while produced.get() < n && counted.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        produced.get(),
        n,
        "every order became a status (none parked or dead-lettered)"
    );
    process.stop();
    let _ = process.wait().await;
    progress.sustained(n)
}

pub async fn rounds(suffix: &str, rounds_wanted: u64) -> EnrichmentRounds {
    let n = env_num("BENCH_ENRICH_EVENTS", 20_000);
    let latency_ms = env_num("BENCH_API_LATENCY_MS", 20);
    let api = VendorApi::default();
    let addr = api.serve(0).await.expect("vendor API fixture");
    for i in 0..n {
        api.sap_sales_order(ROOT, &order_number(i), &format!("801Dn{i:010}"));
    }
    let (fat_in, thin_in) = (
        format!("bench.{suffix}.enrich.fat.in"),
        format!("bench.{suffix}.enrich.thin.in"),
    );
    let output = format!("bench.{suffix}.enrich.status");
    let first = worker_topology(suffix, &fat_in, &output, "setup", None);
    create_topics(&worker_topology(suffix, &thin_in, &output, "setup", None), &[&output]).await;
    create_topics(&first, &[&output]).await;
    let producer = clients::plain_producer(&first.kafka).unwrap();
    eprintln!("producing {n} fat and {n} thin sales-order events");
    let now = chrono::Utc::now().timestamp_millis();
    produce_all(&producer, &fat_in, n, |i| {
        let (key, mut value) = event(i, now);
        // Every fat event a creation, like the thin ones.
        value = String::from_utf8_lossy(&value)
            .replace("SalesOrder.Changed.v1", "SalesOrder.Created.v1")
            .into_bytes();
        (key, value)
    })
    .await;
    produce_all(&producer, &thin_in, n, thin_event).await;
    let mut out = Vec::new();
    for round in 1..=rounds_wanted {
        eprintln!("enrichment round {round}: fat events");
        let fat = drain(
            worker_topology(suffix, &fat_in, &output, &format!("fat{round}"), None),
            &fat_in,
            n,
        )
        .await;
        api.set_delay(Duration::ZERO);
        let calls = api.total_calls();
        eprintln!("enrichment round {round}: thin events, API at 0 ms");
        let fast = drain(
            worker_topology(suffix, &thin_in, &output, &format!("thin0-{round}"), Some(addr)),
            &thin_in,
            n,
        )
        .await;
        assert_eq!(api.total_calls() - calls, n as usize, "one call per order");
        api.set_delay(Duration::from_millis(latency_ms));
        eprintln!("enrichment round {round}: thin events, API at {latency_ms} ms");
        let slow = drain(
            worker_topology(
                suffix,
                &thin_in,
                &output,
                &format!("thin{latency_ms}-{round}"),
                Some(addr),
            ),
            &thin_in,
            n,
        )
        .await;
        eprintln!("    fat {fat:.0}/s, thin {fast:.0}/s at 0 ms, {slow:.0}/s at {latency_ms} ms");
        out.push((fat, fast, slow));
    }
    EnrichmentRounds {
        n,
        latency_ms,
        concurrent: env_num("BENCH_API_CONCURRENT", 256),
        rounds: out,
    }
}

pub fn section(e: &EnrichmentRounds) -> String {
    let (fat, fast, slow) = e.median();
    let rows: String = e
        .rounds
        .iter()
        .enumerate()
        .map(|(i, (f, a, b))| {
            format!(
                "| {} | {f:.0} | {a:.0} | {b:.0} | {:.2} | {:.2} |\n",
                i + 1,
                b / a,
                b / f
            )
        })
        .collect();
    format!(
        "\n## Thin events completed through the vendor API (`erp-order-status` worker)\n\n\
{n} SAP `SalesOrder.Created.v1` notifications (the order number only) per run, each completed with one \
`API_SALES_ORDER_SRV/A_SalesOrder('…')` call to the local fixture (OData v2 shape; `max_concurrent = {c}`), \
beside {n} fat events of the same worker with no call. A fresh worker per run (own consumer group, cache and \
cross-reference). Median round: fat {fat:.0} events/s; thin {fast:.0} events/s with the API answering at once, \
{slow:.0} events/s at {ms} ms a call: **{ratio:.2}** (target ≥ 0.5; the batch's calls run concurrently, in order). \
Calls in flight are bounded by `max_concurrent`, so at {ms} ms a call the worker completes at most {cap:.0} events/s \
(max_concurrent / latency); a vendor that allows fewer parallel requests caps it lower (64 in flight: 3200/s).\n\n\
| round | fat events/s | thin, API 0 ms | thin, API {ms} ms | {ms} ms / 0 ms | {ms} ms / fat |\n|---|---|---|---|---|---|\n{rows}",
        n = e.n,
        c = e.concurrent,
        ms = e.latency_ms,
        ratio = slow / fast,
        cap = e.concurrent as f64 * 1000.0 / e.latency_ms.max(1) as f64,
    )
}
