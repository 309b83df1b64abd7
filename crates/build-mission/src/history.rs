//! Stored results: one `verify --json` document, or a ledger streamed as classifier history.
//!
//! A `--history FILE` is told apart by its content, not its name: a ledger's lines are records
//! whose first key is `"version"`, while a `verify` result's first key is anything else
//! (`"schema_version"` as Warden writes it). Every file is checked in full before anything
//! runs, so a damaged one is an error before anything runs (the command line exits 2) naming the file and the record, never a
//! surprise half-way through a verification. Then [`History`] streams the runs: ledgers are
//! opened one at a time, only when the classifier asks for their runs (it often does not), and
//! read one record at a time, so memory does not grow with history length and no ledger stays
//! locked while tests run.

use std::fs::File;
use std::io::{self, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use warden_classifier::HistoryRun;
use warden_taxonomy::VerifyReport;

use crate::ledger::{ChainReport, Ledger, LedgerError, LedgerHistory, LedgerHistoryIter};

/// Why stored results or history cannot be used: the caller should stop before running
/// anything (the command line exits 2).
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// A file that was named does not exist or is not a file.
    #[error("{what} {} {problem}", path.display())]
    Missing {
        /// What the file was meant to be (`the result`, `the history file`).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A `verify` result or a history file is unusable.
    #[error("{}: {problem}", path.display())]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it, and what to do.
        problem: String,
    },
    /// A ledger could not be read.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// The largest `verify` result read, in bytes: far above what a run with the default output
/// cap writes, small enough to hold in memory.
pub const MAX_RESULT_BYTES: u64 = 64 * 1024 * 1024;

/// How many bytes are looked at to tell a ledger from a result.
const SNIFF_BYTES: u64 = 4096;

/// Reads one stored `verify` result (`warden verify --json` output).
pub fn read_report(path: &Path) -> Result<VerifyReport, HistoryError> {
    let file = open_file(path, "the result")?;
    let bad = |problem: String| HistoryError::BadFile {
        path: path.to_owned(),
        problem,
    };
    let len = file
        .metadata()
        .map_err(|e| bad(format!("cannot inspect it: {e}")))?
        .len();
    if len > MAX_RESULT_BYTES {
        return Err(bad(format!(
            "{len} bytes is more than a verify result can be ({MAX_RESULT_BYTES} bytes)"
        )));
    }
    let reader = BufReader::new(file.take(MAX_RESULT_BYTES));
    let report: VerifyReport = serde_json::from_reader(reader)
        .map_err(|e| bad(format!("not a `warden verify --json` result: {e}")))?;
    if report.schema_version != VerifyReport::SCHEMA_VERSION {
        return Err(bad(format!(
            "schema_version {} is not supported (this warden reads {})",
            report.schema_version,
            VerifyReport::SCHEMA_VERSION
        )));
    }
    Ok(report)
}

/// Opens a file named on the command line, or says plainly that it is missing.
fn open_file(path: &Path, what: &'static str) -> Result<File, HistoryError> {
    let missing = |problem| HistoryError::Missing {
        what,
        path: path.to_owned(),
        problem,
    };
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => {}
        Ok(_) => return Err(missing("is not a file")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(missing("does not exist")),
        Err(_) => return Err(missing("cannot be inspected")),
    }
    // Checked again on the open handle, without waiting: it may have been swapped for a FIFO.
    warden_rootfs::open_read(path, true).map_err(|e| HistoryError::BadFile {
        path: path.to_owned(),
        problem: format!("cannot open it: {e}"),
    })
}

/// What a history file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ledger,
    Result,
}

/// Looks at the start of a file: a ledger (empty, or records starting with `{"version"`) or a
/// single result (any other JSON object).
fn sniff(path: &Path) -> Result<Kind, HistoryError> {
    let file = open_file(path, "the history file")?;
    let mut head = Vec::new();
    file.take(SNIFF_BYTES)
        .read_to_end(&mut head)
        .map_err(|e| HistoryError::BadFile {
            path: path.to_owned(),
            problem: format!("cannot read it: {e}"),
        })?;
    Ok(kind_of(&head))
}

fn kind_of(head: &[u8]) -> Kind {
    let mut rest = head.trim_ascii_start();
    if rest.is_empty() {
        return Kind::Ledger;
    }
    if let Some(inner) = rest.strip_prefix(b"{") {
        rest = inner.trim_ascii_start();
        if rest.starts_with(b"\"version\"") {
            return Kind::Ledger;
        }
    }
    // Anything else is read as a result, whose parser says precisely what is wrong with it.
    Kind::Result
}

