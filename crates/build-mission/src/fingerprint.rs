//! The code fingerprint: a hash of the working tree the tests saw.
//!
//! Two runs with the same fingerprint ran on the same code, which is what lets the classifier
//! call a test that passed in one and failed in the other a flake rather than a regression.
//!
//! # Which files
//!
//! - **In a git repository** (the root or one of its ancestors has a `.git`): the files
//!   `git ls-files -z --cached --others --exclude-standard` lists under the root, i.e. tracked
//!   files and untracked files that are not ignored. git runs with a deadline, with
//!   `core.fsmonitor` off (a repository's config must not make Warden run a program) and
//!   without inherited `GIT_DIR`-style variables. If git is not installed, the tree is walked
//!   instead (below), which hashes more files: fingerprints then differ more often, never less.
//! - **Otherwise**: every file under the root, not following symbolic links, skipping
//!   [`WALK_SKIPPED_DIRS`] (version control, virtual environments, tool caches).
//!
//! Either way, Warden's own directory [`WARDEN_DIR`] at the root, the caller's extra
//! exclusions, and what running the tests itself writes ([`ALWAYS_SKIPPED_DIRS`] anywhere,
//! such as `__pycache__`, and coverage data) are left out: otherwise the first run would change
//! the fingerprint of the second.
//!
//! # Hash scheme (version 1)
//!
//! SHA-256 over the bytes `warden-tree-v1\0`, then, for each path in byte order, the path's
//! length as 8 little-endian bytes, the root-relative path bytes and a kind byte, followed for
//! some kinds by a 32-byte SHA-256:
//!
//! - `f`: a regular file, then the digest of its content;
//! - `x`: an executable regular file, then the digest of its content;
//! - `l`: a symbolic link, then the digest of its target text (the link is never followed);
//! - `d`: a directory git lists as one entry (a submodule or nested repository);
//! - `o`: anything else (FIFO, socket, device), never opened; also a listed path that can only
//!   be reached through a link (git lists the index, which may name `a/b` after `a` became
//!   a link), or a file that turned into something else between its listing and its reading.
//!
//! A tracked file deleted from the working tree contributes nothing, exactly as if it had
//! never existed, so the fingerprint depends on the working tree alone, not on what is staged
//! or committed. File contents are streamed through the hasher in 64 KiB pieces, never read
//! whole.
//!
//! # Hostile trees
//!
//! The tree belongs to the code under test, which can leave a FIFO where a file was listed,
//! swap a directory for a link between the listing and the hashing, or grow the tree without
//! end. Every entry is therefore reached from a handle on the root, one plain name at a time,
//! without following a link and without an open that waits ([`warden_rootfs`]); the walk
//! visits at most [`MAX_WALK_ENTRIES`] entries and [`MAX_WALK_DEPTH`] levels; and the whole
//! fingerprint gives up at [`FingerprintOptions::deadline`]. Each of these is an error, so the
//! run simply has no fingerprint (history cannot prove a flake for it).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use warden_rootfs::{Dir, Kind, Open};

/// Warden's own directory at the repository root, never part of the fingerprint.
pub const WARDEN_DIR: &str = ".warden";

/// Directories skipped wherever they appear, in git repositories too: caches that running the
/// tests (or tools around them) writes.
pub const ALWAYS_SKIPPED_DIRS: &[&str] = &[
    "__pycache__",
    ".pytest_cache",
    ".hypothesis",
    ".mypy_cache",
    ".ruff_cache",
];

/// Directories skipped when walking a tree outside git: version control and environments.
pub const WALK_SKIPPED_DIRS: &[&str] = &[
    ".git",
    ".hg",
    ".svn",
    ".venv",
    "venv",
    ".tox",
    ".nox",
    "node_modules",
];

/// How long `git ls-files` may take by default.
pub const DEFAULT_GIT_DEADLINE: Duration = Duration::from_secs(10);

/// How long a whole fingerprint may take by default.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(60);

/// The most entries a walk of a tree outside git visits.
pub const MAX_WALK_ENTRIES: usize = 1_000_000;

/// The deepest a walk of a tree outside git descends.
pub const MAX_WALK_DEPTH: usize = 256;

const SCHEME: &[u8] = b"warden-tree-v1\0";
const CHUNK: usize = 64 * 1024;
/// Enough of git's complaint to act on.
const STDERR_KEPT: u64 = 4096;

