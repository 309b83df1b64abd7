//! The hostile cases: links and FIFOs swapped in where a file or directory is expected.

// Test setup failing is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use warden_rootfs::{Dir, Error, Kind, LockMode, Open, lock, try_lock};

/// A root and a directory outside it, side by side.
fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().canonicalize().unwrap();
    let root = base.join("root");
    let outside = base.join("outside");
    fs::create_dir_all(root.join("sub")).unwrap();
    fs::create_dir_all(&outside).unwrap();
    (dir, root, outside)
}

fn mkfifo(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
        0,
    )
    .unwrap();
}

/// Runs `f` on another thread; a call that blocks fails the test instead of hanging it.
fn without_hanging<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("the call blocked (a FIFO was waited on)")
}

fn found(result: Result<impl std::fmt::Debug, Error>) -> Kind {
    match result {
        Err(Error::WrongKind { found, .. }) => found,
        other => panic!("expected a refusal naming what was found, got {other:?}"),
    }
}

#[test]
fn a_fifo_is_refused_for_every_kind_of_open_without_waiting() {
    let (_tmp, root, _) = setup();
    mkfifo(&root.join("sub/pipe"));
    for how in [Open::Read, Open::Append, Open::Write, Open::CreateNew] {
        let root = root.clone();
        let result = without_hanging(move || {
            Dir::open(&root)
                .unwrap()
                .open_file("sub/pipe", how)
                .map(drop)
        });
        if how == Open::CreateNew {
            assert!(result.is_err(), "{how:?}");
        } else {
            assert_eq!(found(result), Kind::Fifo, "{how:?}");
        }
    }
    let root2 = root.clone();
    let message = without_hanging(move || {
        warden_rootfs::open_read(root2.join("sub/pipe"), true)
            .unwrap_err()
            .to_string()
    });
    assert!(message.contains("named pipe (FIFO)"), "{message}");
    assert!(message.contains("sub/pipe"), "{message}");
    // Neither a directory handle.
    let root3 = root.clone();
    let refused =
        without_hanging(move || Dir::open(&root3).unwrap().open_dir("sub/pipe").map(drop));
    assert_eq!(found(refused), Kind::Fifo);
}

#[test]
fn links_are_refused_at_the_end_and_on_the_way_and_nothing_outside_changes() {
    let (_tmp, root, outside) = setup();
    fs::write(outside.join("ledger.jsonl"), "precious\n").unwrap();
    symlink(outside.join("ledger.jsonl"), root.join("sub/ledger.jsonl")).unwrap();
    symlink(&outside, root.join("escape")).unwrap();
    let dir = Dir::open(&root).unwrap();
    for how in [Open::Read, Open::Append, Open::Write, Open::CreateNew] {
        let at_end = dir.open_file("sub/ledger.jsonl", how);
        if how == Open::CreateNew {
            assert!(at_end.is_err());
        } else {
            assert_eq!(found(at_end), Kind::Symlink, "{how:?}");
        }
        assert_eq!(found(dir.open_file("escape/new.jsonl", how)), Kind::Symlink);
        assert_eq!(
            found(dir.open_file("escape/ledger.jsonl", how)),
            Kind::Symlink
        );
    }
    assert_eq!(found(dir.create_dir_all("escape/deeper")), Kind::Symlink);
    assert_eq!(found(dir.open_dir("escape")), Kind::Symlink);
    assert!(dir.create_dir("escape").is_err());
    assert_eq!(
        fs::read_to_string(outside.join("ledger.jsonl")).unwrap(),
        "precious\n"
    );
    assert_eq!(
        fs::read_dir(&outside).unwrap().count(),
        1,
        "something was created outside"
    );
    // Unlinked opening from `/` refuses the link too.
    assert_eq!(
        found(Dir::open_unlinked(root.join("escape"), true)),
        Kind::Symlink
    );
    assert_eq!(
        found(Dir::open_unlinked(root.join("escape/x"), true)),
        Kind::Symlink
    );
}

#[test]
fn paths_that_could_leave_are_refused() {
    let (_tmp, root, _) = setup();
    let dir = Dir::open(&root).unwrap();
    for rel in ["../outside/x", "sub/../../x", "/etc/passwd", "", "."] {
        assert!(
            matches!(dir.open_file(rel, Open::Read), Err(Error::NotPlain { .. })),
            "{rel:?}"
        );
    }
    assert!(matches!(
        Dir::open_unlinked("relative", false),
        Err(Error::NotPlain { .. })
    ));
}

#[test]
fn the_held_handle_keeps_pointing_at_the_directory_that_was_checked() {
    let (_tmp, root, outside) = setup();
    let sub = Dir::open(&root).unwrap().open_dir("sub").unwrap();
    // The directory is moved away and a link to outside takes its name.
    fs::rename(root.join("sub"), root.join("moved")).unwrap();
    symlink(&outside, root.join("sub")).unwrap();
    sub.open_file("written", Open::Append)
        .unwrap()
        .write_all(b"x")
        .unwrap();
    assert!(root.join("moved/written").exists());
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
}

