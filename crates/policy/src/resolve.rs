//! Resolving targets against the real file system, and walking directory targets.
//!
//! Resolution follows symlinks the way the kernel does (each link's target is interpreted
//! relative to the link's own, already-resolved directory), but keeps going past the first
//! component that does not exist, so a file that is about to be written is judged by where it
//! would really land. A dangling symlink therefore counts as where it points.

use std::collections::{HashSet, VecDeque};
use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Component, Path, PathBuf};

/// Symlinks followed while resolving one path before it counts as a loop (as Linux's ELOOP).
const MAX_LINK_HOPS: usize = 40;
/// Entries a directory walk may visit before it gives up (and the request is denied).
pub(crate) const MAX_WALK_ENTRIES: usize = 100_000;
/// Directory depth a walk may reach before it gives up (and the request is denied).
pub(crate) const MAX_WALK_DEPTH: usize = 64;

/// A path with its symlinks resolved.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    /// The absolute path, symlinks resolved; components past the first missing one are lexical.
    pub(crate) path: PathBuf,
    /// The symlinks passed through, in order, as absolute paths where each link was found.
    pub(crate) links: Vec<PathBuf>,
}

/// Why a path could not be resolved.
#[derive(Debug)]
pub(crate) enum ResolveError {
    /// Too many symlinks: a loop, or a chain longer than [`MAX_LINK_HOPS`].
    Loop { link: PathBuf },
    /// A symlink whose target has a Windows path prefix (never valid here).
    Prefix { link: PathBuf },
    /// The file system refused to answer.
    Io { path: PathBuf, source: io::Error },
}

/// Resolves `components` (normal names, or `..`/`.` from symlink targets) starting in `base`,
/// which must be an absolute, canonical directory.
pub(crate) fn resolve<I, S>(base: &Path, components: I) -> Result<Resolved, ResolveError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut current = base.to_path_buf();
    let mut pending: VecDeque<OsString> = components
        .into_iter()
        .map(|c| c.as_ref().to_os_string())
        .collect();
    let mut links = Vec::new();
    let mut missing = false;
    while let Some(comp) = pending.pop_front() {
        if comp.is_empty() || comp == "." {
            continue;
        }
        if comp == ".." {
            current.pop();
            continue;
        }
        let next = current.join(&comp);
        if missing {
            current = next;
            continue;
        }
        match std::fs::symlink_metadata(&next) {
            Ok(meta) if meta.file_type().is_symlink() => {
                if links.len() >= MAX_LINK_HOPS {
                    return Err(ResolveError::Loop { link: next });
                }
                let target = std::fs::read_link(&next).map_err(|source| ResolveError::Io {
                    path: next.clone(),
                    source,
                })?;
                let mut spliced = Vec::new();
                for part in target.components() {
                    match part {
                        Component::Prefix(_) => {
                            return Err(ResolveError::Prefix { link: next });
                        }
                        Component::RootDir => current = PathBuf::from("/"),
                        Component::CurDir => {}
                        Component::ParentDir => spliced.push(OsString::from("..")),
                        Component::Normal(name) => spliced.push(name.to_os_string()),
                    }
                }
                for part in spliced.into_iter().rev() {
                    pending.push_front(part);
                }
                links.push(next);
            }
            Ok(_) => current = next,
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                missing = true;
                current = next;
            }
            Err(source) => return Err(ResolveError::Io { path: next, source }),
        }
    }
    Ok(Resolved {
        path: current,
        links,
    })
}

/// A symlink found beneath a directory target, and where it leads.
#[derive(Debug, Clone)]
pub(crate) struct LinkReach {
    /// Where the link is (absolute).
    pub(crate) link: PathBuf,
    /// Where it leads, resolved (absolute).
    pub(crate) target: PathBuf,
}

/// Why a directory walk stopped without a complete answer.
#[derive(Debug)]
pub(crate) enum WalkError {
    /// More than [`MAX_WALK_ENTRIES`] entries.
    TooManyEntries,
    /// Deeper than [`MAX_WALK_DEPTH`] at `path`.
    TooDeep { path: PathBuf },
    /// A symlink beneath the directory could not be resolved.
    Link { link: PathBuf, error: ResolveError },
    /// A directory could not be read.
    Io { path: PathBuf, source: io::Error },
}

/// Lists every symlink reachable beneath the canonical directory `dir`, with where it leads.
///
/// Ordinary subdirectories are always walked. A symlink to a directory is walked too when
/// `descend` says its resolved target is worth looking into (inside the root and inside a scope
/// that could allow the request); otherwise the link itself already decides the outcome. Each
/// real directory is visited once, so symlink cycles end; the walk is bounded in entries and
/// depth and fails closed when a bound is hit.
pub(crate) fn walk(
    dir: &Path,
    descend: &dyn Fn(&Path) -> bool,
) -> Result<Vec<LinkReach>, WalkError> {
    let mut links = Vec::new();
    let mut visited: HashSet<PathBuf> = HashSet::new();
    visited.insert(dir.to_path_buf());
    let mut stack = vec![(dir.to_path_buf(), 0_usize)];
    let mut entries = 0_usize;
    while let Some((current, depth)) = stack.pop() {
        let listing = std::fs::read_dir(&current).map_err(|source| WalkError::Io {
            path: current.clone(),
            source,
        })?;
        for entry in listing {
            let entry = entry.map_err(|source| WalkError::Io {
                path: current.clone(),
                source,
            })?;
            entries += 1;
            if entries > MAX_WALK_ENTRIES {
                return Err(WalkError::TooManyEntries);
            }
            let path = entry.path();
            let file_type = entry.file_type().map_err(|source| WalkError::Io {
                path: path.clone(),
                source,
            })?;
            let next_dir = if file_type.is_symlink() {
                let resolved =
                    resolve(&current, [entry.file_name()]).map_err(|error| WalkError::Link {
                        link: path.clone(),
                        error,
                    })?;
                let target = resolved.path;
                links.push(LinkReach {
                    link: path.clone(),
                    target: target.clone(),
                });
                let is_dir = std::fs::metadata(&target).is_ok_and(|m| m.is_dir());
                (is_dir && descend(&target)).then_some(target)
            } else if file_type.is_dir() {
                Some(path.clone())
            } else {
                None
            };
            if let Some(next_dir) = next_dir {
                if depth + 1 > MAX_WALK_DEPTH {
                    return Err(WalkError::TooDeep { path });
                }
                if visited.insert(next_dir.clone()) {
                    stack.push((next_dir, depth + 1));
                }
            }
        }
    }
    Ok(links)
}
