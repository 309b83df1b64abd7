//! The repository root every target and scope is relative to.

use std::fmt;
use std::path::Path;

use camino::{Utf8Path, Utf8PathBuf};

use crate::error::PolicyError;

/// The canonical repository root: absolute, symlinks resolved, a directory, valid UTF-8.
///
/// Every target and scope is interpreted relative to it, and path checks consult the real
/// file system beneath it (symlinks are resolved before any scope test).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    path: Utf8PathBuf,
    backing: Backing,
}

/// Whether path checks look at the real file system or at an empty, imaginary tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backing {
    /// A real directory: symlinks are resolved, directories walked.
    Filesystem,
    /// Nothing exists beneath the root: checks are purely lexical. Used to check a policy's
    /// examples when no real root is at hand.
    Empty,
}

impl Root {
    /// Opens `path` as the root: it must exist and be a directory; it is canonicalised.
    pub fn new(path: impl AsRef<Path>) -> Result<Root, PolicyError> {
        let given = path.as_ref();
        let canonical =
            std::fs::canonicalize(given).map_err(|source| PolicyError::RootUnavailable {
                path: given.to_path_buf(),
                source,
            })?;
        let meta =
            std::fs::metadata(&canonical).map_err(|source| PolicyError::RootUnavailable {
                path: given.to_path_buf(),
                source,
            })?;
        if !meta.is_dir() {
            return Err(PolicyError::RootNotDirectory {
                path: given.to_path_buf(),
            });
        }
        let path = Utf8PathBuf::from_path_buf(canonical).map_err(|_| PolicyError::RootNotUtf8 {
            path: given.to_path_buf(),
        })?;
        Ok(Root {
            path,
            backing: Backing::Filesystem,
        })
    }

    /// An imaginary root with nothing beneath it, for checking examples without a real tree.
    pub(crate) fn empty() -> Root {
        Root {
            path: Utf8PathBuf::from("/"),
            backing: Backing::Empty,
        }
    }

    /// The absolute, canonical path of the root.
    pub fn path(&self) -> &Utf8Path {
        &self.path
    }

    pub(crate) fn backing(&self) -> Backing {
        self.backing
    }
}

impl fmt::Display for Root {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.path, f)
    }
}
