//! A bytecode cache outside the tree under test that never serves stale code.
//!
//! Without a cache, pytest re-compiles every test module (its assertion rewriting) on every
//! run, which costs a large project more than everything else Warden does. Python's own caches
//! cannot simply be switched on: they live in `__pycache__` inside the tree (which Warden's
//! fingerprint skips, so "same fingerprint" would stop meaning "same code"), and Python trusts
//! a cached module whose source kept its size and modification second (an edit within the
//! same second, or a copy that preserves times, is served stale).
//!
//! So a runner given a cache directory runs Python with `PYTHONPYCACHEPREFIX=<dir>/bytecode`:
//! every `.pyc` goes to a mirror tree there (the source's absolute directory, re-rooted),
//! and `__pycache__` directories in the tree are neither written nor *read*, so bytecode
//! planted there cannot stand in for the source the fingerprint hashed. Warden keeps the
//! mirror honest itself, with a manifest of the source files' status (device, inode, size,
//! modification and change times, nanoseconds) taken when their bytecode was last known good:
//!
//! - **Before a run**, every `.pyc` under the root's mirror is kept only if each source file it
//!   can belong to (`a.b.cpython-311.pyc` may be `a.py`'s or `a.b.py`'s) exists and has
//!   exactly the recorded status. Any write to a file changes its change time, which no one can
//!   set back, so an equal status means unchanged content. Everything else is deleted, as are
//!   half-written files left by a killed run.
//! - **After a run**, a `.pyc` is recorded only if each of its sources last changed strictly
//!   before the run started (compared with the change time of a marker file written first, so
//!   both come from the file system's clock). Bytecode compiled from a file that changed during
//!   the run is deleted.
//!
//! A run that is cancelled before it finishes leaves the previous manifest, against which
//! whatever it wrote is checked next time: still sound, just less cached. Runs sharing a cache
//! take turns through an exclusive lock; a run that cannot get it at once, or a cache that
//! cannot be used (not a plain directory, unwritable), falls back to running without one.
//!
//! Bytecode of files outside the root (the standard library, installed packages) goes to the
//! same prefix and is checked by Python as usual: those files are not the code under test.

use std::collections::BTreeMap;
use std::fs::{self, File, TryLockError};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::time::SystemTime;

use camino::{Utf8Component, Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};

/// The directory under the cache directory that Python's mirror tree is rooted at (apart from
/// Warden's own files, whose names could otherwise be the first component of some path).
const TREE: &str = "bytecode";
/// The manifest's file name in the cache directory.
const MANIFEST: &str = "manifest.json";
/// The lock's file name in the cache directory.
const LOCK: &str = "lock";
/// The marker whose change time says when the run started.
const STARTED: &str = "run-started";
/// A manifest larger than this is not read (it is Warden's own file; this bounds a damaged one).
const MAX_MANIFEST_BYTES: u64 = 64 * 1024 * 1024;
/// Deeper mirror directories are not descended into; their bytecode is deleted.
const MAX_DEPTH: usize = 128;
/// Manifest format version.
const VERSION: u32 = 1;

