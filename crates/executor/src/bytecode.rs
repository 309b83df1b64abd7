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
//! The cache usually lives in `.warden/` under the root, where the code under test can write
//! too. So every file in it is reached through directory handles held from the check to the
//! use ([`warden_rootfs`]): no link is followed on the way to the cache, in it or in the
//! mirror, no open waits (a FIFO planted as the lock or the manifest is refused, not opened),
//! and deletions are `unlinkat` calls relative to the handle of the directory that was
//! listed, so a directory swapped for a link mid-walk cannot redirect them outside.
//!
//! Bytecode of files outside the root (the standard library, installed packages) is read
//! from beside its source when Python keeps it there, else it goes to the same prefix and is
//! checked by Python as usual: those files are not the code under test, and a run can write
//! neither them nor their `__pycache__` (see [`crate::invocation::SITECUSTOMIZE`]).
//!
//! A run confined by the sandbox cannot write the cache (it is Warden's state, read-only to
//! the code under test, so a test can neither poison it nor have bytecode of its own recorded
//! as known good): it reads what is cached and compiles the rest for itself, and Warden then
//! compiles the root's sources it compiled into the cache, outside the run's reach
//! ([`crate::precompile`]). A run that cannot
//! have the cache at all keeps its bytecode in a private empty directory: the tree's
//! `__pycache__` is never read.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::time::SystemTime;

use camino::{Utf8Component, Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};
use warden_rootfs::{Dir, Kind, LockMode, Open};

use crate::invocation::SITECUSTOMIZE;

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
/// At most this many entries are deleted from a mirror directory nested too deep.
const MAX_DEEP_REMOVALS: usize = 100_000;
/// The directory in the cache holding the runs' `sitecustomize.py`.
const SITE: &str = "site";
/// The name Python imports at start-up from a directory on `PYTHONPATH`.
const SITECUSTOMIZE_FILE: &str = "sitecustomize.py";
/// How many times the start marker is written, at most, waiting for the clock to tick.
const MARKER_TRIES: u32 = 50;
/// Manifest format version.
const VERSION: u32 = 1;