/// How to fingerprint a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FingerprintOptions {
    /// How long `git ls-files` may take before the fingerprint fails.
    pub git_deadline: Duration,
    /// More root-relative paths to leave out (each with everything under it), e.g. a ledger
    /// kept outside `.warden/`. Absolute paths under the root are accepted too.
    pub exclude: Vec<PathBuf>,
    /// How long the whole fingerprint may take (listing and hashing) before it fails.
    pub deadline: Duration,
}

impl Default for FingerprintOptions {
    fn default() -> Self {
        FingerprintOptions {
            git_deadline: DEFAULT_GIT_DEADLINE,
            exclude: Vec::new(),
            deadline: DEFAULT_DEADLINE,
        }
    }
}

/// Why a tree could not be fingerprinted. A run without a fingerprint still runs; history just
/// cannot prove flakes for it.
#[derive(Debug, thiserror::Error)]
pub enum FingerprintError {
    /// A file or directory could not be read.
    #[error("cannot fingerprint {}: {source}", path.display())]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// git could not list the files.
    #[error("`git ls-files` failed in {} ({status}): {stderr}", root.display())]
    Git {
        /// The root git ran in.
        root: PathBuf,
        /// How git ended.
        status: String,
        /// The start of what git printed on stderr.
        stderr: String,
    },
    /// An entry could not be reached without following a link or waiting on it, where
    /// Warden has to read it (a directory to walk).
    #[error("cannot fingerprint: {0}")]
    Refused(#[source] warden_rootfs::Error),
    /// The tree is larger or deeper than a walk visits, or fingerprinting it took longer than
    /// its deadline.
    #[error("cannot fingerprint {}: {reason}", root.display())]
    TooLarge {
        /// The root.
        root: PathBuf,
        /// Which bound was reached.
        reason: String,
    },
    /// git did not finish in time and was killed.
    #[error("`git ls-files` in {} took longer than {deadline:?} and was stopped", root.display())]
    GitTimeout {
        /// The root git ran in.
        root: PathBuf,
        /// The deadline it missed.
        deadline: Duration,
    },
}

/// The fingerprint of the working tree at `root`: 64 lower-case hex digits.
///
/// Deterministic: the same files with the same contents give the same fingerprint, whatever
/// the order the file system lists them in.
pub fn fingerprint(root: &Path, options: &FingerprintOptions) -> Result<String, FingerprintError> {
    fingerprint_with_manifest(root, options).map(|(print, _)| print)
}

/// What each fingerprinted path contributed: its kind byte and, for files and links, the digest
/// of its content or target. Two manifests of one root tell which paths changed between them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    entries: BTreeMap<PathBuf, (u8, [u8; 32])>,
}

impl Manifest {
    /// The root-relative paths added, removed or changed (content, kind or link target) from
    /// `before` to `self`, in byte order.
    pub fn changed_since(&self, before: &Manifest) -> Vec<PathBuf> {
        let mut changed: BTreeSet<&PathBuf> = BTreeSet::new();
        for (path, entry) in &self.entries {
            if before.entries.get(path) != Some(entry) {
                changed.insert(path);
            }
        }
        for path in before.entries.keys() {
            if !self.entries.contains_key(path) {
                changed.insert(path);
            }
        }
        changed.into_iter().cloned().collect()
    }

    /// Whether `path` (root-relative) is in this manifest.
    pub fn contains(&self, path: &Path) -> bool {
        self.entries.contains_key(path)
    }

    /// Whether `path` (root-relative) was a regular file (executable or not) in this manifest.
    pub fn is_regular_file(&self, path: &Path) -> bool {
        matches!(self.entries.get(path), Some((b'f' | b'x', _)))
    }

    fn record(&mut self, rel: &Path, kind: u8, digest: [u8; 32]) {
        self.entries.insert(rel.to_owned(), (kind, digest));
    }
}

