//! (e) The whole shipped topology under a mixed load: every worker of `topology.toml` (the
//! fourteen, the order status gate included) runs as its own `syncline run --worker NAME`
//! process, so the kernel counts each worker's CPU apart (/proc/PID/task/*/schedstat, in
//! nanoseconds). Every input topic gets `BENCH_MIXED_EVENTS` (5000) events made from its sample,
//! each with its own ids (`{{RUN}}` = the event's number) and its master data loaded before the
//! workers start; the gate reads what the ERP workers wrote. The baseline, measured in the same
//! run: the raw exactly-once passthrough (a) draining the same number of events in this process.
//! Figures per worker: records consumed (from its metrics endpoint), CPU microseconds per record
//! while the load drained (idle polling included: what the worker costs on a machine that runs
//! the whole topology), and that over the baseline.

use std::time::{Duration, Instant};

use syncline::kafka::clients;
use syncline::samples;
use syncline_test_support as support;

use super::{cpu_per_record, cpu_ticks, create_topics, env_num, event, passthrough, produce_all, repo, topology};

/// One sample per input topic of the shipped topology (the fat shape where the vendor has one;
/// D365 publishes only the thin invoice event, which the shipped worker has no API to complete).
const LOAD: &[(&str, &str)] = &[
    ("sf.order.submitted", "salesforce/order_submitted.pubsub.json"),
    ("erp.sales-order.events", "erp/sap_s4/salesorder.created.json"),
    ("erp.delivery.events", "erp/sap_s4/delivery.goods_issued.json"),
    ("erp.billing.events", "erp/sap_s4/billing.created.json"),
    ("erp.payment.events", "erp/generic/payment.posted.binary.json"),
    ("erp.eu.d365.events", "erp/d365_fo/invoice.posted.json"),
    ("sf.account.changes", "salesforce/account_change.create.json"),
    ("sf.case.returns", "salesforce/return_requested.cometd.json"),
    ("erp.returns.events", "erp/sap_s4/return.created.json"),
    (
        "sf.opportunity.changes",
        "salesforce/opportunity_change.closed_won.json",
    ),
    ("erp.subscription.events", "erp/generic/billing_plan.created.json"),
    ("sf.part.requests", "salesforce/part_reservation_requested.pubsub.json"),
    ("erp.reservation.events", "erp/sap_s4/reservation.back_ordered.json"),
];

pub struct WorkerCpu {
    pub name: String,
    pub records: u64,
    pub us_per_record: f64,
    /// The part of `us_per_record` the process spends idle over the same time.
    pub idle_us_per_record: f64,
}

pub struct Mixed {
    pub per_topic: u64,
    pub seconds: f64,
    pub baseline_us: f64,
    pub workers: Vec<WorkerCpu>,
}

/// CPU time of every thread of `pid` so far, in nanoseconds.
fn cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// `syncline_events_consumed_total` summed over its labels, from a worker's metrics endpoint.
async fn consumed(base: &str) -> u64 {
    gauge(base, "syncline_events_consumed_total").await as u64
}

