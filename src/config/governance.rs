//! What a worker's `[worker.governance]` must satisfy beyond its types.
//!
//! Owns: the rules tying the governance transform to its worker (its inputs, its one instance)
//! and the rules' own ranges. Must not: judge accounts (that is `transforms::governance`).

use super::{Topology, WorkerConfig};

/// (key, message naming the fix) for each problem of worker `w` at `at` (`worker[3]`).
pub fn problems(t: &Topology, at: &str, w: &WorkerConfig) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if w.transform != "account_governance" {
        if w.governance.is_some() {
            out.push((
                format!("{at}.governance"),
                format!(
                    "transform `{}` has no governance rules; remove [worker.governance] or use transform `account_governance`",
                    w.transform
                ),
            ));
        }
        return out;
    }
    let rules = w.governance.clone().unwrap_or_default();
    for (topic, what) in [
        (&rules.decisions_topic, "operators' decisions"),
        (&t.defaults.xref_topic, "the ERP's answers (`account:` entries)"),
    ] {
        if !w.inputs.contains(topic) {
            out.push((
                format!("{at}.inputs"),
                format!("lacks `{topic}`, where {what} arrive; add it to the worker's inputs"),
            ));
        }
    }
    // One writer of the accounts' state: its records of one account arrive on three topics,
    // which two instances would split between them.
    if w.concurrency != 1 {
        out.push((
            format!("{at}.concurrency"),
            "account governance runs one instance (it is the one writer of the accounts' state); set 1".into(),
        ));
    }
    for (key, problem, fix) in rules.problems() {
        out.push((format!("{at}.governance.{key}"), format!("{problem}; {fix}")));
    }
    out
}
