//! The error type shared by every fallible function of the crate.

/// What went wrong when a function of this crate rejected its input.
///
/// Every variant says which argument was at fault, so a caller can surface the
/// message as-is. (The tensor functions of [`crate::ppo`] return
/// `candle_core::Result` instead, because they compose with candle's own errors.)
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoreError {
    /// Two inputs that must have the same length (or a row of a matrix that must
    /// match the others) do not.
    #[error("length mismatch: {what} has length {got}, expected {expected}")]
    LengthMismatch {
        /// Which input (or which row of it) has the wrong length.
        what: String,
        /// The length it should have had.
        expected: usize,
        /// The length it had.
        got: usize,
    },
    /// An index points outside the slice it indexes.
    #[error("index out of range: {what} is {index}, but the valid range is 0..{len}")]
    IndexOutOfRange {
        /// Which index (and where it came from).
        what: String,
        /// The offending index.
        index: usize,
        /// The length of the slice it indexes.
        len: usize,
    },
    /// A scalar argument is outside its allowed domain (negative, NaN, zero, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A name did not parse as one of an enum's variants.
    #[error("unknown {kind} `{got}`; valid names are: {valid}")]
    UnknownName {
        /// What kind of name was parsed (e.g. "advantage estimator").
        kind: &'static str,
        /// The text that failed to parse.
        got: String,
        /// The accepted names, comma-separated.
        valid: String,
    },
}

/// Shorthand for results whose error is [`CoreError`].
pub type Result<T> = std::result::Result<T, CoreError>;

impl CoreError {
    /// Builds a [`CoreError::LengthMismatch`].
    pub(crate) fn length(what: impl Into<String>, expected: usize, got: usize) -> Self {
        CoreError::LengthMismatch {
            what: what.into(),
            expected,
            got,
        }
    }

    /// Builds a [`CoreError::InvalidArgument`].
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        CoreError::InvalidArgument(message.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_culprit() {
        let e = CoreError::length("group_ids", 3, 2);
        assert_eq!(
            e.to_string(),
            "length mismatch: group_ids has length 2, expected 3"
        );
        let e = CoreError::IndexOutOfRange {
            what: "step_of_token[4]".into(),
            index: 7,
            len: 3,
        };
        assert_eq!(
            e.to_string(),
            "index out of range: step_of_token[4] is 7, but the valid range is 0..3"
        );
        let e = CoreError::invalid("beta must be finite and >= 0, got -1");
        assert_eq!(
            e.to_string(),
            "invalid argument: beta must be finite and >= 0, got -1"
        );
    }
}