/// [`fingerprint`], with the [`Manifest`] it was computed from.
pub fn fingerprint_with_manifest(
    root: &Path,
    options: &FingerprintOptions,
) -> Result<(String, Manifest), FingerprintError> {
    let mut manifest = Manifest::default();
    let started = Instant::now();
    let root = fs::canonicalize(root).map_err(|source| FingerprintError::Io {
        path: root.to_owned(),
        source,
    })?;
    // Everything below is reached from this handle: no link is followed, nothing waits.
    let top = Dir::open(&root).map_err(FingerprintError::Refused)?;
    let bounds = Bounds {
        root: &root,
        started,
        deadline: options.deadline,
    };
    let excluded = exclusions(&root, &options.exclude);
    let listed = if in_git_repository(&root) {
        match git_files(&root, options.git_deadline.min(options.deadline)) {
            Ok(paths) => paths,
            Err(GitListing::NotInstalled) => {
                tracing::warn!(
                    root = %root.display(),
                    "git is not installed; fingerprinting by walking the tree"
                );
                walk(&top, &excluded, &bounds)?
            }
            Err(GitListing::Failed(e)) => return Err(e),
        }
    } else {
        walk(&top, &excluded, &bounds)?
    };
    let paths: BTreeSet<PathBuf> = listed
        .into_iter()
        .filter(|p| !is_excluded(p, &excluded))
        .collect();

    let mut tree = Sha256::new();
    tree.update(SCHEME);
    let mut chunk = vec![0u8; CHUNK];
    for rel in &paths {
        bounds.check()?;
        let full = root.join(rel);
        let io_error = |source| FingerprintError::Io {
            path: full.clone(),
            source,
        };
        let status = match top.status_of(rel) {
            Ok(status) => Some(status),
            // Listed by git but deleted from the working tree: the tree does not have it.
            Err(e) if e.is_not_found() => continue,
            // Only reachable through a link on the way: never followed.
            Err(e) if e.is_wrong_kind() => None,
            Err(e) => return Err(FingerprintError::Refused(e)),
        };
        let bytes = rel.as_os_str().as_bytes();
        tree.update((bytes.len() as u64).to_le_bytes());
        tree.update(bytes);
        match status.map(|s| (s.kind, s.mode)) {
            Some((Kind::Symlink, _)) => match top.read_link(rel) {
                Ok(target) => {
                    tree.update(b"l");
                    let digest: [u8; 32] = Sha256::digest(target.as_bytes()).into();
                    tree.update(digest);
                    manifest.record(rel, b'l', digest);
                }
                Err(_) => {
                    tree.update(b"o");
                    manifest.record(rel, b'o', [0; 32]);
                }
            },
            Some((Kind::File, mode)) => match top.open_file(rel, Open::Read) {
                Ok(file) => {
                    let executable = mode & 0o111 != 0;
                    tree.update(if executable { b"x" } else { b"f" });
                    let digest =
                        content_digest(file, &mut chunk, &bounds).map_err(|e| match e {
                            DigestError::Io(e) => io_error(e),
                            DigestError::Bound(e) => e,
                        })?;
                    tree.update(digest);
                    manifest.record(rel, if executable { b'x' } else { b'f' }, digest);
                }
                // Swapped for something else since it was looked at: not opened, not waited on.
                Err(e) if e.is_wrong_kind() || e.is_not_found() => {
                    tree.update(b"o");
                    manifest.record(rel, b'o', [0; 32]);
                }
                Err(e) => return Err(FingerprintError::Refused(e)),
            },
            Some((Kind::Dir, _)) => {
                tree.update(b"d");
                manifest.record(rel, b'd', [0; 32]);
            }
            _ => {
                tree.update(b"o");
                manifest.record(rel, b'o', [0; 32]);
            }
        }
    }
    Ok((hex::encode(tree.finalize()), manifest))
}

/// The time bound of one fingerprint.
struct Bounds<'a> {
    root: &'a Path,
    started: Instant,
    deadline: Duration,
}

impl Bounds<'_> {
    fn check(&self) -> Result<(), FingerprintError> {
        if self.started.elapsed() > self.deadline {
            return Err(self.too_large(format!(
                "it took longer than its {:?} deadline",
                self.deadline
            )));
        }
        Ok(())
    }

    fn too_large(&self, reason: String) -> FingerprintError {
        FingerprintError::TooLarge {
            root: self.root.to_owned(),
            reason,
        }
    }
}

enum DigestError {
    Io(io::Error),
    Bound(FingerprintError),
}

