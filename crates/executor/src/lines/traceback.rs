//! Exceptions at the end of a traceback, as pytest prints them in its `E   ` lines.

use camino::Utf8Path;

use super::text::truncate;

/// Follows a traceback and remembers the exception it ends with (pytest's `E   ` lines).
#[derive(Debug, Default)]
pub(crate) struct ExceptionTracker {
    exception: Option<String>,
    syntax_location: Option<(String, String)>,
    first_line: Option<String>,
}

impl ExceptionTracker {
    pub(crate) fn feed(&mut self, line: &str) {
        if let Some(content) = line.strip_prefix('E')
            && content.starts_with([' ', '\t'])
        {
            let content = content.trim();
            if let Some(location) = content.strip_prefix("File \"") {
                if let Some((path, rest)) = location.split_once("\", line ") {
                    let line_no: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    self.syntax_location = Some((path.to_owned(), line_no));
                }
            } else if is_exception_line(content) {
                self.exception = Some(truncate(content));
            }
            return;
        }
        let trimmed = line.trim();
        if self.first_line.is_none() && !trimmed.is_empty() {
            self.first_line = Some(truncate(trimmed));
        }
    }

    /// The error message (the exception line, or the first line of the report) and whether
    /// it is a syntax error.
    pub(crate) fn conclude(self, root: Option<&Utf8Path>) -> (Option<String>, bool) {
        let Some(exception) = self.exception else {
            return (self.first_line, false);
        };
        let name = exception.split(':').next().unwrap_or_default();
        let name = name.rsplit('.').next().unwrap_or(name);
        let syntax = matches!(name, "SyntaxError" | "IndentationError" | "TabError");
        let message = match (syntax, self.syntax_location) {
            (true, Some((path, line))) => {
                let path = relative_to(root, &path);
                truncate(&format!("{exception} ({path}, line {line})"))
            }
            _ => exception,
        };
        (Some(message), syntax)
    }
}

/// `path` relative to `root` when it lies inside it (component-wise), else unchanged.
pub(crate) fn relative_to(root: Option<&Utf8Path>, path: &str) -> String {
    root.and_then(|root| Utf8Path::new(path).strip_prefix(root).ok())
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| path.to_owned())
}

/// `ValueError: bad`, `ModuleNotFoundError: No module named 'x'`, `pkg.Error: y`,
/// `KeyboardInterrupt`.
pub(crate) fn is_exception_line(content: &str) -> bool {
    let (name, rest) = match content.split_once(':') {
        Some((name, rest)) => (name, Some(rest)),
        None => (content, None),
    };
    let Some(first) = name.chars().next() else {
        return false;
    };
    let identifier = (first.is_ascii_alphabetic() || first == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    if !identifier || !name.chars().any(|c| c.is_ascii_uppercase()) {
        return false;
    }
    match rest {
        Some(rest) => rest.is_empty() || rest.starts_with(' '),
        None => ["Error", "Exception", "Interrupt", "Exit"]
            .iter()
            .any(|suffix| name.ends_with(suffix)),
    }
}
