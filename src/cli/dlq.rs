//! `syncline dlq list|show|replay|release`: printing around `ops::replay`.

use clap::{Args, Subcommand};

use crate::config::Topology;
use crate::ops::replay::{self, DeadLetter, Filter, ReplayOptions};
use crate::schema::{Codec, registry};

use super::CliError;

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List dead letters.
    List {
        #[command(flatten)]
        filter: FilterArgs,
        /// List at most this many (oldest first).
        #[arg(long)]
        limit: Option<usize>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Show one dead letter: headers, payload (JSON or Avro decoded) and error.
    Show {
        /// partition:offset in the dead-letter topic, e.g. 2:1041
        position: String,
    },
    /// Re-publish dead letters to their original topic (or --to), each at most once unless --force.
    Replay {
        #[command(flatten)]
        filter: FilterArgs,
        /// Replay every dead letter (required when no filter is given).
        #[arg(long)]
        all: bool,
        /// Say what would be replayed; publish and record nothing.
        #[arg(long)]
        dry_run: bool,
        /// Replay at most this many of the selected dead letters (oldest first).
        #[arg(long)]
        limit: Option<usize>,
        /// Records per second.
        #[arg(long)]
        rate: Option<f64>,
        /// Publish to this topic instead of each record's original topic (and partition).
        #[arg(long)]
        to: Option<String>,
        /// Replay dead letters that were replayed before.
        #[arg(long)]
        force: bool,
    },
    /// Let events held behind a key's dead letter flow without replaying it.
    Release {
        /// The record key whose later events are held behind its dead letter.
        #[arg(long)]
        key: String,
        /// Why the held events may go on without the dead letter (recorded with the decision).
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, Args)]
pub struct FilterArgs {
    /// Only dead letters written by this worker.
    #[arg(long)]
    worker: Option<String>,
    /// Only this error code (e.g. MISSING_PAYMENT_TERMS).
    #[arg(long)]
    code: Option<String>,
    /// Only this error class: business or poison.
    #[arg(long)]
    class: Option<String>,
    /// Only dead letters of this record key.
    #[arg(long)]
    key: Option<String>,
    /// Only dead letters written at or after this RFC 3339 time or duration ago (2h).
    #[arg(long)]
    since: Option<String>,
    /// Only dead letters written at or before this RFC 3339 time or duration ago (2h).
    #[arg(long)]
    until: Option<String>,
}

impl FilterArgs {
    fn filter(&self) -> Result<Filter, CliError> {
        let now = chrono::Utc::now().timestamp_millis();
        let time = |t: &Option<String>| t.as_deref().map(|t| replay::parse_time(t, now)).transpose();
        Ok(Filter {
            worker: self.worker.clone(),
            code: self.code.clone(),
            class: self.class.clone(),
            key: self.key.clone(),
            since_ms: time(&self.since).map_err(|e| CliError::Failed(e.to_string()))?,
            until_ms: time(&self.until).map_err(|e| CliError::Failed(e.to_string()))?,
        })
    }
}

fn err(e: replay::ReplayError) -> CliError {
    CliError::Failed(e.to_string())
}

