//! `warden`: the command line of Warden, which lets an autonomous coding agent run a project's
//! tests safely.
//!
//! Each subcommand lives in its own module and returns its exit code; everything that goes
//! wrong before a subcommand can give its answer (a bad root, a policy that does not load, an
//! unreadable request) is an [`error::CliError`] and exits 2. Results go to stdout (JSON with
//! `--json`), diagnostics and logs to stderr only.

mod check;
mod cli;
mod context;
mod error;
mod logging;

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;

use crate::cli::{Cli, Command};
use crate::error::CliError;

/// Exit code for usage and configuration errors (clap uses it for its own usage errors too).
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.global.verbose);
    match run(&cli) {
        Ok(code) => code,
        Err(err) => {
            report(&err, cli.global.json);
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn run(cli: &Cli) -> Result<ExitCode, CliError> {
    match &cli.command {
        Command::Check(args) => check::run(&cli.global, args),
    }
}

/// Tells the user what went wrong: always on stderr, and with `--json` also as a JSON document
/// on stdout, so a machine reading stdout gets one document whatever happens.
fn report(err: &CliError, json: bool) {
    tracing::debug!(error = ?err, "exiting with a usage or configuration error");
    eprintln!("warden: error: {err}");
    if json {
        let doc = serde_json::json!({ "error": err.to_string() });
        let mut stdout = std::io::stdout().lock();
        // Nothing more can be done if stdout is gone; the message is on stderr already.
        let _ = writeln!(stdout, "{doc}");
    }
}