#[test]
fn removing_a_tree_never_follows_a_link_inside_it() {
    let (_tmp, root, outside) = setup();
    fs::write(outside.join("keep"), "k").unwrap();
    fs::create_dir_all(root.join("sub/a/b")).unwrap();
    fs::write(root.join("sub/a/b/f"), "f").unwrap();
    symlink(&outside, root.join("sub/a/link")).unwrap();
    mkfifo(&root.join("sub/a/pipe"));
    let dir = Dir::open(&root).unwrap();
    let mut budget = 100;
    dir.remove_tree("sub", &mut budget).unwrap();
    assert!(!root.join("sub").exists());
    assert!(outside.join("keep").exists());
    // A link named as the tree is removed itself.
    symlink(&outside, root.join("gone")).unwrap();
    dir.remove_tree("gone", &mut budget).unwrap();
    assert!(outside.join("keep").exists());
    assert!(fs::symlink_metadata(root.join("gone")).is_err());
    // The budget bounds the work.
    fs::create_dir_all(root.join("many")).unwrap();
    for i in 0..10 {
        fs::write(root.join(format!("many/{i}")), "").unwrap();
    }
    let mut small = 3;
    assert!(dir.remove_tree("many", &mut small).is_err());
}

#[test]
fn rename_replaces_a_link_instead_of_writing_through_it() {
    let (_tmp, root, outside) = setup();
    fs::write(outside.join("manifest.json"), "theirs").unwrap();
    symlink(outside.join("manifest.json"), root.join("manifest.json")).unwrap();
    let dir = Dir::open(&root).unwrap();
    dir.open_file("tmp", Open::CreateNew)
        .unwrap()
        .write_all(b"ours")
        .unwrap();
    dir.rename("tmp", &dir, "manifest.json").unwrap();
    let mut text = String::new();
    dir.open_file("manifest.json", Open::Read)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text, "ours");
    assert_eq!(
        fs::read_to_string(outside.join("manifest.json")).unwrap(),
        "theirs"
    );
}

#[test]
fn entries_say_what_each_is_without_following() {
    let (_tmp, root, outside) = setup();
    fs::write(root.join("sub/file"), "").unwrap();
    symlink(&outside, root.join("sub/link")).unwrap();
    mkfifo(&root.join("sub/pipe"));
    fs::create_dir(root.join("sub/dir")).unwrap();
    let sub = Dir::open(&root).unwrap().open_dir("sub").unwrap();
    let mut seen: Vec<_> = sub
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.name.into_string().unwrap(), e.kind)
        })
        .collect();
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        seen,
        [
            ("dir".to_owned(), Kind::Dir),
            ("file".to_owned(), Kind::File),
            ("link".to_owned(), Kind::Symlink),
            ("pipe".to_owned(), Kind::Fifo),
        ]
    );
    assert_eq!(sub.status_of("link").unwrap().kind, Kind::Symlink);
    assert_eq!(sub.read_link("link").unwrap(), outside.as_os_str());
    assert!(sub.status_of("absent").unwrap_err().is_not_found());
}

#[test]
fn a_held_lock_makes_others_give_up_at_their_deadline() {
    let (_tmp, root, _) = setup();
    let dir = Dir::open(&root).unwrap();
    let path = Path::new("lock");
    let first = dir.open_file("lock", Open::Write).unwrap();
    lock(&first, LockMode::Exclusive, Duration::ZERO, path).unwrap();
    let second = dir.open_file("lock", Open::Write).unwrap();
    assert!(matches!(
        try_lock(&second, LockMode::Shared, path),
        Err(Error::Busy { .. })
    ));
    assert!(matches!(
        lock(
            &second,
            LockMode::Exclusive,
            Duration::from_millis(30),
            path
        ),
        Err(Error::LockTimeout { .. })
    ));
    drop(first);
    lock(
        &second,
        LockMode::Exclusive,
        Duration::from_millis(30),
        path,
    )
    .unwrap();
}

#[test]
fn creating_reports_whether_it_created() {
    let (_tmp, root, _) = setup();
    let dir = Dir::open(&root).unwrap();
    assert!(dir.create_dir(".warden").unwrap());
    assert!(!dir.create_dir(".warden").unwrap());
    fs::write(root.join("plain"), "").unwrap();
    assert_eq!(found(dir.create_dir("plain").map(drop)), Kind::File);
    let made = dir.create_dir_all("a/b/c").unwrap();
    assert_eq!(made.path(), root.join("a/b/c"));
    assert_eq!(made.status().unwrap().kind, Kind::Dir);
}
