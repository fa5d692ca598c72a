//! The Grafana dashboard and the Prometheus rules only use metrics syncline exports; the rules
//! file is valid and its alerts fire as their unit tests say (`promtool check rules` and
//! `promtool test rules`, from Debian's `prometheus` package, which `.ci/run` installs).

use syncline_test_support as common;

use std::collections::BTreeSet;

/// Every metric name the process registers (histograms add _bucket/_sum/_count).
fn exported() -> BTreeSet<String> {
    let m = syncline::telemetry::Metrics::new().unwrap();
    // Touch one label set of each family so gather() lists it.
    let mut names = BTreeSet::new();
    for family in m.registry.gather() {
        names.insert(family.name().to_string());
    }
    let text = include_str!("../src/telemetry.rs");
    for line in text.lines() {
        if let Some(start) = line.find("\"syncline_") {
            let rest = &line[start + 1..];
            if let Some(end) = rest.find('"') {
                names.insert(rest[..end].to_string());
            }
        }
    }
    for base in names.clone() {
        for suffix in ["_bucket", "_sum", "_count"] {
            names.insert(format!("{base}{suffix}"));
        }
    }
    names
}

/// Metric names `text` uses that syncline does not export.
fn unknown_metrics(text: &str) -> Vec<String> {
    let exported = exported();
    referenced(text).into_iter().filter(|n| !exported.contains(n)).collect()
}

fn referenced(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("syncline_") {
        let name: String = rest[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        out.insert(name);
        rest = &rest[i + 9..];
    }
    out
}

#[test]
fn dashboard_panels_query_exported_metrics() {
    let text = std::fs::read_to_string(common::repo_path("dashboards/syncline.json")).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).unwrap();
    let panels = dash["panels"].as_array().unwrap();
    let titles: Vec<&str> = panels.iter().filter_map(|p| p["title"].as_str()).collect();
    for wanted in [
        "Throughput",
        "Errors by code",
        "Dead letters",
        "lag",
        "latency",
        "Orders by state",
        "Stuck orders",
    ] {
        assert!(
            titles.iter().any(|t| t.contains(wanted)),
            "no panel for {wanted}: {titles:?}"
        );
    }
    let unknown = unknown_metrics(&text);
    assert!(
        unknown.is_empty(),
        "dashboard queries metrics syncline does not export: {unknown:?}"
    );
}

#[test]
fn alert_rules_are_valid_and_use_exported_metrics() {
    let path = common::repo_path("alerts/syncline.rules.yml");
    let text = std::fs::read_to_string(&path).unwrap();
    let rules: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let alerts: Vec<&str> = rules["groups"][0]["rules"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|r| {
            assert!(r["expr"].as_str().is_some_and(|e| !e.is_empty()));
            r["alert"].as_str().unwrap()
        })
        .collect();
    for wanted in [
        "SynclineOrdersStuck",
        "SynclineDeadLettersGrowing",
        "SynclineConsumerLagHigh",
        "SynclineWorkerDown",
    ] {
        assert!(alerts.contains(&wanted), "{wanted} missing: {alerts:?}");
    }
    let unknown = unknown_metrics(&text);
    assert!(
        unknown.is_empty(),
        "rules use metrics syncline does not export: {unknown:?}"
    );
    promtool(&["check", "rules"], &path);
    promtool(&["test", "rules"], &common::repo_path("alerts/syncline.rules.test.yml"));
}

/// Runs `promtool ARGS FILE`, which must exist and succeed.
fn promtool(args: &[&str], file: &std::path::Path) {
    let out = std::process::Command::new("promtool")
        .args(args)
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("promtool is needed to check the alert rules ({e}): apt-get install prometheus"));
    assert!(
        out.status.success(),
        "promtool {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
