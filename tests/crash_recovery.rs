//! `syncline run` as a child process, killed with SIGKILL at random moments while events keep
//! arriving, then restarted: the committed output holds every input exactly once.
//! CRASH_CYCLES (default 6) and CRASH_EVENTS (default 3000) size it; the campaign in
//! RELIABILITY.md runs more.

use syncline_test_support as common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::Names;

fn spawn(topology: &std::path::Path, log: &std::path::Path) -> Child {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    Command::new(env!("CARGO_BIN_EXE_syncline"))
        .args(["run", "--instance", "crash", "--topology"])
        .arg(topology)
        .arg("--schemas")
        .arg(common::repo_path("schemas"))
        .env("RUST_LOG", "warn,syncline=info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn syncline run")
}

/// A pseudo-random duration in [min, max) ms, different every call.
fn random_ms(min: u64, max: u64) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    Duration::from_millis(min + (nanos.wrapping_mul(6_364_136_223_846_793_005) >> 11) % (max - min))
}

#[tokio::test]
async fn sigkill_at_random_moments_loses_and_duplicates_nothing() {
    let names = Names::new("crash");
    names.create_topics(3).await;
    let dir = tempfile::tempdir().unwrap();
    let topology = dir.path().join("topology.toml");
    std::fs::write(&topology, names.topology(50)).unwrap();
    let log = dir.path().join("worker.log");

    // Events keep arriving during the whole campaign.
    let env = |name: &str, default: u32| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let n: u32 = env("CRASH_EVENTS", 3000);
    let input = names.input.clone();
    let feeder = tokio::spawn(async move {
        let p = common::producer();
        for seq in 0..n {
            let order = format!("801C{:03}", seq % 60);
            common::produce(&p, &input, &order, &common::status_event(&order, seq, "accepted")).await;
            if seq % 100 == 99 {
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        }
    });

    let cycles = env("CRASH_CYCLES", 6);
    for cycle in 0..cycles {
        let before = common::read_all(&names.output).await.len();
        let mut child = spawn(&topology, &log);
        // Kill mid-stream: once this run has committed something, at a random moment after.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while common::read_all(&names.output).await.len() <= before && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(random_ms(50, 1500)).await;
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
        let so_far = common::read_all(&names.output).await.len();
        eprintln!("cycle {cycle}: killed with {so_far} committed outputs");
    }
    feeder.await.unwrap();

    // A final run finishes the stream; then SIGTERM must stop it cleanly.
    let mut child = spawn(&topology, &log);
    let out = common::wait_for(&names.output, n as usize, Duration::from_secs(120)).await;
    common::wait_consumed(&names.worker, &[&names.input], Duration::from_secs(60)).await;
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "SIGTERM ends the worker cleanly: {status:?}");

    let out = if out.len() == n as usize {
        common::read_all(&names.output).await
    } else {
        out
    };
    let per_key = common::count_by_idempotency_key(&out);
    let dups: Vec<_> = per_key.iter().filter(|(_, c)| **c > 1).collect();
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(dups.is_empty(), "duplicates: {dups:?}\n{logs}");
    assert_eq!(
        per_key.len(),
        n as usize,
        "missing outputs\n{}",
        &logs[logs.len().saturating_sub(4000)..]
    );
    assert!(common::read_all(&names.dlq).await.is_empty());
}
