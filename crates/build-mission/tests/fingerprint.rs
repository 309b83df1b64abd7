//! The tree fingerprint on real directories, inside and outside git repositories.
// Helpers here unwrap like the tests do; this marks the whole file as test code for clippy.
#![cfg(test)]

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use warden_build_mission::{FingerprintError, FingerprintOptions, fingerprint};

fn fp(root: &Path) -> String {
    fingerprint(root, &FingerprintOptions::default()).unwrap()
}

fn write(root: &Path, rel: &str, content: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

fn git(root: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A small Python project.
fn project(root: &Path) {
    write(root, "src/app.py", "def answer():\n    return 42\n");
    write(
        root,
        "runtime/tests/test_app.py",
        "from app import answer\n\ndef test_answer():\n    assert answer() == 42\n",
    );
    write(root, "README.md", "demo\n");
}

fn git_project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    write(dir.path(), ".gitignore", "*.log\nbuild/\n");
    git(dir.path(), &["init", "-q"]);
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-q", "-m", "init"]);
    dir
}

/// Runs `change` on the tree and reports whether the fingerprint moved.
fn changes(root: &Path, change: impl FnOnce(&Path)) -> bool {
    let before = fp(root);
    assert_eq!(fp(root), before, "fingerprinting twice must agree");
    change(root);
    fp(root) != before
}

#[test]
fn the_same_tree_gives_the_same_fingerprint_whatever_the_creation_order() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let files = [
        ("x/1.py", "one"),
        ("x/2.py", "two"),
        ("y.py", "three"),
        ("z/w/4.py", ""),
    ];
    for (rel, content) in files {
        write(a.path(), rel, content);
    }
    for (rel, content) in files.iter().rev() {
        write(b.path(), rel, content);
    }
    let fa = fp(a.path());
    assert_eq!(fa.len(), 64);
    assert!(
        fa.bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    assert_eq!(fa, fp(b.path()));
}

#[test]
fn outside_git_edits_additions_and_renames_change_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    project(root);
    assert!(changes(root, |r| write(
        r,
        "src/app.py",
        "def answer():\n    return 41\n"
    )));
    assert!(changes(root, |r| write(r, "src/new.py", "")));
    assert!(changes(root, |r| fs::rename(
        r.join("src/new.py"),
        r.join("src/new2.py")
    )
    .unwrap()));
    assert!(changes(root, |r| fs::remove_file(r.join("README.md")).unwrap()));
    assert!(changes(root, |r| {
        fs::set_permissions(r.join("src/app.py"), fs::Permissions::from_mode(0o755)).unwrap();
    }));
    // Moving content between files is a different tree, even with the same bytes overall.
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    write(a.path(), "p.py", "ab");
    write(a.path(), "q.py", "");
    write(b.path(), "p.py", "a");
    write(b.path(), "q.py", "b");
    assert_ne!(fp(a.path()), fp(b.path()));
}

#[test]
fn outside_git_caches_environments_and_wardens_files_do_not_count() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    project(root);
    for rel in [
        ".warden/ledger.jsonl",
        "src/__pycache__/app.cpython-311.pyc",
        "runtime/tests/__pycache__/test_app.cpython-311-pytest-9.0.pyc",
        ".pytest_cache/v/cache/lastfailed",
        ".hypothesis/examples/x",
        ".venv/lib/site.py",
        ".hg/store/data",
        "node_modules/x/index.js",
        ".coverage",
    ] {
        assert!(
            !changes(root, |r| write(r, rel, "generated")),
            "{rel} changed it"
        );
    }
}

#[test]
fn a_sourceless_module_outside_pycache_is_code_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    project(root);
    // Python never writes bytecode outside `__pycache__`, but imports a `.pyc` found there
    // as a module: it is code under test, so planting or editing one changes the tree.
    assert!(changes(root, |r| write(r, "src/helper.pyc", "bytecode")));
}

#[test]
fn symlinks_are_hashed_as_their_target_text_and_never_followed() {
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "data.txt", "v1");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    project(root);
    symlink(outside.path().join("data.txt"), root.join("link")).unwrap();
    // The link's target changes content: not part of this tree.
    assert!(!changes(root, |_| write(outside.path(), "data.txt", "v2")));
    // The link points elsewhere: the tree changed.
    assert!(changes(root, |r| {
        fs::remove_file(r.join("link")).unwrap();
        symlink("src/app.py", r.join("link")).unwrap();
    }));
    // A link to a directory is not descended into.
    symlink(outside.path(), root.join("dirlink")).unwrap();
    assert!(!changes(root, |_| write(outside.path(), "more.txt", "x")));
}

#[test]
fn in_git_tracked_and_untracked_files_count_and_ignored_ones_do_not() {
    let dir = git_project();
    let root = dir.path();
    assert!(changes(root, |r| write(
        r,
        "src/app.py",
        "def answer():\n    return 0\n"
    )));
    assert!(changes(root, |r| write(r, "src/untracked.py", "x = 1\n")));
    assert!(!changes(root, |r| write(r, "debug.log", "noise")));
    assert!(!changes(root, |r| write(r, "build/out.py", "generated")));
    assert!(!changes(root, |r| write(r, ".warden/ledger.jsonl", "{}\n")));
    assert!(!changes(root, |r| write(
        r,
        "src/__pycache__/app.cpython-311.pyc",
        "x"
    )));
    // A tracked file deleted from the working tree is absent from the tree.
    assert!(changes(root, |r| fs::remove_file(r.join("README.md")).unwrap()));
    // Staging or committing the same content changes nothing: the tree is what counts.
    assert!(!changes(root, |r| git(r, &["add", "-A"])));
    assert!(!changes(root, |r| git(r, &["commit", "-q", "-m", "more"])));
}

