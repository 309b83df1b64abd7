//! The bytecode cache with a real interpreter: compiled once and reused, never written into
//! the tree, never stale, and deaf to bytecode planted in the tree's `__pycache__`.

// In test helpers a failed step is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::fs::{self, File};
use std::path::PathBuf;
use std::process::Command;

use support::{Project, assert_nothing_written_into, python, runner};
use warden_executor::{RunEvidence, RunOutcome, Runner};

/// The bytecode cache tests' fixture with a cache directory of its own.
struct Cached {
    project: Project,
    cache: tempfile::TempDir,
}

impl Cached {
    fn new() -> Self {
        Cached {
            project: Project::new("bytecode"),
            cache: tempfile::tempdir().unwrap(),
        }
    }

    fn cache_dir(&self) -> PathBuf {
        self.cache.path().canonicalize().unwrap().join("pycache")
    }

    async fn run(&self, cached: bool) -> RunEvidence {
        let auth = self.project.authorize("runtime/tests", &[], "");
        let runner = if cached {
            runner().with_bytecode_cache(camino::Utf8PathBuf::try_from(self.cache_dir()).unwrap())
        } else {
            runner()
        };
        runner.run(&auth, auth.limits().timeout).await
    }

    fn helper(&self) -> PathBuf {
        self.project
            .root
            .path()
            .as_std_path()
            .join("runtime/tests/helper.py")
    }

    /// The cached bytecode files under the root's mirror, by name, with their inode.
    fn cached_files(&self) -> Vec<(String, u64)> {
        use std::os::unix::fs::MetadataExt;
        let mirror = self
            .cache_dir()
            .join("bytecode")
            .join(self.project.root.path().as_str().trim_start_matches('/'))
            .join("runtime/tests");
        let mut files: Vec<(String, u64)> = fs::read_dir(mirror)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| {
                        (
                            e.file_name().into_string().unwrap(),
                            e.metadata().unwrap().ino(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
    }

    /// Rewrites the helper to `VALUE = 2`: same size, modification time put back, which is
    /// all Python's own check of its cache looks at.
    fn rewrite_helper_keeping_size_and_time(&self) {
        let path = self.helper();
        let before = fs::metadata(&path).unwrap();
        fs::write(&path, "VALUE = 2\n").unwrap();
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(before.modified().unwrap())
            .unwrap();
        let after = fs::metadata(&path).unwrap();
        assert_eq!(after.len(), before.len());
        assert_eq!(after.modified().unwrap(), before.modified().unwrap());
    }

    /// What the interpreter alone, with the same cache, imports as `helper.VALUE`.
    fn python_alone_sees(&self) -> String {
        let out = Command::new(python())
            .args(["-c", "import helper; print(helper.VALUE)"])
            .current_dir(self.helper().parent().unwrap())
            .env("PYTHONPYCACHEPREFIX", self.cache_dir().join("bytecode"))
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }
}

#[tokio::test]
async fn bytecode_is_compiled_once_kept_outside_the_tree_and_never_stale() {
    let c = Cached::new();
    // Sources written a moment ago may share the file system clock's tick with the run's start,
    // and are then conservatively not recorded; let the tick pass.
    std::thread::sleep(std::time::Duration::from_millis(50));
    let first = c.run(true).await;
    assert_eq!(first.outcome, RunOutcome::Passed, "{}", first.stdout.text);
    let cached = c.cached_files();
    let names: Vec<&str> = cached.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("helper.") && n.ends_with(".pyc"))
            && names
                .iter()
                .any(|n| n.starts_with("test_value.") && n.contains("-pytest-")),
        "{names:?}"
    );
    assert_nothing_written_into(c.project.dir.path());

    // The second run reuses the same files: nothing was re-compiled.
    let second = c.run(true).await;
    assert_eq!(second.outcome, RunOutcome::Passed);
    assert_eq!(c.cached_files(), cached);

    // An edit Python's own check cannot see: the interpreter alone serves the old bytecode...
    c.rewrite_helper_keeping_size_and_time();
    assert_eq!(c.python_alone_sees(), "1", "the stale case did not arise");
    // ...Warden deletes it and runs the code as it is.
    let third = c.run(true).await;
    assert_eq!(
        third.outcome,
        RunOutcome::TestsFailed,
        "{}",
        third.stdout.text
    );
    assert!(
        third.stdout.text.contains("assert 2 == 1"),
        "{}",
        third.stdout.text
    );
    assert_nothing_written_into(c.project.dir.path());
}

#[tokio::test]
async fn bytecode_planted_in_the_tree_is_ignored() {
    let c = Cached::new();
    // Bytecode for `VALUE = 2` where Python looks for helper.py's, marked "do not check the
    // source" (PEP 552 unchecked hash): the tree's fingerprint skips `__pycache__`.
    let planted = c
        .project
        .root
        .path()
        .as_std_path()
        .join("runtime/tests/planted_source.py");
    fs::write(&planted, "VALUE = 2\n").unwrap();
    let script = "import importlib.util, py_compile, sys\n\
                  target = importlib.util.cache_from_source(sys.argv[2])\n\
                  py_compile.compile(sys.argv[1], cfile=target, doraise=True,\n\
                  invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)\n";
    let out = Command::new(python())
        .args(["-c", script])
        .arg(&planted)
        .arg(c.helper())
        .env_remove("PYTHONPYCACHEPREFIX")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    fs::remove_file(&planted).unwrap();

    // Without the cache (another run holds it, or something planted there was refused) the run
    // keeps its bytecode in a private directory: the tree's `__pycache__` is not read either
    // (with only `PYTHONDONTWRITEBYTECODE`, Python would run the planted code).
    let uncached = c.run(false).await;
    assert_eq!(
        uncached.outcome,
        RunOutcome::Passed,
        "{}",
        uncached.stdout.text
    );
    // With it, `__pycache__` in the tree is never read.
    let cached = c.run(true).await;
    assert_eq!(cached.outcome, RunOutcome::Passed, "{}", cached.stdout.text);
}
