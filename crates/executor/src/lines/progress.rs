//! pytest's `-v` progress lines and result words, with the byte-level fast paths for them.

use warden_taxonomy::TestOutcome;

use super::MAX_LINE_BYTES;
use super::text::*;

/// One parsed progress line.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Progress<'a> {
    /// `nodeid ` printed before the test runs (or followed by the test's own output).
    Started(&'a str),
    /// An outcome; `nodeid` is `None` when the outcome word was glued to test output and
    /// belongs to the running test.
    Finished {
        nodeid: Option<&'a str>,
        outcome: TestOutcome,
        reason: Option<&'a str>,
    },
    /// A subtest's outcome (pytest 9's `subtests` fixture): `nodeid SUBPASSED[msg] (i=1)`.
    /// The description and, for a skip, its reason follow the word; they are not told apart.
    Subtest {
        nodeid: &'a str,
        outcome: TestOutcome,
    },
}

/// pytest 9's words for a subtest's outcome: `SUBPASSED`, `SUBFAILED`, `SUBSKIPPED` and
/// `SUBXFAIL`, followed at once by the subtest's description (`[msg]`, `(i=1)`, both, or
/// `(<subtest>)`). An `xfail` subtest that passes is not a subtest report of its own.
pub(super) const SUBTEST_WORDS: [(&str, TestOutcome); 4] = [
    ("SUBPASSED", TestOutcome::Passed),
    ("SUBFAILED", TestOutcome::Failed),
    ("SUBSKIPPED", TestOutcome::Skipped),
    ("SUBXFAIL", TestOutcome::Xfailed),
];

/// The subtest outcome `text` starts with, and what follows the word (the description).
pub(super) fn subtest_word(text: &str) -> Option<(TestOutcome, &str)> {
    let rest = text.strip_prefix("SUB")?;
    SUBTEST_WORDS.iter().find_map(|(word, outcome)| {
        let after = rest.strip_prefix(&word[3..])?;
        // The description starts right after the word, with `[` or `(`.
        matches!(after.as_bytes().first(), Some(b'[' | b'(')).then_some((*outcome, after))
    })
}

pub(super) const OUTCOME_WORDS: [(&str, TestOutcome); 6] = [
    ("PASSED", TestOutcome::Passed),
    ("FAILED", TestOutcome::Failed),
    ("ERROR", TestOutcome::Error),
    ("SKIPPED", TestOutcome::Skipped),
    ("XFAIL", TestOutcome::Xfailed),
    ("XPASS", TestOutcome::Xpassed),
];

pub(super) fn outcome_word(word: &str) -> Option<TestOutcome> {
    OUTCOME_WORDS
        .iter()
        .find(|(w, _)| *w == word)
        .map(|(_, o)| *o)
}

/// `runtime/tests/test_a.py::test_x[1] PASSED   [ 50%]`, `... SKIPPED (reason)   [ 60%]`,
/// a bare `nodeid ` (started), pytest-xdist's `[gw0] [ 50%] PASSED nodeid`, or output glued to
/// an outcome: `some output PASSED   [100%]`.
pub(super) fn parse_progress_line(line: &str) -> Option<Progress<'_>> {
    let line = trim_end(line);
    if let Some(rest) = line.strip_prefix("[gw") {
        return parse_xdist_line(rest);
    }
    let (body, had_progress) = match strip_progress_suffix(line) {
        Some(body) => (body, true),
        None => (line, false),
    };
    if let Some(end) =
        nodeid_end(body).filter(|end| contains_double_colon(&body.as_bytes()[..*end]))
    {
        let nodeid = &body[..end];
        let rest = trim_start(&body[end..]);
        if rest.is_empty() {
            return Some(Progress::Started(nodeid));
        }
        if let Some((outcome, _)) = subtest_word(rest) {
            return Some(Progress::Subtest { nodeid, outcome });
        }
        if let Some((outcome, reason)) = leading_outcome(rest) {
            return Some(Progress::Finished {
                nodeid: Some(nodeid),
                outcome,
                reason,
            });
        }
        if had_progress && let Some(outcome) = trailing_outcome(rest) {
            return Some(Progress::Finished {
                nodeid: Some(nodeid),
                outcome,
                reason: None,
            });
        }
        return Some(Progress::Started(nodeid));
    }
    if had_progress && let Some(outcome) = trailing_outcome(body) {
        return Some(Progress::Finished {
            nodeid: None,
            outcome,
            reason: None,
        });
    }
    None
}

