//! Errors of the state store.

use corral_core::{error::Classify, ErrorKind};

/// A state store failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database could not be opened or a statement failed.
    #[error("state database {op}")]
    Sqlite {
        /// What was being done.
        op: &'static str,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// A stored record could not be (de)serialised.
    #[error("state record {what} is corrupt")]
    Corrupt {
        /// Which record.
        what: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// A unique id or name is already taken.
    #[error("{0} is already in use")]
    Conflict(String),
    /// The record does not exist.
    #[error("no such record: {0}")]
    NotFound(String),
}

/// Result alias for the store.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Classify for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Sqlite { .. } | Self::Corrupt { .. } => ErrorKind::Internal,
            Self::Conflict(_) => ErrorKind::Conflict,
            Self::NotFound(_) => ErrorKind::NotFound,
        }
    }
}

pub(crate) fn sql(op: &'static str) -> impl FnOnce(rusqlite::Error) -> Error {
    move |source| Error::Sqlite { op, source }
}
