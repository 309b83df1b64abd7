//! The evidence ledger against real files: chaining, every kind of damage, torn tails, and
//! concurrent writers (threads and processes).
// Helpers here unwrap like the tests do; this marks the whole file as test code for clippy.
#![cfg(test)]

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use warden_build_mission::ledger::GENESIS_HASH;
use warden_build_mission::{ChainReport, Ledger, LedgerError, Tamper};
use warden_e2e::{read_lines, write_lines};
use warden_taxonomy::{
    AttemptSummary, CapturedStream, DecisionRecord, FailureClass, RunStatus, TestCounts,
    TestOutcome, TestResult, VerifyReport,
};

fn report(target: &str) -> VerifyReport {
    let tests = vec![
        TestResult {
            nodeid: format!("{target}/test_a.py::test_ok"),
            outcome: TestOutcome::Passed,
            message: None,
            duration_ms: Some(2),
            subtests: Vec::new(),
        },
        TestResult {
            nodeid: format!("{target}/test_a.py::test_bad"),
            outcome: TestOutcome::Failed,
            message: Some("assert 1 == 2".into()),
            duration_ms: Some(3),
            subtests: Vec::new(),
        },
    ];
    let counts = TestCounts::of(&tests);
    VerifyReport {
        schema_version: VerifyReport::SCHEMA_VERSION,
        status: RunStatus::Failed,
        failure_class: Some(FailureClass::TestFailure),
        decision: DecisionRecord {
            allowed: true,
            reason: "inside runtime/tests".into(),
            matched_rules: vec!["allow-pytest".into()],
        },
        target: target.into(),
        resolved_target: Some(target.into()),
        fingerprint: Some("ab".repeat(32)),
        exit_code: Some(1),
        duration_ms: 40,
        counts,
        tests,
        timed_out_test: None,
        flaky_tests: vec![],
        stdout: CapturedStream {
            text: "lots of pytest output".into(),
            total_bytes: 21,
            truncated: false,
            sha256: "cd".repeat(32),
        },
        stderr: CapturedStream::default(),
        attempts: vec![AttemptSummary {
            exit_code: Some(1),
            duration_ms: 40,
            counts,
        }],
        retry_context: None,
        interpreter: None,
        sandbox: None,
    }
}

fn ledger_with(records: usize) -> (tempfile::TempDir, Ledger) {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::new(dir.path().join(".warden/ledger.jsonl"));
    for i in 0..records {
        ledger
            .append(&report(&format!("runtime/tests/r{i}")))
            .unwrap();
    }
    (dir, ledger)
}

/// Edits the file's lines in place, as someone with write access to it could.
fn rewrite(path: &Path, edit: impl FnOnce(&mut Vec<String>)) {
    let mut all = read_lines(path);
    edit(&mut all);
    write_lines(path, &all);
}

/// Flips one byte at `at` in line `line` (1-based) to `to`.
fn poke(path: &Path, line: usize, at: usize, to: u8) {
    rewrite(path, |all| {
        let mut bytes = all[line - 1].clone().into_bytes();
        assert_ne!(bytes[at], to, "the poke must change the byte");
        bytes[at] = to;
        all[line - 1] = String::from_utf8(bytes).unwrap();
    });
}

/// A hex digit other than `digit`.
fn another_digit(digit: u8) -> u8 {
    if digit == b'0' { b'1' } else { b'0' }
}

/// The chain must be found tampered at `line` (1-based): a record whose bytes no longer match
/// its hash.
fn assert_hash_mismatch_at(ledger: &Ledger, line: u64) {
    let report = ledger.verify().unwrap();
    assert!(
        matches!(
            report,
            ChainReport::Tampered { line: at, problem: Tamper::HashMismatch { .. }, .. } if at == line
        ),
        "expected a hash mismatch at line {line}, got {report:?}"
    );
}

fn find(line: &str, needle: &str) -> usize {
    line.find(needle)
        .unwrap_or_else(|| panic!("{needle} not in {line}"))
}

