//! Offline evolution rules for `schemas/`: what `syncline schemas check` enforces.
//!
//! Owns: "every version reads data written by its predecessor" (BACKWARD, like the registry
//! rule), one namespace, and one identical shared `meta` record. Must not: contact the registry.

use std::path::Path;

use apache_avro::Schema;
use apache_avro::schema_compatibility::SchemaCompatibility;

use super::catalog::{self, Catalog};

pub const NAMESPACE: &str = "io.syncline.canonical";

/// One broken rule, phrased for the person who edited the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub record: String,
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.record, self.message)
    }
}

/// What was checked, for the success message.
#[derive(Debug, Default)]
pub struct Summary {
    pub records: usize,
    pub versions: usize,
    pub pairs: usize,
}

/// Checks the whole folder; every finding is returned, not just the first.
pub fn check(dir: &Path) -> Result<Summary, Vec<Finding>> {
    let (catalog, load_errors) = Catalog::load_all(dir);
    let mut findings: Vec<Finding> = load_errors
        .into_iter()
        .map(|e| Finding {
            record: "schemas".into(),
            message: e.to_string(),
        })
        .collect();
    let meta = match catalog::shared_meta(dir) {
        Ok(m) => Some(m),
        Err(e) => {
            findings.push(Finding {
                record: "_shared/meta".into(),
                message: e.to_string(),
            });
            None
        }
    };
    let mut summary = Summary::default();
    for (record, versions) in catalog.records() {
        summary.records += 1;
        summary.versions += versions.len();
        for v in versions {
            findings.extend(check_shape(record, v.version, &v.schema, meta.as_ref()));
        }
        for pair in versions.windows(2) {
            summary.pairs += 1;
            let (old, new) = (&pair[0], &pair[1]);
            if let Err(e) = SchemaCompatibility::can_read(&old.schema, &new.schema) {
                findings.push(Finding {
                    record: record.to_string(),
                    message: format!(
                        "v{} cannot read data written with v{}: {}",
                        new.version,
                        old.version,
                        error_chain(&e)
                    ),
                });
            }
        }
    }
    if findings.is_empty() {
        Ok(summary)
    } else {
        Err(findings)
    }
}

fn check_shape(record: &str, version: u32, schema: &Schema, meta: Option<&Schema>) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut push = |message: String| {
        out.push(Finding {
            record: record.to_string(),
            message: format!("v{version}: {message}"),
        })
    };
    let Schema::Record(r) = schema else {
        push("is not a record schema".into());
        return out;
    };
    if r.name.namespace() != Some(NAMESPACE) {
        push(format!("namespace is {:?}, must be `{NAMESPACE}`", r.name.namespace()));
    }
    match r.fields.iter().find(|f| f.name == "meta") {
        None => push("has no `meta` field; every canonical record carries the shared meta record".into()),
        Some(field) => {
            if let Some(meta) = meta
                && field.schema.canonical_form() != meta.canonical_form()
            {
                push("its `meta` record differs from schemas/_shared/meta.avsc; copy it from there".into());
            }
        }
    }
    out
}

/// Renders an error and its causes: the compatibility checker nests the field path in sources.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        text.push_str(": ");
        text.push_str(&s.to_string());
        cur = s.source();
    }
    text
}