pub(super) fn parse_xdist_line(rest: &str) -> Option<Progress<'_>> {
    // `N] [ 50%] PASSED nodeid`
    let (_, rest) = rest.split_once("] ")?;
    let rest = match rest.strip_prefix('[') {
        Some(r) => r.split_once("] ")?.1,
        None => rest,
    };
    if let Some((outcome, described)) = subtest_word(rest) {
        // `SUBFAILED[msg] (i=1) nodeid`: the description is free text; the node id is the
        // first word after a space that runs to the end of the line.
        let nodeid = described.match_indices(' ').find_map(|(space, _)| {
            let tail = &described[space + 1..];
            (nodeid_end(tail) == Some(tail.len()) && contains_double_colon(tail.as_bytes()))
                .then_some(tail)
        })?;
        return Some(Progress::Subtest { nodeid, outcome });
    }
    let (word, nodeid) = rest.split_once(' ')?;
    let outcome = outcome_word(word)?;
    let end = nodeid_end(nodeid)?;
    Some(Progress::Finished {
        nodeid: Some(&nodeid[..end]),
        outcome,
        reason: None,
    })
}

/// Strips pytest's right-aligned progress indicator (`[ 50%]` or, in `count` style, `[3/17]`).
pub(super) fn strip_progress_suffix(line: &str) -> Option<&str> {
    let inner_start = line.bytes().rposition(|b| b == b'[')?;
    let inner = trim(line[inner_start + 1..].strip_suffix(']')?);
    let is_progress = match inner.strip_suffix('%') {
        Some(pct) => !pct.is_empty() && pct.bytes().all(|b| b.is_ascii_digit()),
        None => match inner.split_once('/') {
            Some((a, b)) => {
                !a.is_empty()
                    && !b.is_empty()
                    && a.bytes().all(|c| c.is_ascii_digit())
                    && b.bytes().all(|c| c.is_ascii_digit())
            }
            None => false,
        },
    };
    is_progress.then(|| trim_end(&line[..inner_start]))
}

/// The outcome of the line `rest` starts with if it is pytest's progress line for `nodeid`
/// in its common form, `nodeid PASSED      [ 50%]`, and how long that is (the line's end is
/// not checked).
///
/// Where `nodeid` [reads back](reads_back), [`parse_progress_line`] reads the same from that
/// line as text (this node id, this outcome, no reason). A line in any other form (with tabs
/// or Unicode spaces, a reason, xdist's prefix, ...) gives `None`, for the full parse.
#[inline(always)]
pub(super) fn plain_progress_line(rest: &[u8], nodeid: &[u8]) -> Option<(TestOutcome, usize)> {
    if rest.starts_with(b"[gw") {
        return None;
    }
    let (start, after) = rest.split_at_checked(nodeid.len())?;
    if !same_bytes(start, nodeid) {
        return None;
    }
    // Only a space ends the node id (not a tab); more may follow.
    let after = after.strip_prefix(b" ")?;
    let (outcome, after) = strip_outcome_word(&after[leading_spaces(after)..])?;
    // The padding, then the indicator, the percentage right-aligned in three places:
    // `[  5%]`, `[ 50%]`, `[100%]`.
    let padding = leading_spaces(after);
    let [b'[', hundreds, tens, ones, b'%', b']'] = after[padding..].first_chunk::<6>()? else {
        return None;
    };
    let percentage = ones.is_ascii_digit()
        && (tens.is_ascii_digit() || (*tens == b' ' && *hundreds == b' '))
        && (hundreds.is_ascii_digit() || *hundreds == b' ');
    percentage.then_some((outcome, rest.len() - after.len() + padding + 6))
}

/// How many spaces `bytes` start with: counted eight at a time, as pytest pads its progress
/// lines with runs of them.
#[inline(always)]
pub(super) fn leading_spaces(bytes: &[u8]) -> usize {
    const SPACES: u64 = u64::from_ne_bytes([b' '; 8]);
    let mut count = 0;
    while let Some(eight) = bytes[count..].first_chunk::<8>() {
        // The first byte is the least significant.
        let not_spaces = u64::from_le_bytes(*eight) ^ SPACES;
        if not_spaces != 0 {
            return count + not_spaces.trailing_zeros() as usize / 8;
        }
        count += 8;
    }
    count + bytes[count..].iter().take_while(|b| **b == b' ').count()
}

/// The length, with its `\n` or `\r\n`, of the line at the start of `rest` whose content
/// is the first `content` bytes (none of them a `\n`), if it ends right there, and
/// [`LineSplitter`] would not cut it.
#[inline(always)]
pub(super) fn whole_line(rest: &[u8], content: usize) -> Option<usize> {
    let newline = match rest.get(content..)? {
        [b'\n', ..] => content,
        [b'\r', b'\n', ..] => content + 1,
        _ => return None,
    };
    (newline <= MAX_LINE_BYTES).then_some(newline + 1)
}

