//! Shared set-up for integration tests: the real local stack (scripts/stack.sh), unique names.
//!
//! The broker and registry must be running (`make test` starts them). An unreachable stack makes
//! a test fail, never skip: a green run must mean the guarantees were checked for real.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use syncline::config::{KafkaConfig, RegistryConfig};
use syncline::runtime::clients::{self, TopicSpec};

pub const TIMEOUT: Duration = Duration::from_secs(30);

pub fn kafka() -> KafkaConfig {
    KafkaConfig {
        bootstrap_servers: std::env::var("SYNCLINE_BOOTSTRAP")
            .unwrap_or_else(|_| "127.0.0.1:9092".into()),
        properties: BTreeMap::new(),
    }
}

pub fn registry() -> RegistryConfig {
    RegistryConfig {
        url: std::env::var("SYNCLINE_REGISTRY_URL")
            .unwrap_or_else(|_| "http://127.0.0.1:8081/apis/ccompat/v7".into()),
        username: None,
        password: None,
        timeout: "5s".into(),
    }
}

pub fn repo_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A name no other test run uses, so tests share one broker without interfering.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}.{}.{}.{}",
        std::process::id(),
        chrono::Utc::now().timestamp_millis() % 1_000_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Creates fresh topics and fails loudly if the broker is not there.
pub async fn topics(names: &[&str], partitions: i32) {
    let specs: Vec<TopicSpec> = names
        .iter()
        .map(|n| TopicSpec {
            name: n.to_string(),
            partitions,
            compacted: false,
        })
        .collect();
    clients::ensure_topics(&kafka(), &specs)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "the Kafka broker at {} must be running (make test starts it): {e}",
                kafka().bootstrap_servers
            )
        });
}
