//! What a callback throws: a pending exception left as it is, or a new `Error`, `TypeError` or
//! `RangeError` with a stable `code`. The wording of argument errors is the package's one
//! wording (`lib/errors.js` words its own the same way).

/// Which JS constructor an error is made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// `Error`.
    Error,
    /// `TypeError`.
    Type,
    /// `RangeError`.
    Range,
}

/// Why a callback did not return a value.
///
/// The error itself is boxed so that a `JsResult` of a number or a handle stays two words,
/// returned in registers: every `?` on the hot paths passes one along, and errors are rare.
#[derive(Debug)]
pub enum Throw {
    /// A JS exception is already pending; leave it.
    Pending,
    /// Throw a new error with a stable `code`.
    New(Box<NewError>),
}

/// An error to throw.
#[derive(Debug)]
pub struct NewError {
    /// The constructor.
    pub kind: ErrorKind,
    /// The `code` property, e.g. `ERR_SHM_FULL`.
    pub code: &'static str,
    /// The message.
    pub message: String,
}

/// The result of anything that may throw.
pub type JsResult<T> = Result<T, Throw>;

/// How an argument error names what was wrong: `the "x" argument`, or `the "options.x"
/// property` for a field of an options object (as node's own errors say).
fn subject(name: &str) -> String {
    if name.contains('.') {
        format!("the \"{name}\" property")
    } else {
        format!("the \"{name}\" argument")
    }
}

impl Throw {
    /// A `TypeError` with code `ERR_INVALID_ARG_TYPE`.
    #[cold]
    pub fn arg_type(name: &str, expected: &str) -> Throw {
        Throw::new(
            ErrorKind::Type,
            "ERR_INVALID_ARG_TYPE",
            format!("{} must be {expected}", subject(name)),
        )
    }

    /// A `TypeError` with code `ERR_INVALID_ARG_VALUE`: the right type, a value that means
    /// nothing.
    #[cold]
    pub fn arg_value(name: &str, expected: &str) -> Throw {
        Throw::new(
            ErrorKind::Type,
            "ERR_INVALID_ARG_VALUE",
            format!("{} must be {expected}", subject(name)),
        )
    }

    /// A `RangeError` with code `ERR_OUT_OF_RANGE`.
    #[cold]
    pub fn out_of_range(name: &str, expected: &str) -> Throw {
        Throw::new(
            ErrorKind::Range,
            "ERR_OUT_OF_RANGE",
            format!("{} must be {expected}", subject(name)),
        )
    }

    /// An `Error` with the given code.
    pub fn error(code: &'static str, message: impl Into<String>) -> Throw {
        Throw::new(ErrorKind::Error, code, message.into())
    }

    /// A new error of `kind`.
    #[cold]
    pub fn new(kind: ErrorKind, code: &'static str, message: String) -> Throw {
        Throw::New(Box::new(NewError { kind, code, message }))
    }
}