/// Why a configured cache is not used for a run (the run goes ahead without one).
#[derive(Debug, thiserror::Error)]
pub(crate) enum CacheUnavailable {
    /// The directory is relative.
    #[error("the bytecode cache {0} is not an absolute path; give a plain directory")]
    NotPlain(Utf8PathBuf),
    /// Another run holds the cache.
    #[error("another run is using the bytecode cache {0}")]
    Busy(Utf8PathBuf),
    /// Something that is not Warden's was found in the cache's place (a link, a FIFO, ...).
    #[error("the bytecode cache was not used: {0}")]
    Refused(warden_rootfs::Error),
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

impl From<warden_rootfs::Error> for CacheUnavailable {
    fn from(e: warden_rootfs::Error) -> Self {
        CacheUnavailable::Refused(e)
    }
}

impl CacheUnavailable {
    /// Whether the cache was refused because something planted there is not Warden's (worth
    /// a line in the evidence, unlike a busy cache).
    pub(crate) fn is_tampering(&self) -> bool {
        matches!(self, CacheUnavailable::Refused(e) if e.is_wrong_kind())
    }
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
    /// The cache directory, held since it was checked.
    cache: Dir,
    prefix: Utf8PathBuf,
    root: Utf8PathBuf,
    started: (i64, i64),
    /// The directory holding the runs' `sitecustomize.py`, if it is there.
    site: Option<Utf8PathBuf>,
    /// The manifest as the lease found it (no one else writes it while the lock is held).
    manifest: Manifest,
    _lock: File,
}

impl Lease {
    /// Takes the cache at `dir` for a run in `root` (absolute, canonical) and deletes every
    /// `.pyc` in the root's mirror that might not match its source.
    pub(crate) fn acquire(dir: &Utf8Path, root: &Utf8Path) -> Result<Lease, CacheUnavailable> {
        if !dir.is_absolute() {
            return Err(CacheUnavailable::NotPlain(dir.to_owned()));
        }
        // Every component from `/` down is a real directory, not a link, and the handle is
        // what everything below goes through: deleting under it never reaches anything else.
        let cache = Dir::open_unlinked(dir, true)?;
        let lock_path = dir.join(LOCK);
        let lock = cache.open_file(LOCK, Open::Write)?;
        match warden_rootfs::try_lock(&lock, LockMode::Exclusive, lock_path.as_std_path()) {
            Ok(()) => {}
            Err(warden_rootfs::Error::Busy { .. }) => {
                return Err(CacheUnavailable::Busy(dir.to_owned()));
            }
            Err(e) => return Err(e.into()),
        }
        let site = match write_site(&cache) {
            Ok(written) => Some(written),
            Err(e) => {
                tracing::warn!(error = %e, "the sitecustomize could not be kept in the bytecode cache; the run has its own");
                None
            }
        };
        // The start is taken before anything is checked: a source that changes after it is
        // caught by `finish`, one that changed before it by the check below. A sitecustomize
        // just written must be older than the start, or its bytecode would not be kept: the
        // marker is written again until the file system's clock has ticked (once per version
        // of the file).
        let marker = dir.join(STARTED);
        let written = site.flatten();
        let mut tries = 0;
        let started = loop {
            let started = write_marker(&cache, &marker)?;
            tries += 1;
            if written.is_none_or(|ctime| ctime < started) || tries >= MARKER_TRIES {
                break started;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        };
        let lease = Lease {
            prefix: dir.join(TREE),
            root: root.to_owned(),
            started,
            site: site.map(|_| dir.join(SITE)),
            manifest: read_manifest(&cache),
            cache,
            _lock: lock,
        };
        let mut problem = None;
        if let Some(mirror) = lease.mirror() {
            walk(&mirror, &lease.root, 0, &mut |entry| match entry {
                Entry::Partial(dir, name) => remove(&dir, &name, &mut problem),
                Entry::Bytecode { dir, name, sources } => {
                    let good = !sources.is_empty()
                        && sources.iter().all(|(source, status)| {
                            lease.manifest.sources.get(source.as_str()) == Some(status)
                        });
                    if !good {
                        remove(&dir, &name, &mut problem);
                    }
                }
            });
        }
        match problem {
            Some(e) => Err(e.into()),
            None => Ok(lease),
        }
    }

    /// The value for `PYTHONPYCACHEPREFIX`.
    pub(crate) fn prefix(&self) -> &Utf8Path {
        &self.prefix
    }

    /// The file system's time when the run started: a source whose change time is not
    /// strictly before it may have changed during the run.
    pub(crate) fn started(&self) -> (i64, i64) {
        self.started
    }

    /// The root this lease's mirror belongs to.
    pub(crate) fn root(&self) -> &Utf8Path {
        &self.root
    }

    /// The directory in the cache holding the runs' `sitecustomize.py` (for `PYTHONPATH`),
    /// or `None` when it could not be written (the run then has its own).
    pub(crate) fn site(&self) -> Option<&Utf8Path> {
        self.site.as_deref()
    }

    /// Writes bytecode Warden compiled itself (see [`crate::precompile`]) as `name` in the
    /// mirror of the (absolute) source directory `dir`, replacing whatever is there. Like
    /// everything a run leaves, bytecode of the root's sources is recorded by
    /// [`Lease::finish`] only if its source did not change since the run started, and checked
    /// against the manifest before each run; Python checks the rest against its source.
    pub(crate) fn store(
        &self,
        dir: &Utf8Path,
        name: &str,
        bytecode: &[u8],
    ) -> Result<(), warden_rootfs::Error> {
        let dir = self.cache.create_dir_all(mirror_of(dir))?;
        // A half-written file has a name `walk` deletes (`*.pyc.*`).
        replace_file(&dir, name, bytecode, false)
    }

    /// Records the bytecode the run left whose sources did not change while it ran, deletes
    /// the rest, and releases the cache. Problems are logged: the next run checks again.
    pub(crate) fn finish(mut self) {
        let mut manifest = std::mem::take(&mut self.manifest);
        manifest
            .sources
            .retain(|source, _| !Utf8Path::new(source).starts_with(&self.root));
        let mut problem = None;
        if let Some(mirror) = self.mirror() {
            walk(&mirror, &self.root, 0, &mut |entry| match entry {
                Entry::Partial(dir, name) => remove(&dir, &name, &mut problem),
                Entry::Bytecode { dir, name, sources } => {
                    let settled = !sources.is_empty()
                        && sources
                            .iter()
                            .all(|(_, status)| status.ctime < self.started);
                    if settled {
                        manifest.sources.extend(sources);
                    } else {
                        remove(&dir, &name, &mut problem);
                    }
                }
            });
        }
        if let Some(e) = problem {
            tracing::warn!(cache = %self.cache.path().display(), error = %e, "could not delete bytecode compiled from files that changed during the run; the next run deletes it");
        }
        manifest.version = VERSION;
        if let Err(e) = self.write_manifest(&manifest) {
            tracing::warn!(cache = %self.cache.path().display(), error = %e, "could not record the bytecode cache; the next run re-compiles");
        }
    }

    /// The directory where Python puts the bytecode of files under the root (the root's
    /// absolute path, re-rooted at the prefix), or `None` when there is none yet. Something
    /// other than a directory in its place is logged and skipped: Python cannot have written
    /// bytecode through it either.
    fn mirror(&self) -> Option<Dir> {
        match self.cache.open_dir(mirror_of(&self.root)) {
            Ok(dir) => Some(dir),
            Err(e) if e.is_not_found() => None,
            Err(e) => {
                tracing::warn!(error = %e, "the bytecode mirror cannot be checked");
                None
            }
        }
    }

    /// Writes `manifest`, unless the file already holds exactly it (what the file holds now,
    /// not what the lease read: without the sandbox the run could have rewritten it). The
    /// usual run of an unchanged tree records what it found, and skips a flushed write.
    fn write_manifest(&self, manifest: &Manifest) -> Result<(), warden_rootfs::Error> {
        let text = serde_json::to_vec(manifest).unwrap_or_default();
        if holds(&self.cache, MANIFEST, &text) {
            return Ok(());
        }
        replace_file(&self.cache, MANIFEST, &text, true)
    }
}

/// Writes the start marker afresh and returns its change time.
fn write_marker(cache: &Dir, marker: &Utf8Path) -> Result<(i64, i64), CacheUnavailable> {
    let io = |action| {
        move |source| CacheUnavailable::Io {
            path: marker.to_owned(),
            action,
            source,
        }
    };
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    cache.remove_file(STARTED)?;
    let mut file = cache.open_file(STARTED, Open::CreateNew)?;
    file.write_all(nanos.to_string().as_bytes())
        .map_err(io("write the start marker"))?;
    let meta = file.metadata().map_err(io("read the start marker"))?;
    Ok((meta.ctime(), meta.ctime_nsec()))
}

/// Makes the cache's `sitecustomize.py` exactly [`SITECUSTOMIZE`], rewriting it only when what
/// is there differs: every run uses the same file, so its bytecode is cached like the root's
/// sources' (compiling it afresh cost every Python process of a run about 5 ms). Returns the
/// file's change time when it was written now.
fn write_site(cache: &Dir) -> Result<Option<(i64, i64)>, warden_rootfs::Error> {
    let site = cache.create_dir_all(SITE)?;
    if holds(&site, SITECUSTOMIZE_FILE, SITECUSTOMIZE.as_bytes()) {
        return Ok(None);
    }
    replace_file(&site, SITECUSTOMIZE_FILE, SITECUSTOMIZE.as_bytes(), false)?;
    let status = site.status_of(SITECUSTOMIZE_FILE)?;
    Ok(Some(status.ctime))
}

/// Whether `name` in `dir` is a regular file (reached without following a link, never a FIFO
/// waited on) holding exactly `bytes`.
fn holds(dir: &Dir, name: &str, bytes: &[u8]) -> bool {
    let mut there = Vec::new();
    dir.open_file(name, Open::Read).is_ok_and(|file| {
        file.take(bytes.len() as u64 + 1)
            .read_to_end(&mut there)
            .is_ok()
            && there == bytes
    })
}

/// The mirror of the absolute directory `dir` under the cache: where Python keeps the
/// bytecode of its sources (`PYTHONPYCACHEPREFIX` re-roots the absolute path).
fn mirror_of(dir: &Utf8Path) -> Utf8PathBuf {
    let mut rel = Utf8PathBuf::from(TREE);
    rel.extend(
        dir.components()
            .filter(|c| matches!(c, Utf8Component::Normal(_))),
    );
    rel
}

/// Writes `bytes` as `name` in `dir` through a new temporary file renamed over it (flushed to
/// disk first with `sync`): a link or anything else at `name` is replaced, never written
/// through, and a reader never sees half a file.
fn replace_file(
    dir: &Dir,
    name: &str,
    bytes: &[u8],
    sync: bool,
) -> Result<(), warden_rootfs::Error> {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let temporary = format!("{name}.{}.{nanos}", std::process::id());
    let mut file = dir.open_file(&temporary, Open::CreateNew)?;
    let written = file
        .write_all(bytes)
        .and_then(|()| if sync { file.sync_data() } else { Ok(()) });
    drop(file);
    if let Err(source) = written {
        let _ = dir.remove_file(&temporary);
        return Err(warden_rootfs::Error::Io {
            action: "write",
            path: dir.path().join(&temporary),
            source,
        });
    }
    dir.rename(&temporary, dir, name)
}

/// The manifest in `cache`, or an empty one when it is missing or unreadable (so nothing is
/// trusted).
fn read_manifest(cache: &Dir) -> Manifest {
    let read = || -> Result<Manifest, String> {
        let file = cache
            .open_file(MANIFEST, Open::Read)
            .map_err(|e| e.to_string())?;
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
            if cache.status_of(MANIFEST).is_ok() {
                tracing::warn!(cache = %cache.path().display(), %reason, "ignoring the bytecode manifest; cached bytecode under the root is re-compiled");
            }
            Manifest::default()
        }
    }
}

/// A file found in the mirror, with the handle of the directory it was listed in.
enum Entry {
    /// A `.pyc` with the status of each existing source it may belong to.
    Bytecode {
        dir: Dir,
        name: String,
        sources: Vec<(String, SourceStatus)>,
    },
    /// A half-written `.pyc` (`name.pyc.<suffix>`) or one that is not a regular file: never
    /// kept.
    Partial(Dir, String),
}

/// Visits every bytecode file under `mirror` (whose files mirror `source_dir`), through
/// handles, never following a link. Unreadable directories are skipped: Python cannot have
/// read them either.
fn walk(mirror: &Dir, source_dir: &Utf8Path, depth: usize, visit: &mut dyn FnMut(Entry)) {
    let Ok(entries) = mirror.entries() else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(name) = entry.name.into_string() else {
            continue;
        };
        let bytecode_like = name.ends_with(".pyc") || name.contains(".pyc.");
        if entry.kind == Kind::Dir {
            if depth < MAX_DEPTH {
                if let Ok(sub) = mirror.open_dir(&name) {
                    walk(&sub, &source_dir.join(&name), depth + 1, visit);
                }
            } else {
                tracing::warn!(path = %mirror.path().join(&name).display(), "bytecode cache deeper than Warden checks; not used");
                let mut budget = MAX_DEEP_REMOVALS;
                let _ = mirror.remove_tree(&name, &mut budget);
            }
        } else if entry.kind == Kind::File && name.ends_with(".pyc") {
            visit(Entry::Bytecode {
                sources: sources_of(source_dir, &name),
                dir: mirror.clone(),
                name,
            });
        } else if bytecode_like || entry.kind == Kind::Symlink {
            // Half-written, or not a regular file (Python writes only regular files here);
            // a link anywhere in the mirror would make Python write through it.
            visit(Entry::Partial(mirror.clone(), name));
        }
    }
}