fn content_digest(
    mut file: File,
    chunk: &mut [u8],
    bounds: &Bounds<'_>,
) -> Result<[u8; 32], DigestError> {
    let mut hasher = Sha256::new();
    let mut pieces = 0u32;
    loop {
        match file.read(chunk) {
            Ok(0) => break,
            Ok(n) => hasher.update(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(DigestError::Io(e)),
        }
        pieces = pieces.wrapping_add(1);
        // A file can be huge: look at the clock every 64 MiB.
        if pieces.is_multiple_of(1024) {
            bounds.check().map_err(DigestError::Bound)?;
        }
    }
    Ok(hasher.finalize().into())
}

/// Root-relative, normalised exclusions: Warden's directory and the caller's.
fn exclusions(root: &Path, extra: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = vec![PathBuf::from(WARDEN_DIR)];
    for path in extra {
        let relative = if path.is_absolute() {
            // An exclusion outside the root has nothing to exclude.
            let Ok(rel) = path.strip_prefix(root) else {
                continue;
            };
            rel
        } else {
            path
        };
        let normal: PathBuf = relative
            .components()
            .filter(|c| !matches!(c, Component::CurDir))
            .collect();
        if !normal.as_os_str().is_empty() {
            out.push(normal);
        }
    }
    out
}

/// Whether a root-relative path is left out. Comparisons are component-wise.
fn is_excluded(rel: &Path, excluded: &[PathBuf]) -> bool {
    if excluded.iter().any(|ex| rel.starts_with(ex)) {
        return true;
    }
    let mut components = rel.components().peekable();
    while let Some(component) = components.next() {
        let name = component.as_os_str();
        let is_file = components.peek().is_none();
        if is_file {
            return is_generated_file(name);
        }
        if ALWAYS_SKIPPED_DIRS.iter().any(|d| name == OsStr::new(d)) {
            return true;
        }
    }
    false
}

/// Files that running Python tests writes next to the code.
///
/// Bytecode is not among them: Python writes it only inside `__pycache__` (skipped above), and a
/// `.pyc` anywhere else is importable code in its own right (a sourceless module), so it must
/// change the fingerprint like any source file.
fn is_generated_file(name: &OsStr) -> bool {
    let name = name.as_bytes();
    name == b".coverage" || name.starts_with(b".coverage.")
}

fn in_git_repository(root: &Path) -> bool {
    root.ancestors()
        .any(|dir| fs::symlink_metadata(dir.join(".git")).is_ok())
}

enum GitListing {
    NotInstalled,
    Failed(FingerprintError),
}

/// The root-relative paths git lists, with a deadline.
fn git_files(root: &Path, deadline: Duration) -> Result<Vec<PathBuf>, GitListing> {
    let mut command = Command::new("git");
    command
        .args(["-c", "core.fsmonitor=false", "-c", "core.quotePath=false"])
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        // Not even listed, so git does not walk Warden's directory (its bytecode cache holds
        // hundreds of files).
        .args(["--", ".", &format!(":(exclude){WARDEN_DIR}")])
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("GIT_OPTIONAL_LOCKS", "0");
    for var in [
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_COMMON_DIR",
        "GIT_NAMESPACE",
        "GIT_CEILING_DIRECTORIES",
        "GIT_DISCOVERY_ACROSS_FILESYSTEM",
        "GIT_CONFIG_PARAMETERS",
        "GIT_CONFIG_COUNT",
    ] {
        command.env_remove(var);
    }
    let failed = |status: String, stderr: String| {
        GitListing::Failed(FingerprintError::Git {
            root: root.to_owned(),
            status,
            stderr,
        })
    };
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(GitListing::NotInstalled),
        Err(e) => return Err(failed("could not start".to_owned(), e.to_string())),
    };
    let (Some(mut stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(failed("no pipes".to_owned(), String::new()));
    };
    let stderr_reader = thread::spawn(move || {
        let mut kept = Vec::new();
        let mut stderr = stderr;
        let _ = (&mut stderr).take(STDERR_KEPT).read_to_end(&mut kept);
        // Keep draining so git never blocks on a full pipe.
        let _ = io::copy(&mut stderr, &mut io::sink());
        String::from_utf8_lossy(&kept).trim().to_owned()
    });
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        let mut out = Vec::new();
        let result = stdout.read_to_end(&mut out).map(|_| out);
        let _ = sender.send(result);
    });
    let listing = match receiver.recv_timeout(deadline) {
        Ok(Ok(listing)) => listing,
        Ok(Err(e)) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(failed(
                "reading its output failed".to_owned(),
                e.to_string(),
            ));
        }
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(GitListing::Failed(FingerprintError::GitTimeout {
                root: root.to_owned(),
                deadline,
            }));
        }
    };
    // git has closed its output, so it is exiting; this wait is immediate.
    let status = child
        .wait()
        .map_err(|e| failed("could not be waited for".to_owned(), e.to_string()))?;
    let stderr = stderr_reader.join().unwrap_or_default();
    if !status.success() {
        return Err(failed(status.to_string(), stderr));
    }
    Ok(listing
        .split(|&b| b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| {
            // A nested repository is listed as `dir/`; the trailing slash is not part of the path.
            let p = p.strip_suffix(b"/").unwrap_or(p);
            PathBuf::from(OsStr::from_bytes(p))
        })
        .collect())
}

