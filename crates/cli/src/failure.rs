//! What pytest's own output says about a run beyond the results: where each failure happened
//! (`path:line: ExceptionType`, the last line of its section in the FAILURES and ERRORS
//! blocks), how many tests it collected, and whether it stopped early (`-x`, `--maxfail`).
//!
//! Read from the kept stdout of the first attempt: when the middle of a huge output was not
//! kept, what is missing is simply not shown. The scan is linear and only for display; the
//! verdict never depends on it.

/// Where the failure of `nodeid` happened, as pytest's traceback ends: `path:line: Type`.
///
/// Sections are matched by pytest's head line (`test_f[1]`, `TestK.test_f[1]`, `ERROR at setup
/// of test_f`); when several sections share it (the same name in two files), the one whose
/// location is in the test's own file wins, and otherwise none is named.
pub(crate) fn location<'a>(stdout: &'a str, nodeid: &str) -> Option<&'a str> {
    let (file, rest) = nodeid.split_once("::")?;
    let head = rest.replace("::", ".");
    let mut found: Vec<&str> = Vec::new();
    let mut in_section = false;
    let mut last: Option<&str> = None;
    for line in stdout.lines() {
        if let Some(title) = section_title(line) {
            if in_section && let Some(at) = last.take() {
                found.push(at);
            }
            in_section = title == head
                || title
                    .strip_suffix(head.as_str())
                    .is_some_and(|start| start.starts_with("ERROR at ") && start.ends_with(" of "));
            last = None;
            continue;
        }
        if !in_section {
            continue;
        }
        if line.starts_with("====") || line.starts_with("----") {
            // Captured output or the next block: nothing after it is the traceback's.
            if let Some(at) = last.take() {
                found.push(at);
            }
            in_section = false;
            continue;
        }
        if is_location(line) {
            last = Some(line);
        }
    }
    if in_section && let Some(at) = last {
        found.push(at);
    }
    match found.as_slice() {
        [only] => Some(only),
        several => several
            .iter()
            .copied()
            .find(|at| at.strip_prefix(file).is_some_and(|r| r.starts_with(':'))),
    }
}

/// The title of a failure section header `____ title ____` (not the `_ _ _` frame separator).
fn section_title(line: &str) -> Option<&str> {
    let inner = line.strip_prefix("__")?.trim_start_matches('_');
    let inner = inner.strip_suffix("__")?.trim_end_matches('_');
    let title = inner.strip_prefix(' ')?.strip_suffix(' ')?;
    (!title.is_empty()).then_some(title)
}

/// `path:line: Type`: a traceback entry's location with the exception's type.
fn is_location(line: &str) -> bool {
    let Some((path, rest)) = line.split_once(':') else {
        return false;
    };
    let Some((number, kind)) = rest.split_once(": ") else {
        return false;
    };
    !path.is_empty()
        && !path.contains(' ')
        && !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit())
        && !kind.trim().is_empty()
}

/// How many tests pytest said it would run (`collected N items`, or `/ N selected`).
pub(crate) fn collected(stdout: &str) -> Option<u64> {
    let line = stdout
        .lines()
        .take(200)
        .find_map(|line| line.split_once("collected ").map(|(_, rest)| rest))?;
    let selected = line
        .split(" / ")
        .find_map(|part| part.strip_suffix(" selected"));
    let number = selected.unwrap_or(line);
    number.split_whitespace().next()?.parse().ok()
}

/// The number of failures after which pytest stopped (`-x`, `--maxfail`), if it did.
pub(crate) fn stopped_after(stdout: &str) -> Option<u64> {
    stdout.lines().rev().take(50).find_map(|line| {
        let rest = line
            .trim_matches(|c: char| c == '!' || c == ' ')
            .strip_prefix("stopping after ")?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "\
collecting ... collected 5 items / 1 deselected / 4 selected

==================================== ERRORS ====================================
_________________________ ERROR at setup of test_setup _________________________

>       raise RuntimeError(\"setup broke\")
E       RuntimeError: setup broke

runtime/tests/test_y.py:9: RuntimeError
=================================== FAILURES ===================================
__________________________________ test_raise __________________________________

>       helper()

runtime/tests/test_x.py:11: 
_ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ 

E       ValueError: bad

runtime/tests/test_x.py:8: ValueError
_______________________________ TestK.test_f[1] ________________________________

runtime/tests/test_y.py:6: AssertionError
----------------------------- Captured stdout call -----------------------------
runtime/tests/fake.py:99: Forged
_______________________________ test_raise _______________________________
other/test_raise.py:3: AssertionError
!!!!!!!!!!!!!!!!!!!!!!!!!! stopping after 2 failures !!!!!!!!!!!!!!!!!!!!!!!!!!!
";

    #[test]
    fn each_failure_is_located_by_its_section() {
        assert_eq!(
            location(OUTPUT, "runtime/tests/test_x.py::test_raise"),
            Some("runtime/tests/test_x.py:8: ValueError")
        );
        assert_eq!(
            location(OUTPUT, "other/test_raise.py::test_raise"),
            Some("other/test_raise.py:3: AssertionError")
        );
        assert_eq!(
            location(OUTPUT, "runtime/tests/test_y.py::TestK::test_f[1]"),
            Some("runtime/tests/test_y.py:6: AssertionError")
        );
        assert_eq!(
            location(OUTPUT, "runtime/tests/test_y.py::test_setup"),
            Some("runtime/tests/test_y.py:9: RuntimeError")
        );
        assert_eq!(location(OUTPUT, "runtime/tests/test_y.py::test_gone"), None);
        assert_eq!(location(OUTPUT, "runtime/tests/test_y.py"), None);
    }

    #[test]
    fn the_collected_count_and_an_early_stop_are_read() {
        assert_eq!(collected(OUTPUT), Some(4));
        assert_eq!(collected("collected 3 items\n"), Some(3));
        assert_eq!(collected("collected 1 item\n"), Some(1));
        assert_eq!(collected("nothing\n"), None);
        assert_eq!(stopped_after(OUTPUT), Some(2));
        assert_eq!(stopped_after("== 1 failed in 0.1s ==\n"), None);
    }
}
