//! The code under test tampers with the files Warden reads back after the run (the results
//! records, the scratch directory) or with the bytecode cache before it: Warden never waits on
//! a FIFO, never follows a link out, never deletes outside, and says so in the evidence.

// In test helpers a failed step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use support::{Project, RECORDS_PATH_PY, plant, runner};
use warden_executor::{PytestRunner, RunEvidence, Runner};
use warden_governance_api::Root;

/// Tests that pass, and at interpreter exit (after pytest wrote its records) do `swap` to
/// the records file, whose path follows Warden's program on the interpreter's command line.
fn tampering_tests(swap: &str) -> String {
    format!(
        r#"import atexit, os, sys

REPORT = {RECORDS_PATH_PY}.decode()
HERE = os.path.dirname(os.path.abspath(__file__))
OUTSIDE = open(os.path.join(HERE, "outside.txt")).read().strip()

def swap():
{swap}

atexit.register(swap)

def test_one():
    pass

def test_two():
    pass

def test_three():
    pass
"#
    )
}

/// A root holding `runtime/tests/test_swap.py` with `swap`, and a directory outside it.
fn project(swap: &str) -> (Project, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().canonicalize().unwrap();
    let outside = base.join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("precious"), "keep me").unwrap();
    let root = base.join("root");
    plant(
        &root,
        &[
            ("runtime/tests/test_swap.py", &tampering_tests(swap)),
            ("runtime/tests/outside.txt", outside.to_str().unwrap()),
            ("pytest.ini", "[pytest]\n"),
        ],
    );
    let root = Root::new(&root).unwrap();
    (Project { dir, root }, outside)
}

/// Runs with a bound, so a wait on a FIFO fails the test instead of hanging it.
async fn run(project: &Project, runner: PytestRunner) -> RunEvidence {
    let auth = project.authorize("runtime/tests", &[], "");
    tokio::time::timeout(
        Duration::from_secs(120),
        runner.run(&auth, Duration::from_secs(60)),
    )
    .await
    .expect("the run did not return: Warden waited on something the tests planted")
}

fn said(evidence: &RunEvidence, words: &[&str]) -> bool {
    evidence
        .diagnostics
        .iter()
        .any(|d| words.iter().all(|w| d.contains(w)))
}

fn untouched(outside: &Path) {
    let names: Vec<_> = fs::read_dir(outside)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["precious"], "something was created outside");
    assert_eq!(
        fs::read_to_string(outside.join("precious")).unwrap(),
        "keep me"
    );
}

#[tokio::test]
async fn a_fifo_swapped_in_for_the_records_is_refused_not_waited_on() {
    let (project, outside) = project("    os.remove(REPORT)\n    os.mkfifo(REPORT)");
    let evidence = run(&project, runner()).await;
    assert!(
        said(
            &evidence,
            &["results records were not read", "named pipe (FIFO)"]
        ),
        "{:?}",
        evidence.diagnostics
    );
    // The results still come from pytest's output.
    assert_eq!(evidence.counts.passed, 3, "{evidence:#?}");
    untouched(&outside);
}

#[tokio::test]
async fn a_link_swapped_in_for_the_records_is_not_followed() {
    let forged = concat!(
        r#"{"id": "runtime/tests/test_forged.py::test_forged", "when": "call", "outcome": "passed"}"#,
        "\n",
        r#"{"end": 0}"#,
        "\n"
    );
    let swap = format!(
        "    open(os.path.join(OUTSIDE, 'forged.xml'), 'w').write({forged:?})\n    os.remove(REPORT)\n    os.symlink(os.path.join(OUTSIDE, 'forged.xml'), REPORT)"
    );
    let (project, outside) = project(&swap);
    let evidence = run(&project, runner()).await;
    assert!(
        said(
            &evidence,
            &["results records were not read", "symbolic link"]
        ),
        "{:?}",
        evidence.diagnostics
    );
    assert!(
        evidence.tests.iter().all(|t| !t.nodeid.contains("forged")),
        "the linked report was read: {:?}",
        evidence.tests
    );
    fs::remove_file(outside.join("forged.xml")).unwrap();
    untouched(&outside);
}

#[tokio::test]
async fn the_scratch_directory_swapped_for_a_link_is_never_deleted_through() {
    // The scratch directory is moved away and a link to the outside directory takes its name;
    // the test writes down both so this test can tidy up.
    let swap = "    scratch = os.path.dirname(REPORT)\n    os.rename(scratch, scratch + '-moved')\n    os.symlink(OUTSIDE, scratch)\n    open(os.path.join(HERE, 'swapped.txt'), 'w').write(scratch)";
    let (project, outside) = project(swap);
    let evidence = run(&project, runner()).await;
    let record = project
        .root
        .path()
        .as_std_path()
        .join("runtime/tests/swapped.txt");
    let scratch = PathBuf::from(fs::read_to_string(record).unwrap());
    untouched(&outside);
    // Warden emptied the directory it held (wherever it went) and left the link alone.
    let moved = PathBuf::from(format!("{}-moved", scratch.display()));
    assert_eq!(
        fs::read_dir(&moved).unwrap().count(),
        0,
        "the held directory was not emptied"
    );
    assert!(
        fs::symlink_metadata(&scratch)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    fs::remove_file(&scratch).unwrap();
    fs::remove_dir(&moved).unwrap();
    // The report was read through the handle, wherever the directory went.
    assert_eq!(evidence.counts.passed, 3, "{evidence:#?}");
}

/// A runner whose bytecode cache is `.warden/pycache` under the project's root.
fn cached(project: &Project) -> PytestRunner {
    runner().with_bytecode_cache(project.root.path().join(".warden/pycache"))
}

#[tokio::test]
async fn a_fifo_planted_as_the_bytecode_lock_is_refused_and_the_run_goes_ahead() {
    let (project, outside) = project("    pass");
    let cache = project.root.path().as_std_path().join(".warden/pycache");
    fs::create_dir_all(&cache).unwrap();
    rustix_mkfifo(&cache.join("lock"));
    let evidence = run(&project, cached(&project)).await;
    assert!(
        said(
            &evidence,
            &["bytecode cache was not used", "named pipe (FIFO)", "lock"]
        ),
        "{:?}",
        evidence.diagnostics
    );
    assert_eq!(evidence.counts.passed, 3);
    untouched(&outside);
}

#[tokio::test]
async fn a_fifo_planted_as_the_manifest_is_not_waited_on() {
    let (project, _outside) = project("    pass");
    let cache = project.root.path().as_std_path().join(".warden/pycache");
    fs::create_dir_all(&cache).unwrap();
    rustix_mkfifo(&cache.join("manifest.json"));
    let evidence = run(&project, cached(&project)).await;
    assert_eq!(evidence.counts.passed, 3);
    // Replaced by Warden's own manifest after the run.
    assert!(
        fs::symlink_metadata(cache.join("manifest.json"))
            .unwrap()
            .is_file()
    );
}

#[tokio::test]
async fn the_bytecode_cache_or_warden_dir_as_a_link_out_is_refused_and_nothing_outside_changes() {
    for linked in [".warden/pycache", ".warden"] {
        let (project, outside) = project("    pass");
        let link = project.root.path().as_std_path().join(linked);
        fs::create_dir_all(link.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        let evidence = run(&project, cached(&project)).await;
        assert!(
            said(&evidence, &["bytecode cache was not used", "symbolic link"]),
            "{linked}: {:?}",
            evidence.diagnostics
        );
        assert_eq!(evidence.counts.passed, 3);
        untouched(&outside);
    }
}

fn rustix_mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}
