//! Outcome counts from both sides: pytest's own final line ("1 failed, 1376 passed, 8 skipped,
//! 21194 subtests passed in 40.98s") and `warden verify --json`'s `counts` object, and the rule
//! that compares them.

use std::collections::BTreeMap;
use std::fmt;

/// Outcome counts by name. Names are Warden's `counts` keys (`passed`, `errors`,
/// `subtests_passed`, ...); pytest's words are mapped onto them by [`from_pytest_line`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Counts(pub(crate) BTreeMap<String, u64>);

/// Outcomes in the order pytest prints them, then the passing subtests.
const ORDER: [&str; 8] = [
    "failed",
    "passed",
    "skipped",
    "deselected",
    "xfailed",
    "xpassed",
    "errors",
    "subtests_passed",
];

/// Warden's breakdowns: how many of an outcome's count are subtests.
const BREAKDOWNS: [(&str, &str); 3] = [
    ("failed", "subtests_failed"),
    ("skipped", "subtests_skipped"),
    ("xfailed", "subtests_xfailed"),
];

/// The outcomes compared: every outcome pytest counts on its final line, except
/// `deselected` (not an outcome of a test that ran; Warden's contract has no such count).
pub(crate) const COMPARED: [&str; 7] = [
    "passed",
    "failed",
    "errors",
    "skipped",
    "xfailed",
    "xpassed",
    "subtests_passed",
];

impl Counts {
    pub(crate) fn get(&self, name: &str) -> u64 {
        self.0.get(name).copied().unwrap_or(0)
    }

    /// The compared outcomes on which `self` (pytest's line) and `warden` (Warden's counts)
    /// differ, as `(outcome, pytest's, Warden's)`. Warden's counts are pytest's (failing,
    /// skipped and xfailed subtests in `failed`, `skipped` and `xfailed`, as on pytest's
    /// line), with how many of them are subtests in `subtests_failed`, ... besides.
    pub(crate) fn differences(&self, warden: &Counts) -> Vec<(&'static str, u64, u64)> {
        COMPARED
            .iter()
            .filter_map(|&key| {
                let (bare, ours) = (self.get(key), warden.get(key));
                (bare != ours).then_some((key, bare, ours))
            })
            .collect()
    }
}

