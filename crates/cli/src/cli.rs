//! The command-line grammar (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Warden: run a project's tests safely on behalf of an autonomous coding agent.
#[derive(Debug, Parser)]
#[command(name = "warden", version)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options every subcommand takes.
#[derive(Debug, Args)]
pub(crate) struct GlobalArgs {
    /// The repository the agent works in; every target and scope is relative to it.
    #[arg(long, global = true, value_name = "DIR", default_value = ".")]
    pub(crate) root: PathBuf,

    /// A TOML policy file [default: `warden.toml` in the root if it exists, else the built-in
    /// policy].
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) policy: Option<PathBuf>,

    /// Print one machine-readable JSON document on stdout.
    #[arg(long, global = true)]
    pub(crate) json: bool,

    /// More diagnostics on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Decide one tool request against the policy and print the decision (exit 0 allowed,
    /// 1 denied, 2 usage or policy error).
    Check(CheckArgs),
}

/// `warden check`: either the flags, or a JSON request with `--request`.
#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// The tool, e.g. `pytest` or `fs`.
    #[arg(long, required_unless_present = "request", conflicts_with = "request")]
    pub(crate) tool: Option<String>,

    /// The action of the tool, e.g. `run` or `write`.
    #[arg(long, required_unless_present = "request", conflicts_with = "request")]
    pub(crate) action: Option<String>,

    /// The target: a root-relative path, or for pytest a node id.
    #[arg(long, allow_hyphen_values = true, conflicts_with = "request")]
    pub(crate) target: Option<String>,

    /// An extra argument for the tool (repeatable), e.g. `--arg -x --arg=--maxfail=2`.
    #[arg(
        long = "arg",
        value_name = "ARG",
        allow_hyphen_values = true,
        conflicts_with = "request"
    )]
    pub(crate) args: Vec<String>,

    /// A JSON request `{"tool": ..., "action": ..., "args": {"target": ..., "extra_args": [...]}}`
    /// read from FILE, or from stdin with `-`.
    #[arg(long, value_name = "FILE")]
    pub(crate) request: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::Cli;

    #[test]
    fn grammar_is_consistent() {
        Cli::command().debug_assert();
    }
}
