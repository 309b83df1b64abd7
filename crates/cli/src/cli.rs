//! The command-line grammar (clap derive).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::style::ColorChoice;

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

    /// When to colour the output for people: `auto` colours a terminal unless NO_COLOR is set;
    /// `--json` is never coloured.
    #[arg(
        long,
        global = true,
        value_name = "WHEN",
        value_enum,
        default_value_t = ColorChoice::Auto
    )]
    pub(crate) color: ColorChoice,

    /// More diagnostics on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Decide one tool request against the policy and print the decision (exit 0 allowed,
    /// 1 denied, 2 usage or policy error).
    Check(CheckArgs),
    /// Run a target's tests under the policy, confirm flakes by rerunning failures, classify
    /// the result, hand back a retry context and record the evidence (exit 0 passed, 1 failed,
    /// 2 usage error, 3 denied, 4 timeout, 5 infrastructure).
    #[command(after_help = VERIFY_HELP)]
    Verify(VerifyArgs),
    /// Classify a stored `warden verify --json` result again, offline, with history; runs
    /// nothing and prints `{"failure_class": ..., "retry_context": ...}`.
    Classify(ClassifyArgs),
    /// Serve Warden's tools (verify, check, policy, classify, ledger_stats) to a coding agent
    /// over the Model Context Protocol on stdin and stdout, until stdin closes; logs go to
    /// stderr. See docs/agents.md.
    Mcp(McpArgs),
    /// Check or summarise an evidence ledger.
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// Write a commented `warden.toml` into the root from what the project declares
    /// (`testpaths`, else `tests/` or `test/`), building on the built-in policy; never
    /// overwrites (exit 0 written, 1 a `warden.toml` exists already, 2 error).
    Init,
    /// Print the policy in force as TOML, each setting and rule with where it came from
    /// (built-in or the file); `--json` for the machine-readable form (exit 0, 2 error).
    Policy,
}

/// The end of `warden verify --help`: examples, and what runs without a policy file.
const VERIFY_HELP: &str = "\
Examples:
  warden verify runtime/tests                          run a directory's tests
  warden verify runtime/tests/test_math.py::test_add   one test (a pytest node id)
  warden verify runtime/tests --timeout 30 -- -x -k add
                                                       a shorter deadline; stop at the first
                                                       failure; only tests matching `add`
  warden --json verify runtime/tests > result.json     the contract's JSON document
  warden check --tool pytest --action run --target tests
                                                       would this request be allowed?

Without `--policy` or a `warden.toml` in the root, the built-in policy applies: pytest may run
only targets inside `runtime/tests`, each run within 300 s, 600 s of test time per mission,
failed tests rerun up to 2 times to tell flakes from failures, 50 KiB of each output stream
kept; only a fixed list of pytest options is allowed after `--` (-x, --maxfail=N, -k, -m,
--tb=..., -q, -v, ...; see docs/policy.md); `fs`/`write` is allowed inside the root except
under `docs/00_foundations` and `docs/01_governance`. Every other tool and action is denied.

To run tests elsewhere or change the limits, write a policy: `warden init` writes a
`warden.toml` for this repository to start from (see docs/policy.md for every key).";

/// `warden verify`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// What to test: a root-relative path, or a pytest node id (`path::test[param]`).
    pub(crate) target: String,

    /// Deadline of each pytest run in seconds (fractions allowed); it can only shorten the
    /// policy's `timeout_secs`.
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    pub(crate) timeout: Option<Duration>,

    /// Reruns of failed tests to confirm flakes [default: the policy's `retries`].
    #[arg(long, value_name = "N")]
    pub(crate) retries: Option<u32>,

    /// The evidence ledger to append to, relative to the root; it must lie inside the root
    /// [default: .warden/ledger.jsonl].
    #[arg(long, value_name = "FILE", conflicts_with = "no_ledger")]
    pub(crate) ledger: Option<PathBuf>,

    /// Record no evidence (and read no ledger as history).
    #[arg(long)]
    pub(crate) no_ledger: bool,

    /// Earlier results to tell flakes from regressions: a ledger (JSONL) or one `verify --json`
    /// result (repeatable). The ledger in use is always read as history too.
    #[arg(long = "history", value_name = "FILE")]
    pub(crate) history: Vec<PathBuf>,

    /// A mission id: every `verify` with the same id shares the policy's test-time budget,
    /// counted from the ledger.
    #[arg(long = "mission", value_name = "ID", conflicts_with = "no_ledger")]
    pub(crate) mission: Option<String>,

    /// The Python interpreter to run pytest with, unless the policy names one [default:
    /// `WARDEN_PYTHON`, else `python3`].
    #[arg(long, value_name = "PATH")]
    pub(crate) python: Option<String>,

    /// Extra pytest arguments, after `--`; each must be allowed by the policy.
    #[arg(last = true, value_name = "PYTEST_ARGS")]
    pub(crate) pytest_args: Vec<String>,
}

/// `warden mcp`.
#[derive(Debug, Args)]
pub(crate) struct McpArgs {
    /// The Python interpreter to run pytest with, unless the policy names one [default:
    /// `WARDEN_PYTHON`, else `python3`].
    #[arg(long, value_name = "PATH")]
    pub(crate) python: Option<String>,
}

/// `warden classify`.
#[derive(Debug, Args)]
pub(crate) struct ClassifyArgs {
    /// A result written by `warden verify --json`.
    pub(crate) result: PathBuf,

    /// Earlier results: a ledger (JSONL) or one `verify --json` result (repeatable).
    #[arg(long = "history", value_name = "FILE")]
    pub(crate) history: Vec<PathBuf>,
}

/// `warden ledger ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum LedgerCommand {
    /// Check the hash chain (exit 0 intact, 1 tampered, corrupt or torn, 2 unreadable).
    Verify(LedgerFile),
    /// The success metrics: runs, pass rate, failure classes, timeout and flake rates, the
    /// flakiest tests, test time (exit 1 when the chain is broken).
    Stats(LedgerFile),
}

/// The ledger a `warden ledger` command reads.
#[derive(Debug, Args)]
pub(crate) struct LedgerFile {
    /// The ledger file (e.g. `.warden/ledger.jsonl`).
    pub(crate) file: PathBuf,
}

/// A positive number of seconds, as a duration.
fn seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if !secs.is_finite() || secs <= 0.0 {
        return Err(format!("`{text}` is not a positive number of seconds"));
    }
    Duration::try_from_secs_f64(secs).map_err(|e| format!("`{text}`: {e}"))
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

    use super::{Cli, seconds};

    #[test]
    fn grammar_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn timeouts_are_positive_seconds() {
        assert_eq!(seconds("3"), Ok(std::time::Duration::from_secs(3)));
        assert_eq!(seconds("0.5"), Ok(std::time::Duration::from_millis(500)));
        for bad in ["0", "-1", "nan", "inf", "ten", "", "1e400"] {
            assert!(seconds(bad).is_err(), "{bad:?}");
        }
    }
}