impl fmt::Display for Counts {
    /// pytest's style, `1 failed, 1376 passed, 21194 subtests passed`, zero counts left out;
    /// Warden's breakdowns in brackets: `3 failed (2 subtests)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let is_breakdown = |k: &str| BREAKDOWNS.iter().any(|(_, b)| *b == k);
        let known = ORDER.iter().map(|k| (*k, self.get(k)));
        let others = self
            .0
            .iter()
            .filter(|(k, _)| !ORDER.contains(&k.as_str()) && !is_breakdown(k))
            .map(|(k, v)| (k.as_str(), *v));
        let parts: Vec<String> = known
            .chain(others)
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| {
                let mut part = format!("{n} {}", k.replace('_', " "));
                if let Some((_, b)) = BREAKDOWNS.iter().find(|(o, _)| *o == k)
                    && self.get(b) > 0
                {
                    part.push_str(&format!(" ({} subtests)", self.get(b)));
                }
                part
            })
            .collect();
        if parts.is_empty() {
            f.write_str("no tests ran")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// The counts on pytest's final summary line (the last line that reads like one), or `None`
/// when there is none (pytest crashed or was killed). Warnings are not outcomes and are left
/// out; an unknown word is kept under its own name, so that it shows rather than vanishes.
pub(crate) fn from_pytest_line(stdout: &str) -> Option<Counts> {
    stdout.lines().rev().find_map(parse_line)
}

fn parse_line(line: &str) -> Option<Counts> {
    let inner = line.trim().trim_matches('=').trim();
    // "<parts> in 1.23s" or "<parts> in 78.70s (0:01:18)".
    let (parts, time) = inner.rsplit_once(" in ")?;
    let seconds = time.split_whitespace().next()?.strip_suffix('s')?;
    seconds.parse::<f64>().ok()?;
    if parts == "no tests ran" {
        return Some(Counts::default());
    }
    let mut counts = BTreeMap::new();
    for part in parts.split(", ") {
        let (number, word) = part.split_once(' ')?;
        let number: u64 = number.parse().ok()?;
        let key = match word {
            "warning" | "warnings" => continue,
            "error" | "errors" => "errors".to_owned(),
            other => other.replace(' ', "_"),
        };
        *counts.entry(key).or_insert(0) += number;
    }
    Some(Counts(counts))
}

/// The `counts` object of a `warden verify --json` document (every key Warden reports,
/// including extensions).
pub(crate) fn from_warden_json(document: &serde_json::Value) -> Option<Counts> {
    let object = document.get("counts")?.as_object()?;
    let mut counts = BTreeMap::new();
    for (key, value) in object {
        counts.insert(key.clone(), value.as_u64()?);
    }
    Some(Counts(counts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(pairs: &[(&str, u64)]) -> Counts {
        Counts(pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect())
    }

    #[test]
    fn pytest_final_lines_quiet_decorated_and_with_subtests() {
        let out = "....\n765 passed, 21194 subtests passed in 78.70s (0:01:18)\n";
        assert_eq!(
            from_pytest_line(out).unwrap(),
            counts(&[("passed", 765), ("subtests_passed", 21194)])
        );
        let out = "x\n=== 1 failed, 1376 passed, 8 skipped, 1 xfailed, 3 warnings in 40.98s ===\n";
        assert_eq!(
            from_pytest_line(out).unwrap(),
            counts(&[
                ("failed", 1),
                ("passed", 1376),
                ("skipped", 8),
                ("xfailed", 1)
            ])
        );
        let out = "= 2434 passed, 24 skipped, 31000 deselected, 1 xfailed, 1 error in 27.48s =\n";
        let parsed = from_pytest_line(out).unwrap();
        assert_eq!(parsed.get("deselected"), 31000);
        assert_eq!(parsed.get("errors"), 1);
        assert_eq!(
            parsed.to_string(),
            "2434 passed, 24 skipped, 31000 deselected, 1 xfailed, 1 errors"
        );
        assert_eq!(
            from_pytest_line("==== no tests ran in 0.01s ====\n").unwrap(),
            Counts::default()
        );
        // A line a test printed that only looks like part of one is not taken; nor is a
        // killed run's output.
        assert_eq!(from_pytest_line("tests/a.py::t PASSED [ 50%]\n"), None);
        assert_eq!(from_pytest_line("we met in 1999\n"), None);
    }

    #[test]
    fn subtest_counts_are_compared_and_their_breakdown_is_not() {
        // pytest: "2 failed, 1 passed, 1 skipped, 1 subtests passed"; Warden says which of
        // them are subtests.
        let warden = counts(&[
            ("failed", 2),
            ("passed", 1),
            ("skipped", 1),
            ("subtests_passed", 1),
            ("subtests_failed", 1),
            ("subtests_skipped", 1),
        ]);
        let bare = counts(&[
            ("failed", 2),
            ("passed", 1),
            ("skipped", 1),
            ("subtests_passed", 1),
        ]);
        assert_eq!(bare.differences(&warden), []);
        assert_eq!(
            warden.to_string(),
            "2 failed (1 subtests), 1 passed, 1 skipped (1 subtests), 1 subtests passed"
        );
        let fewer = counts(&[("failed", 2), ("passed", 1), ("skipped", 1)]);
        assert_eq!(
            fewer.differences(&warden),
            [("subtests_passed", 0, 1)],
            "a subtest count is compared"
        );
    }

    #[test]
    fn deselected_is_shown_but_not_compared() {
        let bare = counts(&[("passed", 3), ("deselected", 9)]);
        assert_eq!(bare.differences(&counts(&[("passed", 3)])), []);
        assert_eq!(
            bare.differences(&counts(&[("passed", 12)])),
            [("passed", 3, 12)]
        );
    }

    #[test]
    fn warden_counts_from_json() {
        let doc = serde_json::json!({"counts": {"passed": 3, "failed": 0, "subtests_passed": 7}});
        let parsed = from_warden_json(&doc).unwrap();
        assert_eq!(parsed.get("subtests_passed"), 7);
        assert_eq!(parsed.to_string(), "3 passed, 7 subtests passed");
        assert_eq!(from_warden_json(&serde_json::json!({"error": "x"})), None);
    }
}