/// A metric summed over its labels, from a worker's metrics endpoint (0 while unreachable).
async fn gauge(base: &str, metric: &str) -> f64 {
    let Ok(body) = reqwest::get(format!("{base}/metrics")).await else {
        return 0.0;
    };
    let text = body.text().await.unwrap_or_default();
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let Ok(scrape) = prometheus_parse::Scrape::parse(lines) else {
        return 0.0;
    };
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

/// The baseline: the passthrough (a) draining `n` events, CPU microseconds per record here.
async fn baseline(suffix: &str, n: u64) -> f64 {
    let t = topology(&format!("{suffix}-mixed-base"));
    let input = t.workers[0].inputs[0].clone();
    let out = format!("bench.{suffix}.mixed-base.out");
    create_topics(&t, &[&out]).await;
    let producer = clients::plain_producer(&t.kafka).unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    produce_all(&producer, &input, n, |i| event(i, now)).await;
    let before = cpu_ticks();
    passthrough(&t, &format!("bench-{suffix}-mixed-base"), &input, &out, n).await;
    cpu_per_record(before, cpu_ticks(), n).0
}

pub async fn run(suffix: &str) -> Mixed {
    let per_topic = env_num("BENCH_MIXED_EVENTS", 5_000);
    let total = per_topic * LOAD.len() as u64;
    let baseline_us = baseline(suffix, total).await;

    let run = format!("{suffix}mx");
    let text = support::shipped_topology_text_private(&run);
    let t = support::parse_topology(&text);
    let file = support::TopologyFile::create(&text).await;
    let producer = clients::plain_producer(&t.kafka).unwrap();
    let private = |topic: &str| support::private(topic, &run);

    // Master data first, so that orders find their accounts and products and nothing parks.
    let xref = samples::xref_records(&repo("samples/mdm/xref.json"), "0")
        .unwrap()
        .len() as u64;
    eprintln!(
        "mixed load: master data for {per_topic} runs ({} records)",
        per_topic * xref
    );
    let xref_sample = repo("samples/mdm/xref.json");
    let mut entries = Vec::new();
    for i in 0..per_topic {
        entries.extend(samples::xref_records(&xref_sample, &format!("{run}n{i}")).unwrap());
    }
    let xref_topic = t.defaults.xref_topic.clone();
    produce_all(&producer, &xref_topic, entries.len() as u64, |i| {
        entries[i as usize].clone()
    })
    .await;

    let mut workers = Vec::new();
    for w in &t.workers {
        let (child, base) = support::spawn_run_with(
            &file.path,
            &format!("bench-{}", w.name),
            &["--worker", &w.name, "--no-tracker"],
        );
        workers.push((w.name.clone(), w.inputs.clone(), support::KillOnDrop(child), base));
    }
    // Each process joins its group and restores its state before the load starts.
    for (name, _, _, base) in &workers {
        let deadline = Instant::now() + Duration::from_secs(120);
        while gauge(base, "syncline_worker_up").await < 1.0 {
            assert!(Instant::now() < deadline, "worker {name} did not come up");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // What each process spends idle (consumer polls, metrics, timers), to say how much of its
    // figure under load is the load.
    const IDLE: Duration = Duration::from_secs(3);
    let idle_from: Vec<u64> = workers.iter().map(|(_, _, c, _)| cpu_ns(c.0.id())).collect();
    tokio::time::sleep(IDLE).await;
    let before: Vec<u64> = workers.iter().map(|(_, _, c, _)| cpu_ns(c.0.id())).collect();
    let counted_before: Vec<u64> = {
        let mut v = Vec::new();
        for (_, _, _, base) in &workers {
            v.push(consumed(base).await);
        }
        v
    };

    eprintln!("mixed load: {per_topic} events on each of {} input topics", LOAD.len());
    let started = Instant::now();
    for (topic, sample) in LOAD {
        let path = repo("samples").join(sample);
        let records: Vec<samples::SampleRecord> = (0..per_topic)
            .map(|i| samples::load(&path, &format!("{run}n{i}")).unwrap())
            .collect();
        produce_records(&producer, &private(topic), &records).await;
    }
    eprintln!("mixed load: produced in {:.1} s", started.elapsed().as_secs_f64());
    // The gate's input fills while the ERP workers drain theirs: the gate goes last.
    for (name, inputs, _, _) in workers.iter().filter(|(n, ..)| !n.starts_with("order-status-gate")) {
        let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        support::wait_consumed(name, &inputs, Duration::from_secs(600)).await;
        eprintln!("mixed load: {name} drained at {:.1} s", started.elapsed().as_secs_f64());
    }
    for (name, inputs, _, _) in workers.iter().filter(|(n, ..)| n.starts_with("order-status-gate")) {
        let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        support::wait_consumed(name, &inputs, Duration::from_secs(600)).await;
        eprintln!("mixed load: {name} drained at {:.1} s", started.elapsed().as_secs_f64());
    }
    let seconds = started.elapsed().as_secs_f64();

    let mut out = Vec::new();
    for (i, (name, _, child, base)) in workers.iter().enumerate() {
        let records = consumed(base).await.saturating_sub(counted_before[i]);
        let ns = cpu_ns(child.0.id()).saturating_sub(before[i]);
        let idle_ns_per_s = before[i].saturating_sub(idle_from[i]) as f64 / IDLE.as_secs_f64();
        let per_record = |ns: f64| ns / 1000.0 / records.max(1) as f64;
        out.push(WorkerCpu {
            name: name
                .trim_end_matches(&format!("-{}", run.replace('.', "-")))
                .to_string(),
            records,
            us_per_record: per_record(ns as f64),
            idle_us_per_record: per_record(idle_ns_per_s * seconds),
        });
    }
    Mixed {
        per_topic,
        seconds,
        baseline_us,
        workers: out,
    }
}

/// Publishes sample records (with their headers, for binary-mode CloudEvents), keyed by number.
async fn produce_records(p: &rdkafka::producer::FutureProducer, topic: &str, records: &[samples::SampleRecord]) {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::FutureRecord;
    let keys: Vec<String> = (0..records.len()).map(|i| format!("k{i}")).collect();
    let mut inflight = Vec::with_capacity(records.len());
    for (r, key) in records.iter().zip(&keys) {
        let headers = r.headers.iter().fold(OwnedHeaders::new(), |h, (k, v)| {
            h.insert(Header {
                key: k,
                value: Some(v.as_slice()),
            })
        });
        // Enqueued now (send_result), not when awaited: the deliveries overlap.
        let mut record = FutureRecord::to(topic).key(key).payload(&r.value).headers(headers);
        loop {
            match p.send_result(record) {
                Ok(delivery) => break inflight.push(delivery),
                Err((_, back)) => {
                    record = back;
                    for f in inflight.drain(..) {
                        let _ = f.await;
                    }
                }
            }
        }
        if inflight.len() >= 10_000 {
            for f in inflight.drain(..) {
                let _ = f.await;
            }
        }
    }
    for f in inflight {
        let _ = f.await;
    }
}

pub fn section(m: &Mixed) -> String {
    let rows: String = m
        .workers
        .iter()
        .map(|w| {
            format!(
                "| `{}` | {} | {:.1} | {:.1} | {:.2} |\n",
                w.name,
                w.records,
                w.us_per_record,
                w.idle_us_per_record,
                w.us_per_record / m.baseline_us.max(1e-9)
            )
        })
        .collect();
    format!(
        "\n## The whole topology under a mixed load\n\n\
Every worker of `topology.toml` as its own `syncline run --worker` process; {per} events from each input topic's sample \
({topics} topics, every event with its own ids, master data loaded first), drained in {secs:.1} s. CPU per record is the \
process's CPU time (every thread, /proc schedstat) while the load drained, over the records it consumed; the baseline, \
measured in the same run, is the raw exactly-once passthrough: {base:.1} us per record.\n\n\
| worker | records consumed | CPU us per record | of which idle | over the passthrough |\n|---|---|---|---|---|\n{rows}\n\
`erp-eu-d365` receives Dynamics 365's thin `SalesInvoicePostedBusinessEvent`; without `[worker.enrich]` (the shipped \
topology names no API) each is dead-lettered, so its row is the cost of the dead-letter path.\n",
        per = m.per_topic,
        topics = LOAD.len(),
        secs = m.seconds,
        base = m.baseline_us,
    )
}
