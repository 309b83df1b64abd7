//! Errors that stop a subcommand before it can answer (exit 2).

use std::io;
use std::path::Path;

use warden_governance_api::PolicyError;

/// Something the user must fix: a bad root or policy, or an unreadable request.
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
