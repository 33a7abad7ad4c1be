//! The one error type of ctxstore. Every user-visible failure is a `CtxError`: a kind that fixes
//! its SQLSTATE, a message, and optional detail and hint. Pure: no Postgres here. The SQL face
//! raises them (`api::raise`); SPI failures convert in `plans`.

use std::fmt;

/// What went wrong, as far as the client needs to know: each kind is one SQLSTATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 22004: a required argument was NULL.
    NullValue,
    /// 22023: an argument is out of range or malformed.
    InvalidParameter,
    /// 22007: a timestamp argument is not in the accepted format.
    InvalidDatetime,
    /// 22P02: a value's text form does not parse (an embedding literal).
    InvalidTextRepresentation,
    /// 22003: a number does not fit its type (an embedding element beyond float4).
    NumericOutOfRange,
    /// 22P03: a value's binary form is malformed (bytes left after an embedding's last element).
    InvalidBinaryRepresentation,
    /// 08P01: a binary value ends before its declared length (an embedding's elements).
    ProtocolViolation,
    /// 22000: a value is well formed but not acceptable (a NaN in an embedding, a dimension
    /// other than the declared one).
    DataException,
    /// 23505: the key (a message id) is already taken.
    UniqueViolation,
    /// 54000: a value exceeds a configured size limit.
    TooLarge,
    /// 42704: the named context (or other object) does not exist.
    UndefinedObject,
    /// 2BP01: the object cannot be removed while others depend on it.
    DependentObjects,
    /// 55000: the object is not in a state that allows the operation.
    WrongState,
    /// 40001: an optimistic-concurrency check failed; retry with fresh data.
    SerializationFailure,
    /// 23514: a value does not satisfy its declared schema.
    CheckViolation,
    /// 42710: the object already exists (with another definition).
    DuplicateObject,
    /// 42883: a function the operation needs does not exist.
    UndefinedFunction,
    /// 42501: the current role lacks a privilege the operation needs.
    InsufficientPrivilege,
    /// 25006: a function that writes was called in a read-only transaction (or on a standby).
    ReadOnlyTransaction,
    /// 39000: a user function (a processor) returned something ctxstore cannot use.
    ExternalRoutine,
    /// XX001: stored data failed an integrity check (corrupt archive, bad ciphertext).
    DataCorrupted,
    /// XX000: a bug in ctxstore, never a user mistake.
    Internal,
}

impl ErrorKind {
    pub fn sqlstate(self) -> &'static str {
        match self {
            ErrorKind::NullValue => "22004",
            ErrorKind::InvalidParameter => "22023",
            ErrorKind::InvalidDatetime => "22007",
            ErrorKind::InvalidTextRepresentation => "22P02",
            ErrorKind::NumericOutOfRange => "22003",
            ErrorKind::InvalidBinaryRepresentation => "22P03",
            ErrorKind::ProtocolViolation => "08P01",
            ErrorKind::DataException => "22000",
            ErrorKind::UniqueViolation => "23505",
            ErrorKind::TooLarge => "54000",
            ErrorKind::UndefinedObject => "42704",
            ErrorKind::DependentObjects => "2BP01",
            ErrorKind::WrongState => "55000",
            ErrorKind::SerializationFailure => "40001",
            ErrorKind::CheckViolation => "23514",
            ErrorKind::DuplicateObject => "42710",
            ErrorKind::UndefinedFunction => "42883",
            ErrorKind::InsufficientPrivilege => "42501",
            ErrorKind::ReadOnlyTransaction => "25006",
            ErrorKind::ExternalRoutine => "39000",
            ErrorKind::DataCorrupted => "XX001",
            ErrorKind::Internal => "XX000",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CtxError {
    pub kind: ErrorKind,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

pub type CtxResult<T> = Result<T, CtxError>;

impl CtxError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        CtxError {
            kind,
            message: message.into(),
            detail: None,
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// The same error, its message prefixed (e.g. with the element of a batch it is about).
    pub fn prefixed(mut self, prefix: &str) -> Self {
        self.message.insert_str(0, prefix);
        self
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidParameter, message)
    }

    /// A required argument was NULL.
    pub fn null_argument(name: &str) -> Self {
        Self::new(ErrorKind::NullValue, format!("{name} must not be NULL"))
            .with_hint(format!("pass a non-NULL value for {name}"))
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
}

impl fmt::Display for CtxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.kind.sqlstate())
    }
}

impl std::error::Error for CtxError {}

/// Unwraps a required (non-NULL) argument.
pub fn required<T>(value: Option<T>, name: &str) -> CtxResult<T> {
    value.ok_or_else(|| CtxError::null_argument(name))
}