#[test]
fn a_missing_or_empty_ledger_is_intact_with_no_records() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::new(dir.path().join("ledger.jsonl"));
    let empty = ChainReport::Intact {
        records: 0,
        head: None,
    };
    assert_eq!(ledger.verify().unwrap(), empty);
    assert_eq!(ledger.entries().unwrap().count(), 0);
    File::create(ledger.path()).unwrap();
    assert_eq!(ledger.verify().unwrap(), empty);
    assert_eq!(ledger.entries().unwrap().count(), 0);
}

#[test]
fn appends_chain_records_in_sequence() {
    let (_dir, ledger) = ledger_with(5);
    let entries: Vec<_> = ledger.entries().unwrap().map(Result::unwrap).collect();
    assert_eq!(entries.len(), 5);
    let mut prev = GENESIS_HASH.to_owned();
    for (i, entry) in entries.iter().enumerate() {
        assert_eq!(entry.seq, i as u64 + 1);
        assert_eq!(entry.prev, prev);
        assert_eq!(entry.hash.len(), 64);
        assert_eq!(entry.report.target, format!("runtime/tests/r{i}"));
        // Stream text is left out; the commitment to the whole stream stays.
        assert_eq!(entry.report.stdout.text, "");
        assert_eq!(entry.report.stdout.sha256, "cd".repeat(32));
        assert_eq!(entry.report.stdout.total_bytes, 21);
        assert_eq!(entry.report.tests.len(), 2);
        prev = entry.hash.clone();
    }
    assert_eq!(
        ledger.verify().unwrap(),
        ChainReport::Intact {
            records: 5,
            head: Some(prev),
        }
    );
}

#[test]
fn the_hash_covers_the_exact_body_bytes_as_documented() {
    let (_dir, ledger) = ledger_with(2);
    for line in read_lines(ledger.path()) {
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        let keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut sorted = vec!["version", "seq", "ts_ms", "prev", "report", "hash"];
        sorted.sort();
        assert_eq!(keys, sorted);
        let hash = value["hash"].as_str().unwrap();
        let cut = find(&line, ",\"hash\":\"");
        let body = format!("{}}}", &line[..cut]);
        assert!(body.starts_with("{\"version\":1,\"seq\":"));
        assert_eq!(hex::encode(Sha256::digest(body.as_bytes())), hash);
    }
}

#[test]
fn one_changed_byte_in_the_payload_is_detected_and_named() {
    let (_dir, ledger) = ledger_with(5);
    let line = &read_lines(ledger.path())[2];
    // "runtime/tests/r2" -> "runtime/tests/s2": still valid JSON, different content.
    let at = find(line, "runtime/tests/r2") + "runtime/tests/".len();
    poke(ledger.path(), 3, at, b's');
    match ledger.verify().unwrap() {
        ChainReport::Tampered {
            line: 3,
            seq: 3,
            problem: Tamper::HashMismatch { .. },
        } => {}
        other => panic!("expected tampering at line 3, got {other:?}"),
    }
    // Readers stop at the damage rather than hand out untrustworthy records.
    let read: Vec<_> = ledger.entries().unwrap().collect();
    assert_eq!(read.len(), 3);
    assert!(read[..2].iter().all(Result::is_ok));
    assert!(matches!(read[2], Err(LedgerError::Damaged { .. })));
}

#[test]
fn a_byte_that_breaks_the_json_is_reported_as_corrupt_at_its_line() {
    let (_dir, ledger) = ledger_with(4);
    poke(ledger.path(), 2, 0, b'[');
    assert!(matches!(
        ledger.verify().unwrap(),
        ChainReport::Corrupt { line: 2, .. }
    ));
}

#[test]
fn one_changed_byte_in_the_hash_is_detected_and_named() {
    let (_dir, ledger) = ledger_with(4);
    let line = &read_lines(ledger.path())[1];
    let at = find(line, "\"hash\":\"") + "\"hash\":\"".len() + 10;
    poke(ledger.path(), 2, at, another_digit(line.as_bytes()[at]));
    match ledger.verify().unwrap() {
        ChainReport::Tampered {
            line: 2,
            seq: 2,
            problem: Tamper::HashMismatch { stored, computed },
        } => assert_ne!(stored, computed),
        other => panic!("expected tampering at line 2, got {other:?}"),
    }
}

