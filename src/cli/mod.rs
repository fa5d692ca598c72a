//! Command line: parses arguments, sets up logging, runs one command, maps errors to exit codes.
//!
//! Owns: argument names, help texts and how results are printed. Must not: hold logic that
//! another entry point (tests, `syncline test`) would need; commands call into the library.

mod customers;
mod demo;
mod dlq;
mod run;
mod schemas;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::{self, ConfigError, Topology};
use crate::schema::SchemaError;
use crate::schema::registry::RegistryError;

#[derive(Debug, Parser)]
#[command(
    name = "syncline",
    version,
    about = "Keeps Salesforce and ERP workflows in sync over Apache Kafka, exactly once."
)]
pub struct Cli {
    /// Topology file.
    #[arg(long, global = true, env = "SYNCLINE_TOPOLOGY", default_value = "topology.toml")]
    topology: PathBuf,
    /// Folder of canonical Avro schemas.
    #[arg(long, global = true, env = "SYNCLINE_SCHEMAS", default_value = "schemas")]
    schemas: PathBuf,
    /// Log line format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check the topology file; prints every problem with its key.
    Validate,
    /// Canonical schemas: offline evolution checks and registry registration.
    Schemas {
        #[command(subcommand)]
        action: SchemasCommand,
    },
    /// Run the embedded demo against the local stack and print what came out.
    Demo,
    /// Run workers until SIGINT/SIGTERM.
    Run {
        /// Run only these workers (repeatable); all by default.
        #[arg(long = "worker")]
        workers: Vec<String>,
        /// This process's instance id; part of each transactional.id, so it must be stable
        /// across restarts of the same instance and unique among running instances.
        #[arg(long, env = "SYNCLINE_INSTANCE", default_value = "0")]
        instance: String,
        /// Do not run the business transaction tracker in this process (run it in one only).
        #[arg(long)]
        no_tracker: bool,
    },
    /// Business transactions: stuck orders and order timelines.
    Orders {
        #[command(subcommand)]
        action: OrdersCommand,
    },
    /// Run mapping contract cases in memory (no broker, no registry).
    Test {
        /// Case files or folders of them.
        #[arg(default_value = "tests/contracts")]
        cases: Vec<PathBuf>,
        /// Machine-readable results.
        #[arg(long)]
        json: bool,
    },
    /// Customer governance: accounts in review, decisions, service levels.
    Customers {
        #[command(subcommand)]
        action: customers::CustomersCommand,
    },
    /// Dead letters: list, show, replay, release.
    Dlq {
        #[command(subcommand)]
        action: dlq::DlqCommand,
    },
    /// Kafka topics of the topology.
    Topics {
        #[command(subcommand)]
        action: TopicsCommand,
    },
}

#[derive(Debug, Subcommand)]
enum OrdersCommand {
    /// Orders past the service level of their current state.
    Stuck {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Judge the service levels as of this time (RFC 3339, or a duration ago such as 2h)
        /// instead of now.
        #[arg(long)]
        at: Option<String>,
    },
    /// One order's timeline across Salesforce and ERP events.
    Show {
        /// The Salesforce order id (or opportunity / reservation id).
        order_id: String,
    },
}

#[derive(Debug, Subcommand)]
enum TopicsCommand {
    /// Create every topic the topology reads or writes that does not exist yet.
    Create {
        /// Partitions of each topic created (existing topics are left as they are).
        #[arg(long, default_value_t = 3)]
        partitions: i32,
    },
}

#[derive(Debug, Subcommand)]
enum SchemasCommand {
    /// Parse every schema and check each version reads its predecessor's data (no network).
    Check,
    /// Register the latest version of every output schema under `<topic>-value`, BACKWARD.
    Register,
}

