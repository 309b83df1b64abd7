//! Bytecode of the root's own modules under the default sandbox, end to end. A confined run
//! cannot write Warden's cache, so after it Warden compiles the root's sources the run compiled
//! (the test modules pytest rewrote, the modules they import, and the standard library's
//! modules Python imported before the run's `sitecustomize`) in an isolated, confined
//! interpreter and stores them; the next run of the unchanged tree compiles nothing. What the
//! run notes is only a list of names: Warden compiles nothing the run could not read itself,
//! nothing through a link or from a FIFO, nothing that changed, and a source changed
//! afterwards is never served stale.

#![allow(clippy::unwrap_used)] // a failed step is a failed test

use std::fs;
use std::path::{Path, PathBuf};

use warden_e2e::{Fixture, Run, VERIFY_DEADLINE, failures, run, warden_at};

/// The debug line Warden logs when it compiled sources after a run.
const COMPILED: &str = "compiled the root's sources the run compiled";

/// `warden -vv --json verify runtime/tests --retries 0`, checked to have run confined.
fn verify_logged(root: &Path) -> (Run, serde_json::Value) {
    let mut cmd = warden_at(root);
    cmd.args(["-vv", "--json", "verify", "runtime/tests", "--retries", "0"]);
    let out = run(&mut cmd, None, VERIFY_DEADLINE);
    let doc = out.json();
    assert_eq!(doc["sandbox"]["enforced"], true, "{}", doc["sandbox"]);
    (out, doc)
}

