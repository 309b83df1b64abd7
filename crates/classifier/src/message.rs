//! Reading pytest's messages: which fault they name, how informative they are, and a short form.

use warden_taxonomy::RetryContext;

use crate::observation::CollectionFault;

/// The run-level fault a message names, if any: a syntax error (in a test module or a conftest)
/// before a broken conftest before an import or other collection error.
pub(crate) fn fault_named(text: &str) -> Option<CollectionFault> {
    if names_syntax_error(text) {
        Some(CollectionFault::SyntaxError)
    } else if text.contains("while loading conftest") {
        Some(CollectionFault::UsageError)
    } else if names_collection_error(text) {
        Some(CollectionFault::CollectionError)
    } else {
        None
    }
}

fn names_syntax_error(text: &str) -> bool {
    ["SyntaxError", "IndentationError", "TabError"]
        .iter()
        .any(|name| text.contains(name))
}

fn names_collection_error(text: &str) -> bool {
    [
        "ImportError",
        "ModuleNotFoundError",
        "while importing test module",
        "during collection",
        "ERROR collecting",
    ]
    .iter()
    .any(|phrase| text.contains(phrase))
}

/// How much a message tells an agent, lower first: what stops the whole suite from loading,
/// then assertions that show the values involved, then exceptions with text, then the rest
/// (a bare `AssertionError`, `assert False`).
pub(crate) fn rank(text: &str) -> u8 {
    if names_syntax_error(text) {
        0
    } else if text.contains("while loading conftest") || names_collection_error(text) {
        1
    } else if shows_values(text) {
        2
    } else if has_exception_text(text) {
        3
    } else {
        4
    }
}

fn shows_values(text: &str) -> bool {
    text.contains("assert ")
        && [
            "==", "!=", " < ", " > ", "<=", ">=", " in ", " is ", "where ",
        ]
        .iter()
        .any(|op| text.contains(op))
}

fn has_exception_text(text: &str) -> bool {
    ["Error: ", "Exception: "].iter().any(|marker| {
        text.match_indices(marker).any(|(at, m)| {
            text[at + m.len()..]
                .chars()
                .next()
                .is_some_and(|c| !c.is_whitespace())
        })
    })
}

/// A message in at most [`RetryContext::MAX_MESSAGE_CHARS`] characters, on one line.
///
/// pytest's `E` markers, caret lines and diff hints are dropped and whitespace collapsed. When
/// that is still too long (a collection traceback), the exception line leads, followed by the
/// location it was raised at, since the frames before it are mostly pytest's own.
/// Memory addresses (`0x7f3a...`) are masked so that otherwise equal messages deduplicate.
pub(crate) fn condense(text: &str) -> String {
    let lines: Vec<String> = text.lines().filter_map(clean_line).collect();
    let whole = lines.join(" ");
    let chosen = if whole.chars().count() <= RetryContext::MAX_MESSAGE_CHARS {
        whole
    } else {
        match lines.iter().rposition(|l| is_exception_line(l)) {
            Some(key) => {
                let mut focused = lines[key].clone();
                if let Some(loc) = lines[..key].iter().rposition(|l| is_location_line(l)) {
                    focused.push_str(" (");
                    focused.push_str(&lines[loc]);
                    // For a syntax error the line after the location is the offending code.
                    if loc + 1 < key && !is_location_line(&lines[loc + 1]) {
                        focused.push_str(": ");
                        focused.push_str(&lines[loc + 1]);
                    }
                    focused.push(')');
                }
                focused
            }
            None => whole,
        }
    };
    truncate(&mask_addresses(&chosen), RetryContext::MAX_MESSAGE_CHARS)
}

