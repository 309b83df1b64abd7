//! The fast paths against the full parse.

use super::*;

/// Everything a parser reports, to compare two parsers.
fn report(p: &LineParser) -> String {
    format!(
        "{:?}",
        (
            p.tests(),
            p.tests_omitted(),
            p.summary(),
            p.running_test(),
            p.collected(),
            (p.finished_count(), p.failure_count(), p.session_started()),
            p.collection_errors(),
            p.interruption(),
            p.internal_error(),
        )
    )
}

/// Parses `stream` in chunks of `chunk` bytes with and without the fast paths, and checks
/// that both report the same, as far as it goes after every chunk, in full at the end.
fn assert_fast_paths_agree(stream: &[u8], chunk: usize) {
    let mut fast = LineParser::new();
    let mut full = LineParser::new();
    full.state.fast_paths = false;
    let so_far = |p: &LineParser| {
        let last = p.tests().last().map(|t| (&t.nodeid, t.outcome, &t.message));
        let counts = (p.tests().len(), p.finished_count(), p.failure_count());
        format!("{:?}", (p.running_test(), counts, last))
    };
    for (i, piece) in stream.chunks(chunk).enumerate() {
        fast.feed(piece);
        full.feed(piece);
        assert_eq!(
            so_far(&fast),
            so_far(&full),
            "after chunk {i} of {chunk} bytes"
        );
    }
    fast.finish();
    full.finish();
    assert_eq!(report(&fast), report(&full), "at the end");
}

/// Node ids a line reads back wrongly if the fast path gets them wrong: spaces, `::`,
/// outcome words, `%` and brackets (balanced or not) in parameters, tabs, non-ASCII.
const TRICKY_IDS: [&str; 12] = [
    "t/test_a.py::test_plain",
    "t/test_a.py::test_p[a b]",
    "t/test_a.py::test_p[c::d]",
    "t/test_a.py::test_p[PASSED x]",
    "t/test_a.py::test_p[x PASSED]",
    "t/test_a.py::test_p[e[f]]",
    "t/test_a.py::test_p[open",
    "t/test_a.py::test_p[ 50%]",
    "t/test_a.py::TestC::test_n[\tx]",
    "t/test_a.py::test_é[ü ß]",
    "[gw0]::test_odd",
    "t/test_a.py",
];

/// How many forms of result line [`result_line`] knows.
const KINDS: usize = 26;

/// One result line about `id`, in one of many forms (`kind`), most of them not the plain
/// form the fast paths take.
fn result_line(kind: usize, id: &str, word: &str, pad: usize, pct: u32) -> Vec<u8> {
    let spaces = " ".repeat(pad);
    let line = match kind % KINDS {
        0..=5 => format!("{id} {word}{spaces}[{pct:>3}%]"),
        6 => format!("{id} {word}{spaces}[{pct:>3}%]\r"),
        7 => format!("{id}\t{word} [{pct:>3}%]"),
        8 => format!("{id}  {word} (why (not)) [{pct:>3}%]"),
        9 => format!("{id} {word} [{pct}/17]"),
        10 => format!("[gw1] [{pct:>3}%] {word} {id}"),
        11 => format!("{id} {word}{spaces}[{pct:>3}%]  "),
        12 => format!("{id} "),
        13 => format!("{id} {word}\u{2003}[{pct:>3}%]"),
        14 => format!("output {word}{spaces}[{pct:>3}%]"),
        15 => format!("{id} {word}[{pct:>3}%]"),
        16 => format!("{id}{word} [{pct:>3}%]"),
        17 => format!("{id} {word}    [{pct:>4}%]"),
        18 => format!("{id} {word} [{pct:>3}% ]"),
        19 => format!("{id} {word}{spaces} [{pct:>3}%]x"),
        20 => format!("{id} {word}{}[ 50%]", " ".repeat(MAX_LINE_BYTES)),
        21 => {
            let mut bytes = format!("{id} {word} [{pct:>3}%]").into_bytes();
            bytes.insert(id.len() / 2, 0xff);
            return bytes;
        }
        22 => format!("{id} {word} PASSED{spaces}[{pct:>3}%]"),
        23 => format!("{id} {word}{spaces}[{pct:>2}%]"),
        24 => format!("{id} {word}{spaces}[{pct:>3}%]\rX"),
        _ => {
            // Three places, one of them blank: ` 15`, `0 6`, `01 `.
            let mut odd = format!("{pct:03}").into_bytes();
            odd[pct as usize % 3] = b' ';
            format!("{id} {word}{spaces}[{}%]", String::from_utf8_lossy(&odd))
        }
    };
    line.into_bytes()
}

/// A short summary line about `id`, plain (`PASSED id`) or not.
fn summary_line(kind: usize, id: &str, word: &str) -> Vec<u8> {
    match kind % 9 {
        0..=3 => format!("{word} {id}"),
        7 => format!("{word} {id}\rX"),
        4 => format!("{word} {id} - AssertionError: no"),
        5 => format!("{word} {id}\r"),
        6 => format!("{word}  {id}"),
        _ => format!("{word} {id} "),
    }
    .into_bytes()
}

/// A run in pytest's order, `rounds` times over (so later rounds name recorded tests):
/// progress lines, the short summary, the counts; `kinds` says the form of each line.
fn run_stream(ids: &[&str], kinds: &[(usize, usize, usize, u32)], rounds: usize) -> Vec<u8> {
    let mut kinds = kinds.iter().cycle();
    let mut out = Vec::new();
    for _ in 0..rounds {
        out.extend_from_slice(b"==== test session starts ====\ncollected 3 items\n\n");
        for id in ids {
            let &(kind, word, pad, pct) = kinds.next().unwrap();
            out.extend(result_line(kind, id, OUTCOME_WORDS[word].0, pad, pct));
            out.push(b'\n');
        }
        out.extend_from_slice(b"==== short test summary info ====\n");
        for id in ids {
            let &(kind, word, _, _) = kinds.next().unwrap();
            out.extend(summary_line(kind, id, OUTCOME_WORDS[word].0));
            out.push(b'\n');
        }
        out.extend_from_slice(b"==== 1 failed, 2 passed in 0.10s ====\n");
    }
    out
}

