//! What went wrong with one record, classified so the runtime knows what to do with it.
//!
//! Owns: the error classes (poison, business, missing master data, transient; docs/architecture.md) and their stable codes. Must not: decide
//! retries or write dead letters (that is `runtime`).

use std::fmt;

/// How the runtime treats a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Broker, registry, timeouts: retry in place with backoff; never dead-letter.
    Transient,
    /// A business rule says no (missing payment terms, unknown route): dead letter with a code.
    Business,
    /// Unparseable or schema-violating input: dead letter at once.
    Poison,
    /// A cross-reference is missing: park until it arrives.
    MissingMasterData,
}

impl ErrorClass {
    pub fn as_str(&self) -> &'static str {
        match self {
            ErrorClass::Transient => "transient",
            ErrorClass::Business => "business",
            ErrorClass::Poison => "poison",
            ErrorClass::MissingMasterData => "missing_master_data",
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A classified failure with a stable, greppable code (e.g. `INVALID_JSON`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Failure {
    pub class: ErrorClass,
    pub code: &'static str,
    pub message: String,
    /// For missing master data: the reference to park under, e.g. `account:001...`.
    pub missing_ref: Option<String>,
}

impl Failure {
    pub fn poison(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Poison, code, message)
    }

    pub fn business(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Business, code, message)
    }

    pub fn transient(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Transient, code, message)
    }

    pub fn missing(reference: impl Into<String>, message: impl Into<String>) -> Self {
        let mut f = Self::new(ErrorClass::MissingMasterData, "MISSING_XREF", message);
        f.missing_ref = Some(reference.into());
        f
    }

    fn new(class: ErrorClass, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            class,
            code,
            message: message.into(),
            missing_ref: None,
        }
    }
}
