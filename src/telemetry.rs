//! Prometheus metrics: one registry per process, handles passed to workers and tools. A
//! ground-level module so that the runtime and the operator tools can both count without
//! depending on each other.
//!
//! Owns: metric names, types, labels and help texts (the README documents the same list). Must
//! not: allocate label strings on the hot path more than once per label set it can avoid.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

/// Every metric syncline exports.
pub struct Metrics {
    pub registry: Registry,
    pub consumed: IntCounterVec,
    pub produced: IntCounterVec,
    pub failed: IntCounterVec,
    pub dead_letters: IntCounterVec,
    pub duplicates: IntCounterVec,
    pub held: IntCounterVec,
    pub parked: IntCounterVec,
    pub released: IntCounterVec,
    pub redriven: IntCounterVec,
    pub stale: IntCounterVec,
    pub retries: IntCounterVec,
    pub transactions: IntCounterVec,
    pub batch_seconds: HistogramVec,
    pub processing_seconds: HistogramVec,
    pub end_to_end_seconds: HistogramVec,
    pub consumer_lag: IntGaugeVec,
    pub registry_requests: IntCounterVec,
    pub worker_up: IntGaugeVec,
    pub worker_restarts: IntCounterVec,
    pub api_requests: IntCounterVec,
    pub api_seconds: HistogramVec,
    pub api_cache_hits: IntCounterVec,
    pub api_budget_remaining: IntGaugeVec,
    pub orders_in_state: IntGaugeVec,
    pub orders_stuck: IntGaugeVec,
    pub accounts_in_state: IntGaugeVec,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| -> Result<IntCounterVec, prometheus::Error> {
            let c = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let consumed = counter(
            "syncline_events_consumed_total",
            "Source records read, by worker and topic.",
            &["worker", "topic"],
        )?;
        let produced = counter(
            "syncline_events_produced_total",
            "Canonical records committed, by worker and output topic.",
            &["worker", "topic"],
        )?;
        let failed = counter(
            "syncline_events_failed_total",
            "Source records that failed, by worker, topic, error class and code.",
            &["worker", "topic", "class", "code"],
        )?;
        let dead_letters = counter(
            "syncline_dead_letters_total",
            "Records written to the dead-letter topic, by worker and code.",
            &["worker", "code"],
        )?;
        let duplicates = counter(
            "syncline_duplicates_skipped_total",
            "Re-sent source events skipped by the idempotency store.",
            &["worker"],
        )?;
        let held = counter(
            "syncline_held_total",
            "Records held behind a dead-lettered key (sequenced dead letters).",
            &["worker"],
        )?;
        let parked = counter(
            "syncline_parked_total",
            "Records parked for missing master data, by worker.",
            &["worker"],
        )?;
        let released = counter(
            "syncline_released_total",
            "Held keys released (dead letter replayed successfully, or `syncline dlq release`).",
            &["worker"],
        )?;
        let redriven = counter(
            "syncline_redriven_total",
            "Parked records re-driven after their cross-reference arrived, by worker.",
            &["worker"],
        )?;
        let stale = counter(
            "syncline_stale_status_skipped_total",
            "Lifecycle statuses not published because the lifecycle already has a later one, by worker and the topic the status's source event came from.",
            &["worker", "source_topic"],
        )?;
        let retries = counter(
            "syncline_retries_total",
            "Batches retried after a transient failure, by worker and code.",
            &["worker", "code"],
        )?;
        let transactions = counter(
            "syncline_transactions_total",
            "Kafka transactions by outcome (committed, aborted).",
            &["worker", "outcome"],
        )?;
        let batch_seconds = HistogramVec::new(
            HistogramOpts::new(
                "syncline_batch_seconds",
                "Time from the first record of a batch to its commit.",
            )
            .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
            &["worker"],
        )?;
        registry.register(Box::new(batch_seconds.clone()))?;
        let processing_seconds = HistogramVec::new(
            HistogramOpts::new(
                "syncline_processing_seconds",
                "Time to adapt, map and encode one source record.",
            )
            .buckets(vec![0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1]),
            &["worker"],
        )?;
        registry.register(Box::new(processing_seconds.clone()))?;
        let end_to_end_seconds = HistogramVec::new(
            HistogramOpts::new(
                "syncline_end_to_end_latency_seconds",
                "From the source record's Kafka timestamp to the commit of its outputs.",
            )
            .buckets(vec![0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]),
            &["worker"],
        )?;
        registry.register(Box::new(end_to_end_seconds.clone()))?;
        let consumer_lag = IntGaugeVec::new(
            Opts::new(
                "syncline_consumer_lag",
                "Records not yet consumed, per input topic-partition (librdkafka statistics).",
            ),
            &["worker", "topic", "partition"],
        )?;
        registry.register(Box::new(consumer_lag.clone()))?;
        let registry_requests = counter(
            "syncline_registry_requests_total",
            "Schema registry calls by operation and outcome (ok, unavailable, refused).",
            &["operation", "outcome"],
        )?;
        let worker_up = IntGaugeVec::new(
            Opts::new("syncline_worker_up", "1 while the worker runs and consumes."),
            &["worker"],
        )?;
        registry.register(Box::new(worker_up.clone()))?;
        let worker_restarts = counter(
            "syncline_worker_restarts_total",
            "Worker instances rebuilt by the supervisor, by worker and reason (kafka, setup, panic).",
            &["worker", "reason"],
        )?;
        let api_requests = counter(
            "syncline_api_requests_total",
            "Vendor API calls by connection and outcome (ok, not_found, throttled, unavailable, unauthorized, refused, circuit_open).",
            &["api", "outcome"],
        )?;
        let api_seconds = HistogramVec::new(
            HistogramOpts::new(
                "syncline_api_request_seconds",
                "Vendor API call latency, by connection.",
            )
            .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            &["api"],
        )?;
        registry.register(Box::new(api_seconds.clone()))?;
        let api_cache_hits = counter(
            "syncline_api_cache_hits_total",
            "Vendor API answers served from the connection's cache.",
            &["api"],
        )?;
        let api_budget_remaining = IntGaugeVec::new(
            Opts::new(
                "syncline_api_budget_remaining",
                "API calls left in the org's allocation, as Salesforce reports it (Sforce-Limit-Info).",
            ),
            &["api"],
        )?;
        registry.register(Box::new(api_budget_remaining.clone()))?;
        let orders_in_state = IntGaugeVec::new(
            Opts::new(
                "syncline_orders_in_state",
                "Orders whose lifecycle is currently in each state (business tracker).",
            ),
            &["state"],
        )?;
        registry.register(Box::new(orders_in_state.clone()))?;
        let orders_stuck = IntGaugeVec::new(
            Opts::new(
                "syncline_orders_stuck",
                "Orders past the service level of a transition (tracker.service_levels).",
            ),
            &["transition"],
        )?;
        registry.register(Box::new(orders_stuck.clone()))?;
        let accounts_in_state = IntGaugeVec::new(
            Opts::new(
                "syncline_accounts_in_state",
                "Governed accounts in each customer governance state (from mdm.xref: every process reports the same count).",
            ),
            &["state"],
        )?;
        registry.register(Box::new(accounts_in_state.clone()))?;
        Ok(Self {
            registry,
            accounts_in_state,
            orders_in_state,
            orders_stuck,
            consumed,
            produced,
            failed,
            dead_letters,
            duplicates,
            held,
            parked,
            redriven,
            released,
            stale,
            retries,
            transactions,
            batch_seconds,
            processing_seconds,
            end_to_end_seconds,
            consumer_lag,
            registry_requests,
            worker_up,
            worker_restarts,
            api_requests,
            api_seconds,
            api_cache_hits,
            api_budget_remaining,
        })
    }
}
