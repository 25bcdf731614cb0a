//! The one error type of Anvil's services. The API maps each variant to a status code and the JSON envelope;
//! `Internal` keeps its source for the log and answers a generic message.

use anvil_types::FieldError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The thing does not exist for this tenant (or this principal may not know it exists).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request conflicts with the current state (code is machine-readable, e.g. `lease_expired`).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// The body is well-formed JSON but breaks the rules; each problem has a JSON pointer.
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// The request itself is malformed (bad query string, bad cursor, ...).
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    /// Allowed by role but refused by a rule of the resource (code is machine-readable, e.g.
    /// `below_gold_floor`): a 403 that says why.
    #[error("{message}")]
    Denied { code: &'static str, message: String },
    /// A dependency did not answer (database down, pool exhausted): retrying later may work.
    #[error("{0} unavailable")]
    Unavailable(&'static str),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl Error {
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Error::Conflict { code, message: message.into() }
    }

    pub fn invalid(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Validation(vec![FieldError::new(pointer, message)])
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        let transient = match &e {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => true,
            // The server went away or is restarting (class 08 connection exceptions, 57P0x shutdowns, too
            // many connections), or a concurrent transaction won (serialization failure, deadlock): retrying
            // later works, so this is a 503, not a 500.
            sqlx::Error::Database(db) => db.code().is_some_and(|c| {
                c.starts_with("08") || c.starts_with("57P") || c == "53300" || c == "40001" || c == "40P01"
            }),
            _ => false,
        };
        if transient {
            tracing::warn!(error = %e, "database unavailable");
            Error::Unavailable("database")
        } else {
            Error::Internal(anyhow::Error::new(e).context("database error"))
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Whether a database error is a unique violation of the named constraint (client error, not a bug).
pub fn is_unique_violation(e: &sqlx::Error, constraint: &str) -> bool {
    match e {
        sqlx::Error::Database(db) => db.is_unique_violation() && db.constraint() == Some(constraint),
        _ => false,
    }
}
