//! `syncline schemas check|register`: printing around `schema::compat` and `schema::registry`.

use std::path::Path;

use crate::config::Topology;
use crate::schema::Catalog;
use crate::schema::compat;
use crate::schema::registry::{self, RegistryClient};

use super::CliError;

pub fn check(dir: &Path) -> Result<(), CliError> {
    match compat::check(dir) {
        Ok(s) => {
            println!(
                "{}: ok ({} records, {} versions, {} evolution step(s) backward compatible)",
                dir.display(),
                s.records,
                s.versions,
                s.pairs
            );
            Ok(())
        }
        Err(findings) => {
            for f in &findings {
                eprintln!("  - {f}");
            }
            Err(CliError::Failed(format!(
                "{}: {} schema problem(s)",
                dir.display(),
                findings.len()
            )))
        }
    }
}

pub async fn register(topology: &Topology, dir: &Path) -> Result<(), CliError> {
    let catalog = Catalog::load(dir)?;
    let client = RegistryClient::new(&topology.registry)?;
    let done = registry::register_all(&client, &topology.output_subjects(), &catalog).await?;
    let mut new = 0;
    for r in &done {
        let what = if r.newly_registered { "registered" } else { "unchanged" };
        if r.newly_registered {
            new += 1;
        }
        println!(
            "{:<40} {:<16} v{}  id {:<4} {what}{}",
            r.subject,
            r.record,
            r.version,
            r.id,
            if r.compatibility_changed {
                ", compatibility set to BACKWARD"
            } else {
                ""
            }
        );
    }
    if new == 0 {
        println!(
            "nothing new to register: all {} subjects are up to date (BACKWARD)",
            done.len()
        );
    } else {
        println!("{new} of {} subjects registered (BACKWARD)", done.len());
    }
    Ok(())
}