/// A problem met while streaming history, for the caller to report once the stream is done.
#[derive(Debug, Clone, Default)]
pub struct Problem(Arc<Mutex<Option<String>>>);

impl Problem {
    fn set(&self, message: String) {
        let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        slot.get_or_insert(message);
    }

    /// The first problem met, if any.
    pub fn take(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

/// One checked source of history.
enum Source {
    /// A ledger, opened when the stream reaches it.
    Ledger(LedgerHistory),
    /// One stored result (small: one run's outcomes).
    Run(Box<HistoryRun>),
}

/// Earlier runs, streamed lazily from checked files; see the module documentation.
///
/// The iterator yields runs until every source is done. Should a file fail after its check
/// (changed or removed meanwhile), the stream ends early and [`History::problem`] says why:
/// less history can only make a flake harder to prove, never invent one.
pub struct History {
    sources: std::vec::IntoIter<Source>,
    /// The ledger being read, with the handle that learns whether it was read to the end.
    current: Option<(LedgerHistoryIter, LedgerHistory)>,
    problem: Problem,
}

impl History {
    /// Checks every file (each `--history FILE`, then the ledger in use, which may not exist
    /// yet) and returns the stream over them.
    pub fn open(files: &[PathBuf], ledger: Option<&Ledger>) -> Result<History, HistoryError> {
        let mut sources = Vec::with_capacity(files.len() + 1);
        for path in files {
            match sniff(path)? {
                Kind::Ledger => {
                    let ledger = Ledger::new(path);
                    check_ledger(&ledger, "history file")?;
                    sources.push(Source::Ledger(ledger.lazy_history()));
                }
                Kind::Result => {
                    let report = read_report(path)?;
                    sources.push(Source::Run(Box::new(HistoryRun::from_report(&report))));
                }
            }
        }
        if let Some(ledger) = ledger {
            check_ledger(ledger, "ledger")?;
            sources.push(Source::Ledger(ledger.lazy_history()));
        }
        Ok(History {
            sources: sources.into_iter(),
            current: None,
            problem: Problem::default(),
        })
    }

    /// Where a problem met while streaming is reported.
    pub fn problem(&self) -> Problem {
        self.problem.clone()
    }
}

/// Checks a ledger's whole chain (streaming). A torn final line is fine: it is the remains of
/// an interrupted append, not a record, and readers stop before it.
fn check_ledger(ledger: &Ledger, what: &str) -> Result<(), HistoryError> {
    match ledger.verify()? {
        ChainReport::Intact { .. } => Ok(()),
        ChainReport::TornTail { line, .. } => {
            tracing::warn!(
                ledger = %ledger.path().display(),
                line,
                "the {what} ends with a torn line (an interrupted append); it is ignored"
            );
            Ok(())
        }
        report => Err(HistoryError::BadFile {
            path: ledger.path().to_owned(),
            problem: format!(
                "the {what} is damaged ({report}); check it with `warden ledger verify {}` and \
                 repair it or move it aside",
                ledger.path().display()
            ),
        }),
    }
}

impl Iterator for History {
    type Item = HistoryRun;

    fn next(&mut self) -> Option<HistoryRun> {
        loop {
            if let Some((runs, handle)) = self.current.as_mut() {
                if let Some(run) = runs.next() {
                    return Some(run);
                }
                if let Some(error) = handle.take_error() {
                    self.problem.set(error.to_string());
                    // Stop, and release every ledger.
                    self.current = None;
                    self.sources = Vec::new().into_iter();
                    return None;
                }
                self.current = None;
            }
            match self.sources.next()? {
                Source::Run(run) => return Some(*run),
                Source::Ledger(history) => {
                    self.current = Some((history.clone().into_iter(), history));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ledgers_and_results_are_told_apart_by_their_first_key() {
        assert_eq!(kind_of(b""), Kind::Ledger);
        assert_eq!(kind_of(b" \n"), Kind::Ledger);
        assert_eq!(kind_of(b"{\"version\":1,\"seq\":1"), Kind::Ledger);
        assert_eq!(kind_of(b"{\"schema_version\":1"), Kind::Result);
        assert_eq!(kind_of(b"{\n  \"schema_version\": 1"), Kind::Result);
        assert_eq!(kind_of(b"\xff\xfe"), Kind::Result);
    }
}
