//! Input that is malformed on its face, as identifiers and keys report it:
//! the field and the reason. The lowest error of the core, so the types that
//! every other error names (ids, keys) need nothing above them; it becomes
//! [`crate::Error::Invalid`] wherever it travels further.

use std::fmt;

/// `field: reason`, lower case, with the offending value quoted by
/// [`crate::echo`] when it is the caller's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: String,
    pub reason: String,
}

impl Invalid {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl std::error::Error for Invalid {}