/// Errors a command can end with; each maps to a message and exit code 1.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Codec(#[from] crate::schema::CodecError),
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error(
        "cannot reach Kafka at {servers} within {}s ({source}): check `[kafka] bootstrap_servers` in the topology (or start the local stack: scripts/stack.sh start)",
        KAFKA_PROBE.as_secs()
    )]
    KafkaUnreachable {
        servers: String,
        source: rdkafka::error::KafkaError,
    },
    #[error(transparent)]
    Start(#[from] crate::app::StartError),
    #[error(transparent)]
    Workers(#[from] crate::runtime::supervisor::SupervisorError),
    #[error("{0}")]
    Failed(String),
}

/// How long an operator command waits for the broker before it says it cannot reach it.
const KAFKA_PROBE: std::time::Duration = std::time::Duration::from_secs(8);

/// Fails fast, naming the bootstrap servers, when no broker answers.
async fn reach_kafka(cfg: &config::KafkaConfig) -> Result<(), CliError> {
    crate::kafka::clients::probe(cfg, KAFKA_PROBE)
        .await
        .map_err(|source| CliError::KafkaUnreachable {
            servers: cfg.bootstrap_servers.clone(),
            source,
        })
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo prints its own story; worker chatter would drown it.
    let default_filter = match cli.command {
        Command::Demo => "warn",
        // Cases expect dead letters; their warnings would only clutter the report.
        Command::Test { .. } => "error",
        _ => "info,rdkafka=warn",
    };
    init_tracing(cli.log_format, default_filter);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(format: LogFormat, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    use std::io::IsTerminal;
    // Colour codes only for a person at a terminal, never in a file or a log collector.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let topology_path = cli.topology.clone();
    let schemas_path = cli.schemas.clone();
    match cli.command {
        Command::Validate => {
            let t = load_topology(&cli)?;
            println!(
                "{}: valid ({} worker(s): {})",
                cli.topology.display(),
                t.workers.len(),
                t.workers.iter().map(|w| w.name.as_str()).collect::<Vec<_>>().join(", ")
            );
            Ok(())
        }
        Command::Schemas {
            action: SchemasCommand::Check,
        } => schemas::check(&cli.schemas),
        Command::Schemas {
            action: SchemasCommand::Register,
        } => {
            let t = load_topology(&cli)?;
            schemas::register(&t, &cli.schemas).await
        }
        Command::Demo => {
            let t = load_topology(&cli)?;
            reach_kafka(&t.kafka).await?;
            demo::run(&t, &cli.schemas).await
        }
        Command::Run {
            ref workers,
            ref instance,
            no_tracker,
        } => {
            let t = load_topology(&cli)?;
            reach_kafka(&t.kafka).await?;
            run::run(t, &cli.schemas, workers, instance, no_tracker).await
        }
        Command::Orders { ref action } => {
            let t = load_topology(&cli)?;
            reach_kafka(&t.kafka).await?;
            orders(&t, action).await
        }
        Command::Test { ref cases, json } => {
            let t = config::load(&topology_path, &schemas_path)?;
            let catalog = crate::schema::Catalog::load(&schemas_path)?;
            let files = crate::contract::case_files(cases).map_err(|e| CliError::Failed(e.to_string()))?;
            if files.is_empty() {
                return Err(CliError::Failed("no case files found".into()));
            }
            let results = crate::contract::run_files(&t, &catalog, &files).await;
            let failed = results.iter().filter(|r| !r.passed).count();
            if json {
                println!("{}", serde_json::to_string_pretty(&results).unwrap_or_default());
            } else {
                for r in &results {
                    println!("{} {} ({})", if r.passed { "ok    " } else { "FAILED" }, r.name, r.file);
                    for f in &r.failures {
                        println!("         {f}");
                    }
                }
                println!("\n{} passed, {failed} failed", results.len() - failed);
            }
            if failed > 0 {
                Err(CliError::Failed(format!("{failed} contract case(s) failed")))
            } else {
                Ok(())
            }
        }
        Command::Dlq { action } => {
            let t = config::load(&topology_path, &schemas_path)?;
            reach_kafka(&t.kafka).await?;
            dlq::run(&t, action).await
        }
        Command::Customers { action } => {
            let t = config::load(&topology_path, &schemas_path)?;
            reach_kafka(&t.kafka).await?;
            customers::run(&t, action).await
        }
        Command::Topics {
            action: TopicsCommand::Create { partitions },
        } => {
            let t = load_topology(&cli)?;
            reach_kafka(&t.kafka).await?;
            let created =
                crate::kafka::clients::ensure_topics(&t.kafka, &crate::kafka::clients::topology_topics(&t, partitions))
                    .await?;
            for name in &created {
                println!("created {name}");
            }
            println!("{} topic(s) created", created.len());
            Ok(())
        }
    }
}

fn load_topology(cli: &Cli) -> Result<Topology, ConfigError> {
    config::load(&cli.topology, &cli.schemas)
}

async fn orders(t: &Topology, action: &OrdersCommand) -> Result<(), CliError> {
    use crate::ops::tracker;
    let tr = tracker::load(t).await?;
    let at = crate::runtime::dlq::rfc3339;
    match action {
        OrdersCommand::Stuck { json, at: as_of } => {
            let now = chrono::Utc::now().timestamp_millis();
            let judged_at = match as_of {
                Some(text) => {
                    crate::ops::replay::parse_time(text, now).map_err(|e| CliError::Failed(format!("--at: {e}")))?
                }
                None => now,
            };
            let stuck = tr.stuck(judged_at);
            if *json {
                println!("{}", serde_json::to_string_pretty(&stuck).unwrap_or_default());
            } else if stuck.is_empty() {
                println!(
                    "no order is past its service level ({} orders tracked)",
                    tr.timelines.len()
                );
            } else {
                println!("{:<24} {:<24} {:<26} OVERDUE", "ORDER", "TRANSITION", "SINCE");
                for s in &stuck {
                    println!(
                        "{:<24} {:<24} {:<26} {}m",
                        s.order_id,
                        s.transition,
                        at(s.since),
                        s.overdue_ms / 60_000
                    );
                }
                println!("{} stuck of {} tracked", stuck.len(), tr.timelines.len());
            }
            Ok(())
        }
        OrdersCommand::Show { order_id } => {
            let tl = tr
                .timelines
                .get(order_id)
                .ok_or_else(|| CliError::Failed(format!("order {order_id} is not tracked (yet)")))?;
            print!("{}", tracker::render(tl));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every option and argument of every command, at any depth, says what it is for.
    #[test]
    fn every_option_has_a_help_line() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let path = format!("{path} {}", cmd.get_name());
            for arg in cmd.get_arguments() {
                let builtin = matches!(arg.get_id().as_str(), "help" | "version");
                if !builtin && arg.get_help().is_none() {
                    missing.push(format!("{path} --{}", arg.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_about().is_none() {
                    missing.push(format!("{path} {} (the command)", sub.get_name()));
                }
                walk(sub, &path, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "", &mut missing);
        assert!(missing.is_empty(), "no help for: {missing:#?}");
    }
}
