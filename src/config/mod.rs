//! The topology file: loading, `${ENV}` expansion and validation, before anything connects.
//!
//! Owns: turning `topology.toml` into a checked [`Topology`] or a list of every problem found,
//! each naming the file, the key and what would be valid. Must not: open network connections.

pub mod env;
pub mod governance;
pub mod types;
pub mod validate;

use std::path::{Path, PathBuf};

pub use types::*;

/// One thing wrong with a topology file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key, e.g. `worker[1].output[0].schema`; empty for whole-file problems.
    pub key: String,
    pub message: String,
}

/// Every problem found in one file, reported together.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", render(.path, .problems))]
    Invalid { path: PathBuf, problems: Vec<Problem> },
}

fn render(path: &Path, problems: &[Problem]) -> String {
    let mut out = format!("{}: {} problem(s)", path.display(), problems.len());
    for p in problems {
        if p.key.is_empty() {
            out.push_str(&format!("\n  - {}", p.message));
        } else {
            out.push_str(&format!("\n  - {}: {}", p.key, p.message));
        }
    }
    out
}

impl ConfigError {
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Invalid { problems, .. } => problems,
            ConfigError::Read { .. } => &[],
        }
    }
}

/// Reads, expands and validates a topology file against the schemas under `schema_dir`.
pub fn load(path: &Path, schema_dir: &Path) -> Result<Topology, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let known_schemas = crate::schema::Catalog::record_names(schema_dir);
    parse(&text, &env::ProcessEnv, &known_schemas).map_err(|problems| ConfigError::Invalid {
        path: path.to_path_buf(),
        problems,
    })
}

/// Parses topology text; pure, so tests can feed their own environment and schema names.
pub fn parse(text: &str, env: &dyn env::Lookup, known_schemas: &[String]) -> Result<Topology, Vec<Problem>> {
    // Structure first, on the raw text, so serde's errors still point at a line. Durations are
    // checked on the expanded tree below, where every bad one is reported, not just the first.
    if let Err(problem) = structure(text)
        && !problem.message.contains(crate::duration::NOT_A_DURATION)
    {
        return Err(vec![problem]);
    }
    let mut tree: toml::Value = toml::from_str(text).map_err(|e| {
        vec![Problem {
            key: String::new(),
            message: e.to_string(),
        }]
    })?;
    let mut problems = literal_api_secrets(&tree);
    problems.extend(env::expand_tree(&mut tree, env).into_iter().map(|(key, err)| Problem {
        key,
        message: match err {
            env::EnvError::Missing(name) => {
                format!("environment variable `{name}` is not set; export it or write `${{{name}:-default}}`")
            }
            env::EnvError::Unterminated => "`${` without a closing `}`".to_string(),
            env::EnvError::BadName(name) => {
                format!("`{name}` is not a variable name; use letters, digits and `_`")
            }
        },
    }));
    problems.extend(durations(&mut tree));
    let topology: Topology = match serde_path_to_error::deserialize(tree) {
        Ok(t) => t,
        Err(e) => {
            problems.push(Problem {
                key: e.path().to_string(),
                message: format!("after expanding ${{...}}: {}", e.inner()),
            });
            return Err(problems);
        }
    };
    problems.extend(validate::validate(&topology, known_schemas));
    if problems.is_empty() {
        Ok(topology)
    } else {
        Err(problems)
    }
}

/// The settings that are durations, by key name (`service_levels` is a table of them).
const DURATION_KEYS: &[&str] = &[
    "timeout",
    "max_wait",
    "initial_backoff",
    "max_backoff",
    "ttl",
    "not_found_for",
    "retry_every",
    "cache_ttl",
    "breaker_open",
];

/// Checks every duration setting of the expanded tree, so all bad ones are listed at once; a bad
/// one is replaced by `0s` so that serde reads the rest of the file and its problems show too.
fn durations(tree: &mut toml::Value) -> Vec<Problem> {
    let mut problems = Vec::new();
    env::each_string(tree, &mut |path, text| {
        let mut parts = path.rsplit('.');
        let name = parts.next().unwrap_or_default();
        let parent = parts.next().unwrap_or_default();
        if (DURATION_KEYS.contains(&name) || parent == "service_levels")
            && let Err(message) = crate::duration::parse(text)
        {
            problems.push(Problem {
                key: path.to_string(),
                message,
            });
            *text = "0s".into();
        }
    });
    problems
}

/// The raw text read into a [`Topology`]; the error names the key (serde's path) and the line.
fn structure(text: &str) -> Result<Topology, Problem> {
    let whole = |e: toml::de::Error| Problem {
        key: String::new(),
        message: e.to_string().trim().replace('\n', "\n    "),
    };
    let de = toml::Deserializer::parse(text).map_err(whole)?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.into_inner();
        let line = inner
            .span()
            .map(|span| format!(" (line {})", text[..span.start.min(text.len())].lines().count().max(1)))
            .unwrap_or_default();
        if key.is_empty() || key == "." {
            whole(inner)
        } else {
            Problem {
                key,
                message: format!("{}{line}", inner.message()),
            }
        }
    })
}

/// API secrets written into the file instead of taken from the environment (checked before
/// `${VAR}` expansion, which would hide the difference).
fn literal_api_secrets(tree: &toml::Value) -> Vec<Problem> {
    let Some(apis) = tree.get("api").and_then(toml::Value::as_table) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (name, api) in apis {
        let Some(auth) = api.get("auth").and_then(toml::Value::as_table) else {
            continue;
        };
        for key in ["password", "client_secret", "private_key"] {
            if let Some(v) = auth.get(key).and_then(toml::Value::as_str)
                && !v.contains("${")
            {
                out.push(Problem {
                    key: format!("api.{name}.auth.{key}"),
                    message: "a secret must come from the environment: write `${VAR}` and export VAR".into(),
                });
            }
        }
    }
    out
}
