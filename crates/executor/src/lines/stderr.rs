//! pytest's standard error: what only appears there.

use camino::{Utf8Path, Utf8PathBuf};

use super::MAX_COLLECTION_ERRORS;
use super::splitter::LineSplitter;
use super::text::{truncate, truncate_into};
use super::traceback::{ExceptionTracker, is_exception_line, relative_to};
use crate::evidence::CollectionError;

/// Scans pytest's standard error for what only appears there: a conftest that failed to load,
/// a missing pytest module, usage errors, and the last line (for crashes).
#[derive(Debug, Default)]
pub(crate) struct StderrScanner {
    splitter: LineSplitter,
    root: Option<Utf8PathBuf>,
    pytest_missing: bool,
    /// The interpreter refused `-P` (Python 3.10 or older).
    no_safe_path: bool,
    conftest: Option<(String, ExceptionTracker)>,
    conftest_errors: Vec<CollectionError>,
    usage_error: Option<String>,
    internal_error: Option<String>,
    /// The last non-blank line (empty until there is one), reused line after line.
    last_line: String,
}

impl StderrScanner {
    pub(crate) fn with_root(root: &Utf8Path) -> Self {
        StderrScanner {
            root: Some(root.to_owned()),
            ..StderrScanner::default()
        }
    }

    pub(crate) fn feed(&mut self, bytes: &[u8]) {
        let mut splitter = std::mem::take(&mut self.splitter);
        splitter.feed(bytes, |line| self.on_line(&line.text()));
        self.splitter = splitter;
    }

    pub(crate) fn finish(&mut self) {
        let mut splitter = std::mem::take(&mut self.splitter);
        splitter.finish(|line| self.on_line(&line.text()));
        self.close_conftest();
    }

    fn on_line(&mut self, line: &str) {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            return;
        }
        truncate_into(&mut self.last_line, trimmed);
        // `-m pytest` says `No module named pytest`; Warden's bootstrap, which imports it,
        // `No module named 'pytest'`.
        if trimmed.ends_with("No module named pytest")
            || trimmed.ends_with("No module named 'pytest'")
        {
            self.pytest_missing = true;
        }
        if trimmed.starts_with("Unknown option: -P") {
            self.no_safe_path = true;
        }
        if let Some(rest) = trimmed.strip_prefix("ImportError while loading conftest '") {
            self.close_conftest();
            let path = rest.trim_end_matches('.').trim_end_matches('\'');
            let path = relative_to(self.root.as_deref(), path);
            self.conftest = Some((path, ExceptionTracker::default()));
            return;
        }
        if let Some(rest) = trimmed.strip_prefix("INTERNALERROR> ") {
            if is_exception_line(rest.trim()) {
                self.internal_error = Some(truncate(rest.trim()));
            }
            return;
        }
        if self.usage_error.is_none()
            && let Some(rest) = trimmed.strip_prefix("ERROR: ")
        {
            self.usage_error = Some(truncate(rest));
        }
        if let Some((_, tracker)) = &mut self.conftest {
            tracker.feed(line);
        }
    }

    fn close_conftest(&mut self) {
        let Some((path, tracker)) = self.conftest.take() else {
            return;
        };
        let (message, syntax_error) = tracker.conclude(self.root.as_deref());
        if self.conftest_errors.len() < MAX_COLLECTION_ERRORS {
            self.conftest_errors.push(CollectionError {
                path: Some(path),
                message: message.unwrap_or_else(|| "conftest failed to load".to_owned()),
                syntax_error,
                conftest: true,
            });
        }
    }

    pub(crate) fn pytest_missing(&self) -> bool {
        self.pytest_missing
    }

    pub(crate) fn no_safe_path(&self) -> bool {
        self.no_safe_path
    }

    pub(crate) fn conftest_errors(&self) -> &[CollectionError] {
        &self.conftest_errors
    }

    pub(crate) fn usage_error(&self) -> Option<&str> {
        self.usage_error.as_deref()
    }

    pub(crate) fn internal_error(&self) -> Option<&str> {
        self.internal_error.as_deref()
    }

    pub(crate) fn last_line(&self) -> Option<&str> {
        (!self.last_line.is_empty()).then_some(self.last_line.as_str())
    }
}