#[test]
fn the_fast_paths_take_plain_lines_of_ids_that_read_back() {
    for id in TRICKY_IDS {
        for (word, outcome) in OUTCOME_WORDS {
            let line = format!("{id} {word}{}[  5%]", " ".repeat(13));
            let fast = plain_progress_line(format!("{line}\nmore").as_bytes(), id.as_bytes());
            let taken = (!id.starts_with("[gw")).then_some((outcome, line.len()));
            assert_eq!(fast, taken, "{line}");
            if reads_back(id) && !id.starts_with("[gw") {
                assert_eq!(
                    parse_progress_line(&line),
                    Some(Progress::Finished {
                        nodeid: Some(id),
                        outcome,
                        reason: None
                    }),
                    "{line}"
                );
            }
        }
    }
    let reading_back: Vec<bool> = TRICKY_IDS.iter().map(|id| reads_back(id)).collect();
    // Not: a bracket left open, no `::`.
    assert_eq!(
        reading_back,
        [
            true, true, true, true, true, true, false, true, true, true, true, false
        ]
    );
    for (word, outcome) in OUTCOME_WORDS {
        assert_eq!(
            strip_outcome_word(format!("{word} x").as_bytes()),
            Some((outcome, &b" x"[..]))
        );
        assert_eq!(strip_outcome_word(&word.as_bytes()[1..]), None);
        assert_eq!(strip_outcome_word(&word.as_bytes()[..4]), None);
    }
}

#[test]
fn the_fast_paths_agree_with_the_full_parse_on_tricky_lines() {
    // Every form of line with every outcome word for every tricky node id, as the test
    // expected next (recorded by the short summary, then the one after the test before),
    // in one piece and cut every few bytes.
    for id in TRICKY_IDS {
        for kind in 0..KINDS {
            for (word, _) in OUTCOME_WORDS {
                let mut stream = format!(
                    "=== short test summary info ===\nPASSED a.py::before\nPASSED {id}\n\
                         PASSED a.py::before\n=== test session starts ===\n"
                )
                .into_bytes();
                stream.extend(result_line(kind, id, word, kind, 7 * kind as u32));
                stream.extend(b"\n=== short test summary info ===\nPASSED a.py::before\n");
                stream.extend(summary_line(kind, id, word));
                stream.push(b'\n');
                for chunk in [stream.len(), 7] {
                    assert_fast_paths_agree(&stream, chunk);
                }
            }
        }
    }
}

#[test]
fn plain_lines_about_the_next_test_are_taken_whole() {
    let mut p = LineParser::new();
    p.feed(b"=== test session starts ===\na.py::t1 PASSED [ 50%]\na.py::t2 PASSED [100%]\n");
    p.feed(b"=== short test summary info ===\nPASSED a.py::t1\n");
    assert_eq!(p.state.take_line(b"XPASS a.py::t2\r\nPASSED"), Some(16));
    p.feed(b"=== test session starts ===\na.py::t1 PASSED [ 50%]\n");
    assert_eq!(p.state.take_line(b"a.py::t2 PASSED [100%]"), None);
    assert_eq!(p.state.take_line(b"a.py::t2 FAILED  [100%] \n"), None);
    assert_eq!(p.state.take_line(b"a.py::t2 FAILED  [100%]\n\n"), Some(24));
    assert_eq!(
        (p.tests()[1].outcome, p.finished_count(), p.failure_count()),
        (TestOutcome::Failed, 4, 1)
    );
    // Not a line the splitter would cut.
    let mut p = LineParser::new();
    p.feed(b"=== test session starts ===\na.py::t1 PASSED [ 50%]\na.py::t2 PASSED [100%]\n");
    p.feed(b"=== short test summary info ===\nPASSED a.py::t1\n");
    p.feed(b"=== test session starts ===\n");
    let long = format!("a.py::t2 PASSED{}[100%]\n", " ".repeat(MAX_LINE_BYTES));
    assert_eq!(p.state.take_line(long.as_bytes()), None);
}

proptest! {
    #[test]
    fn the_fast_paths_agree_with_the_full_parse(
        ids in prop::collection::vec(
            prop_oneof![
                4 => "[a-z]{1,3}(/[a-z]{1,3})?\\.py::[A-Za-z_]{1,5}(::[a-z]{1,3})?",
                4 => "[a-z]{1,3}\\.py::t\\[[a-z0-9 :\\[\\]PASEDX%\t\u{e9}-]{0,8}\\]",
                1 => "[a-z]{1,3}\\.py::t[a-z :\\[\\]PASED\t]{0,8}",
                1 => prop::sample::select(TRICKY_IDS.to_vec()).prop_map(str::to_owned),
            ],
            1..6,
        ),
        kinds in prop::collection::vec((0usize..32, 0usize..6, 0usize..30, 0u32..=100), 1..40),
        rounds in 1usize..4,
        chunk in 1usize..300,
    ) {
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        // Mostly plain lines, which the fast paths take.
        let kinds: Vec<_> = kinds
            .into_iter()
            .map(|(kind, word, pad, pct)| (if kind >= KINDS { 0 } else { kind }, word, pad, pct))
            .collect();
        assert_fast_paths_agree(&run_stream(&ids, &kinds, rounds), chunk);
    }
}