#[test]
fn one_changed_byte_in_prev_is_detected_and_named() {
    let (_dir, ledger) = ledger_with(4);
    let line = &read_lines(ledger.path())[2];
    let at = find(line, "\"prev\":\"") + "\"prev\":\"".len() + 5;
    poke(ledger.path(), 3, at, another_digit(line.as_bytes()[at]));
    assert_hash_mismatch_at(&ledger, 3);
}

/// Rewrites a record's `prev` and re-seals it with a correct hash, as a forger would.
fn forge_prev(line: &str, new_prev: &str) -> String {
    let start = find(line, "\"prev\":\"") + "\"prev\":\"".len();
    let mut forged = format!("{}{}{}", &line[..start], new_prev, &line[start + 64..]);
    let cut = find(&forged, ",\"hash\":\"");
    let body = format!("{}}}", &forged[..cut]);
    let hash = hex::encode(Sha256::digest(body.as_bytes()));
    forged.replace_range(cut.., &format!(",\"hash\":\"{hash}\"}}"));
    forged
}

#[test]
fn a_resealed_record_with_a_forged_link_breaks_the_chain() {
    let (_dir, ledger) = ledger_with(4);
    rewrite(ledger.path(), |all| {
        all[2] = forge_prev(&all[2], &"e".repeat(64));
    });
    match ledger.verify().unwrap() {
        ChainReport::Tampered {
            line: 3,
            seq: 3,
            problem: Tamper::BrokenLink { found, .. },
        } => assert_eq!(found, "e".repeat(64)),
        other => panic!("expected a broken link at line 3, got {other:?}"),
    }
}

#[test]
fn an_injected_field_is_detected() {
    let (_dir, ledger) = ledger_with(3);
    rewrite(ledger.path(), |all| {
        all[1] = all[1].replacen("{\"version\":1,", "{\"version\":1,\"forged\":true,", 1);
    });
    assert_hash_mismatch_at(&ledger, 2);
}

#[test]
fn a_deleted_middle_record_is_detected() {
    let (_dir, ledger) = ledger_with(5);
    rewrite(ledger.path(), |all| {
        all.remove(2);
    });
    assert_eq!(
        ledger.verify().unwrap(),
        ChainReport::Tampered {
            line: 3,
            seq: 4,
            problem: Tamper::SequenceBreak {
                expected: 3,
                found: 4,
            },
        }
    );
}

#[test]
fn reordered_records_are_detected() {
    let (_dir, ledger) = ledger_with(5);
    rewrite(ledger.path(), |all| {
        all.swap(1, 3);
    });
    assert!(matches!(
        ledger.verify().unwrap(),
        ChainReport::Tampered {
            line: 2,
            seq: 4,
            problem: Tamper::SequenceBreak { .. },
        }
    ));
}

#[test]
fn a_deleted_first_record_is_detected() {
    let (_dir, ledger) = ledger_with(3);
    rewrite(ledger.path(), |all| {
        all.remove(0);
    });
    assert!(matches!(
        ledger.verify().unwrap(),
        ChainReport::Tampered {
            line: 1,
            seq: 2,
            ..
        }
    ));
}

#[test]
fn a_blank_line_is_corrupt() {
    let (_dir, ledger) = ledger_with(3);
    rewrite(ledger.path(), |all| {
        all.insert(1, String::new());
    });
    assert!(matches!(
        ledger.verify().unwrap(),
        ChainReport::Corrupt { line: 2, .. }
    ));
}

