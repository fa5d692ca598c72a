//! Throughput and latency of syncline's workers against a raw passthrough measured in the same
//! run, on the local stack. `make bench` (or `cargo bench --bench pipeline`) runs it and writes
//! BENCHMARKS.md.
//!
//! (a) passthrough: consume, produce the same bytes, same transaction batching (exactly-once);
//! (b) syncline: the `erp-order-status` worker of the shipped topology (CloudEvents adapter, SAP
//!     profile, mapping, idempotency store, status ledger, Avro through the registry, exactly-once).
//! Both drain the same pre-produced input, one after the other; throughput is measured the same
//! way for both, from outside: the consumer group's committed offsets, from the first commit to
//! the last (start-up is reported apart). Then latency at a fixed offered rate, measured outside
//! the worker: from the source record's send to its output becoming visible to a read_committed
//! consumer (events at the same rate run first, not counted, until that consumer sees output).
//! (c) then the `order-submission` worker (Salesforce platform events, master data, routing)
//!     against a passthrough of its own input, the same way as (a)/(b).
//! (d) then thin events completed through the vendor API fixture (`pipeline/enrichment.rs`).
//! (e) then the whole shipped topology under a mixed load, CPU per record per worker
//!     (`pipeline/mixed.rs`).
//! Environment: BENCH_EVENTS (default 300000), BENCH_ROUNDS (5), BENCH_WARMUP (1 round of each
//! pipeline first, not counted), BENCH_RATE (5000), BENCH_SECONDS (20), BENCH_BATCH (records
//! per transaction for both pipelines; default the topology's `batch.max_records`),
//! BENCH_SF_EVENTS (100000 Salesforce events for (c)), BENCH_ONLY=order-submission or
//! BENCH_ONLY=enrichment or BENCH_ONLY=mixed (run (c), (d) or (e) alone and print it;
//! BENCHMARKS.md is left as it is), BENCH_MIXED_EVENTS (5000 per input topic for (e)).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use syncline::config::Topology;
use syncline::kafka::clients::{self, TopicSpec};
use syncline::kafka::txn::{self, Out, Outbox};
use syncline::schema::Catalog;
use tokio::sync::watch;

#[path = "pipeline/enrichment.rs"]
mod enrichment;
#[path = "pipeline/mixed.rs"]
mod mixed;

/// The allocator `syncline` itself runs with (src/main.rs), for both pipelines alike.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PARTITIONS: i32 = 3;

/// CPU time (user + system, in clock ticks) used so far by this process and by the broker, whose
/// pid the local stack keeps in its run directory (scripts/stack.sh); 0 for one that cannot be
/// read. Throughput on this shared machine swings from run to run; CPU per record is steadier
/// and says where the difference between the pipelines goes.
fn cpu_ticks() -> (u64, u64) {
    fn ticks(stat: &str) -> Option<u64> {
        let text = std::fs::read_to_string(stat).ok()?;
        // Fields after the command name, which may hold spaces: utime and stime are 14th and 15th.
        let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
        Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
    }
    let run = std::env::var("SYNCLINE_RUN_DIR").unwrap_or_else(|_| {
        let home = std::env::var("HOME").unwrap_or_default();
        format!("{home}/.cache/syncline/run")
    });
    let broker = std::fs::read_to_string(format!("{run}/kafka.pid"))
        .ok()
        .and_then(|pid| ticks(&format!("/proc/{}/stat", pid.trim())));
    (ticks("/proc/self/stat").unwrap_or(0), broker.unwrap_or(0))
}

