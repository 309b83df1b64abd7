//! `warden`: the command line of Warden, which lets an autonomous coding agent run a project's
//! tests safely.
//!
//! Each subcommand lives in its own module and returns its exit code; everything that goes
//! wrong before a subcommand can give its answer (a bad root, a policy that does not load, an
//! unreadable request, result or history file, a ledger outside the root) is an
//! [`error::CliError`] and exits 2, as do command-line usage errors. Results go to stdout (one
//! JSON document with `--json`, also for errors), diagnostics and logs to stderr only.

mod check;
mod classify;
mod cli;
mod context;
mod error;
mod failure;
mod human;
mod init;
mod ledger;
mod logging;
mod mcp;
mod output;
mod place;
mod policy;
mod progress;
mod style;
mod verify;

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;

use crate::cli::{Cli, Command};
use crate::error::CliError;

/// Exit code for usage and configuration errors (clap uses it for its own usage errors too).
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    // The sandbox helper must run before anything starts a thread (see warden_sandbox::helper).
    let mut args = std::env::args_os().skip(1);
    if args.next().is_some_and(|a| a == warden_sandbox::HELPER_ARG) {
        let code = warden_sandbox::helper::main(args.collect());
        return ExitCode::from(u8::try_from(code).unwrap_or(warden_sandbox::EXIT_REFUSED as u8));
    }
    // Then: no descriptor Warden inherited reaches a test, and no test reads Warden's
    // environment or memory through /proc.
    let hardened = warden_executor::harden_process();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage(&err),
    };
    logging::init(cli.global.verbose);
    if let Err(error) = hardened {
        tracing::warn!(%error, "could not make warden non-dumpable; tests may read its environment");
    }
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
        Command::Verify(args) => verify::run(&cli.global, args),
        Command::Classify(args) => classify::run(&cli.global, args),
        Command::Ledger(command) => ledger::run(&cli.global, command),
        Command::Init => init::run(&cli.global),
        Command::Policy => policy::run(&cli.global),
        Command::Mcp(args) => mcp::run(&cli.global, args),
    }
}

/// A command line clap could not make sense of (exit 2), or `--help`/`--version` (exit 0).
/// With `--json` among the options, an error is also one JSON document on stdout.
fn usage(err: &clap::Error) -> ExitCode {
    // Nothing more can be done if stderr or stdout is gone.
    let _ = err.print();
    if !err.use_stderr() {
        return ExitCode::SUCCESS;
    }
    let json = std::env::args_os()
        .skip(1)
        .take_while(|arg| arg != "--")
        .any(|arg| arg == "--json");
    if json {
        let doc = serde_json::json!({ "error": usage_message(&err.render().to_string()) });
        let _ = writeln!(std::io::stdout().lock(), "{doc}");
    }
    ExitCode::from(EXIT_USAGE)
}

/// clap's message without its usage hints, on one line: the text up to the first blank line.
fn usage_message(rendered: &str) -> String {
    let words: Vec<&str> = rendered
        .lines()
        .take_while(|line| !line.trim().is_empty())
        .map(str::trim)
        .collect();
    let message = words.join(" ");
    message
        .strip_prefix("error: ")
        .map_or(message.clone(), str::to_owned)
}

/// Tells the user what went wrong: always on stderr, and with `--json` also as a JSON document
/// on stdout, so a machine reading stdout gets one document whatever happens.
fn report(err: &CliError, json: bool) {
    tracing::debug!(error = ?err, "exiting with a usage or configuration error");
    eprintln!("warden: error: {}", style::escape_lines(&err.to_string()));
    if json {
        let doc = serde_json::json!({ "error": err.to_string() });
        let mut stdout = std::io::stdout().lock();
        // Nothing more can be done if stdout is gone; the message is on stderr already.
        let _ = writeln!(stdout, "{doc}");
    }
}

#[cfg(test)]
mod tests {
    use super::usage_message;

    #[test]
    fn usage_errors_are_one_line_without_hints() {
        let rendered = "error: the following required arguments were not provided:\n  <TARGET>\n\n\
                        Usage: warden verify <TARGET>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            usage_message(rendered),
            "the following required arguments were not provided: <TARGET>"
        );
        assert_eq!(usage_message("error: bad value\n"), "bad value");
    }
}