#[test]
fn a_truncated_last_line_is_torn_not_tampered_and_the_next_append_repairs_it() {
    let (_dir, ledger) = ledger_with(4);
    let len = fs::metadata(ledger.path()).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(ledger.path())
        .unwrap()
        .set_len(len - 40)
        .unwrap();
    let torn = ledger.verify().unwrap();
    match &torn {
        ChainReport::TornTail {
            records: 3,
            line: 4,
            bytes,
        } => assert!(*bytes > 100),
        other => panic!("expected a torn tail at line 4, got {other:?}"),
    }
    assert!(torn.to_string().starts_with("torn tail: line 4"), "{torn}");
    // Readers take the intact records and stop quietly at the torn line.
    assert_eq!(ledger.entries().unwrap().map(Result::unwrap).count(), 3);

    // The crash lost the record being written; the next append chains onto the last whole one.
    let third = ledger.entries().unwrap().last().unwrap().unwrap();
    let next = ledger.append(&report("runtime/tests/after-crash")).unwrap();
    assert_eq!(next.seq, 4);
    assert_eq!(next.prev, third.hash);
    assert_eq!(
        ledger.verify().unwrap(),
        ChainReport::Intact {
            records: 4,
            head: Some(next.hash),
        }
    );
}

#[test]
fn a_whole_record_missing_only_its_newline_is_still_torn() {
    let (_dir, ledger) = ledger_with(2);
    let len = fs::metadata(ledger.path()).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(ledger.path())
        .unwrap()
        .set_len(len - 1)
        .unwrap();
    assert!(matches!(
        ledger.verify().unwrap(),
        ChainReport::TornTail {
            records: 1,
            line: 2,
            ..
        }
    ));
}

#[test]
fn garbage_after_a_crash_is_torn_and_removed_by_the_next_append() {
    let (_dir, ledger) = ledger_with(2);
    let mut file = OpenOptions::new().append(true).open(ledger.path()).unwrap();
    file.write_all(&[0u8; 512]).unwrap();
    drop(file);
    assert!(matches!(
        ledger.verify().unwrap(),
        ChainReport::TornTail {
            records: 2,
            line: 3,
            bytes: 512,
        }
    ));
    ledger.append(&report("runtime/tests/x")).unwrap();
    assert!(matches!(
        ledger.verify().unwrap(),
        ChainReport::Intact { records: 3, .. }
    ));
}

#[test]
fn appending_refuses_to_chain_onto_a_damaged_last_record() {
    let (_dir, ledger) = ledger_with(3);
    let line = &read_lines(ledger.path())[2];
    let at = find(line, "runtime/tests/r2") + "runtime/tests/".len();
    poke(ledger.path(), 3, at, b's');
    let before = fs::read(ledger.path()).unwrap();
    let err = ledger.append(&report("runtime/tests/x")).unwrap_err();
    assert!(matches!(err, LedgerError::DamagedTail { .. }), "{err}");
    assert!(err.to_string().contains("warden ledger verify"), "{err}");
    assert_eq!(fs::read(ledger.path()).unwrap(), before, "nothing written");
}