/// Microseconds of CPU per record between two `cpu_ticks` readings: (this process, broker).
fn cpu_per_record(from: (u64, u64), to: (u64, u64), n: u64) -> (f64, f64) {
    // /proc counts in USER_HZ, 100 ticks per second on Linux.
    let us = |a: u64, b: u64| b.saturating_sub(a) as f64 * 10_000.0 / n.max(1) as f64;
    (us(from.0, to.0), us(from.1, to.1))
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn repo(rel: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A realistic SAP S/4HANA sales-order event for order number `n`.
fn event(n: u64, at_ms: i64) -> (String, Vec<u8>) {
    let order = format!("801Dn{n:010}");
    let kind = if n % 10 == 3 { "Changed" } else { "Created" };
    let value = serde_json::json!({
        "specversion": "1.0",
        "type": format!("sap.s4.beh.salesorder.v1.SalesOrder.{kind}.v1"),
        "source": "/default/sap.s4.beh/erp-na",
        "id": format!("b0000000-0000-4000-8000-{n:012}"),
        "time": syncline::runtime::dlq::rfc3339(at_ms),
        "datacontenttype": "application/json",
        "data": {
            "SalesOrder": format!("{}", 5_000_000_000u64 + n),
            "SalesOrderType": "OR",
            "SalesOrganization": "1710",
            "SoldToParty": "17100001",
            "PurchaseOrderByCustomer": order,
            "RequestedDeliveryDate": "2026-12-03",
            "TotalCreditCheckStatus": "B"
        }
    });
    (order, value.to_string().into_bytes())
}

/// The shipped topology with only `worker`, renamed, on private topics under `bench.<prefix>`
/// (its input `<prefix>.in`), the tracker off, and the benchmark's batch size.
fn bench_topology(worker: &str, prefix: &str) -> Topology {
    let text = std::fs::read_to_string(repo("topology.toml")).unwrap();
    let mut t: Topology = syncline::config::parse(
        &text,
        &syncline::config::env::ProcessEnv,
        &Catalog::record_names(&repo("schemas")),
    )
    .unwrap();
    t.workers.retain(|w| w.name == worker);
    let w = &mut t.workers[0];
    w.name = format!("bench-{}", prefix.replace('.', "-"));
    w.inputs = vec![format!("bench.{prefix}.in")];
    w.batch = None;
    t.defaults.dead_letter_topic = format!("bench.{prefix}.dlq");
    t.defaults.parked_topic = format!("bench.{prefix}.parked");
    t.defaults.xref_topic = format!("bench.{prefix}.xref");
    t.tracker.enabled = false;
    // Both pipelines close a transaction at the same size: the topology's, or BENCH_BATCH.
    t.defaults.batch.max_records = env_num("BENCH_BATCH", t.defaults.batch.max_records as u64) as usize;
    t
}

/// The `erp-order-status` worker writing its statuses to an internal topic, and the shipped
/// order status gate reading it and writing `bench.<suffix>.gated.status`.
fn gated_topology(suffix: &str) -> Topology {
    let mut t = bench_topology("erp-order-status", &format!("{suffix}.gated"));
    let internal = format!("bench.{suffix}.gated.internal");
    t.workers[0].outputs[0].topic = Some(internal.clone());
    // The gate as shipped, its own batch setting included.
    let text = std::fs::read_to_string(repo("topology.toml")).unwrap();
    let shipped: Topology = syncline::config::parse(
        &text,
        &syncline::config::env::ProcessEnv,
        &Catalog::record_names(&repo("schemas")),
    )
    .unwrap();
    let Some(mut gate) = shipped.workers.into_iter().find(|w| w.name == "order-status-gate") else {
        panic!("the shipped topology has no order-status-gate");
    };
    gate.name = format!("bench-gate-{}", suffix.replace('.', "-"));
    gate.inputs = vec![internal];
    gate.outputs[0].topic = Some(format!("bench.{suffix}.gated.status"));
    t.workers.push(gate);
    t
}

/// The latency figures alone (`BENCH_ONLY=latency`): the worker, then the worker behind the gate.
async fn latencies(suffix: &str) -> (Vec<f64>, Vec<f64>) {
    let t = topology(suffix);
    let (input, output) = (
        t.workers[0].inputs[0].clone(),
        t.workers[0].outputs[0].topic.clone().unwrap_or_default(),
    );
    create_topics(&t, &[&output]).await;
    let producer = clients::plain_producer(&t.kafka).unwrap();
    let worker = start_worker(t.clone()).await;
    let alone = measure_latency(&t, &producer, &input, &output, "worker", suffix).await;
    worker.stop();
    let _ = worker.wait().await;
    (alone, through_gate(suffix, &producer).await)
}

/// Latency of the worker behind the order status gate.
async fn through_gate(suffix: &str, producer: &FutureProducer) -> Vec<f64> {
    let gated = gated_topology(suffix);
    let (gated_in, gated_out) = (
        gated.workers[0].inputs[0].clone(),
        gated.workers[1].outputs[0].topic.clone().unwrap_or_default(),
    );
    create_topics(&gated, &[&gated.workers[1].inputs[0], &gated_out]).await;
    let process = start_worker(gated.clone()).await;
    let latencies = measure_latency(&gated, producer, &gated_in, &gated_out, "gate", suffix).await;
    process.stop();
    let _ = process.wait().await;
    latencies
}

/// The `erp-order-status` worker writing `bench.<suffix>.status`.
fn topology(suffix: &str) -> Topology {
    let mut t = bench_topology("erp-order-status", suffix);
    t.workers[0].outputs[0].topic = Some(format!("bench.{suffix}.status"));
    t
}

/// Creates the input, the outputs given, the dead-letter and parked topics, and the
/// cross-reference topic (compacted, one partition) of a bench topology.
async fn create_topics(t: &Topology, outputs: &[&str]) {
    let input = t.workers[0].inputs[0].as_str();
    let specs: Vec<TopicSpec> = [input, &t.defaults.dead_letter_topic, &t.defaults.parked_topic]
        .into_iter()
        .chain(outputs.iter().copied())
        .map(|name| TopicSpec {
            name: name.to_string(),
            partitions: PARTITIONS,
            compacted: false,
            retention_ms: None,
        })
        .chain([TopicSpec {
            name: t.defaults.xref_topic.clone(),
            partitions: 1,
            compacted: true,
            retention_ms: None,
        }])
        .collect();
    clients::ensure_topics(&t.kafka, &specs)
        .await
        .expect("the local stack must run (make bench starts it)");
}

/// Produces events `0..n` of `make` (key, value), keeping up to 10,000 deliveries in flight.
async fn produce_all(p: &FutureProducer, topic: &str, n: u64, make: impl Fn(u64) -> (String, Vec<u8>)) {
    let mut inflight = Vec::with_capacity(10_000);
    for i in 0..n {
        let (key, value) = make(i);
        loop {
            match p.send_result(FutureRecord::to(topic).key(&key).payload(&value)) {
                Ok(f) => {
                    inflight.push(f);
                    break;
                }
                Err(_) => {
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

/// How a pipeline's consumer group committed its way through the input, seen from outside.
struct Progress {
    /// When the first committed offsets appeared, and how many records they covered.
    first_commit: Instant,
    committed_at_first: u64,
    /// When every input record was committed.
    done: Instant,
}

impl Progress {
    /// Records per second from the first commit to the last: the pipeline's steady state,
    /// without its start-up (group join, producer fencing, state restore).
    fn sustained(&self, total: u64) -> f64 {
        (total - self.committed_at_first) as f64 / (self.done - self.first_commit).as_secs_f64().max(1e-9)
    }
}

/// Polls the committed offsets of consumer group `group` (every 10 ms, on its own thread) until
/// they reach `ends`. Both pipelines are measured this same way.
fn observe_commits(
    t: &Topology,
    group: &str,
    ends: &clients::Offsets,
    within: Duration,
) -> tokio::task::JoinHandle<Option<Progress>> {
    let kafka = t.kafka.clone();
    let group = group.to_string();
    let ends = ends.clone();
    tokio::task::spawn_blocking(move || {
        let probe: rdkafka::consumer::BaseConsumer = clients::base(&kafka).set("group.id", &group).create().ok()?;
        let mut tpl = TopicPartitionList::new();
        for (topic, p) in ends.keys() {
            tpl.add_partition(topic, *p);
        }
        let total: i64 = ends.values().sum();
        let deadline = Instant::now() + within;
        let mut first: Option<(Instant, u64)> = None;
        loop {
            if let Ok(committed) = probe.committed_offsets(tpl.clone(), Duration::from_secs(10)) {
                let now = Instant::now();
                let done: i64 = ends
                    .iter()
                    .map(|((topic, p), end)| {
                        committed
                            .find_partition(topic, *p)
                            .and_then(|e| e.offset().to_raw())
                            .unwrap_or(0)
                            .clamp(0, *end)
                    })
                    .sum();
                if done > 0 && first.is_none() {
                    first = Some((now, done as u64));
                }
                if done >= total {
                    let (first_commit, committed_at_first) = first.unwrap_or((now, 0));
                    return Some(Progress {
                        first_commit,
                        committed_at_first,
                        done: now,
                    });
                }
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    })
}

/// (a): read_committed consume → same bytes → transactional produce, offsets in the transaction.
async fn passthrough(t: &Topology, group: &str, input: &str, output: &str, n: u64) {
    let max_records = t.defaults.batch.max_records;
    let consumer: StreamConsumer =
        clients::read_committed_consumer(&t.kafka, group, None, rdkafka::consumer::DefaultConsumerContext).unwrap();
    consumer.subscribe(&[input]).unwrap();
    let producer = clients::transactional_producer(&t.kafka, group, Duration::from_secs(30))
        .await
        .unwrap();
    let mut done = 0u64;
    while done < n {
        let mut batch = Vec::with_capacity(max_records);
        let first = consumer.recv().await.unwrap().detach();
        batch.push(first);
        let deadline = tokio::time::Instant::now() + Duration::from_millis(100);
        while batch.len() < max_records {
            match tokio::time::timeout_at(deadline, consumer.recv()).await {
                Ok(Ok(m)) => batch.push(m.detach()),
                _ => break,
            }
        }
        producer.begin_transaction().unwrap();
        let mut outbox = Outbox::new(&producer);
        let mut offsets: HashMap<(&str, i32), i64> = HashMap::new();
        for m in &batch {
            outbox
                .send(Out {
                    topic: output,
                    partition: None,
                    key: m.key(),
                    payload: m.payload(),
                    headers: &[],
                })
                .await
                .unwrap();
            offsets.insert((m.topic(), m.partition()), m.offset() + 1);
        }
        let mut tpl = TopicPartitionList::new();
        for ((topic, p), o) in &offsets {
            tpl.add_partition_offset(topic, *p, Offset::Offset(*o)).unwrap();
        }
        // The worker's own commit sequence, so both pipelines end a transaction the same way.
        let group = consumer.group_metadata().unwrap();
        txn::commit(&producer, outbox, Some((tpl, group)), Duration::from_secs(30))
            .await
            .unwrap();
        done += batch.len() as u64;
    }
}

/// One round's figures.
struct Round {
    a_rate: f64,
    a_startup: f64,
    b_rate: f64,
    b_startup: f64,
    per_record_us: f64,
    batch_ms: f64,
    /// CPU microseconds per record while each pipeline drained the input: (this process, broker).
    a_cpu: (f64, f64),
    b_cpu: (f64, f64),
}

impl Round {
    fn ratio(&self) -> f64 {
        self.b_rate / self.a_rate
    }
}

/// The round of median ratio (the figure reported).
fn median(rounds: &[Round]) -> &Round {
    let mut by_ratio: Vec<&Round> = rounds.iter().collect();
    by_ratio.sort_by(|x, y| x.ratio().total_cmp(&y.ratio()));
    by_ratio[by_ratio.len() / 2]
}

/// One alternating round: the passthrough (a) drains `input`, then a fresh instance of the
/// topology's one worker (b) does (after `previous`, the last round's worker, is stopped). The
/// new worker is returned running, with its name.
#[allow(clippy::too_many_arguments)]
async fn measure_round(
    t: &Topology,
    label: &str,
    input: &str,
    pass_out: &str,
    input_ends: &clients::Offsets,
    n: u64,
    round: u64,
    previous: Option<syncline::app::Process>,
) -> (Round, syncline::app::Process, String) {
    eprintln!("{label} round {round}: (a) passthrough");
    let group = format!("bench-pass-{input}-{round}");
    let cpu0 = cpu_ticks();
    let a_started = Instant::now();
    let a_observer = observe_commits(t, &group, input_ends, Duration::from_secs(900));
    passthrough(t, &group, input, pass_out, n).await;
    let a = a_observer.await.unwrap().expect("the passthrough did not finish");
    let (a_rate, a_startup) = (a.sustained(n), (a.first_commit - a_started).as_secs_f64());
    eprintln!("    sustained {a_rate:.0}/s (first commit after {a_startup:.1}s)");
    let cpu1 = cpu_ticks();
    let a_cpu = cpu_per_record(cpu0, cpu1, n);
    eprintln!(
        "    CPU per record: {:.1} us in this process, {:.1} us in the broker",
        a_cpu.0, a_cpu.1
    );
    eprintln!("{label} round {round}: (b) syncline worker");
    if let Some(previous) = previous {
        previous.stop();
        let _ = previous.wait().await;
    }
    let mut tr = t.clone();
    tr.workers[0].name = format!("{}-r{round}", t.workers[0].name);
    let w = tr.workers[0].name.clone();
    let b_started = Instant::now();
    let b_observer = observe_commits(&tr, &format!("syncline.{w}"), input_ends, Duration::from_secs(900));
    let r = start_worker(tr).await;
    let b = b_observer.await.unwrap().expect("syncline did not finish");
    let (b_rate, b_startup) = (b.sustained(n), (b.first_commit - b_started).as_secs_f64());
    eprintln!("    sustained {b_rate:.0}/s (first commit after {b_startup:.1}s)");
    let b_cpu = cpu_per_record(cpu1, cpu_ticks(), n);
    eprintln!(
        "    CPU per record: {:.1} us in this process, {:.1} us in the broker",
        b_cpu.0, b_cpu.1
    );
    let proc_h = r.metrics.processing_seconds.with_label_values(&[&w]);
    let batch_h = r.metrics.batch_seconds.with_label_values(&[&w]);
    let per_record_us = proc_h.get_sample_sum() / proc_h.get_sample_count().max(1) as f64 * 1e6;
    let batch_ms = batch_h.get_sample_sum() / batch_h.get_sample_count().max(1) as f64 * 1e3;
    eprintln!("    {per_record_us:.1} us per record inside the transaction; {batch_ms:.1} ms per batch");
    let round = Round {
        a_rate,
        a_startup,
        b_rate,
        b_startup,
        per_record_us,
        batch_ms,
        a_cpu,
        b_cpu,
    };
    (round, r, w)
}

/// syncline's workers, started the way `syncline run` starts them.
async fn start_worker(t: Topology) -> syncline::app::Process {
    let catalog = Arc::new(Catalog::load(&repo("schemas")).unwrap());
    let options = syncline::app::Options {
        instance: "bench".into(),
        ..Default::default()
    };
    syncline::app::Process::start(t, catalog, options).await.unwrap()
}

/// The `order-submission` worker's figures: Salesforce platform events (CometD envelope) with
/// eight fields and a two-line `Lines__c`, master data from the cross-reference, unit conversion,
/// routing by legal entity, against a passthrough of the same input.
struct SalesforceRounds {
    n: u64,
    rounds: Vec<Round>,
}

impl SalesforceRounds {
    fn median(&self) -> &Round {
        median(&self.rounds)
    }
}

const SF_RUN: &str = "0000be0c";

/// The shipped `order-submission` worker with private topics; every route goes to one output.
fn sf_topology(suffix: &str) -> Topology {
    let mut t = bench_topology("order-submission", &format!("{suffix}.sf"));
    for route in t.workers[0].outputs[0].routes.values_mut() {
        *route = format!("bench.{suffix}.sf.orders");
    }
    t
}

/// Order `n` as the sample platform event, with its own order id and EventUuid.
fn sf_event(sample: &serde_json::Value, n: u64) -> (String, Vec<u8>) {
    let order = format!("801Dn{n:010}");
    let mut v = sample.clone();
    v["data"]["payload"]["Order_Id__c"] = serde_json::Value::String(order.clone());
    v["data"]["event"]["EventUuid"] = serde_json::Value::String(format!("5b4f7c1e-2a9d-4c3b-8e1f-{n:012}"));
    (order, v.to_string().into_bytes())
}

async fn salesforce_rounds(suffix: &str, n: u64, warmup: u64, rounds_wanted: u64) -> SalesforceRounds {
    let t = sf_topology(suffix);
    let input = t.workers[0].inputs[0].clone();
    let output = format!("bench.{suffix}.sf.orders");
    let pass_out = format!("bench.{suffix}.sf.passthrough");
    create_topics(&t, &[&output, &pass_out]).await;
    let producer = clients::plain_producer(&t.kafka).unwrap();
    for (key, value) in syncline::samples::xref_records(&repo("samples/mdm/xref.json"), SF_RUN).unwrap() {
        producer
            .send(
                FutureRecord::to(&t.defaults.xref_topic).key(&key).payload(&value),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }
    let sample = syncline::samples::load(&repo("samples/salesforce/order_submitted.cometd.json"), SF_RUN).unwrap();
    let sample: serde_json::Value = serde_json::from_slice(&sample.value).unwrap();
    eprintln!("producing {n} Salesforce order events to {input}");
    produce_all(&producer, &input, n, |i| sf_event(&sample, i)).await;
    let input_ends = clients::end_offsets(&t.kafka, &[&input], Duration::from_secs(10))
        .await
        .unwrap();
    let mut rounds = Vec::new();
    for round in 1..=warmup + rounds_wanted {
        let (r_round, r, w) = measure_round(&t, "salesforce", &input, &pass_out, &input_ends, n, round, None).await;
        // Counters move right after the commit the observer saw: give them a moment.
        let counted = Instant::now();
        let produced_counter = r.metrics.produced.with_label_values(&[&w, &output]);
        while produced_counter.get() < n && counted.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let produced = produced_counter.get();
        eprintln!("    {produced} sales orders");
        assert_eq!(
            produced, n,
            "every order became a SalesOrder (none parked or dead-lettered)"
        );
        r.stop();
        let _ = r.wait().await;
        if round > warmup {
            rounds.push(r_round);
        }
    }
    SalesforceRounds { n, rounds }
}

fn salesforce_section(sf: &SalesforceRounds) -> String {
    let m = sf.median();
    let rows: String = sf
        .rounds
        .iter()
        .enumerate()
        .map(|(i, r)| {
            format!(
                "| {} | {:.0} | {:.0} | {:.2} | {:.1} / {:.1} | {:.1} / {:.1} | {:.1} |\n",
                i + 1,
                r.a_rate,
                r.b_rate,
                r.ratio(),
                r.a_cpu.0,
                r.a_cpu.1,
                r.b_cpu.0,
                r.b_cpu.1,
                r.per_record_us
            )
        })
        .collect();
    format!(
        "\n## Salesforce order submissions (`order-submission` worker)\n\n\
{n} `Order_Submitted__e` platform events (CometD envelope, two order lines in `Lines__c`, account and products \
resolved through the cross-reference, Box→EA conversion, routed by legal entity), drained by a passthrough (a) and \
the worker (b), alternating, {rounds} rounds. Median ratio {ratio:.2}; the worker's CPU per record in this process \
{cpu:.1} us (median round).\n\n\
| round | (a) events/s | (b) events/s | ratio | (a) CPU us per record, pipeline / broker | (b) CPU us per record, pipeline / broker | (b) us per record inside the transaction |\n\
|---|---|---|---|---|---|---|\n{rows}",
        n = sf.n,
        rounds = sf.rounds.len(),
        ratio = m.ratio(),
        cpu = m.b_cpu.0,
    )
}

/// Latency at a fixed offered rate into `input`, measured outside the worker: from each event's
/// send to its output on `output` becoming visible to a read_committed consumer. Sorted, in ms.
async fn measure_latency(
    t: &Topology,
    producer: &FutureProducer,
    input: &str,
    output: &str,
    label: &str,
    suffix: &str,
) -> Vec<f64> {
    let rate = env_num("BENCH_RATE", 5_000);
    let seconds = env_num("BENCH_SECONDS", 20);
    let input = input.to_string();
    eprintln!("latency at {rate}/s for {seconds}s ({label})");
    let latency_consumer: StreamConsumer = clients::base(&t.kafka)
        .set("group.id", format!("bench-latency-{label}-{suffix}"))
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "5")
        .create()
        .unwrap();
    let ends = clients::end_offsets(&t.kafka, &[output], Duration::from_secs(10))
        .await
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for ((topic, p), end) in &ends {
        tpl.add_partition_offset(topic, *p, Offset::Offset(*end)).unwrap();
    }
    latency_consumer.assign(&tpl).unwrap();
    let sent: Arc<std::sync::Mutex<HashMap<String, Instant>>> = Arc::default();
    let total_latency_events = rate * seconds;
    // The same offered rate runs before the measured events until the measuring consumer has seen
    // one output: a freshly assigned consumer sometimes took ~1 s to fetch its first records,
    // and every event sent meanwhile counted as ~1 s late (p99 750–920 ms in one run of three).
    let (warm_tx, warm_rx) = watch::channel(false);
    let feeder = {
        let sent = sent.clone();
        let producer = producer.clone();
        let input = input.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            let now = chrono::Utc::now().timestamp_millis();
            // One pace throughout; events count once the measuring consumer is warm.
            let (mut i, mut measured) = (0u64, 0u64);
            while measured < total_latency_events {
                let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
                tokio::time::sleep_until(due.into()).await;
                let counted = *warm_rx.borrow();
                let n = if counted {
                    10_000_000_000 + measured
                } else {
                    20_000_000_000 + i
                };
                let (key, value) = event(n, now + i as i64);
                if counted {
                    sent.lock().unwrap().insert(key.clone(), Instant::now());
                    measured += 1;
                }
                let _ = producer.send_result(FutureRecord::to(&input).key(&key).payload(&value));
                i += 1;
            }
            producer.flush(Duration::from_secs(30)).unwrap();
        })
    };
    let mut latencies = Vec::with_capacity(total_latency_events as usize);
    let deadline = Instant::now() + Duration::from_secs(seconds + 60);
    while (latencies.len() as u64) < total_latency_events && Instant::now() < deadline {
        if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_secs(1), latency_consumer.recv()).await {
            let seen = Instant::now();
            let _ = warm_tx.send(true);
            let key = m
                .key()
                .map(|k| String::from_utf8_lossy(k).into_owned())
                .unwrap_or_default();
            if let Some(at) = sent.lock().unwrap().remove(&key) {
                latencies.push((seen - at).as_secs_f64() * 1000.0);
            }
        }
    }
    feeder.await.unwrap();
    latencies.sort_by(|a, b| a.total_cmp(b));
    eprintln!(
        "    {} measured: p50 {:.1} ms, p99 {:.1} ms",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99)
    );
    latencies
}

fn rss_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    // Tuned as `syncline` tunes it, before the runtime's threads start.
    syncline::allocator::tune();
    match tokio::runtime::Runtime::new() {
        Ok(rt) => rt.block_on(run()),
        Err(e) => panic!("no tokio runtime: {e}"),
    }
}

async fn run() {
    let n = env_num("BENCH_EVENTS", 300_000);
    let rounds_wanted = env_num("BENCH_ROUNDS", 5);
    let warmup = env_num("BENCH_WARMUP", 1);
    let rate = env_num("BENCH_RATE", 5_000);
    let seconds = env_num("BENCH_SECONDS", 20);
    let suffix = format!("{}", chrono::Utc::now().timestamp());
    let sf_events = env_num("BENCH_SF_EVENTS", 100_000);
    if std::env::var("BENCH_ONLY").as_deref() == Ok("order-submission") {
        let sf = salesforce_rounds(&suffix, sf_events, warmup, rounds_wanted).await;
        println!("{}", salesforce_section(&sf));
        return;
    }
    if std::env::var("BENCH_ONLY").as_deref() == Ok("latency") {
        let (worker, gated) = latencies(&suffix).await;
        println!(
            "worker alone: p50 {:.1} ms, p99 {:.1} ms; through the gate: p50 {:.1} ms, p99 {:.1} ms",
            percentile(&worker, 0.5),
            percentile(&worker, 0.99),
            percentile(&gated, 0.5),
            percentile(&gated, 0.99)
        );
        return;
    }
    if std::env::var("BENCH_ONLY").as_deref() == Ok("mixed") {
        println!("{}", mixed::section(&mixed::run(&suffix).await));
        return;
    }
    let enrichment_rounds = env_num("BENCH_ENRICH_ROUNDS", 3);
    if std::env::var("BENCH_ONLY").as_deref() == Ok("enrichment") {
        let e = enrichment::rounds(&suffix, enrichment_rounds).await;
        println!("{}", enrichment::section(&e));
        return;
    }
    let t = topology(&suffix);
    let input = t.workers[0].inputs[0].clone();
    let output = t.workers[0].outputs[0].topic.clone().unwrap();
    let pass_out = format!("bench.{suffix}.passthrough");
    create_topics(&t, &[&output, &pass_out]).await;
    let producer = clients::plain_producer(&t.kafka).unwrap();
    eprintln!("producing {n} events to {input}");
    let now = chrono::Utc::now().timestamp_millis();
    produce_all(&producer, &input, n, |i| event(i, now - 60_000 + (i as i64 % 60_000))).await;

    let input_ends = clients::end_offsets(&t.kafka, &[&input], Duration::from_secs(10))
        .await
        .unwrap();
    // Alternating rounds on the same input (each pipeline with a fresh consumer group), so that
    // drift in the shared machine hits both alike; the ratio reported is the median round's.
    // Warm-up rounds first, not counted: a freshly started broker (JIT, page cache) gave the
    // first round a third of the later rounds' throughput, whichever pipeline ran it.
    let mut rounds: Vec<Round> = Vec::new();
    let mut running: Option<syncline::app::Process> = None;
    for round in 1..=warmup + rounds_wanted {
        if round <= warmup {
            eprintln!("warm-up round {round} (not counted)");
        }
        let (r_round, r, _) = measure_round(&t, "erp", &input, &pass_out, &input_ends, n, round, running.take()).await;
        running = Some(r);
        if round > warmup {
            rounds.push(r_round);
        }
    }
    let Some(running) = running else {
        panic!("BENCH_ROUNDS must be at least 1");
    };
    let median = median(&rounds);

    let latencies = measure_latency(&t, &producer, &input, &output, "worker", &suffix).await;
    let (p50, p95, p99) = (
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.95),
        percentile(&latencies, 0.99),
    );
    let peak_rss_mb = rss_kb("VmHWM:") as f64 / 1024.0;
    running.stop();
    let _ = running.wait().await;

    // The same worker behind the order status gate (#20): its statuses take one more hop.
    let through_gate = through_gate(&suffix, &producer).await;
    let (g50, g99) = (percentile(&through_gate, 0.5), percentile(&through_gate, 0.99));
    let sf = salesforce_rounds(&suffix, sf_events, warmup, rounds_wanted).await;

    // Idempotency store size: 1M keys in the store the worker uses.
    syncline::allocator::release_freed();
    let before = rss_kb("VmRSS:");
    let mut store = syncline::runtime::dedupe::DedupeStore::new(i64::MAX / 4, 2_000_000);
    for i in 0..1_000_000u64 {
        store.insert(
            syncline::runtime::dedupe::fingerprint(&format!("sap_s4:erp-na:{i}:type:0")),
            (i % 3) as i32,
            i64::MAX / 2,
        );
    }
    // What the store holds, not the tables it outgrew: those are freed, and go back to the OS
    // only after the allocator's purge delay.
    syncline::allocator::release_freed();
    let dedupe_mb = (rss_kb("VmRSS:").saturating_sub(before)) as f64 / 1024.0;
    assert_eq!(store.len(), 1_000_000);

    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mem_gb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0 / 1024.0)
        .unwrap_or(0.0);
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(repo(""))
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let batch = t.defaults.batch.max_records;
    let round_rows: String = rounds
        .iter()
        .enumerate()
        .map(|(i, r)| {
            format!(
                "| {} | {:.0} | {:.0} | {:.2} | {:.1} / {:.1} | {:.1} / {:.1} | {:.1} | {:.1} | {:.1} s / {:.1} s |\n",
                i + 1,
                r.a_rate,
                r.b_rate,
                r.ratio(),
                r.a_cpu.0,
                r.a_cpu.1,
                r.b_cpu.0,
                r.b_cpu.1,
                r.per_record_us,
                r.batch_ms,
                r.a_startup,
                r.b_startup
            )
        })
        .collect();
    let report = format!(
        "# Benchmarks\n\nProduced by `make bench` (`cargo bench --bench pipeline`) on commit `{commit}`, {date}.\n\
Machine: {cores} cores, {mem_gb:.0} GiB memory; single-node Apache Kafka (KRaft) and Apicurio Registry on the same machine (scripts/stack.sh).\n\n\
| measure | value |\n|---|---|\n\
| events | {n} SAP S/4HANA sales-order events, {PARTITIONS} partitions, keyed over {n} orders, drained {rounds_wanted} times by each pipeline after {warmup} warm-up round(s) not counted |\n\
| (a) raw passthrough, exactly-once, batches of {batch} / 100 ms | {a_rate:.0} events/s sustained (median round) |\n\
| (b) syncline `erp-order-status` worker, exactly-once | {b_rate:.0} events/s sustained (median round) |\n\
| ratio (b)/(a), sustained throughput, median of {rounds_wanted} rounds | {ratio:.2} (target 0.8) |\n\
| end-to-end latency at {rate} events/s offered for {seconds} s, send → visible to read_committed (after the measuring consumer saw its first output) | p50 {p50:.1} ms, p95 {p95:.1} ms, p99 {p99:.1} ms ({count} events; target p99 < 250 ms) |\n\
| the same, through the order status gate (worker → `syncline.status.order-status` → gate → status topic) | p50 {g50:.1} ms, p99 {g99:.1} ms ({gcount} events): the hop costs {hop50:.1} ms at p50, {hop:.1} ms at p99 (target: at most one batch interval, 100 ms; the gate's own batch closes after 20 ms) |\n\
| peak RSS of the benchmark process (both pipelines, producer, consumers) | {peak_rss_mb:.0} MB |\n\
| idempotency store, 1,000,000 keys | {dedupe_mb:.0} MB (target < 150 MB) |\n\n\
Rounds, alternating (a) then (b) on the same input, each with a fresh consumer group; throughput from the group's committed \
offsets, first commit to last (start-up apart: for (b) changelog topics, producer fencing, group join, state restore):\n\n\
| round | (a) events/s | (b) events/s | ratio | (a) CPU us per record, pipeline / broker | (b) CPU us per record, pipeline / broker | (b) us per record inside the transaction | (b) ms per batch | first commit (a) / (b) |\n\
|---|---|---|---|---|---|---|---|---|\n\
{round_rows}\n\
Besides its outputs, (b) writes one state record per batch (idempotency and status-ledger entries) in the same \
transaction, and a ledger snapshot once a minute; it parses the CloudEvent, maps it, and encodes Avro through the registry's cached schema id; the next batch is \
collected, mapped and encoded on a task of its own while the current one commits.\n\n\
CPU per record is the CPU time (user and system) the benchmark process and the broker used while a pipeline drained the \
input, divided by the events. It moves less from run to run than throughput does, and it shows where the difference between \
the pipelines goes: on 2 cores shared with the broker, every microsecond syncline spends is one the broker does not have for \
the commit both pipelines wait on.\n",
        date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        count = latencies.len(),
        gcount = through_gate.len(),
        hop = g99 - p99,
        hop50 = g50 - p50,
        a_rate = median.a_rate,
        b_rate = median.b_rate,
        ratio = median.ratio(),
    );
    // Hand-written history below the figures survives a new run.
    let history = std::fs::read_to_string(repo("BENCHMARKS.md"))
        .ok()
        .and_then(|old| old.find("\n## History").map(|i| old[i..].to_string()))
        .unwrap_or_default();
    let e = enrichment::rounds(&suffix, enrichment_rounds).await;
    let m = mixed::run(&suffix).await;
    let report = format!(
        "{report}{}{}{}{history}",
        salesforce_section(&sf),
        enrichment::section(&e),
        mixed::section(&m)
    );
    std::fs::write(repo("BENCHMARKS.md"), &report).unwrap();
    println!("{report}");
}
