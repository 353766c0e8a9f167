//! Errors of the policy library. Each names the file (and line, when there is
//! one) so that the command line can print it as is.

use std::path::PathBuf;

use thiserror::Error;

/// Why a document could not be compiled at all. Problems confined to a row
/// are not errors: the row is skipped and a warning says why.
#[derive(Debug, Error)]
pub enum CompileError {
    #[error("{path}: cannot read")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{name}: the file is {size} bytes; documents over {limit} bytes are refused")]
    TooLarge { name: String, size: u64, limit: u64 },
    #[error("{name}: the file is empty")]
    Empty { name: String },
    #[error("{name}:{line}: binary data (NUL byte); expected a Markdown or HTML document")]
    Binary { name: String, line: u32 },
    #[error("{name}:{line}: not UTF-8 text (invalid byte at offset {offset})")]
    NotUtf8 {
        name: String,
        line: u32,
        offset: usize,
    },
    #[error(
        "{name}: no port table or port rule found (expected Markdown pipe tables or HTML tables \
         with a Port column)"
    )]
    NoRules { name: String },
    #[error(
        "{name}: no rule compiled: every port row was skipped ({skipped} in all; the first, line \
         {first_line}: {first_reason})"
    )]
    AllSkipped {
        name: String,
        skipped: usize,
        first_line: u32,
        first_reason: String,
    },
    #[error("no documents given")]
    NoDocuments,
    #[error("{0}: given twice")]
    DuplicateDocument(String),
}

/// Why a compiled policy file could not be used.
#[derive(Debug, Error)]
pub enum PolicyError {
    #[error("{path}: cannot read")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin}:{line}: {message}")]
    Parse {
        origin: String,
        line: u32,
        message: String,
    },
    #[error(
        "{origin}: policy format {found} is not supported (this portconform reads format {supported})"
    )]
    Format {
        origin: String,
        found: u32,
        supported: u32,
    },
    #[error("{origin}: rule {rule}: {why}")]
    Invalid {
        origin: String,
        rule: String,
        why: String,
    },
    #[error("no conditional rule matches {given:?}; the conditions are: {known}")]
    UnknownCondition { given: String, known: String },
    #[error("unknown profile {name:?}; the profiles are: {known}")]
    UnknownProfile { name: String, known: String },
}

/// One problem in an inventory file, with its line.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{origin}:{line}: {message}")]
pub struct InventoryIssue {
    pub origin: String,
    pub line: u32,
    pub message: String,
}

#[derive(Debug, Error)]
pub enum InventoryError {
    #[error("{path}: cannot read")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// All problems found, so that one run shows every mistake in the file.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<InventoryIssue>),
}
