//! Through the binary, with real pytest: what a test prints or writes as its report cannot
//! grow Warden past a fixed memory bound, an early exit is never a pass, and results from
//! outside the authorised scope make the verification a policy violation.

use warden_e2e::{Fixture, verify_json};

/// Warden's own peak RSS bound, whatever the tests do (issue 10).
const RSS_BOUND_KIB: u64 = 64 * 1024;

/// Fake progress lines with distinct long node ids, written straight to pytest's real stdout.
const ID_FLOOD: &str = r#"import os

def test_floods_distinct_ids(capfd):
    pad = "x" * 300
    with capfd.disabled():
        for block in range(300):
            lines = "".join(
                f"runtime/tests/test_flood.py::test_fake_{block}_{i}_{pad} PASSED [ 50%]\n"
                for i in range(1000)
            )
            os.write(1, lines.encode())
"#;

#[test]
fn a_flood_of_distinct_node_ids_keeps_warden_small() {
    let fixture = Fixture::empty();
    fixture.write("runtime/tests/test_flood.py", ID_FLOOD);
    let out = verify_json(fixture.root(), &["runtime/tests", "--retries", "0"]);
    let peak = out.peak_rss_kib.expect("VmHWM of the warden process");
    println!(
        "id flood (300 000 distinct ids of ~350 bytes, ~110 MB) through the binary: warden's VmHWM {peak} KiB ({:.1} MiB), {} ms",
        peak as f64 / 1024.0,
        out.elapsed.as_millis()
    );
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    let doc = out.json();
    assert_eq!(doc["status"], "passed");
    // The one real test, from the report; none of the printed ones.
    let tests = doc["tests"].as_array().expect("tests");
    assert_eq!(tests.len(), 1, "{tests:?}");
    assert_eq!(
        tests[0]["nodeid"],
        "runtime/tests/test_flood.py::test_floods_distinct_ids"
    );
    assert!(peak < RSS_BOUND_KIB, "warden's peak RSS was {peak} KiB");
}

/// Replaces the results records, at the very end, with ~60 MiB of passing tests whose node ids
/// are 8 KiB long.
const FORGED_REPORT: &str = r#"import os

def pytest_unconfigure(config):
    path = open("/proc/self/cmdline", "rb").read().split(b"\0")[4]
    deep = "a/" * 4000
    with open(path, "w") as f:
        for i in range(7500):
            f.write('{"id": "%stest_%d.py::test", "when": "call", "outcome": "passed"}\n' % (deep, i))
        f.write('{"end": 0}\n')
"#;

#[test]
fn a_forged_huge_report_is_read_in_bounded_time_and_memory() {
    let fixture = Fixture::empty();
    fixture.write("runtime/tests/conftest.py", FORGED_REPORT);
    fixture.write("runtime/tests/test_ok.py", "def test_ok():\n    pass\n");
    let out = verify_json(fixture.root(), &["runtime/tests", "--retries", "0"]);
    let peak = out.peak_rss_kib.expect("VmHWM of the warden process");
    let doc = out.json();
    let run_ms = doc["attempts"][0]["duration_ms"].as_u64().unwrap_or(0);
    println!(
        "forged ~60 MiB of records with 8 KiB node ids through the binary: warden's VmHWM {peak} KiB ({:.1} MiB), {} ms in all, the attempt (run and post-run parsing) {run_ms} ms",
        peak as f64 / 1024.0,
        out.elapsed.as_millis(),
    );
    assert!(peak < RSS_BOUND_KIB, "warden's peak RSS was {peak} KiB");
    // In-process forgery of the report is out of reach (docs/threat-model.md), but what it
    // can make Warden keep is bounded.
    assert!(doc["tests"].as_array().expect("tests").len() < 7500);
}

/// A conftest inside the scope that, while pytest collects, links `runtime/tests/elsewhere` to
/// a directory outside the scope, and removes the link when the session ends (unless told to
/// leave it).
fn linking_conftest(outside: &std::path::Path, remove: bool) -> String {
    format!(
        "import os, pathlib\n\
         LINK = pathlib.Path(__file__).with_name('elsewhere')\n\
         if not LINK.is_symlink():\n    os.symlink({outside:?}, LINK)\n\n\
         def pytest_sessionfinish(session, exitstatus):\n    if {remove}:\n        os.remove(LINK)\n",
        outside = outside.display().to_string(),
        remove = if remove { "True" } else { "False" },
    )
}

