//! The code under test swaps Warden's own files (`.warden/ledger.jsonl`, `.warden/pycache`,
//! `.warden` itself) for links out of the root or FIFOs, before or during a real pytest run:
//! the mission returns, writes nothing outside the root, and its error says what was found.
// Helpers here unwrap like the tests do; this marks the whole file as test code for clippy.
#![cfg(test)]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use warden_build_mission::{LedgerError, Mission, MissionError, VerifyRequest};
use warden_e2e::python_with_pytest;
use warden_governance_api::{Policy, Root};

/// A root whose one test file runs `during` (Python, in the root) and passes, and a directory
/// outside the root holding one precious file.
struct Tree {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
}

impl Tree {
    fn new(during: &str) -> Tree {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().canonicalize().unwrap();
        let (root, outside) = (base.join("root"), base.join("outside"));
        fs::create_dir_all(root.join("runtime/tests")).unwrap();
        fs::create_dir_all(&outside).unwrap();
        fs::write(outside.join("precious"), "keep me").unwrap();
        let test = format!(
            "import os, shutil\nOUTSIDE = {outside:?}\n\ndef test_tamper():\n{during}\n\ndef test_other():\n    pass\n",
            outside = outside.to_str().unwrap()
        );
        fs::write(root.join("runtime/tests/test_tamper.py"), test).unwrap();
        Tree {
            _tmp: tmp,
            root,
            outside,
        }
    }

    /// The default mission (ledger `.warden/ledger.jsonl`, bytecode cache `.warden/pycache`)
    /// with the test interpreter.
    fn mission(&self) -> Mission {
        let root = Root::new(&self.root).unwrap();
        let runner =
            Mission::runner_for(&root).with_python(python_with_pytest().display().to_string());
        Mission::new(root, Policy::builtin()).with_runner(Arc::new(runner))
    }

    async fn verify(&self) -> Result<warden_build_mission::Verification, MissionError> {
        let mut mission = self.mission();
        tokio::time::timeout(
            Duration::from_secs(120),
            mission.verify(&VerifyRequest::new("runtime/tests"), std::iter::empty()),
        )
        .await
        .expect("the verification did not return: Warden waited on something the tests planted")
    }

    fn assert_outside_untouched(&self) {
        let names: Vec<_> = fs::read_dir(&self.outside)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(
            names,
            ["precious"],
            "something was created outside the root"
        );
        assert_eq!(
            fs::read_to_string(self.outside.join("precious")).unwrap(),
            "keep me"
        );
    }
}

/// The ledger error of a verification whose evidence could not be recorded.
fn unrecorded(result: Result<warden_build_mission::Verification, MissionError>) -> LedgerError {
    match result {
        Err(MissionError::Ledger { source, report }) => {
            assert_eq!(report.counts.passed, 2, "the report is kept: {report:#?}");
            source
        }
        Err(other) => panic!("expected an unrecorded verification, got {other}"),
        Ok(v) => panic!("the evidence was recorded: {:?}", v.ledger_entry),
    }
}

#[tokio::test]
async fn a_ledger_swapped_for_a_link_out_during_the_run_is_not_written_through() {
    let tree = Tree::new(
        "    os.makedirs('.warden', exist_ok=True)\n    os.symlink(os.path.join(OUTSIDE, 'precious'), '.warden/ledger.jsonl')",
    );
    let error = unrecorded(tree.verify().await).to_string();
    assert!(
        error.contains("symbolic link") && error.contains("ledger.jsonl"),
        "{error}"
    );
    tree.assert_outside_untouched();
}

#[tokio::test]
async fn warden_dir_swapped_for_a_link_out_during_the_run_is_not_written_through() {
    let tree = Tree::new(
        "    shutil.rmtree('.warden', ignore_errors=True)\n    os.symlink(OUTSIDE, '.warden')",
    );
    let error = unrecorded(tree.verify().await).to_string();
    assert!(
        error.contains("symbolic link") && error.contains(".warden"),
        "{error}"
    );
    tree.assert_outside_untouched();
}

#[tokio::test]
async fn the_pycache_swapped_for_a_link_out_during_the_run_is_not_written_or_pruned_through() {
    // Bytecode-looking files outside, and the cache's directory now a link to them.
    let tree = Tree::new(
        "    shutil.rmtree('.warden/pycache', ignore_errors=True)\n    os.symlink(OUTSIDE, '.warden/pycache')",
    );
    fs::write(tree.outside.join("x.cpython-311.pyc.123"), "half").unwrap();
    let v = tree.verify().await.unwrap();
    assert_eq!(v.report.counts.passed, 2);
    fs::remove_file(tree.outside.join("x.cpython-311.pyc.123")).unwrap();
    tree.assert_outside_untouched();
    // The next run refuses the linked cache and says so in the evidence.
    let v = tree.verify().await.unwrap();
    let said = v.attempts[0]
        .diagnostics
        .iter()
        .any(|d| d.contains("bytecode cache was not used") && d.contains("symbolic link"));
    assert!(said, "{:?}", v.attempts[0].diagnostics);
    tree.assert_outside_untouched();
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn fifos_planted_in_warden_dir_before_a_run_hang_nothing() {
    let tree = Tree::new("    pass");
    let cache = tree.root.join(".warden/pycache");
    fs::create_dir_all(&cache).unwrap();
    for fifo in ["ledger.jsonl", "pycache/lock", "pycache/manifest.json"] {
        mkfifo(&tree.root.join(".warden").join(fifo));
    }
    let error = unrecorded(tree.verify().await).to_string();
    assert!(
        error.contains("named pipe (FIFO)") && error.contains("ledger.jsonl"),
        "{error}"
    );
    tree.assert_outside_untouched();
}

#[tokio::test]
async fn warden_dir_is_made_with_a_gitignore() {
    let tree = Tree::new("    pass");
    let v = tree.verify().await.unwrap();
    assert!(v.ledger_entry.is_some());
    assert_eq!(
        fs::read_to_string(tree.root.join(".warden/.gitignore")).unwrap(),
        "*\n"
    );
}
