//! One error type for the whole engine, carrying the exit code the CLI documents.

use std::fmt;

/// The documented exit codes of `chroma-wal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// 0: everything went as asked.
    Ok = 0,
    /// 1: an error; one clear line on stderr.
    Error = 1,
    /// 2: the command line was wrong.
    Usage = 2,
    /// 3: refused for safety (live Chroma, hot journal, unknown schema, no disk, no confirmation).
    Refused = 3,
    /// 4: `check` found a collection whose index its release cannot read correctly.
    Damaged = 4,
    /// 130: interrupted by the user (Ctrl-C) or cancelled; the dir is untouched or exactly pruned.
    Interrupted = 130,
}

/// What went wrong, already phrased for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The user asked for something that cannot be (unknown collection, bad flag combination).
    Usage(String),
    /// chroma-wal refuses to go on because going on could lose data.
    Refused(String),
    /// Something failed (I/O, SQLite, a file that is not a Chroma dir).
    Failed(String),
    /// The user cancelled. The message says in which state the dir was left.
    Interrupted(String),
    /// `check` found damaged collections (it has said which on stdout).
    Damaged(String),
}

impl Error {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Usage(_) => ExitCode::Usage,
            Error::Refused(_) => ExitCode::Refused,
            Error::Failed(_) => ExitCode::Error,
            Error::Interrupted(_) => ExitCode::Interrupted,
            Error::Damaged(_) => ExitCode::Damaged,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Error::Usage(m)
            | Error::Refused(m)
            | Error::Failed(m)
            | Error::Interrupted(m)
            | Error::Damaged(m) => m,
        }
    }

    pub fn failed(msg: impl Into<String>) -> Self {
        Error::Failed(msg.into())
    }

    pub fn refused(msg: impl Into<String>) -> Self {
        Error::Refused(msg.into())
    }

    /// Prefix the message with some context, keeping the kind.
    pub fn context(self, ctx: impl fmt::Display) -> Self {
        let wrap = |m: String| format!("{ctx}: {m}");
        match self {
            Error::Usage(m) => Error::Usage(wrap(m)),
            Error::Refused(m) => Error::Refused(wrap(m)),
            Error::Failed(m) => Error::Failed(wrap(m)),
            Error::Interrupted(m) => Error::Interrupted(wrap(m)),
            Error::Damaged(m) => Error::Damaged(wrap(m)),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keep it to one line whatever the source said.
        let one_line = self.message().replace(['\n', '\r'], " ");
        f.write_str(&one_line)
    }
}

impl std::error::Error for Error {}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        match &e {
            // The extended code tells which I/O failed (short write, lock, fsync, ...).
            rusqlite::Error::SqliteFailure(f, _)
                if f.code == rusqlite::ffi::ErrorCode::SystemIoFailure =>
            {
                Error::Failed(format!("sqlite: {e} (extended code {})", f.extended_code))
            }
            _ => Error::Failed(format!("sqlite: {e}")),
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Failed(format!("i/o: {e}"))
    }
}

pub type Result<T> = std::result::Result<T, Error>;
