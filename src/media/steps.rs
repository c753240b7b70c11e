//! What every step returns on failure: rejected (the file is refused: wrong type, too large),
//! permanent (it cannot be processed: fail now, with the reason) or transient (storage, the
//! machine: retry with backoff).

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct StepError {
    pub kind: Failure,
    /// A stable, machine-readable reason (`type_mismatch`, `decode_failed`, ...).
    pub code: String,
    /// What a person reads.
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Rejected,
    Permanent,
    Transient,
}

impl StepError {
    pub fn rejected(code: &str, message: impl Into<String>) -> StepError {
        StepError::new(Failure::Rejected, code, message)
    }

    pub fn permanent(code: &str, message: impl Into<String>) -> StepError {
        StepError::new(Failure::Permanent, code, message)
    }

    pub fn transient(code: &str, message: impl Into<String>) -> StepError {
        StepError::new(Failure::Transient, code, message)
    }

    fn new(kind: Failure, code: &str, message: impl Into<String>) -> StepError {
        StepError {
            kind,
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

impl From<crate::storage::StorageError> for StepError {
    fn from(e: crate::storage::StorageError) -> Self {
        match e {
            crate::storage::StorageError::Missing(id) => StepError::permanent(
                "original_missing",
                format!("the stored upload {id} is gone"),
            ),
            e @ crate::storage::StorageError::Full => {
                StepError::transient("no_space", e.to_string())
            }
            e => StepError::transient("storage", e.to_string()),
        }
    }
}

impl From<crate::meta::MetaError> for StepError {
    fn from(e: crate::meta::MetaError) -> Self {
        StepError::transient("metadata", e.to_string())
    }
}

impl From<std::io::Error> for StepError {
    fn from(e: std::io::Error) -> Self {
        // A full disk is `no_space`, as storage says it.
        match crate::storage::StorageError::from(e) {
            crate::storage::StorageError::Io(e) => StepError::transient("io", e.to_string()),
            e => e.into(),
        }
    }
}