/// The `.pyc` files in the cache's mirror of `rel_dir` under the root.
fn mirrored(root: &Path, rel_dir: &str) -> Vec<String> {
    let mut mirror = root.join(".warden/pycache/bytecode");
    mirror.extend(root.components().skip(1));
    let mut names: Vec<String> = fs::read_dir(mirror.join(rel_dir))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The stored line `compiled ... sources=N stored=M`, if any.
fn compiled_line(out: &Run) -> Option<&str> {
    out.stderr.lines().find(|l| l.contains(COMPILED))
}

/// `(sources, stored)` from the compiled line, which must be there.
fn compiled_counts(out: &Run) -> (u64, u64) {
    let line = compiled_line(out).unwrap_or_else(|| panic!("nothing compiled:\n{}", out.stderr));
    let field = |name: &str| -> u64 {
        let at = line
            .find(&format!("{name}="))
            .unwrap_or_else(|| panic!("no {name} in {line}"));
        line[at + name.len() + 1..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {line}"))
    };
    (field("sources"), field("stored"))
}

#[test]
fn the_next_confined_run_of_an_unchanged_tree_compiles_nothing_and_an_edit_is_never_served_stale() {
    let fixture = Fixture::empty();
    let helper = fixture.write("runtime/helper_values.py", "VALUE = 1\n");
    fixture.write(
        "runtime/tests/test_cached.py",
        "import sys, os\n\
         sys.path.insert(0, os.path.join(os.getcwd(), 'runtime'))\n\
         import helper_values\n\
         def test_value():\n\
         \x20   assert helper_values.VALUE == 1\n",
    );
    // Sources written a moment ago can share the file system clock's tick with the run's
    // start and are then (conservatively) not compiled: let the tick pass.
    std::thread::sleep(std::time::Duration::from_millis(50));
    let (first, doc) = verify_logged(fixture.root());
    assert_eq!(
        first.code,
        Some(0),
        "{:?}\n{}",
        failures(&doc),
        first.stderr
    );
    // The test module and the helper, and the standard library's modules Python imported
    // before the run's `sitecustomize` (the `encodings` package).
    let (sources, stored) = compiled_counts(&first);
    assert!(
        sources >= 3 && stored == sources,
        "{sources} sources, {stored} stored"
    );
    let tests = mirrored(fixture.root(), "runtime/tests");
    assert!(
        tests
            .iter()
            .any(|n| n.starts_with("test_cached.") && n.contains("-pytest-")),
        "no rewritten test module in {tests:?}"
    );
    assert!(
        mirrored(fixture.root(), "runtime")
            .iter()
            .any(|n| n.starts_with("helper_values.")),
        "no helper module"
    );

    let (second, doc) = verify_logged(fixture.root());
    assert_eq!(
        second.code,
        Some(0),
        "{:?}\n{}",
        failures(&doc),
        second.stderr
    );
    assert_eq!(
        compiled_line(&second),
        None,
        "the run compiled again:\n{}",
        second.stderr
    );

    // Same size, modification time put back: what fools Python's own check.
    let modified = fs::metadata(&helper).unwrap().modified().unwrap();
    fs::write(&helper, "VALUE = 2\n").unwrap();
    fs::File::options()
        .write(true)
        .open(&helper)
        .unwrap()
        .set_modified(modified)
        .unwrap();
    let (third, doc) = verify_logged(fixture.root());
    assert_eq!(
        third.code,
        Some(1),
        "stale bytecode served:\n{}",
        third.stderr
    );
    assert_eq!(doc["counts"]["failed"], 1, "{doc}");
}

/// The file where the run notes its compiled sources, found the way a test could (the
/// variable Warden sets for the run's `sitecustomize`).
const FIND_NOTES: &str = "import os\n\
    def notes():\n\
    \x20   return os.environ['WARDEN_BYTECODE_NOTES']\n";

#[test]
fn what_a_test_writes_into_the_notes_never_makes_warden_compile_outside_the_root_or_through_a_link()
{
    let fixture = Fixture::empty();
    let outside: PathBuf = fixture.outside().join("secret_module.py");
    fs::create_dir_all(outside.parent().unwrap()).unwrap();
    fs::write(&outside, "SECRET = 'outside the root'\n").unwrap();
    fixture.symlink("runtime/linked_module.py", &outside);
    fixture.write("runtime/fifo_module.py", "");
    let fifo = fixture.root().join("runtime/fifo_module.py");
    fs::remove_file(&fifo).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    fixture.write(
        "runtime/tests/test_notes.py",
        &format!(
            "{FIND_NOTES}\
             def test_plant_notes():\n\
             \x20   with open(notes(), 'a') as f:\n\
             \x20       for path in [{outside:?}, {link:?}, {fifo:?}, {dotdot:?}]:\n\
             \x20           for kind in ['plain', 'pytest', 'outside']:\n\
             \x20               f.write(kind + '\\t' + path + '\\n')\n",
            outside = outside.to_str().unwrap(),
            link = fixture
                .root()
                .join("runtime/linked_module.py")
                .to_str()
                .unwrap(),
            fifo = fifo.to_str().unwrap(),
            dotdot = fixture
                .root()
                .join("runtime/../../")
                .join(outside.strip_prefix("/").unwrap())
                .to_str()
                .unwrap(),
        ),
    );
    std::thread::sleep(std::time::Duration::from_millis(50));
    let (out, doc) = verify_logged(fixture.root());
    assert_eq!(out.code, Some(0), "{:?}\n{}", failures(&doc), out.stderr);
    // Only the test module itself was compiled; nothing for the planted names.
    let (sources, stored) = compiled_counts(&out);
    assert_eq!(stored, sources);
    assert!(
        mirrored(fixture.root(), "runtime/tests")
            .iter()
            .any(|n| n.starts_with("test_notes.")),
        "the test module itself was not compiled"
    );
    let runtime = mirrored(fixture.root(), "runtime");
    assert!(
        runtime.iter().all(|n| !n.ends_with(".pyc")),
        "bytecode for a planted name: {runtime:?}"
    );
    let mut elsewhere = fixture.root().join(".warden/pycache/bytecode");
    elsewhere.extend(outside.parent().unwrap().components().skip(1));
    assert!(
        !elsewhere.exists(),
        "bytecode mirrored outside the root's tree"
    );
}

/// A test that appends to the run's `sitecustomize` (which every Python process of every later
/// run executes), then records whether it could.
const REWRITE_SITE: &str = "import os\n\
    def test_rewrite_site():\n\
    \x20   path = os.path.join(os.environ['PYTHONPATH'], 'sitecustomize.py')\n\
    \x20   try:\n\
    \x20       with open(path, 'a') as f:\n\
    \x20           f.write('\\nraise SystemExit(3)\\n')\n\
    \x20       outcome = 'wrote'\n\
    \x20   except OSError as e:\n\
    \x20       outcome = 'refused ' + str(e.errno)\n\
    \x20   with open('outcome.txt', 'a') as f:\n\
    \x20       f.write(outcome + '\\n')\n";

#[test]
fn the_sitecustomize_kept_in_the_cache_is_warden_s_whatever_a_test_writes() {
    // Under the sandbox the cache, and the sitecustomize in it, are read-only to tests.
    let fixture = Fixture::empty();
    fixture.write("runtime/tests/test_site.py", REWRITE_SITE);
    for _ in 0..2 {
        let (out, doc) = verify_logged(fixture.root());
        assert_eq!(out.code, Some(0), "{:?}\n{}", failures(&doc), out.stderr);
    }
    let outcomes = fs::read_to_string(fixture.root().join("outcome.txt")).unwrap();
    assert!(
        outcomes.lines().count() == 2 && outcomes.lines().all(|l| l.starts_with("refused")),
        "{outcomes}"
    );

    // With the sandbox off a test can write it, but the next run starts with Warden's again.
    let fixture = Fixture::empty();
    fixture.write("runtime/tests/test_site.py", REWRITE_SITE);
    fixture.write(
        "warden.toml",
        "version = 1\nextends = \"builtin\"\n[sandbox]\nmode = \"off\"\n",
    );
    for _ in 0..2 {
        let out = warden_e2e::verify_json(fixture.root(), &["runtime/tests", "--retries", "0"]);
        let doc = out.json();
        assert_eq!(out.code, Some(0), "{:?}\n{}", failures(&doc), out.stderr);
    }
    let outcomes = fs::read_to_string(fixture.root().join("outcome.txt")).unwrap();
    assert_eq!(outcomes, "wrote\nwrote\n");
    let site =
        fs::read_to_string(fixture.root().join(".warden/pycache/site/sitecustomize.py")).unwrap();
    assert_eq!(site.matches("SystemExit(3)").count(), 1, "{site}");
}