#[test]
fn a_held_lock_makes_append_give_up_at_its_deadline() {
    let (_dir, ledger) = ledger_with(1);
    let holder = File::open(ledger.path()).unwrap();
    holder.lock().unwrap();
    let impatient = ledger
        .clone()
        .with_lock_deadline(Duration::from_millis(100));
    let started = Instant::now();
    let err = impatient.append(&report("runtime/tests/x")).unwrap_err();
    assert!(matches!(err, LedgerError::LockTimeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    holder.unlock().unwrap();
    impatient.append(&report("runtime/tests/x")).unwrap();
    assert!(matches!(
        ledger.verify().unwrap(),
        ChainReport::Intact { records: 2, .. }
    ));
}

#[test]
fn history_streams_fingerprints_and_outcomes() {
    let (_dir, ledger) = ledger_with(3);
    let runs: Vec<_> = ledger.history().unwrap().map(Result::unwrap).collect();
    assert_eq!(runs.len(), 3);
    for run in runs {
        assert_eq!(run.fingerprint, Some("ab".repeat(32)));
        assert_eq!(run.outcomes.len(), 2);
        assert!(run.outcomes.iter().any(|(_, o)| *o == TestOutcome::Failed));
    }
}

/// Checks that `ledger` holds exactly `writers * per_writer` intact records and that every
/// writer's records are all there, in its own order.
fn assert_all_present(ledger: &Ledger, writers: usize, per_writer: usize) {
    let total = (writers * per_writer) as u64;
    match ledger.verify().unwrap() {
        ChainReport::Intact { records, .. } => assert_eq!(records, total),
        other => panic!("expected an intact ledger, got {other}"),
    }
    let targets: Vec<String> = ledger
        .entries()
        .unwrap()
        .map(|e| e.unwrap().report.target)
        .collect();
    for writer in 0..writers {
        let mine: Vec<&String> = targets
            .iter()
            .filter(|t| t.starts_with(&format!("w{writer}/")))
            .collect();
        let expected: Vec<String> = (0..per_writer).map(|i| format!("w{writer}/{i}")).collect();
        assert_eq!(mine, expected.iter().collect::<Vec<_>>());
    }
}

#[test]
fn two_threads_appending_at_once_never_interleave() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    const PER_WRITER: usize = 150;
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let ledger = Ledger::new(&path);
            thread::spawn(move || {
                for i in 0..PER_WRITER {
                    ledger.append(&report(&format!("w{w}/{i}"))).unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    assert_all_present(&Ledger::new(&path), 2, PER_WRITER);
}

const CHILD_LEDGER: &str = "WARDEN_TEST_LEDGER_CHILD";
const CHILD_WRITER: &str = "WARDEN_TEST_LEDGER_WRITER";
const PROCESS_RECORDS: usize = 100;

/// Two processes append to one ledger at once. The test binary re-runs itself as each writer.
#[test]
fn two_processes_appending_at_once_never_interleave() {
    if let (Some(path), Some(writer)) = (
        std::env::var_os(CHILD_LEDGER),
        std::env::var(CHILD_WRITER).ok(),
    ) {
        let ledger = Ledger::new(PathBuf::from(path));
        for i in 0..PROCESS_RECORDS {
            ledger.append(&report(&format!("w{writer}/{i}"))).unwrap();
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    let exe = std::env::current_exe().unwrap();
    let mut children: Vec<_> = (0..2)
        .map(|w| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "two_processes_appending_at_once_never_interleave",
                    "--test-threads=1",
                ])
                .env(CHILD_LEDGER, &path)
                .env(CHILD_WRITER, w.to_string())
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    for child in &mut children {
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("a writer process did not finish in time");
            }
            thread::sleep(Duration::from_millis(10));
        };
        assert!(status.success(), "writer failed: {status}");
    }
    assert_all_present(&Ledger::new(&path), 2, PROCESS_RECORDS);
}

#[test]
fn a_mission_id_is_recorded_hashed_and_optional() {
    let (_dir, ledger) = ledger_with(1);
    let with = ledger
        .append_with(&report("runtime/tests/m"), Some("mission-7"))
        .unwrap();
    assert_eq!(with.mission.as_deref(), Some("mission-7"));
    let all = read_lines(ledger.path());
    // A record without a mission has no `mission` key at all: old records stay as they were.
    assert!(!all[0].contains("\"mission\""), "{}", all[0]);
    let at = find(&all[1], "\"prev\":\"");
    let mission_at = find(&all[1], ",\"mission\":\"mission-7\",\"report\":");
    assert!(mission_at > at, "the mission follows prev: {}", all[1]);
    let entries: Vec<_> = ledger.entries().unwrap().map(Result::unwrap).collect();
    assert_eq!(entries[0].mission, None);
    assert_eq!(entries[1], with);
    assert!(ledger.verify().unwrap().is_intact());

    // Changing the mission id is tampering like any other byte.
    let digit = find(&all[1], "mission-7") + "mission-".len();
    poke(ledger.path(), 2, digit, b'8');
    assert_hash_mismatch_at(&ledger, 2);
}

#[test]
fn mission_spent_sums_the_attempts_of_that_mission_only() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::new(dir.path().join("ledger.jsonl"));
    assert_eq!(ledger.mission_spent("m").unwrap(), Duration::ZERO);
    let mut two_attempts = report("runtime/tests");
    two_attempts.attempts.push(AttemptSummary {
        exit_code: Some(0),
        duration_ms: 1_500,
        counts: TestCounts::default(),
    });
    let mut denied = report("runtime/tests");
    denied.attempts.clear();
    ledger.append_with(&two_attempts, Some("m")).unwrap(); // 40 + 1500
    ledger.append_with(&report("x"), Some("other")).unwrap(); // 40, another mission
    ledger.append(&report("x")).unwrap(); // 40, no mission
    ledger.append_with(&denied, Some("m")).unwrap(); // nothing ran
    ledger.append_with(&report("y"), Some("m")).unwrap(); // 40
    assert_eq!(
        ledger.mission_spent("m").unwrap(),
        Duration::from_millis(1_580)
    );
    assert_eq!(
        ledger.mission_spent("other").unwrap(),
        Duration::from_millis(40)
    );
    assert_eq!(ledger.mission_spent("M").unwrap(), Duration::ZERO);

    // A damaged ledger cannot vouch for what was spent.
    poke(
        ledger.path(),
        3,
        find(&read_lines(ledger.path())[2], "runtime") + 1,
        b'X',
    );
    assert!(matches!(
        ledger.mission_spent("m"),
        Err(LedgerError::Damaged { .. })
    ));
}

#[test]
fn lazy_history_opens_the_ledger_only_when_read() {
    let (_dir, ledger) = ledger_with(2);
    let history = ledger.lazy_history();
    // Not opened yet: an append does not wait for a lock.
    let holder = history.clone();
    ledger
        .clone()
        .with_lock_deadline(Duration::from_millis(200))
        .append(&report("runtime/tests/late"))
        .unwrap();
    let runs: Vec<_> = history.into_iter().collect();
    assert_eq!(runs.len(), 3);
    assert!(holder.take_error().is_none());

    // Damage ends the stream early, and the error is kept for the caller.
    poke(
        ledger.path(),
        2,
        find(&read_lines(ledger.path())[1], "runtime") + 1,
        b'X',
    );
    let history = ledger.lazy_history();
    let runs: Vec<_> = history.clone().into_iter().collect();
    assert_eq!(runs.len(), 1);
    assert!(matches!(
        history.take_error(),
        Some(LedgerError::Damaged { .. })
    ));
    assert!(history.take_error().is_none());
}

#[test]
fn a_ledger_beneath_a_handle_makes_its_directories_and_never_follows_a_link() {
    let dir = tempfile::tempdir().unwrap();
    let root = warden_rootfs::Dir::open(dir.path()).unwrap();
    for rel in [
        "evidence/deeper/l.jsonl",
        ".warden/ledger.jsonl",
        "top.jsonl",
    ] {
        let ledger = Ledger::beneath(root.clone(), rel);
        ledger.append(&report("runtime/tests")).unwrap();
        assert_eq!(ledger.entries().unwrap().count(), 1, "{rel}");
        assert_eq!(ledger.path(), dir.path().join(rel));
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join(".warden/.gitignore")).unwrap(),
        "*\n"
    );
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("linked")).unwrap();
    let refused = Ledger::beneath(root, "linked/l.jsonl").append(&report("runtime/tests"));
    assert!(
        matches!(refused, Err(LedgerError::Refused { .. })),
        "{refused:?}"
    );
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
}

#[test]
fn an_endless_last_line_is_refused_not_read_to_its_start_or_cut_off() {
    let (_dir, ledger) = ledger_with(1);
    let mut file = fs::OpenOptions::new()
        .append(true)
        .open(ledger.path())
        .unwrap();
    std::io::Write::write_all(&mut file, &vec![b'x'; 17 * 1024 * 1024]).unwrap();
    let len = fs::metadata(ledger.path()).unwrap().len();
    let refused = ledger.append(&report("runtime/tests")).unwrap_err();
    assert!(
        refused.to_string().contains("longer than any record"),
        "{refused}"
    );
    assert_eq!(
        fs::metadata(ledger.path()).unwrap().len(),
        len,
        "the line was cut off"
    );
}