/// Each existing source `name` (a `.pyc`) may have been compiled from, with its status.
///
/// Python names bytecode `<stem>.<tag>[.opt-N].pyc` and pytest `<stem>.<tag>-pytest-<version>.pyc`,
/// where the stem may itself contain dots: every prefix of the name that ends before a dot is
/// a candidate stem, and all that exist must be unchanged for the file to be trusted. (Only
/// the status is read, which never waits, and following a link is what Python does too.)
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

fn remove(dir: &Dir, name: &str, problem: &mut Option<warden_rootfs::Error>) {
    if let Err(e) = dir.remove_file(name) {
        *problem = Some(e);
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

    #[test]
    fn the_sitecustomize_is_warden_s_whatever_was_planted_in_its_place() {
        let s = Setup::new();
        let outside = s.root.parent().unwrap().join("outside.py");
        fs::write(&outside, "SECRET = 1\n").unwrap();
        let site = s.cache.join(SITE).join(SITECUSTOMIZE_FILE);
        drop(s.lease());
        assert_eq!(fs::read_to_string(&site).unwrap(), SITECUSTOMIZE);
        // A link out, a FIFO (whose open would wait), edited text: each replaced, never
        // followed or waited on, and the link's target untouched.
        for plant in ["link", "fifo", "edit"] {
            fs::remove_file(&site).unwrap();
            match plant {
                "link" => std::os::unix::fs::symlink(&outside, &site).unwrap(),
                "fifo" => {
                    nix::unistd::mkfifo(site.as_std_path(), nix::sys::stat::Mode::S_IRWXU).unwrap()
                }
                _ => fs::write(&site, format!("{SITECUSTOMIZE}\nraise SystemExit(3)\n")).unwrap(),
            }
            let lease = s.lease();
            assert_eq!(lease.site(), Some(s.cache.join(SITE).as_path()));
            assert!(
                !fs::symlink_metadata(&site)
                    .unwrap()
                    .file_type()
                    .is_symlink()
            );
            assert_eq!(fs::read_to_string(&site).unwrap(), SITECUSTOMIZE, "{plant}");
            assert_eq!(fs::read_to_string(&outside).unwrap(), "SECRET = 1\n");
        }
    }

    #[test]
    fn the_manifest_is_rewritten_only_when_it_does_not_hold_what_finish_records() {
        use std::os::unix::fs::MetadataExt as _;
        let s = Setup::new();
        s.source("pkg/mod.py", "VALUE = 1\n");
        let lease = s.lease();
        s.compile("pkg/mod.cpython-311.pyc");
        lease.finish();
        let manifest = s.cache.join(MANIFEST);
        let recorded = fs::read(&manifest).unwrap();
        let inode = fs::metadata(&manifest).unwrap().ino();
        // An unchanged tree: the same record, left in place (no flushed write).
        s.lease().finish();
        assert_eq!(fs::read(&manifest).unwrap(), recorded);
        assert_eq!(fs::metadata(&manifest).unwrap().ino(), inode);
        // A run that rewrote the manifest (it can, without the sandbox): what finish records
        // replaces it, whatever the lease read before the run.
        let lease = s.lease();
        fs::write(&manifest, b"{\"version\":1,\"sources\":{}}").unwrap();
        lease.finish();
        assert_eq!(fs::read(&manifest).unwrap(), recorded);
        assert!(s.cached("pkg/mod.cpython-311.pyc"));
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
        for refused in [link.clone(), link.join("inner")] {
            let result = Lease::acquire(&refused, &s.root);
            assert!(
                matches!(&result, Err(e) if e.is_tampering()),
                "{refused}: {result:?}"
            );
        }
        fs::write(s.cache.join("file"), "").unwrap();
        let file = Lease::acquire(&s.cache.join("file"), &s.root);
        assert!(matches!(&file, Err(e) if e.is_tampering()), "{file:?}");
        assert!(!s.cache.join("inner").exists(), "created through the link");
    }

    fn mkfifo(path: &Utf8Path) {
        let status = std::process::Command::new("mkfifo")
            .arg(path.as_str())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Acquires on another thread, so a FIFO that is waited on fails the test, not hangs it.
    fn acquire_without_hanging(s: &Setup) -> Result<Lease, CacheUnavailable> {
        let (tx, rx) = std::sync::mpsc::channel();
        let (cache, root) = (s.cache.clone(), s.root.clone());
        std::thread::spawn(move || {
            let _ = tx.send(Lease::acquire(&cache, &root));
        });
        rx.recv_timeout(std::time::Duration::from_secs(20))
            .expect("acquiring the cache blocked on a FIFO")
    }

    #[test]
    fn a_fifo_planted_as_the_lock_is_refused_without_waiting_and_as_the_marker_replaced() {
        let s = Setup::new();
        fs::create_dir_all(&s.cache).unwrap();
        mkfifo(&s.cache.join(LOCK));
        let Err(e) = acquire_without_hanging(&s) else {
            panic!("a FIFO was accepted as the lock");
        };
        assert!(e.is_tampering(), "{e}");
        let message = e.to_string();
        assert!(
            message.contains("FIFO") && message.contains(LOCK),
            "{message}"
        );
        fs::remove_file(s.cache.join(LOCK)).unwrap();
        // The marker is Warden's own file, made anew for each run: whatever is there goes.
        mkfifo(&s.cache.join(STARTED));
        drop(acquire_without_hanging(&s).unwrap());
        assert!(
            fs::symlink_metadata(s.cache.join(STARTED))
                .unwrap()
                .is_file()
        );
    }

    #[test]
    fn a_fifo_or_link_planted_as_the_manifest_trusts_nothing_and_is_replaced() {
        let s = Setup::new();
        s.source("pkg/mod.py", "VALUE = 1\n");
        let lease = s.lease();
        s.compile(MOD);
        lease.finish();
        fs::remove_file(s.cache.join(MANIFEST)).unwrap();
        mkfifo(&s.cache.join(MANIFEST));
        let lease = acquire_without_hanging(&s).unwrap();
        assert!(!s.cached(MOD), "trusted without a manifest");
        s.compile(MOD);
        lease.finish();
        assert!(
            fs::symlink_metadata(s.cache.join(MANIFEST))
                .unwrap()
                .is_file()
        );
        // A link to a file outside: never read, never written through.
        let outside = s.root.with_file_name("outside.json");
        fs::write(&outside, "theirs").unwrap();
        fs::remove_file(s.cache.join(MANIFEST)).unwrap();
        std::os::unix::fs::symlink(&outside, s.cache.join(MANIFEST)).unwrap();
        let lease = s.lease();
        lease.finish();
        assert_eq!(fs::read_to_string(&outside).unwrap(), "theirs");
        assert!(
            fs::symlink_metadata(s.cache.join(MANIFEST))
                .unwrap()
                .is_file()
        );
    }

    #[test]
    fn a_mirror_directory_swapped_for_a_link_is_never_deleted_through() {
        let s = Setup::new();
        s.source("pkg/mod.py", "VALUE = 1\n");
        let lease = s.lease();
        s.compile(MOD);
        lease.finish();
        // Bytecode-looking files outside, and the mirror's `pkg` now a link to them.
        let outside = s.root.with_file_name("victim");
        fs::create_dir_all(&outside).unwrap();
        fs::write(outside.join(MOD.trim_start_matches("pkg/")), "precious").unwrap();
        let pkg = s.mirror("pkg");
        fs::remove_dir_all(&pkg).unwrap();
        std::os::unix::fs::symlink(&outside, &pkg).unwrap();
        let lease = s.lease();
        lease.finish();
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 1);
        assert!(
            fs::symlink_metadata(&pkg).is_err(),
            "the link stays in the mirror"
        );
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
