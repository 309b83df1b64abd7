//! `warden classify`: classify a stored `verify` result again, offline, with history.

use std::process::ExitCode;

use serde::Serialize;
use warden_build_mission::{History, read_report};
use warden_classifier::classify_report;
use warden_taxonomy::{FailureClass, RetryContext};

use crate::cli::{ClassifyArgs, GlobalArgs};
use crate::error::CliError;
use crate::output::print;

/// The contract's answer of `warden classify`.
#[derive(Debug, Serialize)]
struct ClassifyOutput {
    failure_class: Option<FailureClass>,
    retry_context: Option<RetryContext>,
}

/// Runs `warden classify`: pure, it runs nothing. Prints the contract's JSON document (compact
/// with `--json`, indented for people without it) and exits 0; a result or history file that
/// cannot be used is an error (exit 2).
pub(crate) fn run(global: &GlobalArgs, args: &ClassifyArgs) -> Result<ExitCode, CliError> {
    let report = read_report(&args.result)?;
    let history = History::open(&args.history, None)?;
    let problem = history.problem();
    let classification = classify_report(&report, history);
    if let Some(problem) = problem.take() {
        // Nothing ran, so a history file that broke while being read is simply an error.
        return Err(CliError::HistoryStream(problem));
    }
    tracing::info!(
        class = ?classification.failure_class,
        flaky = classification.flaky_tests.len(),
        "classified"
    );
    let output = ClassifyOutput {
        failure_class: classification.failure_class,
        retry_context: classification.retry_context,
    };
    let doc = if global.json {
        serde_json::to_string(&output)
    } else {
        serde_json::to_string_pretty(&output)
    }
    .map_err(|e| CliError::Output(e.into()))?;
    print(&format!("{doc}\n"))?;
    Ok(ExitCode::SUCCESS)
}