/// One line of a message without pytest's decoration; `None` when nothing informative is left.
fn clean_line(line: &str) -> Option<String> {
    let mut line = line.trim();
    // pytest marks exception lines with a leading `E` and spaces.
    if let Some(rest) = line.strip_prefix('E')
        && rest.starts_with(char::is_whitespace)
    {
        line = rest.trim_start();
    }
    if line.is_empty()
        || line.chars().all(|c| matches!(c, '^' | '~' | ' '))
        || line.starts_with("Use -v to get")
    {
        return None;
    }
    Some(line.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// `SomethingError: ...`, `pkg.SomethingException`, `KeyboardInterrupt`, ...
fn is_exception_line(line: &str) -> bool {
    let name = line.split(':').next().unwrap_or_default();
    !name.is_empty()
        && !name.contains(' ')
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '.')
        && ["Error", "Exception", "Exit", "Interrupt", "Failed"]
            .iter()
            .any(|suffix| name.ends_with(suffix))
}

/// `File "x.py", line 3` or pytest's `x.py:3: in <module>`.
fn is_location_line(line: &str) -> bool {
    line.starts_with("File \"") || line.contains(": in ")
}

/// Replaces long hexadecimal addresses, which differ run to run, by `0x…`.
fn mask_addresses(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("0x") {
        let digits = rest[at + 2..]
            .chars()
            .take_while(char::is_ascii_hexdigit)
            .count();
        out.push_str(&rest[..at]);
        if digits >= 6 {
            out.push_str("0x…");
        } else {
            out.push_str(&rest[at..at + 2 + digits]);
        }
        // Hex digits are ASCII, so `digits` is also a byte count.
        rest = &rest[at + 2 + digits..];
    }
    out.push_str(rest);
    out
}

/// At most `max` characters, cut on a character boundary, with `…` marking a cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYNTAX_TRACEBACK: &str =
        "/venv/lib/python3.11/site-packages/_pytest/python.py:528: in importtestmodule
    mod = import_path(
/venv/lib/python3.11/site-packages/_pytest/pathlib.py:640: in import_path
    importlib.import_module(module_name)
/usr/lib/python3.11/importlib/__init__.py:126: in import_module
    return _bootstrap._gcd_import(name[level:], package, level)
           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
<frozen importlib._bootstrap>:1204: in _gcd_import
    ???
/venv/lib/python3.11/site-packages/_pytest/assertion/rewrite.py:339: in _rewrite_test
    tree = ast.parse(source, filename=strfn)
           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
/usr/lib/python3.11/ast.py:50: in parse
    return compile(source, filename, mode, flags,
E     File \"/repo/runtime/tests/test_bad.py\", line 1
E       def f(:
E             ^
E   SyntaxError: invalid syntax";

    #[test]
    fn a_long_syntax_traceback_condenses_to_the_error_and_its_location() {
        let short = condense(SYNTAX_TRACEBACK);
        assert_eq!(
            short,
            "SyntaxError: invalid syntax (File \"/repo/runtime/tests/test_bad.py\", line 1: def f(:)"
        );
        assert_eq!(
            fault_named(SYNTAX_TRACEBACK),
            Some(CollectionFault::SyntaxError)
        );
        assert_eq!(rank(&short), 0);
    }

    #[test]
    fn an_import_error_names_the_module_and_where_it_was_imported() {
        let text = format!(
            "ImportError while importing test module '/repo/runtime/tests/test_imp.py'.\n\
             Hint: make sure your test modules/packages have valid Python names.\nTraceback:\n\
             {}\nruntime/tests/test_imp.py:1: in <module>\n    import nosuchmod\n\
             E   ModuleNotFoundError: No module named 'nosuchmod'",
            "/usr/lib/python3.11/importlib/__init__.py:126: in import_module\n    x\n".repeat(4)
        );
        assert_eq!(
            condense(&text),
            "ModuleNotFoundError: No module named 'nosuchmod' \
             (runtime/tests/test_imp.py:1: in <module>: import nosuchmod)"
        );
        assert_eq!(fault_named(&text), Some(CollectionFault::CollectionError));
    }

    #[test]
    fn a_conftest_syntax_error_is_a_syntax_error_and_an_import_failure_a_usage_error() {
        let syntax =
            "ImportError while loading conftest '/r/conftest.py'.\nE   SyntaxError: invalid syntax";
        let import = "ImportError while loading conftest '/r/conftest.py'.\n\
                      E   ModuleNotFoundError: No module named 'nosuch'";
        assert_eq!(fault_named(syntax), Some(CollectionFault::SyntaxError));
        assert_eq!(fault_named(import), Some(CollectionFault::UsageError));
        assert_eq!(fault_named("assert 1 == 2"), None);
    }

    #[test]
    fn short_messages_keep_their_text_on_one_line() {
        let text =
            "assert [1, 2] == [1, 3]\n  \n  At index 1 diff: 2 != 3\n  Use -v to get more diff";
        assert_eq!(
            condense(text),
            "assert [1, 2] == [1, 3] At index 1 diff: 2 != 3"
        );
    }

    #[test]
    fn ranks_put_loading_errors_then_values_then_exceptions_then_bare_failures() {
        assert!(
            rank("SyntaxError: invalid syntax") < rank("ModuleNotFoundError: No module named 'x'")
        );
        assert!(rank("ModuleNotFoundError: No module named 'x'") < rank("assert 1 == 2"));
        assert!(rank("assert 1 == 2") < rank("failed on setup with \"ValueError: boom\""));
        assert!(rank("ValueError: boom") < rank("AssertionError"));
        assert_eq!(rank("assert False"), 4);
        assert_eq!(rank("ValueError: "), 4);
    }

    #[test]
    fn truncation_respects_the_bound_and_character_boundaries() {
        let text = "é".repeat(RetryContext::MAX_MESSAGE_CHARS + 10);
        let cut = truncate(&text, RetryContext::MAX_MESSAGE_CHARS);
        assert_eq!(cut.chars().count(), RetryContext::MAX_MESSAGE_CHARS);
        assert!(cut.ends_with('…'));
        assert_eq!(truncate("short", 10), "short");
    }

    #[test]
    fn addresses_are_masked_but_small_hex_numbers_kept() {
        assert_eq!(
            condense("<Foo object at 0x7f3a12bc90d0> != 0x1f"),
            "<Foo object at 0x…> != 0x1f"
        );
    }

    #[test]
    fn lines_starting_with_e_are_not_mangled() {
        assert_eq!(condense("Error: bad\nEE"), "Error: bad EE");
    }
}
