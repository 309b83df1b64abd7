//! Writing answers to stdout: one JSON document with `--json`, text for people without.

use std::io::Write as _;

use serde::Serialize;

use crate::error::CliError;

/// Writes `text` to stdout and flushes it.
pub(crate) fn print(text: &str) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(CliError::Output)
}

/// Writes `value` to stdout as one compact JSON document on one line.
pub(crate) fn print_json<T: Serialize + ?Sized>(value: &T) -> Result<(), CliError> {
    let doc = serde_json::to_string(value).map_err(|e| CliError::Output(e.into()))?;
    print(&format!("{doc}\n"))
}