/// `a == b`, inlined: for strings as short as node ids a call to `memcmp` costs more than
/// the comparison.
#[inline(always)]
pub(super) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (mut x, mut y) = (a, b);
    while let (Some((x16, x_rest)), Some((y16, y_rest))) =
        (x.split_first_chunk::<16>(), y.split_first_chunk::<16>())
    {
        if x16 != y16 {
            return false;
        }
        (x, y) = (x_rest, y_rest);
    }
    // The last bytes, as one more block of sixteen (overlapping) where the strings have one.
    match (a.last_chunk::<16>(), b.last_chunk::<16>()) {
        (Some(a16), Some(b16)) => a16 == b16,
        _ => x == y,
    }
}

/// The outcome word `bytes` start with, and the bytes after it: [`outcome_word`] for a word
/// that ends where the bytes given it end.
#[inline(always)]
pub(super) fn strip_outcome_word(bytes: &[u8]) -> Option<(TestOutcome, &[u8])> {
    // Chosen by the first four letters, then compared whole; literals, as a comparison of
    // known length is a few instructions, not a call.
    let (outcome, rest) = match bytes.first_chunk::<4>()? {
        b"PASS" => (TestOutcome::Passed, bytes.strip_prefix(b"PASSED")),
        b"FAIL" => (TestOutcome::Failed, bytes.strip_prefix(b"FAILED")),
        b"ERRO" => (TestOutcome::Error, bytes.strip_prefix(b"ERROR")),
        b"SKIP" => (TestOutcome::Skipped, bytes.strip_prefix(b"SKIPPED")),
        b"XFAI" => (TestOutcome::Xfailed, bytes.strip_prefix(b"XFAIL")),
        b"XPAS" => (TestOutcome::Xpassed, bytes.strip_prefix(b"XPASS")),
        _ => return None,
    };
    Some((outcome, rest?))
}

/// `PASSED`, `SKIPPED (reason)`, ... at the start of `rest`.
pub(super) fn leading_outcome(rest: &str) -> Option<(TestOutcome, Option<&str>)> {
    let (word, after) = match split_at_space(rest) {
        Some((w, a)) => (w, trim(a)),
        None => (rest, ""),
    };
    let outcome = outcome_word(word)?;
    if after.is_empty() {
        return Some((outcome, None));
    }
    let reason = after.strip_prefix('(')?.strip_suffix(')')?;
    Some((outcome, Some(reason)))
}

/// An outcome word at the very end of `text` (possibly glued to output before it).
pub(super) fn trailing_outcome(text: &str) -> Option<TestOutcome> {
    OUTCOME_WORDS
        .iter()
        .find(|(w, _)| text.ends_with(w))
        .map(|(_, o)| *o)
}

/// The end of the node id that starts `text`: the first space outside `[...]` parameter
/// brackets (parameter ids may contain spaces), or the end of `text`.
pub(super) fn nodeid_end(text: &str) -> Option<usize> {
    match first_space_outside_brackets(text.as_bytes()) {
        Ok(space) => (space > 0).then_some(space),
        Err(_) => (!text.is_empty()).then_some(text.len()),
    }
}

/// Where the first space outside `[...]` brackets is, or else how many brackets the bytes
/// leave open. Byte offsets are char boundaries in UTF-8 text: these bytes are ASCII, which
/// UTF-8 never reuses.
pub(super) fn first_space_outside_brackets(bytes: &[u8]) -> Result<usize, usize> {
    // The portable (word-at-a-time) search wins on strings this short: no dispatch, inlined.
    let specials = memchr::arch::all::memchr::Three::new(b' ', b'[', b']');
    let mut depth = 0usize;
    for i in specials.iter(bytes) {
        match bytes[i] {
            b'[' => depth += 1,
            b']' => depth = depth.saturating_sub(1),
            b' ' if depth == 0 => return Ok(i),
            _ => {}
        }
    }
    Err(depth)
}

/// Whether `nodeid` is a test's (with `::`) and reads back as itself from a line that names
/// it followed by a space: [`nodeid_end`] stops right after it, as no space outside brackets
/// comes before and no bracket is left open.
pub(super) fn reads_back(nodeid: &str) -> bool {
    !nodeid.is_empty()
        && first_space_outside_brackets(nodeid.as_bytes()) == Err(0)
        && contains_double_colon(nodeid.as_bytes())
}

/// Whether `bytes` contain `::` (a node id's separator). A searcher built once beats a scan
/// for `:` even on strings this short.
pub(super) fn contains_double_colon(bytes: &[u8]) -> bool {
    static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"::"));
    FINDER.find(bytes).is_some()
}

/// Whether `line`, with trailing whitespace trimmed as [`str::trim_end`] does, may end in `]`.
/// A non-ASCII last byte may be Unicode whitespace (or invalid) and so answers `true`.
pub(super) fn may_end_with_bracket(line: &[u8]) -> bool {
    match line.iter().rev().find(|b| !is_ascii_white_space(**b)) {
        Some(b']') => true,
        Some(b) => !b.is_ascii(),
        None => false,
    }
}
