//! The local schema catalogue: `schemas/<record>/v<N>.avsc`, parsed once.
//!
//! Owns: finding, reading and parsing every schema version, and answering "latest version of
//! record R" and "version N of record R". Must not: talk to the registry (that is `registry`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use apache_avro::Schema;

use super::SchemaError;

/// Folder holding pieces shared by every record (the `meta` record), not a record itself.
pub const SHARED_DIR: &str = "_shared";

/// One parsed `.avsc` file.
#[derive(Debug, Clone)]
pub struct SchemaVersion {
    pub record: String,
    pub version: u32,
    pub path: PathBuf,
    pub raw: String,
    pub schema: Schema,
}

impl SchemaVersion {
    /// The Avro full name, e.g. `io.syncline.canonical.OrderStatus`.
    pub fn full_name(&self) -> String {
        match &self.schema {
            Schema::Record(r) => r.name.fullname(None),
            _ => self.record.clone(),
        }
    }
}

/// Every record and version under one `schemas/` folder.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    records: BTreeMap<String, Vec<SchemaVersion>>,
}

impl Catalog {
    /// Loads every schema; the first unreadable or unparsable file is an error naming it.
    pub fn load(dir: &Path) -> Result<Catalog, SchemaError> {
        let (catalog, mut errors) = Self::load_all(dir);
        if errors.is_empty() {
            Ok(catalog)
        } else {
            Err(errors.remove(0))
        }
    }

    /// Loads what parses and returns every failure, for `schemas check` to report them all.
    pub fn load_all(dir: &Path) -> (Catalog, Vec<SchemaError>) {
        let mut catalog = Catalog::default();
        let mut errors = Vec::new();
        let files = match schema_files(dir) {
            Ok(files) => files,
            Err(e) => return (catalog, vec![e]),
        };
        for (record, version, path) in files {
            match read_one(&record, version, &path) {
                Ok(v) => catalog.records.entry(record).or_default().push(v),
                Err(e) => errors.push(e),
            }
        }
        for versions in catalog.records.values_mut() {
            versions.sort_by_key(|v| v.version);
        }
        (catalog, errors)
    }

    /// Record folder names under `dir`, without parsing (for config validation).
    pub fn record_names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = schema_files(dir)
            .map(|files| files.into_iter().map(|(r, _, _)| r).collect())
            .unwrap_or_default();
        names.dedup();
        names
    }

    pub fn records(&self) -> impl Iterator<Item = (&str, &[SchemaVersion])> {
        self.records.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    pub fn latest(&self, record: &str) -> Result<&SchemaVersion, SchemaError> {
        self.records
            .get(record)
            .and_then(|v| v.last())
            .ok_or_else(|| SchemaError::UnknownRecord(record.to_string()))
    }

    pub fn version(&self, record: &str, version: u32) -> Result<&SchemaVersion, SchemaError> {
        self.records
            .get(record)
            .and_then(|vs| vs.iter().find(|v| v.version == version))
            .ok_or_else(|| SchemaError::UnknownVersion {
                record: record.to_string(),
                version,
            })
    }
}

/// `(record, version, path)` of every `schemas/<record>/v<N>.avsc`, sorted.
fn schema_files(dir: &Path) -> Result<Vec<(String, u32, PathBuf)>, SchemaError> {
    let io = |source| SchemaError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let record = entry.file_name().to_string_lossy().into_owned();
        if !entry.path().is_dir() || record == SHARED_DIR || record.starts_with('.') {
            continue;
        }
        for file in std::fs::read_dir(entry.path()).map_err(io)? {
            let path = file.map_err(io)?.path();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let version = name
                .strip_prefix('v')
                .and_then(|n| n.strip_suffix(".avsc"))
                .and_then(|n| n.parse::<u32>().ok());
            match version {
                Some(v) => out.push((record.clone(), v, path)),
                None if name.ends_with(".avsc") => return Err(SchemaError::BadFileName(path)),
                None => {}
            }
        }
    }
    out.sort();
    Ok(out)
}

fn read_one(record: &str, version: u32, path: &Path) -> Result<SchemaVersion, SchemaError> {
    let raw = std::fs::read_to_string(path).map_err(|source| SchemaError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let schema = Schema::parse_str(&raw).map_err(|e| SchemaError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok(SchemaVersion {
        record: record.to_string(),
        version,
        path: path.to_path_buf(),
        raw,
        schema,
    })
}

/// The shared `meta` record as `schemas/_shared/meta.avsc` defines it.
pub fn shared_meta(dir: &Path) -> Result<Schema, SchemaError> {
    let path = dir.join(SHARED_DIR).join("meta.avsc");
    Ok(read_one("meta", 1, &path)?.schema)
}
