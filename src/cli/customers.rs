//! `syncline customers pending|show|approve|reject|merge|stuck`: printing around
//! `ops::customers`.

use clap::{Args, Subcommand};

use crate::config::Topology;
use crate::ops::customers::{self, CustomersError};
use crate::transforms::governance::decision::{Action, Decision};
use crate::xref::{XrefEntry, XrefLookup};

use super::CliError;

#[derive(Debug, Subcommand)]
pub enum CustomersCommand {
    /// Accounts waiting for a person (validated, suspected duplicates, credit review).
    Pending {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// One account: state, data checked, reasons and every transition.
    Show {
        /// The Salesforce Account id.
        account_id: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Approve an account in review: its CustomerMaster goes to the ERP of its legal entity.
    Approve(DecisionArgs),
    /// Reject an account: no ERP customer is created.
    Reject(DecisionArgs),
    /// The account is a duplicate of an ERP customer: link it to that customer instead of
    /// creating one (its parked orders flow at once).
    Merge {
        #[command(flatten)]
        args: DecisionArgs,
        /// The Salesforce id of the account (an ERP customer) it duplicates.
        #[arg(long)]
        into: String,
    },
    /// Accounts past a service level of `[worker.governance] service_levels`.
    Stuck {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct DecisionArgs {
    /// The Salesforce Account id.
    account_id: String,
    /// Why (recorded with the decision and shown on the account).
    #[arg(long)]
    reason: String,
    /// Who decides (recorded as operator:<by>).
    #[arg(long, env = "USER", default_value = "operator")]
    by: String,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| CliError::Failed(e.to_string()))?;
    println!("{text}");
    Ok(())
}

fn failed(e: CustomersError) -> CliError {
    CliError::Failed(e.to_string())
}

pub async fn run(t: &Topology, action: CustomersCommand) -> Result<(), CliError> {
    let (_, rules) = customers::governance(t).map_err(failed)?;
    let table = customers::read(&t.kafka, &t.defaults.xref_topic)
        .await
        .map_err(failed)?;
    match action {
        CustomersCommand::Pending { json } => {
            let pending = customers::pending(&table);
            if json {
                return print_json(&pending);
            }
            for g in &pending {
                let why = g.reasons.iter().map(|r| r.code.as_str()).collect::<Vec<_>>().join(", ");
                println!(
                    "{}  {:<20} v{}  {}  {}",
                    g.salesforce_id,
                    g.state.name(),
                    g.version,
                    g.data.name.as_deref().unwrap_or("-"),
                    why
                );
            }
            println!("{} account(s) waiting for a decision", pending.len());
            Ok(())
        }
        CustomersCommand::Show { account_id, json } => {
            let Some(XrefEntry::Governance(g)) = table.get(&crate::xref::reference("governance", &account_id)) else {
                return Err(failed(CustomersError::Unknown(account_id)));
            };
            if json {
                return print_json(g);
            }
            print!("{}", customers::render(g));
            Ok(())
        }
        CustomersCommand::Stuck { json } => {
            let now = chrono::Utc::now().timestamp_millis();
            let stuck = customers::stuck(&table, &rules, now);
            if json {
                return print_json(&stuck);
            }
            for s in &stuck {
                println!(
                    "{}  {:<20} {}: waiting {} (service level {})",
                    s.account_id,
                    s.state,
                    s.transition,
                    humantime::format_duration(std::time::Duration::from_secs((s.waiting_ms / 1000).max(0) as u64)),
                    humantime::format_duration(std::time::Duration::from_millis(s.service_level_ms.max(0) as u64)),
                );
            }
            println!(
                "{} account(s) past a service level of {} governed",
                stuck.len(),
                table.governed().count()
            );
            Ok(())
        }
        CustomersCommand::Approve(args) => decide(t, &table, &rules, Action::Approve, args, None).await,
        CustomersCommand::Reject(args) => decide(t, &table, &rules, Action::Reject, args, None).await,
        CustomersCommand::Merge { args, into } => decide(t, &table, &rules, Action::Merge, args, Some(into)).await,
    }
}

async fn decide(
    t: &Topology,
    table: &crate::xref::XrefTable,
    rules: &crate::transforms::governance::Rules,
    action: Action,
    args: DecisionArgs,
    into: Option<String>,
) -> Result<(), CliError> {
    let decision = Decision {
        account_id: args.account_id.clone(),
        decision: action,
        version: 0,
        into,
        by: args.by,
        at: chrono::Utc::now().timestamp_millis(),
        reason: Some(args.reason),
    };
    let sent = customers::decide(&t.kafka, table, rules, decision)
        .await
        .map_err(failed)?;
    if args.json {
        return print_json(&serde_json::json!({
            "account_id": args.account_id,
            "decision": action.name(),
            "sent": sent,
            "decisions_topic": rules.decisions_topic,
        }));
    }
    if sent {
        println!(
            "{} {}: decision sent to {} (the governance worker applies it)",
            action.name(),
            args.account_id,
            rules.decisions_topic
        );
    } else {
        println!("{} {}: already done, nothing sent", action.name(), args.account_id);
    }
    Ok(())
}