/// Every non-directory entry under `top` (root-relative), through handles, never following a
/// link, skipping [`WALK_SKIPPED_DIRS`], [`ALWAYS_SKIPPED_DIRS`] and the `excluded` paths
/// (never entered: they can be large, like Warden's bytecode cache). Bounded by
/// [`MAX_WALK_ENTRIES`], [`MAX_WALK_DEPTH`] and the deadline.
fn walk(
    top: &Dir,
    excluded: &[PathBuf],
    bounds: &Bounds<'_>,
) -> Result<Vec<PathBuf>, FingerprintError> {
    let mut files = Vec::new();
    let mut seen = 0usize;
    let mut pending = vec![(top.clone(), PathBuf::new(), 0usize)];
    while let Some((dir, rel_dir, depth)) = pending.pop() {
        bounds.check()?;
        for entry in dir.entries().map_err(FingerprintError::Refused)? {
            let entry = entry.map_err(FingerprintError::Refused)?;
            seen += 1;
            if seen > MAX_WALK_ENTRIES {
                return Err(
                    bounds.too_large(format!("it has more than {MAX_WALK_ENTRIES} entries"))
                );
            }
            let rel = rel_dir.join(&entry.name);
            if entry.kind != Kind::Dir {
                files.push(rel);
                continue;
            }
            let skipped = WALK_SKIPPED_DIRS
                .iter()
                .chain(ALWAYS_SKIPPED_DIRS)
                .any(|d| entry.name == OsStr::new(d))
                || excluded.iter().any(|ex| rel.starts_with(ex));
            if skipped {
                continue;
            }
            if depth >= MAX_WALK_DEPTH {
                return Err(bounds.too_large(format!("it is deeper than {MAX_WALK_DEPTH} levels")));
            }
            match dir.open_dir(&entry.name) {
                Ok(sub) => pending.push((sub, rel, depth + 1)),
                // Swapped for a link or a file since it was listed: hashed as what it is now.
                Err(e) if e.is_wrong_kind() || e.is_not_found() => files.push(rel),
                Err(e) => return Err(FingerprintError::Refused(e)),
            }
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusions_are_component_wise_and_rooted() {
        let root = Path::new("/repo");
        let excluded = exclusions(
            root,
            &[
                PathBuf::from("./logs/run"),
                PathBuf::from("/repo/out.jsonl"),
                PathBuf::from("/elsewhere/x"),
                PathBuf::from("."),
            ],
        );
        assert_eq!(
            excluded,
            [".warden", "logs/run", "out.jsonl"]
                .map(PathBuf::from)
                .to_vec()
        );
        let out = |p: &str| is_excluded(Path::new(p), &excluded);
        assert!(out(".warden/ledger.jsonl"));
        assert!(out("logs/run/a.txt"));
        assert!(out("out.jsonl"));
        assert!(out("src/__pycache__/m.cpython-311.pyc"));
        assert!(out("deep/.pytest_cache/v/x"));
        assert!(out(".coverage.host.123"));
        assert!(!out(".wardenx/file"));
        assert!(!out("src/.warden/file"));
        assert!(!out("logs/runner.txt"));
        assert!(!out("out.jsonl.bak"));
        assert!(!out("src/__pycache__"));
        assert!(!out("src/module.py"));
        // A sourceless module is code, not a cache.
        assert!(!out("pkg/module.pyc"));
        assert!(!out("coverage.py"));
    }
}
