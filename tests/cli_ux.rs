//! The command line as an operator meets it when something is wrong: a broker that cannot be
//! reached is named within 10 s (not a 30 s "OperationTimedOut"), and logs written to a pipe
//! carry no colour codes.

use syncline_test_support as common;

use std::time::{Duration, Instant};

/// The shipped topology pointed at a port nothing listens on.
fn unreachable_topology(dir: &std::path::Path) -> (std::path::PathBuf, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port(); // bound, then released: free, and nothing answers there
    let servers = format!("127.0.0.1:{port}");
    let text = std::fs::read_to_string(common::repo_path("topology.toml"))
        .unwrap()
        .replace("${SYNCLINE_BOOTSTRAP:-127.0.0.1:9092}", &servers);
    assert!(
        text.contains(&servers),
        "the shipped topology names its bootstrap servers differently"
    );
    let path = dir.join("topology.toml");
    std::fs::write(&path, text).unwrap();
    (path, servers)
}

#[test]
fn an_unreachable_broker_is_named_within_ten_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let (topology, servers) = unreachable_topology(dir.path());
    for args in [&["dlq", "list"][..], &["orders", "stuck"], &["topics", "create"]] {
        let started = Instant::now();
        let (ok, out) = common::syncline(&topology, args, &[("RUST_LOG", "info")]);
        let took = started.elapsed();
        assert!(!ok, "{args:?} succeeded without a broker: {out}");
        assert!(took < Duration::from_secs(10), "{args:?} took {took:?}: {out}");
        assert!(
            out.contains(&format!("cannot reach Kafka at {servers}")) && out.contains("bootstrap_servers"),
            "{args:?}: {out}"
        );
        assert!(
            !out.contains('\u{1b}'),
            "colour codes in piped output of {args:?}: {out:?}"
        );
    }
}