#[test]
fn in_git_and_outside_git_the_same_edits_are_seen() {
    // The git listing and the walk differ in what they skip, not in how they hash: a repository
    // without ignored files fingerprints like the same files outside git once `.git` is gone.
    let dir = git_project();
    git(dir.path(), &["rm", "-q", ".gitignore"]);
    let in_git = fp(dir.path());
    fs::remove_dir_all(dir.path().join(".git")).unwrap();
    assert_eq!(fp(dir.path()), in_git);
}

#[test]
fn a_root_below_the_repository_top_covers_only_its_own_subtree() {
    let dir = git_project();
    let root = dir.path().join("runtime");
    let before = fp(&root);
    write(dir.path(), "src/app.py", "changed outside the root\n");
    assert_eq!(fp(&root), before);
    write(
        dir.path(),
        "runtime/tests/test_new.py",
        "def test_x():\n    pass\n",
    );
    assert_ne!(fp(&root), before);
}

#[test]
fn extra_exclusions_are_left_out() {
    let dir = git_project();
    let root = dir.path();
    let options = FingerprintOptions {
        exclude: vec![PathBuf::from("./evidence"), root.join("other.jsonl")],
        ..FingerprintOptions::default()
    };
    let before = fingerprint(root, &options).unwrap();
    write(root, "evidence/ledger.jsonl", "{}\n");
    write(root, "other.jsonl", "{}\n");
    assert_eq!(fingerprint(root, &options).unwrap(), before);
    write(root, "evidence2.jsonl", "{}\n");
    assert_ne!(fingerprint(root, &options).unwrap(), before);
}

#[test]
fn git_that_misses_its_deadline_is_an_error_not_a_hang() {
    let dir = git_project();
    let options = FingerprintOptions {
        git_deadline: Duration::ZERO,
        ..FingerprintOptions::default()
    };
    let err = fingerprint(dir.path(), &options).unwrap_err();
    assert!(matches!(err, FingerprintError::GitTimeout { .. }), "{err}");
}

#[test]
fn a_missing_root_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = fingerprint(&missing, &FingerprintOptions::default()).unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
}

#[test]
fn large_files_are_streamed_and_fully_covered() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut big = vec![b'a'; 5 * 1024 * 1024 + 7];
    fs::write(root.join("big.bin"), &big).unwrap();
    let before = fp(root);
    // A change in the very last byte, far past the first read, still counts.
    *big.last_mut().unwrap() = b'b';
    fs::write(root.join("big.bin"), &big).unwrap();
    assert_ne!(fp(root), before);
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success());
}

/// Fingerprints on another thread, so a FIFO that is waited on fails the test, not hangs it.
fn fp_without_hanging(root: &Path) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    let root = root.to_owned();
    std::thread::spawn(move || {
        let _ = tx.send(fp(&root));
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("fingerprinting waited on a FIFO")
}

#[test]
fn a_fifo_in_the_tree_is_hashed_as_what_it_is_never_opened() {
    // Outside git (walked) and inside git (a tracked file replaced by a FIFO).
    let plain = tempfile::tempdir().unwrap();
    project(plain.path());
    let repo = git_project();
    for (root, rel) in [
        (plain.path(), "runtime/tests/pipe"),
        (repo.path(), "src/app.py"),
    ] {
        let before = fp_without_hanging(root);
        let _ = fs::remove_file(root.join(rel));
        mkfifo(&root.join(rel));
        let with_fifo = fp_without_hanging(root);
        assert_ne!(with_fifo, before, "{rel}");
        assert_eq!(
            fp_without_hanging(root),
            with_fifo,
            "{rel}: not deterministic"
        );
    }
}

#[test]
fn a_listed_path_behind_a_link_is_never_followed() {
    // git's index still names `src/app.py` after `src` became a link to a directory outside:
    // what is outside must not count.
    let repo = git_project();
    let root = repo.path();
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "app.py", "def answer():\n    return 42\n");
    fs::rename(root.join("src"), root.join("src.moved")).unwrap();
    symlink(outside.path(), root.join("src")).unwrap();
    let before = fp(root);
    write(outside.path(), "app.py", "def answer():\n    return 41\n");
    assert_eq!(fp(root), before, "a file outside the root was hashed");
    // Outside git too: the link is hashed as a link, its target never entered.
    let plain = tempfile::tempdir().unwrap();
    project(plain.path());
    symlink(outside.path(), plain.path().join("linked")).unwrap();
    let before = fp(plain.path());
    write(outside.path(), "more.py", "X = 1\n");
    assert_eq!(fp(plain.path()), before);
}

#[test]
fn a_fingerprint_past_its_deadline_is_an_error_not_a_wait() {
    let plain = tempfile::tempdir().unwrap();
    project(plain.path());
    let options = FingerprintOptions {
        deadline: Duration::ZERO,
        ..FingerprintOptions::default()
    };
    std::thread::sleep(Duration::from_millis(5));
    let err = fingerprint(plain.path(), &options).unwrap_err();
    assert!(matches!(err, FingerprintError::TooLarge { .. }), "{err}");
    assert!(err.to_string().contains("deadline"), "{err}");
}