#[allow(clippy::expect_used)] // a failed step is a failed test
fn assert_scope_violation(out: &warden_e2e::Run, fixture: &Fixture, expected: &str) {
    assert_eq!(out.code, Some(3), "{}{}", out.stdout, out.stderr);
    let doc = out.json();
    assert_eq!(doc["status"], "denied");
    assert_eq!(doc["failure_class"], "policy_denied");
    assert_eq!(doc["decision"]["allowed"], false);
    let reason = doc["decision"]["reason"].as_str().expect("a reason");
    assert!(reason.contains(expected), "{reason}");
    // The tests did run, and what they reported is kept as evidence.
    assert_eq!(doc["attempts"].as_array().map(Vec::len), Some(1));
    assert!(
        doc["tests"]
            .as_array()
            .expect("tests")
            .iter()
            .any(|t| t["nodeid"] == "runtime/tests/elsewhere/test_outside.py::test_out_of_scope"),
        "{}",
        doc["tests"]
    );
    // And the ledger records the violation.
    let ledger = std::fs::read_to_string(fixture.ledger()).expect("the ledger");
    let last = ledger.lines().last().expect("a record");
    assert!(last.contains("policy_denied"), "{last}");
}

#[test]
fn a_link_out_of_the_scope_made_during_the_run_and_removed_is_a_policy_violation() {
    // The example of issue 10.
    let fixture = Fixture::empty();
    let outside = fixture.outside().join("suite");
    std::fs::create_dir_all(&outside).expect("outside suite");
    std::fs::write(
        outside.join("test_outside.py"),
        "def test_out_of_scope():\n    pass\n",
    )
    .expect("outside test");
    // The sandbox would keep pytest from reading the outside suite at all; let it, so the
    // post-run scope check is what catches the link.
    fixture.allow_sandbox("read", &outside);
    fixture.write(
        "runtime/tests/conftest.py",
        &linking_conftest(&outside, true),
    );
    fixture.write("runtime/tests/test_in.py", "def test_in():\n    pass\n");
    let out = verify_json(fixture.root(), &["runtime/tests"]);
    assert!(
        !fixture.root().join("runtime/tests/elsewhere").exists(),
        "the link is gone after the run"
    );
    assert_scope_violation(
        &out,
        &fixture,
        "`runtime/tests/elsewhere/test_outside.py` is gone after the run",
    );
}

#[test]
fn a_link_out_of_the_scope_left_in_place_is_a_policy_violation() {
    let fixture = Fixture::empty();
    let outside = fixture.outside().join("suite");
    std::fs::create_dir_all(&outside).expect("outside suite");
    std::fs::write(
        outside.join("test_outside.py"),
        "def test_out_of_scope():\n    pass\n",
    )
    .expect("outside test");
    // The sandbox would keep pytest from reading the outside suite at all; let it, so the
    // post-run scope check is what catches the link.
    fixture.allow_sandbox("read", &outside);
    fixture.write(
        "runtime/tests/conftest.py",
        &linking_conftest(&outside, false),
    );
    fixture.write("runtime/tests/test_in.py", "def test_in():\n    pass\n");
    let out = verify_json(fixture.root(), &["runtime/tests"]);
    assert_scope_violation(
        &out,
        &fixture,
        "`runtime/tests/elsewhere/test_outside.py` is reached through a link",
    );
}

#[test]
fn a_link_that_stays_inside_the_scope_still_passes() {
    let fixture = Fixture::empty();
    fixture.write(
        "runtime/tests/real/test_real.py",
        "def test_real():\n    pass\n",
    );
    fixture.symlink("runtime/tests/alias", "real");
    let out = verify_json(fixture.root(), &["runtime/tests", "--retries", "0"]);
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    let doc = out.json();
    assert_eq!(doc["status"], "passed");
    assert_eq!(doc["decision"]["allowed"], true);
}
