//! The `collected N items` line, separator banners and pytest's final counts.

use warden_taxonomy::TestCounts;

use super::text::trim_end;

/// `collected 17 items`, `collecting ... collected 1 item / 2 errors`,
/// `collected 3 items / 1 deselected / 2 selected`.
pub(super) fn parse_collected(line: &str) -> Option<u64> {
    if let Some(count) = parse_xdist_collected(line) {
        return Some(count);
    }
    let rest = line
        .strip_prefix("collecting ... ")
        .unwrap_or(line)
        .strip_prefix("collected ")?;
    let count = leading_number(rest)?;
    let selected = rest.split(" / ").find_map(|part| {
        part.trim()
            .strip_suffix(" selected")
            .and_then(leading_number)
    });
    Some(selected.unwrap_or(count))
}

/// pytest-xdist's count, once its workers have collected: `2 workers [9 items]`.
fn parse_xdist_collected(line: &str) -> Option<u64> {
    let (workers, rest) = line
        .split_once(" workers [")
        .or(line.split_once(" worker ["))?;
    workers.parse::<u64>().ok()?;
    let items = rest
        .strip_suffix(" items]")
        .or(rest.strip_suffix(" item]"))?;
    items.parse().ok()
}

pub(super) fn leading_number(text: &str) -> Option<u64> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    text[..digits].parse().ok()
}

/// The title of a pytest separator line: `=== title ===` (or with `_`, `!`, `-`).
pub(super) fn banner(line: &str, ch: char) -> Option<&str> {
    if !line.starts_with(ch) {
        return None;
    }
    let line = trim_end(line);
    let inner = line.strip_prefix(ch)?.strip_suffix(ch)?;
    let inner = inner.trim_start_matches(ch).trim_end_matches(ch);
    let title = inner.strip_prefix(' ')?.strip_suffix(' ')?;
    (!title.is_empty()).then_some(title)
}

/// pytest's final counts: `2 failed, 11 passed, 1 skipped, 2 errors in 0.08s` (optionally
/// followed by ` (0:01:02)`), or `no tests ran in 0.01s`.
pub(crate) fn parse_summary(title: &str) -> Option<TestCounts> {
    let (parts, time) = title.rsplit_once(" in ")?;
    let time = time.split(" (").next()?;
    let secs = time.strip_suffix('s')?;
    if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let mut counts = TestCounts::default();
    if parts == "no tests ran" {
        return Some(counts);
    }
    let mut known = false;
    for part in parts.split(", ") {
        let (n, word) = part.split_once(' ')?;
        let n: u64 = n.parse().ok()?;
        let slot = match word {
            "passed" => &mut counts.passed,
            "failed" => &mut counts.failed,
            "error" | "errors" => &mut counts.errors,
            "skipped" => &mut counts.skipped,
            "xfailed" => &mut counts.xfailed,
            "xpassed" => &mut counts.xpassed,
            // pytest 9 counts passing subtests apart; failing, skipped and xfailed ones are
            // in `failed`, `skipped` and `xfailed`.
            "subtests passed" => &mut counts.subtests_passed,
            // warnings, deselected, reruns...: not outcomes of tests.
            _ => continue,
        };
        *slot += n;
        known = true;
    }
    known.then_some(counts)
}

/// `--collect-only`'s final line: `2 tests collected in 0.01s`, `1 test collected, 1 error in
/// 0.1s`, `no tests collected in 0.01s`.
pub(super) fn is_collect_only_summary(title: &str) -> bool {
    title.rsplit_once(" in ").is_some_and(|(parts, _)| {
        parts
            .split(", ")
            .next()
            .is_some_and(|first| first.ends_with(" collected"))
    })
}