pub async fn run(t: &Topology, cmd: DlqCommand) -> Result<(), CliError> {
    let dlq = t.defaults.dead_letter_topic.as_str();
    match cmd {
        DlqCommand::List { filter, limit, json } => {
            let f = filter.filter()?;
            let all = replay::read(&t.kafka, dlq).await.map_err(err)?;
            let selected: Vec<&DeadLetter> = all
                .iter()
                .filter(|d| f.matches(d))
                .take(limit.unwrap_or(usize::MAX))
                .collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&selected).unwrap_or_default());
                return Ok(());
            }
            if selected.is_empty() {
                println!("no dead letter in {dlq} matches ({} in total)", all.len());
                return Ok(());
            }
            let now = chrono::Utc::now().timestamp_millis();
            println!(
                "{:<10} {:<22} {:<9} {:<24} {:<22} {:<22} {:>7} {:>3} REPLAYED",
                "POSITION", "WORKER", "CLASS", "CODE", "KEY", "CORRELATION", "AGE", "TRY"
            );
            for d in &selected {
                let decided = match &d.decision {
                    Some(x) if x.action == "replayed" => format!("yes ({}x)", x.count),
                    Some(x) => x.action.clone(),
                    None => "no".into(),
                };
                println!(
                    "{:<10} {:<22} {:<9} {:<24} {:<22} {:<22} {:>7} {:>3} {decided}",
                    d.position(),
                    d.worker,
                    d.class,
                    d.code,
                    d.key.as_deref().unwrap_or("-"),
                    d.correlation_id,
                    age(now - d.timestamp_ms),
                    d.attempts
                );
            }
            println!("{} of {} dead letter(s)", selected.len(), all.len());
            Ok(())
        }
        DlqCommand::Show { position } => {
            let d = replay::find(&t.kafka, dlq, &position).await.map_err(err)?;
            show(t, &d).await
        }
        DlqCommand::Replay {
            filter,
            all,
            dry_run,
            limit,
            rate,
            to,
            force,
        } => {
            let f = filter.filter()?;
            if f.is_empty() && !all {
                return Err(err(replay::ReplayError::NoFilter));
            }
            let every = replay::read(&t.kafka, dlq).await.map_err(err)?;
            let selected: Vec<DeadLetter> = every.into_iter().filter(|d| f.matches(d)).collect();
            if selected.is_empty() {
                return Err(CliError::Failed(
                    "no dead letter matches the filter; nothing replayed".into(),
                ));
            }
            let bar = indicatif::ProgressBar::new(selected.len().min(limit.unwrap_or(usize::MAX)) as u64);
            if selected.len() < 50 {
                bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
            }
            let opts = ReplayOptions {
                to,
                dry_run,
                force,
                limit,
                rate,
            };
            let summary = replay::replay(&t.kafka, dlq, &selected, &opts, |d, what| {
                bar.inc(1);
                if bar.is_hidden() {
                    println!(
                        "{} {} {}: {what}",
                        d.position(),
                        d.code,
                        d.key.as_deref().unwrap_or("-")
                    );
                }
            })
            .await
            .map_err(err)?;
            bar.finish_and_clear();
            println!(
                "{}: {} selected, {} replayed, {} skipped as already replayed, {} failed",
                if dry_run { "dry run" } else { "replay" },
                summary.selected,
                summary.replayed,
                summary.skipped_already_replayed,
                summary.failed
            );
            if summary.replayed == 0 && summary.skipped_already_replayed > 0 {
                println!("nothing new: every selected dead letter was replayed before (use --force to replay again)");
            }
            if summary.failed > 0 {
                return Err(CliError::Failed(format!("{} replay(s) failed", summary.failed)));
            }
            Ok(())
        }
        DlqCommand::Release { key, reason } => {
            let d = replay::release(&t.kafka, dlq, &key, &reason).await.map_err(err)?;
            println!(
                "released key {key} (dead letter {} {}, worker {}); reason recorded: {reason}",
                d.position(),
                d.code,
                d.worker
            );
            Ok(())
        }
    }
}

fn age(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

async fn show(t: &Topology, d: &DeadLetter) -> Result<(), CliError> {
    use rdkafka::message::{Headers, Message};
    println!("dead letter {} in {}", d.position(), t.defaults.dead_letter_topic);
    println!("error: [{}] {}: {}", d.class, d.code, d.message);
    println!("key: {}", d.key.as_deref().unwrap_or("-"));
    if let Some(x) = &d.decision {
        println!(
            "decision: {} at {}{}",
            x.action,
            x.at,
            x.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
        );
    }
    println!("headers:");
    if let Some(h) = d.record.headers() {
        for x in h.iter() {
            println!(
                "  {} = {}",
                x.key,
                x.value.map(String::from_utf8_lossy).unwrap_or_default()
            );
        }
    }
    println!("payload:");
    let payload = d.record.payload().unwrap_or_default();
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(payload) {
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else if payload.first() == Some(&0) && payload.len() > 5 {
        let codec = Codec::new(registry::sr_settings(&t.registry)?);
        match codec.decode_value(payload, None).await {
            Ok(v) => println!("(Avro) {v:?}"),
            Err(e) => println!("({} bytes, not decodable: {e})", payload.len()),
        }
    } else {
        println!(
            "({} bytes) {}",
            payload.len(),
            String::from_utf8_lossy(&payload[..payload.len().min(2000)])
        );
    }
    Ok(())
}
