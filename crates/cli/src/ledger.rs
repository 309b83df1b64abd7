//! `warden ledger verify` and `warden ledger stats`: reading an evidence ledger.

use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::Serialize;
use warden_build_mission::{ChainReport, Ledger, LedgerError};

use crate::cli::{GlobalArgs, LedgerCommand};
use crate::error::CliError;
use crate::output::{print, print_json};
use crate::style::escape_lines;

/// Exit code of `ledger verify` for anything but an intact chain, and of `ledger stats` for a
/// ledger whose chain is broken.
const EXIT_NOT_INTACT: u8 = 1;

/// Runs a `warden ledger` subcommand.
pub(crate) fn run(global: &GlobalArgs, command: &LedgerCommand) -> Result<ExitCode, CliError> {
    match command {
        LedgerCommand::Verify(args) => verify(global, &args.file),
        LedgerCommand::Stats(args) => stats(global, &args.file),
    }
}

/// `ledger verify --json`: the file, whether it is intact, and the chain report's fields.
#[derive(Debug, Serialize)]
struct VerifyOutput<'a> {
    ledger: &'a Path,
    intact: bool,
    #[serde(flatten)]
    report: &'a ChainReport,
}

/// Checks the hash chain. Exit 0 intact; 1 tampered, corrupt, or torn (a final line without
/// its newline, left by an interrupted append: the records before it are intact, but the file
/// is not, so it is not reported as such); 2 when the file cannot be read at all.
fn verify(global: &GlobalArgs, file: &Path) -> Result<ExitCode, CliError> {
    let ledger = open(file)?;
    let report = ledger.verify()?;
    tracing::info!(ledger = %file.display(), intact = report.is_intact(), "ledger checked");
    if global.json {
        print_json(&VerifyOutput {
            ledger: file,
            intact: report.is_intact(),
            report: &report,
        })?;
    } else {
        let advice = match &report {
            ChainReport::Intact { .. } => "",
            ChainReport::TornTail { .. } => {
                "\n  (a crash mid-append, not tampering: the next `warden verify` removes the torn \
                 line)"
            }
            ChainReport::Tampered { .. } | ChainReport::Corrupt { .. } => {
                "\n  (the evidence from this record on cannot be trusted; keep the file for \
                 review and move it aside)"
            }
        };
        let text = format!("{}: {report}{advice}\n", file.display());
        print(&escape_lines(&text))?;
    }
    Ok(if report.is_intact() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_NOT_INTACT)
    })
}

/// The success metrics. A ledger whose chain is broken has no trustworthy metrics: that is
/// reported like `ledger verify` reports it (exit 1); a torn final line is only noted.
fn stats(global: &GlobalArgs, file: &Path) -> Result<ExitCode, CliError> {
    let ledger = open(file)?;
    let stats = match ledger.stats() {
        Ok(stats) => stats,
        Err(LedgerError::Damaged { report, .. }) => {
            let message = format!(
                "{}: no statistics, the ledger is damaged: {report}",
                file.display()
            );
            eprintln!("warden: {}", escape_lines(&message));
            if global.json {
                print_json(&serde_json::json!({ "error": message }))?;
            }
            return Ok(ExitCode::from(EXIT_NOT_INTACT));
        }
        Err(e) => return Err(e.into()),
    };
    if global.json {
        print_json(&stats)?;
    } else {
        // The table names tests from the ledger: whatever a test was called reaches it.
        print(&escape_lines(&format!("{}\n{stats}", file.display())))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The ledger at `file`, which must exist: the ledger library reads a missing file as an
/// empty ledger, which would turn a typo into "intact".
fn open(file: &Path) -> Result<Ledger, CliError> {
    let missing = |problem| CliError::Missing {
        what: "the ledger",
        path: PathBuf::from(file),
        problem,
    };
    match std::fs::metadata(file) {
        Ok(meta) if meta.is_file() => Ok(Ledger::new(file)),
        Ok(_) => Err(missing("is not a file")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(missing("does not exist")),
        Err(_) => Err(missing("cannot be inspected")),
    }
}
