//! Errors that stop a subcommand before it can answer (exit 2).

use std::io;
use std::path::{Path, PathBuf};

use warden_build_mission::{HistoryError, LedgerError};
use warden_governance_api::PolicyError;

/// Something the user must fix: a bad root or policy, an unreadable request, result or history
/// file, a ledger that may not or cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// The root or the policy could not be set up.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The request file (or stdin) could not be read.
    #[error("cannot read the request from {origin}: {source}")]
    RequestRead { origin: String, source: io::Error },
    /// The request is larger than any sensible request.
    #[error("the request from {origin} is larger than {limit} bytes")]
    RequestTooLarge { origin: String, limit: u64 },
    /// The request is not valid JSON or not a valid request.
    #[error("the request from {origin} is not a valid request: {source}")]
    RequestJson {
        origin: String,
        source: serde_json::Error,
    },
    /// `--ledger` (or the default ledger) would be written outside the root.
    #[error("cannot use the ledger {}: {reason}", path.display())]
    LedgerPlace { path: PathBuf, reason: String },
    /// A ledger could not be read (or, for `verify`, checked before the run).
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// A file named on the command line does not exist or is not a file.
    #[error("{what} {} {problem}", path.display())]
    Missing {
        what: &'static str,
        path: PathBuf,
        problem: &'static str,
    },
    /// A `verify` result or a history file is unusable.
    #[error(transparent)]
    History(#[from] HistoryError),
    /// A history file failed while being streamed, after its check.
    #[error("the history could not be read to the end: {0}")]
    HistoryStream(String),
    /// The async runtime for the run could not be started.
    #[error("cannot start the runtime for the test run: {0}")]
    Runtime(#[source] io::Error),
    /// The verification could not be carried out or recorded.
    #[error("{0}")]
    Mission(String),
    /// A file Warden writes (`warden init`'s `warden.toml`) could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    /// The answer could not be written to stdout.
    #[error("cannot write the output: {0}")]
    Output(#[source] io::Error),
}

impl CliError {
    /// Where a request came from, for messages.
    pub(crate) fn origin(path: &Path) -> String {
        if path == Path::new("-") {
            "stdin".to_owned()
        } else {
            format!("`{}`", path.display())
        }
    }
}