/// Why a configured cache is not used for a run (the run goes ahead without one).
#[derive(Debug, thiserror::Error)]
pub(crate) enum CacheUnavailable {
    /// The directory is relative, or reached through a symbolic link.
    #[error(
        "the bytecode cache {0} is not an absolute path free of symbolic links; give a plain directory"
    )]
    NotPlain(Utf8PathBuf),
    /// Another run holds the cache.
    #[error("another run is using the bytecode cache {0}")]
    Busy(Utf8PathBuf),
    /// The file system refused.
    #[error("the bytecode cache {path} cannot be used ({action}): {source}")]
    Io {
        /// The path that failed.
        path: Utf8PathBuf,
        /// What Warden was doing.
        action: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// What identifies one version of a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SourceStatus {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl SourceStatus {
    fn of(meta: &fs::Metadata) -> Self {
        SourceStatus {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// The manifest file: source path (absolute) to the status its bytecode was compiled from.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    version: u32,
    sources: BTreeMap<String, SourceStatus>,
}

/// A run's exclusive use of a cache directory, from before the interpreter starts until
/// [`Lease::finish`]. Dropping it without finishing releases the lock and records nothing.
#[derive(Debug)]
pub(crate) struct Lease {
    dir: Utf8PathBuf,
    prefix: Utf8PathBuf,
    root: Utf8PathBuf,
    started: (i64, i64),
    /// The manifest as the lease found it (no one else writes it while the lock is held).
    manifest: Manifest,
    _lock: File,
}

impl Lease {
    /// Takes the cache at `dir` for a run in `root` (absolute, canonical) and deletes every
    /// `.pyc` in the root's mirror that might not match its source.
    pub(crate) fn acquire(dir: &Utf8Path, root: &Utf8Path) -> Result<Lease, CacheUnavailable> {
        let io = |action, path: &Utf8Path| {
            let path = path.to_owned();
            move |source| CacheUnavailable::Io {
                path,
                action,
                source,
            }
        };
        if !dir.is_absolute() {
            return Err(CacheUnavailable::NotPlain(dir.to_owned()));
        }
        fs::create_dir_all(dir).map_err(io("create", dir))?;
        // Deleting under `<dir>/<root>` must never reach anything but the cache itself.
        let real = dir.canonicalize_utf8().map_err(io("resolve", dir))?;
        if real != dir
            || !fs::symlink_metadata(dir)
                .map_err(io("inspect", dir))?
                .is_dir()
        {
            return Err(CacheUnavailable::NotPlain(dir.to_owned()));
        }
        let lock_path = dir.join(LOCK);
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io("open the lock", &lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(CacheUnavailable::Busy(dir.to_owned())),
            Err(TryLockError::Error(e)) => return Err(io("lock", &lock_path)(e)),
        }
        // The start is taken before anything is checked: a source that changes after it is
        // caught by `finish`, one that changed before it by the check below.
        let marker = dir.join(STARTED);
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        fs::write(&marker, nanos.to_string()).map_err(io("write the start marker", &marker))?;
        let meta = fs::metadata(&marker).map_err(io("read the start marker", &marker))?;
        let lease = Lease {
            dir: dir.to_owned(),
            prefix: dir.join(TREE),
            root: root.to_owned(),
            started: (meta.ctime(), meta.ctime_nsec()),
            manifest: read_manifest(&dir.join(MANIFEST)),
            _lock: lock,
        };
        let mirror = lease.mirror();
        let mut problem = None;
        walk(&mirror, &lease.root, 0, &mut |entry| match entry {
            Entry::Partial(path) => remove(&path, &mut problem),
            Entry::Bytecode { path, sources } => {
                let good = !sources.is_empty()
                    && sources.iter().all(|(source, status)| {
                        lease.manifest.sources.get(source.as_str()) == Some(status)
                    });
                if !good {
                    remove(&path, &mut problem);
                }
            }
        });
        match problem {
            Some(e) => Err(io("delete stale bytecode", &mirror)(e)),
            None => Ok(lease),
        }
    }

    /// The value for `PYTHONPYCACHEPREFIX`.
    pub(crate) fn prefix(&self) -> &Utf8Path {
        &self.prefix
    }

    /// Records the bytecode the run left whose sources did not change while it ran, deletes
    /// the rest, and releases the cache. Problems are logged: the next run checks again.
    pub(crate) fn finish(mut self) {
        let mirror = self.mirror();
        let mut manifest = std::mem::take(&mut self.manifest);
        manifest
            .sources
            .retain(|source, _| !Utf8Path::new(source).starts_with(&self.root));
        let mut problem = None;
        walk(&mirror, &self.root, 0, &mut |entry| match entry {
            Entry::Partial(path) => remove(&path, &mut problem),
            Entry::Bytecode { path, sources } => {
                let settled = !sources.is_empty()
                    && sources
                        .iter()
                        .all(|(_, status)| status.ctime < self.started);
                if settled {
                    manifest.sources.extend(sources);
                } else {
                    remove(&path, &mut problem);
                }
            }
        });
        if let Some(e) = problem {
            tracing::warn!(cache = %self.dir, error = %e, "could not delete bytecode compiled from files that changed during the run; the next run deletes it");
        }
        manifest.version = VERSION;
        if let Err(e) = self.write_manifest(&manifest) {
            tracing::warn!(cache = %self.dir, error = %e, "could not record the bytecode cache; the next run re-compiles");
        }
    }

    /// Where Python puts the bytecode of files under the root: the root's absolute path,
    /// re-rooted at the prefix.
    fn mirror(&self) -> Utf8PathBuf {
        let mut mirror = self.prefix.clone();
        mirror.extend(
            self.root
                .components()
                .filter(|c| matches!(c, Utf8Component::Normal(_))),
        );
        mirror
    }

    fn write_manifest(&self, manifest: &Manifest) -> io::Result<()> {
        let text = serde_json::to_vec(manifest).map_err(io::Error::other)?;
        let mut file = tempfile::NamedTempFile::new_in(&self.dir)?;
        io::Write::write_all(&mut file, &text)?;
        file.persist(self.dir.join(MANIFEST)).map_err(|e| e.error)?;
        Ok(())
    }
}

/// The manifest at `path`, or an empty one when it is missing or unreadable (so nothing is
/// trusted).
fn read_manifest(path: &Utf8Path) -> Manifest {
    let read = || -> Result<Manifest, String> {
        let file = File::open(path).map_err(|e| e.to_string())?;
        let mut text = String::new();
        file.take(MAX_MANIFEST_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|e| e.to_string())?;
        if text.len() as u64 > MAX_MANIFEST_BYTES {
            return Err("larger than any manifest Warden writes".into());
        }
        let manifest: Manifest = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        if manifest.version != VERSION {
            return Err(format!("unknown version {}", manifest.version));
        }
        Ok(manifest)
    };
    match read() {
        Ok(manifest) => manifest,
        Err(reason) => {
            if path.exists() {
                tracing::warn!(%path, %reason, "ignoring the bytecode manifest; cached bytecode under the root is re-compiled");
            }
            Manifest::default()
        }
    }
}

/// A file found in the mirror.
enum Entry {
    /// A `.pyc` with the status of each existing source it may belong to.
    Bytecode {
        path: Utf8PathBuf,
        sources: Vec<(String, SourceStatus)>,
    },
    /// A half-written `.pyc` (`name.pyc.<suffix>`) or one that is not a regular file: never
    /// kept.
    Partial(Utf8PathBuf),
}

/// Visits every bytecode file under `mirror` (whose files mirror `source_dir`), not following
/// symbolic links. Unreadable directories are skipped: Python cannot have read them either.
fn walk(mirror: &Utf8Path, source_dir: &Utf8Path, depth: usize, visit: &mut dyn FnMut(Entry)) {
    let Ok(entries) = fs::read_dir(mirror) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let path = mirror.join(&name);
        let bytecode_like = name.ends_with(".pyc") || name.contains(".pyc.");
        if kind.is_dir() {
            if depth < MAX_DEPTH {
                walk(&path, &source_dir.join(&name), depth + 1, visit);
            } else {
                tracing::warn!(%path, "bytecode cache deeper than Warden checks; not used");
                let _ = fs::remove_dir_all(&path);
            }
        } else if kind.is_file() && name.ends_with(".pyc") {
            visit(Entry::Bytecode {
                sources: sources_of(source_dir, &name),
                path,
            });
        } else if bytecode_like {
            // Half-written, or not a regular file (Python writes only regular files here).
            visit(Entry::Partial(path));
        }
    }
}

/// Each existing source `name` (a `.pyc`) may have been compiled from, with its status.
///
/// Python names bytecode `<stem>.<tag>[.opt-N].pyc` and pytest `<stem>.<tag>-pytest-<version>.pyc`,
/// where the stem may itself contain dots: every prefix of the name that ends before a dot is
/// a candidate stem, and all that exist must be unchanged for the file to be trusted.
fn sources_of(source_dir: &Utf8Path, name: &str) -> Vec<(String, SourceStatus)> {
    let stem_area = &name[..name.len() - ".pyc".len()];
    stem_area
        .match_indices('.')
        .filter(|(at, _)| *at > 0)
        .filter_map(|(at, _)| {
            let source = source_dir.join(format!("{}.py", &stem_area[..at]));
            let meta = fs::metadata(&source).ok()?;
            meta.is_file()
                .then(|| (source.into_string(), SourceStatus::of(&meta)))
        })
        .collect()
}

fn remove(path: &Utf8Path, problem: &mut Option<io::Error>) {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => *problem = Some(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A root with sources and a cache directory beside it.
    struct Setup {
        _dirs: tempfile::TempDir,
        root: Utf8PathBuf,
        cache: Utf8PathBuf,
    }

    impl Setup {
        fn new() -> Self {
            let dirs = tempfile::tempdir().unwrap();
            let base = Utf8PathBuf::try_from(dirs.path().canonicalize().unwrap()).unwrap();
            let root = base.join("root");
            fs::create_dir_all(root.join("pkg")).unwrap();
            Setup {
                _dirs: dirs,
                root,
                cache: base.join("cache"),
            }
        }

        fn mirror(&self, rel: &str) -> Utf8PathBuf {
            let mut path = self.cache.join(TREE);
            path.extend(
                self.root
                    .components()
                    .filter(|c| matches!(c, Utf8Component::Normal(_))),
            );
            path.join(rel)
        }

        fn source(&self, rel: &str, text: &str) {
            fs::write(self.root.join(rel), text).unwrap();
        }

        /// What Python does during a run: writes the bytecode of `rel` (a `.pyc` name).
        fn compile(&self, rel: &str) {
            let path = self.mirror(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, b"bytecode").unwrap();
        }

        fn cached(&self, rel: &str) -> bool {
            self.mirror(rel).exists()
        }

        fn lease(&self) -> Lease {
            // Sources written a moment ago can share the file system clock's tick with the
            // run's start and are then (conservatively) not recorded: let the tick pass.
            std::thread::sleep(std::time::Duration::from_millis(30));
            Lease::acquire(&self.cache, &self.root).unwrap()
        }
    }

    const MOD: &str = "pkg/mod.cpython-311.pyc";
    const TEST: &str = "pkg/test_x.cpython-311-pytest-9.2.0.pyc";

    #[test]
    fn bytecode_of_unchanged_sources_is_kept_from_run_to_run() {
        let s = Setup::new();
        s.source("pkg/mod.py", "VALUE = 1\n");
        s.source("pkg/test_x.py", "def test(): pass\n");
        let lease = s.lease();
        assert_eq!(lease.prefix(), s.cache.join(TREE));
        s.compile(MOD);
        s.compile(TEST);
        lease.finish();
        let lease = s.lease();
        assert!(s.cached(MOD) && s.cached(TEST));
        lease.finish();
        drop(s.lease());
        assert!(s.cached(MOD) && s.cached(TEST));
    }

    #[test]
    fn bytecode_of_a_rewritten_source_is_deleted_even_with_the_same_size_and_times() {
        let s = Setup::new();
        s.source("pkg/mod.py", "VALUE = 1\n");
        s.source("pkg/test_x.py", "def test(): pass\n");
        let lease = s.lease();
        s.compile(MOD);
        s.compile(TEST);
        lease.finish();
        // What fools Python's own check: same size, modification time put back.
        let path = s.root.join("pkg/mod.py");
        let modified = fs::metadata(&path).unwrap().modified().unwrap();
        s.source("pkg/mod.py", "VALUE = 2\n");
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(modified)
            .unwrap();
        assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), modified);
        let _lease = s.lease();
        assert!(!s.cached(MOD), "stale bytecode kept");
        assert!(s.cached(TEST));
    }

    #[test]
    fn bytecode_of_a_source_changed_during_the_run_is_not_recorded() {
        let s = Setup::new();
        s.source("pkg/mod.py", "VALUE = 1\n");
        let lease = s.lease();
        s.compile(MOD);
        s.source("pkg/mod.py", "VALUE = 2\n");
        lease.finish();
        assert!(!s.cached(MOD));
    }

    #[test]
    fn a_run_that_never_finished_leaves_nothing_trusted_that_changed() {
        let s = Setup::new();
        s.source("pkg/mod.py", "VALUE = 1\n");
        s.source("pkg/other.py", "OTHER = 1\n");
        let lease = s.lease();
        s.compile(MOD);
        lease.finish();
        // A run is cancelled after compiling; one source changed meanwhile.
        let lease = s.lease();
        s.compile("pkg/other.cpython-311.pyc");
        s.compile("pkg/mod.cpython-311.pyc.12345");
        s.source("pkg/mod.py", "VALUE = 2\n");
        drop(lease);
        let _lease = s.lease();
        assert!(!s.cached(MOD), "changed since recorded");
        assert!(!s.cached("pkg/other.cpython-311.pyc"), "never recorded");
        assert!(!s.cached("pkg/mod.cpython-311.pyc.12345"), "half-written");
    }

    #[test]
    fn every_source_a_name_may_belong_to_must_be_unchanged() {
        let s = Setup::new();
        s.source("pkg/a.py", "A = 1\n");
        s.source("pkg/a.b.py", "AB = 1\n");
        let dotted = "pkg/a.b.cpython-311.pyc";
        let lease = s.lease();
        s.compile(dotted);
        lease.finish();
        drop(s.lease());
        assert!(s.cached(dotted));
        s.source("pkg/a.b.py", "AB = 2\n");
        drop(s.lease());
        assert!(!s.cached(dotted));
    }

    #[test]
    fn bytecode_without_a_source_is_deleted() {
        let s = Setup::new();
        s.source("pkg/mod.py", "VALUE = 1\n");
        let lease = s.lease();
        s.compile(MOD);
        lease.finish();
        fs::remove_file(s.root.join("pkg/mod.py")).unwrap();
        drop(s.lease());
        assert!(!s.cached(MOD));
    }

    #[test]
    fn a_damaged_manifest_trusts_nothing() {
        let s = Setup::new();
        s.source("pkg/mod.py", "VALUE = 1\n");
        let lease = s.lease();
        s.compile(MOD);
        lease.finish();
        for damage in [
            "{",
            "{\"version\":2,\"sources\":{}}",
            "[]",
            "{\"version\":1}",
        ] {
            s.compile(MOD);
            fs::write(s.cache.join(MANIFEST), damage).unwrap();
            drop(s.lease());
            assert!(!s.cached(MOD), "{damage}");
        }
    }

    #[test]
    fn a_link_in_the_mirror_is_never_trusted() {
        let s = Setup::new();
        s.source("pkg/mod.py", "VALUE = 1\n");
        let lease = s.lease();
        s.compile("pkg/real.bin");
        std::os::unix::fs::symlink(s.mirror("pkg/real.bin"), s.mirror(MOD)).unwrap();
        lease.finish();
        drop(s.lease());
        assert!(fs::symlink_metadata(s.mirror(MOD)).is_err());
    }

    #[test]
    fn one_run_at_a_time() {
        let s = Setup::new();
        let first = s.lease();
        assert!(matches!(
            Lease::acquire(&s.cache, &s.root),
            Err(CacheUnavailable::Busy(_))
        ));
        drop(first);
        assert!(Lease::acquire(&s.cache, &s.root).is_ok());
    }

    #[test]
    fn the_cache_must_be_a_plain_absolute_directory() {
        let s = Setup::new();
        let relative = Lease::acquire(Utf8Path::new("cache"), &s.root);
        assert!(matches!(relative, Err(CacheUnavailable::NotPlain(_))));
        fs::create_dir_all(&s.cache).unwrap();
        let link = s.cache.with_file_name("link");
        std::os::unix::fs::symlink(&s.cache, &link).unwrap();
        let linked = Lease::acquire(&link, &s.root);
        assert!(matches!(linked, Err(CacheUnavailable::NotPlain(_))));
        let through = Lease::acquire(&link.join("inner"), &s.root);
        assert!(matches!(through, Err(CacheUnavailable::NotPlain(_))));
        fs::write(s.cache.join("file"), "").unwrap();
        let file = Lease::acquire(&s.cache.join("file"), &s.root);
        assert!(matches!(file, Err(CacheUnavailable::Io { .. })), "{file:?}");
    }

    #[test]
    fn another_roots_records_survive() {
        let s = Setup::new();
        let other = s.root.with_file_name("other");
        fs::create_dir_all(&other).unwrap();
        fs::write(other.join("m.py"), "M = 1\n").unwrap();
        s.source("pkg/mod.py", "VALUE = 1\n");
        let lease = Lease::acquire(&s.cache, &other).unwrap();
        let mut theirs = s.cache.join(TREE);
        theirs.extend(
            other
                .components()
                .filter(|c| matches!(c, Utf8Component::Normal(_))),
        );
        fs::create_dir_all(&theirs).unwrap();
        fs::write(theirs.join("m.cpython-311.pyc"), "bytecode").unwrap();
        lease.finish();
        let lease = s.lease();
        s.compile(MOD);
        lease.finish();
        drop(Lease::acquire(&s.cache, &other).unwrap());
        assert!(theirs.join("m.cpython-311.pyc").exists());
        assert!(s.cached(MOD));
    }
}
